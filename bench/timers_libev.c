/* timer benchmarks, libev 4 (epoll backend). See timers.h.
 *
 * Restart uses libev's documented fast path for a changing timeout: set `repeat` and call
 * ev_timer_again, which moves the timer inside the heap instead of removing and re-inserting it. */
#include "timers.h"

#include <ev.h>

static struct ev_loop *loop;
static ev_timer *timers;
static ev_timer defer_timer;
static void (*defer_fn)(void);

static void timer_cb(struct ev_loop *l, ev_timer *w, int revents) {
    (void)l;
    (void)revents;
    timers_fired((size_t)(w - timers));
}

static void defer_cb(struct ev_loop *l, ev_timer *w, int revents) {
    (void)l;
    (void)w;
    (void)revents;
    defer_fn();
}

static const char *lib_name(void) {
    static char name[64];
    snprintf(name, sizeof name, "libev %d.%d", ev_version_major(), ev_version_minor());
    return name;
}

static void lib_init(size_t n) {
    size_t i;
    loop = ev_loop_new(EVBACKEND_EPOLL);
    BENCH_CHECK(loop != NULL, "ev_loop_new failed");
    timers = bench_calloc(n, sizeof *timers);
    for (i = 0; i < n; i++) ev_timer_init(&timers[i], timer_cb, 0., 0.);
}

static void lib_defer(void (*fn)(void)) {
    defer_fn = fn;
    ev_timer_init(&defer_timer, defer_cb, 0., 0.);
    ev_timer_start(loop, &defer_timer);
}

static void lib_run(void) { ev_run(loop, 0); }

static void lib_now_update(void) { ev_now_update(loop); }

static void lib_timer_start(size_t i, uint64_t after_ns) {
    ev_timer_set(&timers[i], (ev_tstamp)after_ns * 1e-9, 0.);
    ev_timer_start(loop, &timers[i]);
}

static void lib_timer_restart(size_t i, uint64_t after_ns) {
    timers[i].repeat = (ev_tstamp)after_ns * 1e-9;
    ev_timer_again(loop, &timers[i]);
}

static void lib_timer_stop(size_t i) { ev_timer_stop(loop, &timers[i]); }
