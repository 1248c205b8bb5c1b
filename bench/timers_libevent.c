/* timer benchmarks, libevent 2.1 (default event_base: epoll, no precise-timer flag). See timers.h.
 *
 * Restart is event_add on the pending event, which libevent turns into an in-place heap adjustment. */
#include "timers.h"

#include <event2/event.h>
#include <event2/event_struct.h>

static struct event_base *base;
static struct event *timers;
static struct event defer_ev;
static void (*defer_fn)(void);

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    timers_fired((size_t)(uintptr_t)arg);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    defer_fn();
}

/* Rounded up to whole microseconds, libevent's resolution, so a timer is never asked to be early. */
static struct timeval to_timeval(uint64_t ns) {
    struct timeval tv;
    uint64_t us = (ns + 999) / 1000;
    tv.tv_sec = (time_t)(us / 1000000);
    tv.tv_usec = (suseconds_t)(us % 1000000);
    return tv;
}

static const char *lib_name(void) {
    static char name[64];
    snprintf(name, sizeof name, "libevent %s (%s)", event_get_version(), event_base_get_method(base));
    return name;
}

static void lib_init(size_t n) {
    size_t i;
    base = event_base_new();
    BENCH_CHECK(base != NULL, "event_base_new failed");
    timers = bench_calloc(n, sizeof *timers);
    for (i = 0; i < n; i++) evtimer_assign(&timers[i], base, timer_cb, (void *)(uintptr_t)i);
}

static void lib_defer(void (*fn)(void)) {
    struct timeval zero = {0, 0};
    defer_fn = fn;
    evtimer_assign(&defer_ev, base, defer_cb, NULL);
    evtimer_add(&defer_ev, &zero);
}

static void lib_run(void) { BENCH_CHECK(event_base_dispatch(base) >= 0, "event_base_dispatch failed"); }

static void lib_now_update(void) { event_base_update_cache_time(base); }

static void lib_timer_start(size_t i, uint64_t after_ns) {
    struct timeval tv = to_timeval(after_ns);
    evtimer_add(&timers[i], &tv);
}

static void lib_timer_restart(size_t i, uint64_t after_ns) {
    struct timeval tv = to_timeval(after_ns);
    evtimer_add(&timers[i], &tv);
}

static void lib_timer_stop(size_t i) { evtimer_del(&timers[i]); }
