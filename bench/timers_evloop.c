/* timer benchmarks, evloop. See timers.h.
 *
 * Built twice.  By default, start and restart are evl_timer_start, which reads the clock on every
 * call so that a timer can never fire early even when the loop time is stale.  With
 * -DLOOP_TIME_DEADLINES (build/timers_evloop_cached) they use the idiom evloop.h documents for code
 * that accepts timeouts relative to the loop time, which is what libev's ev_timer_start and
 * libuv's uv_timer_start mean by a timeout:
 *     evl_timer_start_at(loop, t, evl_now(loop) + after, repeat)
 * which reads no clock.  Everything else is the same program. */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include "timers.h"

static evl_loop loop;
static evl_timer *timers;
static evl_timer defer_timer;
static void (*defer_fn)(void);

static void timer_cb(evl_loop *l, evl_timer *t) {
    (void)l;
    timers_fired((size_t)(t - timers));
}

static void defer_cb(evl_loop *l, evl_timer *t) {
    (void)l;
    (void)t;
    defer_fn();
}

static const char *lib_name(void) {
    static char name[64];
#ifdef LOOP_TIME_DEADLINES
    snprintf(name, sizeof name, "evloop (%s, loop-time deadlines)", evl_backend_name());
#else
    snprintf(name, sizeof name, "evloop (%s)", evl_backend_name());
#endif
    return name;
}

static void lib_init(size_t n) {
    size_t i;
    BENCH_CHECK(evl_init(&loop) == 0, "evl_init failed");
    timers = bench_calloc(n, sizeof *timers);
    for (i = 0; i < n; i++) evl_timer_init(&timers[i], timer_cb);
}

static void lib_defer(void (*fn)(void)) {
    defer_fn = fn;
    evl_timer_init(&defer_timer, defer_cb);
    evl_timer_start(&loop, &defer_timer, 0, 0);
}

static void lib_run(void) {
    int rc = evl_run(&loop, EVL_FOREVER);
    BENCH_CHECK(rc >= 0, "evl_run: %d", rc);
}

static void lib_now_update(void) { evl_now_update(&loop); }

static void start_timer(evl_timer *t, uint64_t after_ns) {
#ifdef LOOP_TIME_DEADLINES
    evl_timer_start_at(&loop, t, evl_now(&loop) + EVL_NS(after_ns), 0);
#else
    evl_timer_start(&loop, t, EVL_NS(after_ns), 0);
#endif
}

static void lib_timer_start(size_t i, uint64_t after_ns) { start_timer(&timers[i], after_ns); }

static void lib_timer_restart(size_t i, uint64_t after_ns) { start_timer(&timers[i], after_ns); }

static void lib_timer_stop(size_t i) { evl_timer_stop(&loop, &timers[i]); }
