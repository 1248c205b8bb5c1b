/* pipes benchmark, libev 4 (epoll backend). See pipes.h for the experiment. */
#include "pipes.h"

#include <ev.h>

static struct ev_loop *loop;
static ev_io *watchers;

static void read_cb(struct ev_loop *l, ev_io *w, int revents) {
    (void)l;
    (void)revents;
    pipes_readable((int)(w - watchers), w->fd);
}

static const char *lib_name(void) {
    static char name[64];
    snprintf(name, sizeof name, "libev %d.%d", ev_version_major(), ev_version_minor());
    return name;
}

static void lib_init(void) {
    loop = ev_loop_new(EVBACKEND_EPOLL);
    BENCH_CHECK(loop != NULL, "ev_loop_new failed");
    watchers = bench_calloc((size_t)num_pipes, sizeof *watchers);
}

static void lib_watch(int idx, int fd, int first_time) {
    ev_io *w = &watchers[idx];
    if (first_time) {
        ev_io_init(w, read_cb, fd, EV_READ);
    } else {
        ev_io_stop(loop, w);
        ev_io_set(w, fd, EV_READ);
    }
    ev_io_start(loop, w);
}

static void lib_run_nowait(void) { ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT); }
