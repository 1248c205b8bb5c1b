/* timers.h - the timer benchmarks, shared by every timers_<library>.c.
 *
 *   timers_X churn T R   T timers get pseudo-random 1-10 s timeouts, then each is restarted R times
 *                        with a new timeout, then all are stopped. Reports ns per operation
 *                        (T * (R + 2) operations) and per phase.
 *   timers_X fire T      T timers due within 0-10 ms; the loop runs until every one has fired.
 *                        Reports the wall time from the first start to the loop's return, and the
 *                        process CPU time over the same span.
 *   timers_X late N C    N one-shot timers of 1-3 ms, C at a time (each of C chains starts its next
 *                        timer from the callback of the previous one). Reports p50/p99/max/min of
 *                        (time the callback ran - deadline asked for), in microseconds.
 *
 * Fairness rules, the same for every library:
 *   - all timer operations happen inside a loop callback (lib_defer), as in real programs, so every
 *     library uses its cached loop time instead of reading the clock per call;
 *   - the timeouts come from the same fixed pseudo-random sequence in every program;
 *   - each library gets its own idiomatic restart (see the library files) and its default
 *     configuration (so ms-granular libraries stay ms-granular: that is what the lateness test shows);
 *   - lateness: before each start the program reads the clock, then asks the library to refresh its
 *     cached time, so a library never gets a deadline earlier than the one measured against; a negative
 *     lateness therefore means the timer really fired early.
 *
 * Checks: churn fires nothing; fire fires every timer exactly once; late records exactly N samples.
 */
#ifndef TIMERS_H
#define TIMERS_H

#include "bench.h"

/* Hooks every library file defines. */
static const char *lib_name(void);
static void lib_init(size_t ntimers);                       /* loop + ntimers initialised watchers */
static void lib_defer(void (*fn)(void));                    /* run fn from a loop callback, soon */
static void lib_run(void);                                  /* run until no timer is active */
static void lib_now_update(void);                           /* refresh the cached loop time */
static void lib_timer_start(size_t i, uint64_t after_ns);   /* start inactive timer i, one-shot */
static void lib_timer_restart(size_t i, uint64_t after_ns); /* restart active timer i */
static void lib_timer_stop(size_t i);

static size_t ntimers;
static int restarts;
static unsigned char *fired_flag;
static size_t fired_total, fired_twice;

static double churn_ns[3]; /* start, restart, stop phases */

static void churn_body(void) {
    uint64_t t0, t1, t2, t3;
    size_t i;
    int r;

    t0 = bench_now_ns();
    for (i = 0; i < ntimers; i++) lib_timer_start(i, bench_rand_between(1, 10000) * 1000000u);
    t1 = bench_now_ns();
    for (r = 0; r < restarts; r++)
        for (i = 0; i < ntimers; i++) lib_timer_restart(i, bench_rand_between(1, 10000) * 1000000u);
    t2 = bench_now_ns();
    for (i = 0; i < ntimers; i++) lib_timer_stop(i);
    t3 = bench_now_ns();
    churn_ns[0] = (double)(t1 - t0);
    churn_ns[1] = (double)(t2 - t1);
    churn_ns[2] = (double)(t3 - t2);
}

static uint64_t fire_t0;

static void fire_body(void) {
    size_t i;
    fire_t0 = bench_now_ns();
    for (i = 0; i < ntimers; i++) lib_timer_start(i, bench_rand_between(0, 10000000));
}

/* Lateness: chain c runs late_left[c] more timers; late_deadline[c] is the deadline asked for. */
static size_t late_total, late_chains, late_samples_n;
static size_t *late_left;
static uint64_t *late_deadline;
static double *late_samples;

static void late_start(size_t c) {
    uint64_t after = bench_rand_between(1000, 3000) * 1000u; /* 1-3 ms in whole microseconds */
    uint64_t now = bench_now_ns();
    lib_now_update();
    late_deadline[c] = now + after;
    lib_timer_start(c, after);
}

static void late_body(void) {
    size_t c;
    for (c = 0; c < late_chains; c++) late_start(c);
}

static int mode_late;

/* Called by every library's timer callback. */
static inline void timers_fired(size_t i) {
    if (mode_late) {
        uint64_t now = bench_now_ns();
        BENCH_CHECK(late_samples_n < late_total, "more timers fired than started");
        late_samples[late_samples_n++] = ((double)now - (double)late_deadline[i]) / 1e3;
        if (--late_left[i] > 0) late_start(i);
        return;
    }
    if (fired_flag[i]) fired_twice++;
    fired_flag[i] = 1;
    fired_total++;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";

    if (strcmp(mode, "churn") == 0 && argc == 4) {
        size_t ops;
        ntimers = (size_t)atol(argv[2]);
        restarts = atoi(argv[3]);
        BENCH_CHECK(ntimers > 0 && restarts >= 0, "bad parameters");
        fired_flag = bench_calloc(ntimers, 1);
        lib_init(ntimers);
        bench_info("library", lib_name());
        lib_defer(churn_body);
        lib_run();
        BENCH_CHECK(fired_total == 0, "%zu timers fired during churn", fired_total);
        ops = ntimers * (size_t)(restarts + 2);
        bench_result("ns_per_op", (churn_ns[0] + churn_ns[1] + churn_ns[2]) / (double)ops);
        bench_result("start_ns", churn_ns[0] / (double)ntimers);
        if (restarts) bench_result("restart_ns", churn_ns[1] / ((double)ntimers * restarts));
        bench_result("stop_ns", churn_ns[2] / (double)ntimers);
        return 0;
    }

    if (strcmp(mode, "fire") == 0 && argc == 3) {
        uint64_t cpu0, t_end;
        ntimers = (size_t)atol(argv[2]);
        BENCH_CHECK(ntimers > 0, "bad parameters");
        fired_flag = bench_calloc(ntimers, 1);
        lib_init(ntimers);
        bench_info("library", lib_name());
        cpu0 = bench_cpu_ns();
        lib_defer(fire_body);
        lib_run();
        t_end = bench_now_ns();
        BENCH_CHECK(fired_total == ntimers && fired_twice == 0, "%zu of %zu timers fired, %zu twice", fired_total,
                    ntimers, fired_twice);
        bench_result("total_ms", (double)(t_end - fire_t0) / 1e6);
        bench_result("cpu_ms", (double)(bench_cpu_ns() - cpu0) / 1e6);
        return 0;
    }

    if (strcmp(mode, "late") == 0 && argc == 4) {
        size_t c;
        late_total = (size_t)atol(argv[2]);
        late_chains = (size_t)atol(argv[3]);
        BENCH_CHECK(late_chains > 0 && late_total >= late_chains && late_total % late_chains == 0,
                    "N must be a multiple of C");
        mode_late = 1;
        late_left = bench_calloc(late_chains, sizeof *late_left);
        late_deadline = bench_calloc(late_chains, sizeof *late_deadline);
        late_samples = bench_calloc(late_total, sizeof *late_samples);
        for (c = 0; c < late_chains; c++) late_left[c] = late_total / late_chains;
        lib_init(late_chains);
        bench_info("library", lib_name());
        lib_defer(late_body);
        lib_run();
        BENCH_CHECK(late_samples_n == late_total, "%zu of %zu timers fired", late_samples_n, late_total);
        bench_result("late_p50_us", bench_percentile(late_samples, late_total, 50));
        bench_result("late_p99_us", bench_percentile(late_samples, late_total, 99));
        bench_result("late_max_us", late_samples[late_total - 1]);
        bench_result("late_min_us", late_samples[0]);
        return 0;
    }

    fprintf(stderr, "usage: %s churn T R | fire T | late N C\n", argv[0]);
    return 64;
}

#endif /* TIMERS_H */
