/* fibers - what one switch between two pieces of synchronous-looking code costs.
 *
 *   fibers [N [swap|yield|both]]      (default: 1000000 both)
 *
 * swap:  glibc swapcontext ping-pong: main and one ucontext coroutine hand control back and forth
 *        N times each (2N switches). glibc's swapcontext also saves and restores the signal mask,
 *        so every switch is a system call too; it is what a portable program gets without a fiber
 *        library. Reports swapcontext_ns = wall time / 2N.
 * yield: two evloop fibers on one loop, each calling evl_yield() N times (2N yields). The
 *        scheduler switches from the yielding fiber straight to the other one and returns to the
 *        loop (one non-blocking poll) only every EVL__FIBER_BATCH (128) resumes, so this is a
 *        fiber-to-fiber switch plus the scheduler's queue work plus 1/128 of a loop pass. Reports
 *        evl_yield_ns = wall time of evl_run / 2N.
 *
 * Checks, so that a fast number cannot come from doing less: each side ran exactly N times; both
 * fibers finished; the loop made about 2N/128 passes (counted with an unreferenced CHECK hook), so
 * the yields did not each go through a loop pass; and, in an untimed run before the timed one (the
 * same two fibers with a check after every yield), the fibers strictly alternate: every evl_yield
 * returned only after the other fiber ran. The timed fibers do nothing but yield and count. It also prints which context switch the
 * library was built with (INFO fiber_switch): the same source built with -DEVLOOP_FIBER_UCONTEXT
 * measures evloop's makecontext/swapcontext fallback.
 *
 * The evl part is built only when evloop.h provides fibers (the Makefile compiles probe_fibers.c
 * to find out and then defines BENCH_HAVE_FIBERS); otherwise it prints why it was skipped.
 */
#include "bench.h"

#include <ucontext.h>

#if defined(BENCH_HAVE_FIBERS)
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"
#if defined(EVLOOP_NO_FIBERS)
#undef BENCH_HAVE_FIBERS
#endif
#endif

#define STACK_BYTES (64 * 1024)

static long rounds = 1000000;

/* ---- glibc swapcontext ---------------------------------------------------------------------- */

static ucontext_t main_ctx, co_ctx;
static long co_runs;
static char co_stack[STACK_BYTES] __attribute__((aligned(16)));

static void co_body(void) {
    for (;;) {
        co_runs++;
        swapcontext(&co_ctx, &main_ctx);
    }
}

static double bench_swapcontext(void) {
    uint64_t t0, t1;
    long i;
    BENCH_CHECK(getcontext(&co_ctx) == 0, "getcontext failed");
    co_ctx.uc_stack.ss_sp = co_stack;
    co_ctx.uc_stack.ss_size = sizeof co_stack;
    co_ctx.uc_link = NULL;
    makecontext(&co_ctx, co_body, 0);
    t0 = bench_now_ns();
    for (i = 0; i < rounds; i++) swapcontext(&main_ctx, &co_ctx);
    t1 = bench_now_ns();
    BENCH_CHECK(co_runs == rounds, "coroutine ran %ld times, expected %ld", co_runs, rounds);
    return (double)(t1 - t0) / (2.0 * (double)rounds);
}

/* ---- evloop fibers -------------------------------------------------------------------------- */

#if defined(BENCH_HAVE_FIBERS)
static evl_loop loop;
static evl_fiber fib[2];
static long fib_runs[2];
static char fib_stack[2][STACK_BYTES] __attribute__((aligned(16)));
static long passes; /* loop iterations, counted by a CHECK hook */
static evl_hook pass_hook;
static int last_ran;         /* checking run: which fiber ran last */
static long not_alternating; /* checking run: evl_yield came back without the other fiber */

static void count_pass(evl_loop *l, evl_hook *h) {
    (void)l;
    (void)h;
    passes++;
}

/* The timed body: nothing but the yield and a count. */
static void yielder(void *arg) {
    long *runs = arg, i;
    for (i = 0; i < rounds; i++) {
        int rc = evl_yield();
        BENCH_CHECK(rc == 0, "evl_yield: %d", rc);
        ++*runs;
    }
}

/* The same with an alternation check, for the untimed checking run: after every yield the other
   fiber must have run (only the very last yield, when the other fiber has returned, may come
   straight back). */
static void yielder_checked(void *arg) {
    long *runs = arg, i;
    int me = (int)(runs - fib_runs);
    last_ran = me;
    for (i = 0; i < rounds; i++) {
        int rc = evl_yield();
        BENCH_CHECK(rc == 0, "evl_yield: %d", rc);
        not_alternating += last_ran == me;
        last_ran = me;
        ++*runs;
    }
}

/* Two fibers yielding `rounds` times each on a fresh loop; returns ns per yield. */
static double run_two_fibers(evl_fiber_fn body) {
    uint64_t t0, t1;
    long total = 2 * rounds, lo, hi;
    int i, rc;
    BENCH_CHECK(evl_init(&loop) == 0, "evl_init failed");
    evl_hook_init(&pass_hook, count_pass, EVL_CHECK);
    evl_hook_start(&loop, &pass_hook);
    evl_unref(&loop, &pass_hook);
    passes = 0;
    for (i = 0; i < 2; i++) {
        fib_runs[i] = 0;
        rc = evl_fiber_start(&loop, &fib[i], fib_stack[i], STACK_BYTES, body, &fib_runs[i]);
        BENCH_CHECK(rc == 0, "evl_fiber_start: %d", rc);
    }
    t0 = bench_now_ns();
    rc = evl_run(&loop, EVL_FOREVER);
    t1 = bench_now_ns();
    BENCH_CHECK(rc == 0, "evl_run: %d (expected 0: nothing left once both fibers returned)", rc);
    for (i = 0; i < 2; i++)
        BENCH_CHECK(fib_runs[i] == rounds && evl_fiber_done(&fib[i]), "fiber %d yielded %ld times, expected %ld", i,
                    fib_runs[i], rounds);
    /* 2N yields + 2 first resumes at 128 resumes per pass, plus a pass or two at either end: a
       scheduler that went through the loop for every yield would make 2N passes. */
    lo = total / 128;
    hi = (total + 2 + 127) / 128 + 3;
    BENCH_CHECK(passes >= lo && passes <= hi, "%ld loop passes for %ld yields, expected %ld..%ld (one per 128 resumes)",
                passes, total, lo, hi);
    evl_deinit(&loop);
    return (double)(t1 - t0) / (double)total;
}

static double bench_evl_yield(void) {
    long n = rounds;
    double ns;
    /* Untimed check first, with at most 10000 yields each: a fixed amount, so that instruction
       counts of runs with different N (both >= 10000) differ only by the timed yields. */
    rounds = n < 10000 ? n : 10000;
    run_two_fibers(yielder_checked);
    BENCH_CHECK(not_alternating <= 1, "%ld yields came back without the other fiber running", not_alternating);
    rounds = n;
    ns = run_two_fibers(yielder);
    bench_result("loop_passes", (double)passes);
    return ns;
}
#endif

int main(int argc, char **argv) {
    const char *which = argc > 2 ? argv[2] : "both";
    int do_swap = strcmp(which, "swap") == 0 || strcmp(which, "both") == 0;
    int do_yield = strcmp(which, "yield") == 0 || strcmp(which, "both") == 0;
    if (argc > 1) rounds = atol(argv[1]);
    BENCH_CHECK(rounds > 0 && (do_swap || do_yield), "usage: fibers [N [swap|yield|both]]");
#if defined(BENCH_HAVE_FIBERS)
#if defined(EVL__CTX_BACKEND_NAME)
    bench_info("fiber_switch", EVL__CTX_BACKEND_NAME);
#else
    bench_info("fiber_switch", "unknown");
#endif
    if (do_yield) bench_result("evl_yield_ns", bench_evl_yield());
#else
    if (do_yield)
        bench_info("evl_yield_skipped",
                   "evl_fiber_start is not available (evloop.h missing, built with EVLOOP_NO_FIBERS, "
                   "or fibers not implemented yet)");
#endif
    if (do_swap) bench_result("swapcontext_ns", bench_swapcontext());
    return 0;
}
