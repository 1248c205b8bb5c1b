/* timer benchmarks, libuv 1.x. See timers.h.
 *
 * libuv timeouts are whole milliseconds, so every timeout is rounded up to the next millisecond (a timer
 * must never be asked to fire early). Restart is uv_timer_start on the active timer. */
#include "timers.h"

#include <uv.h>

static uv_loop_t loop;
static uv_timer_t *timers;
static uv_timer_t defer_timer;
static void (*defer_fn)(void);

static uint64_t to_ms(uint64_t ns) { return (ns + 999999) / 1000000; }

static void timer_cb(uv_timer_t *t) { timers_fired((size_t)(t - timers)); }

static void defer_cb(uv_timer_t *t) {
    (void)t;
    defer_fn();
}

static const char *lib_name(void) {
    static char name[64];
    snprintf(name, sizeof name, "libuv %s", uv_version_string());
    return name;
}

static void lib_init(size_t n) {
    size_t i;
    BENCH_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init failed");
    timers = bench_calloc(n, sizeof *timers);
    for (i = 0; i < n; i++) uv_timer_init(&loop, &timers[i]);
}

static void lib_defer(void (*fn)(void)) {
    defer_fn = fn;
    uv_timer_init(&loop, &defer_timer);
    uv_timer_start(&defer_timer, defer_cb, 0, 0);
}

static void lib_run(void) { uv_run(&loop, UV_RUN_DEFAULT); }

static void lib_now_update(void) { uv_update_time(&loop); }

static void lib_timer_start(size_t i, uint64_t after_ns) { uv_timer_start(&timers[i], timer_cb, to_ms(after_ns), 0); }

static void lib_timer_restart(size_t i, uint64_t after_ns) { uv_timer_start(&timers[i], timer_cb, to_ms(after_ns), 0); }

static void lib_timer_stop(size_t i) { uv_timer_stop(&timers[i]); }
