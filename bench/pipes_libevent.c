/* pipes benchmark, libevent 2.1 (event_base with its default backend, epoll here). See pipes.h. */
#include "pipes.h"

#include <event2/event.h>
#include <event2/event_struct.h>

static struct event_base *base;
static struct event *events;

static void read_cb(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    pipes_readable((int)(intptr_t)arg, fd);
}

static const char *lib_name(void) {
    static char name[64];
    snprintf(name, sizeof name, "libevent %s (%s)", event_get_version(), event_base_get_method(base));
    return name;
}

static void lib_init(void) {
    base = event_base_new();
    BENCH_CHECK(base != NULL, "event_base_new failed");
    BENCH_CHECK(strcmp(event_base_get_method(base), "epoll") == 0, "backend is %s, not epoll",
                event_base_get_method(base));
    events = bench_calloc((size_t)num_pipes, sizeof *events);
}

static void lib_watch(int idx, int fd, int first_time) {
    struct event *ev = &events[idx];
    if (!first_time) event_del(ev);
    event_assign(ev, base, fd, EV_READ | EV_PERSIST, read_cb, (void *)(intptr_t)idx);
    BENCH_CHECK(event_add(ev, NULL) == 0, "event_add failed");
}

static void lib_run_nowait(void) { event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK); }
