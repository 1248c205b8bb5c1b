/* fibers - what one switch between two pieces of synchronous-looking code costs.
 *
 *   fibers [N]
 *
 * swapcontext: main and one ucontext coroutine hand control back and forth N times (2N switches).
 *   glibc's swapcontext saves and restores the signal mask, so each switch is also a system call;
 *   it is what a portable program gets without a fiber library.
 * evl_yield: two evloop fibers each call evl_yield() N times; a yield returns to the loop, which runs
 *   the other fiber, so each evl_yield is one fiber-to-fiber hand-over including the loop's own pass.
 *
 * Reports ns per switch for each. Counts are checked: each side must have run exactly N times.
 * The evl_yield part is built only when evloop.h provides fibers (the Makefile compiles
 * probe_fibers.c to find out and then defines BENCH_HAVE_FIBERS); otherwise it prints why it was
 * skipped, and nothing else needs to change once fibers land.
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

static ucontext_t main_ctx, co_ctx;
static long co_runs;
static char co_stack[STACK_BYTES];

static void co_body(void)
{
    for (;;) {
        co_runs++;
        swapcontext(&co_ctx, &main_ctx);
    }
}

static double bench_swapcontext(void)
{
    uint64_t t0, t1;
    long i;
    BENCH_CHECK(getcontext(&co_ctx) == 0, "getcontext failed");
    co_ctx.uc_stack.ss_sp = co_stack;
    co_ctx.uc_stack.ss_size = sizeof co_stack;
    co_ctx.uc_link = NULL;
    makecontext(&co_ctx, co_body, 0);
    t0 = bench_now_ns();
    for (i = 0; i < rounds; i++)
        swapcontext(&main_ctx, &co_ctx);
    t1 = bench_now_ns();
    BENCH_CHECK(co_runs == rounds, "coroutine ran %ld times, expected %ld", co_runs, rounds);
    return (double)(t1 - t0) / (2.0 * (double)rounds);
}

#if defined(BENCH_HAVE_FIBERS)
static evl_loop loop;
static evl_fiber fib[2];
static long fib_runs[2];
static char fib_stack[2][STACK_BYTES];

static void yielder(void *arg)
{
    long *runs = arg, i;
    for (i = 0; i < rounds; i++) {
        int rc = evl_yield();
        BENCH_CHECK(rc >= 0, "evl_yield: %d", rc);
        ++*runs;
    }
}

static double bench_evl_yield(void)
{
    uint64_t t0, t1;
    int i, rc;
    BENCH_CHECK(evl_init(&loop) == 0, "evl_init failed");
    for (i = 0; i < 2; i++) {
        rc = evl_fiber_start(&loop, &fib[i], fib_stack[i], STACK_BYTES, yielder, &fib_runs[i]);
        BENCH_CHECK(rc == 0, "evl_fiber_start: %d", rc);
    }
    t0 = bench_now_ns();
    rc = evl_run(&loop, EVL_FOREVER);
    t1 = bench_now_ns();
    BENCH_CHECK(rc >= 0, "evl_run: %d", rc);
    for (i = 0; i < 2; i++)
        BENCH_CHECK(fib_runs[i] == rounds && evl_fiber_done(&fib[i]),
                    "fiber %d yielded %ld times, expected %ld", i, fib_runs[i], rounds);
    evl_deinit(&loop);
    return (double)(t1 - t0) / (2.0 * (double)rounds);
}
#endif

int main(int argc, char **argv)
{
    if (argc > 1)
        rounds = atol(argv[1]);
    BENCH_CHECK(rounds > 0, "bad round count");
    bench_result("swapcontext_ns", bench_swapcontext());
#if defined(BENCH_HAVE_FIBERS)
    bench_result("evl_yield_ns", bench_evl_yield());
#else
    bench_info("evl_yield_skipped",
               "evl_fiber_start is not available (evloop.h missing, built with EVLOOP_NO_FIBERS, or "
               "fibers not implemented yet)");
#endif
    return 0;
}
