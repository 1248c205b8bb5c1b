/* late_floor - how late the machine itself wakes a sleeping thread: the "kernel floor" rows of the
 * timer lateness table.
 *
 *   late_floor N C [epoll_pwait2|nanosleep]      (default method: epoll_pwait2)
 *
 * N sleeps of the same pseudo-random 1-3 ms (whole microseconds) durations the lateness benchmark of
 * timers.h draws, with no event loop at all: read the clock, sleep `after` with a bare system call,
 * read the clock again. lateness = wake-up time - (clock read before the sleep + after), exactly how
 * timers.h measures a library's timer (there the second clock read is in the timer callback).
 * C sleeps are in flight at a time, as C timer chains are in timers.h: C threads (all on the CPU
 * the process is pinned to) each make N/C sleeps one after another, thread c taking durations c,
 * c + C, c + 2C... of the sequence. C matters on a VM: how late a wake-up is depends on how long
 * the CPU was idle before it, and with C in flight it idles for about 1/C of a sleep at a time.
 * The sleep is
 *   epoll_pwait2  on an epoll instance with nothing registered, nanosecond timeout: the wait evloop
 *                 itself uses (falls back to clock_nanosleep where the kernel lacks it);
 *   nanosleep     clock_nanosleep(CLOCK_MONOTONIC, relative).
 * Both get the thread's default timer slack (50 us), as every loop's poll timeout does. Whatever
 * lateness is in these rows, the machine added it before any library did anything.
 *
 * Reports late_p50_us, late_p99_us, late_max_us, late_min_us over all N. Checks: every sleep
 * returned for its timeout (not an event or an error) and none came back before its deadline.
 */
#include "bench.h"

#include <sys/epoll.h>

#include <pthread.h>

static size_t nsleeps, nthreads;
static int use_epoll = 1;
static uint64_t *durations;
static double *late;
static long early;

/* One sleep of `after` ns; returns the wake-up time. */
static uint64_t sleep_once(int epfd, uint64_t t0, uint64_t after) {
    struct timespec ts = {(time_t)(after / BENCH_NS_PER_SEC), (long)(after % BENCH_NS_PER_SEC)};
    if (use_epoll) {
        struct epoll_event ev;
        int rc;
        while ((rc = epoll_pwait2(epfd, &ev, 1, &ts, NULL)) < 0 && errno == EINTR) {
            uint64_t now = bench_now_ns(); /* sleep only what is left */
            uint64_t left = now < t0 + after ? t0 + after - now : 0;
            ts.tv_sec = (time_t)(left / BENCH_NS_PER_SEC);
            ts.tv_nsec = (long)(left % BENCH_NS_PER_SEC);
        }
        BENCH_CHECK(rc == 0, "epoll_pwait2 returned %d (%s)", rc, rc < 0 ? strerror(errno) : "an event");
    } else {
        int rc;
        while ((rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts)) == EINTR)
            ;
        BENCH_CHECK(rc == 0, "clock_nanosleep: %s", strerror(rc));
    }
    return bench_now_ns();
}

static void *sleeper(void *arg) {
    size_t c = (size_t)(uintptr_t)arg, i;
    int epfd = -1;
    long my_early = 0;
    if (use_epoll) {
        epfd = epoll_create1(EPOLL_CLOEXEC);
        BENCH_CHECK(epfd >= 0, "epoll_create1: %s", strerror(errno));
    }
    for (i = c; i < nsleeps; i += nthreads) {
        uint64_t t0 = bench_now_ns();
        uint64_t t1 = sleep_once(epfd, t0, durations[i]);
        my_early += t1 < t0 + durations[i];
        late[i] = ((double)t1 - (double)(t0 + durations[i])) / 1e3;
    }
    if (epfd >= 0) close(epfd);
    __atomic_add_fetch(&early, my_early, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv) {
    const char *method = argc > 3 ? argv[3] : "epoll_pwait2";
    pthread_t *th;
    size_t i;
    char name[96];

    nsleeps = argc > 1 ? (size_t)atol(argv[1]) : 1000;
    nthreads = argc > 2 ? (size_t)atol(argv[2]) : 1;
    use_epoll = strcmp(method, "epoll_pwait2") == 0;
    BENCH_CHECK(nsleeps > 0 && nthreads > 0 && nthreads <= nsleeps && (use_epoll || strcmp(method, "nanosleep") == 0),
                "usage: late_floor N C [epoll_pwait2|nanosleep]");
    if (use_epoll) {
        struct epoll_event ev;
        struct timespec zero = {0, 0};
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        BENCH_CHECK(epfd >= 0, "epoll_create1: %s", strerror(errno));
        if (epoll_pwait2(epfd, &ev, 1, &zero, NULL) < 0) {
            BENCH_CHECK(errno == ENOSYS, "epoll_pwait2: %s", strerror(errno));
            use_epoll = 0;
            method = "nanosleep (epoll_pwait2: ENOSYS)";
        }
        close(epfd);
    }
    snprintf(name, sizeof name, "%s, %zu in flight", method, nthreads);
    bench_info("library", name);

    durations = bench_calloc(nsleeps, sizeof *durations);
    late = bench_calloc(nsleeps, sizeof *late);
    for (i = 0; i < nsleeps; i++)
        durations[i] = bench_rand_between(1000, 3000) * 1000u; /* as timers.h: 1-3 ms in whole us */
    th = bench_calloc(nthreads, sizeof *th);
    for (i = 0; i < nthreads; i++)
        BENCH_CHECK(pthread_create(&th[i], NULL, sleeper, (void *)(uintptr_t)i) == 0, "pthread_create failed");
    for (i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
    BENCH_CHECK(early == 0, "%ld of %zu sleeps returned before their deadline", early, nsleeps);
    bench_result("late_p50_us", bench_percentile(late, nsleeps, 50));
    bench_result("late_p99_us", bench_percentile(late, nsleeps, 99));
    bench_result("late_max_us", late[nsleeps - 1]);
    bench_result("late_min_us", late[0]);
    return 0;
}
