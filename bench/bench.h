/* bench.h - small helpers shared by every benchmark program in bench/.
 *
 * Nothing here touches an event library: clocks, a pseudo-random generator whose sequence is the same
 * in every program (so every library gets the very same timeouts), statistics, checks, and the one
 * output format the driver (run.py) reads: lines of the form "RESULT <key> <value>". Anything else a
 * program prints is for humans and ignored.
 */
#ifndef BENCH_H
#define BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NS_PER_SEC 1000000000ull

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * BENCH_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system) of the whole process, for runs whose wall time is mostly waiting. */
static inline uint64_t bench_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * BENCH_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* A failed check ends the program with status 2, so a run that lost or duplicated work can never be
 * reported as a (fast) result: the driver treats any non-zero exit as a failure of that library. */
#define BENCH_CHECK(cond, ...)                                                                                         \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond);                                           \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            exit(2);                                                                                                   \
        }                                                                                                              \
    } while (0)

static inline void bench_result(const char *key, double value) { printf("RESULT %s %.6f\n", key, value); }

static inline void bench_info(const char *key, const char *value) { printf("INFO %s %s\n", key, value); }

/* xorshift64*: cheap (a few ns) and identical in every program, seeded with a fixed value. */
static uint64_t bench_rng_state = 0x2545F4914F6CDD1Dull;

static inline void bench_seed(uint64_t seed) { bench_rng_state = seed ? seed : 0x2545F4914F6CDD1Dull; }

static inline uint64_t bench_rand(void) {
    uint64_t x = bench_rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    bench_rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi], both inclusive. The modulo bias is irrelevant at these ranges. */
static inline uint64_t bench_rand_between(uint64_t lo, uint64_t hi) { return lo + bench_rand() % (hi - lo + 1); }

static int bench__cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place and returns the nearest-rank percentile p (0..100). */
static inline double bench_percentile(double *v, size_t n, double p) {
    size_t rank;
    if (n == 0) return 0.0;
    qsort(v, n, sizeof *v, bench__cmp_double);
    rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

static inline double bench_median(double *v, size_t n) {
    if (n == 0) return 0.0;
    qsort(v, n, sizeof *v, bench__cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static inline void bench_raise_nofile(rlim_t need) {
    struct rlimit rl;
    BENCH_CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit: %s", strerror(errno));
    if (rl.rlim_cur >= need) return;
    if (rl.rlim_max < need) {
        /* Raising the hard limit needs CAP_SYS_RESOURCE; try, and say clearly if it is refused. */
        struct rlimit want = {need, need};
        BENCH_CHECK(setrlimit(RLIMIT_NOFILE, &want) == 0,
                    "need %lu descriptors but the hard RLIMIT_NOFILE is %lu and cannot be raised (%s)",
                    (unsigned long)need, (unsigned long)rl.rlim_max, strerror(errno));
        return;
    }
    rl.rlim_cur = need;
    BENCH_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit(RLIMIT_NOFILE, %lu): %s", (unsigned long)need,
                strerror(errno));
}

/* Pins the calling thread to one CPU; cpu < 0 leaves the affinity alone. */
static inline void bench_pin_cpu(int cpu) {
    cpu_set_t set;
    if (cpu < 0) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    BENCH_CHECK(sched_setaffinity(0, sizeof set, &set) == 0, "sched_setaffinity(%d): %s", cpu, strerror(errno));
}

static inline void bench_set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    BENCH_CHECK(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0, "fcntl: %s", strerror(errno));
}

/* Allocation that cannot fail silently. */
static inline void *bench_calloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    BENCH_CHECK(p != NULL, "out of memory (%zu x %zu)", n, size);
    return p;
}

#endif /* BENCH_H */
