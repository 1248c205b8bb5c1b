/* pipes benchmark, evloop. See pipes.h for the experiment. */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include "pipes.h"

static evl_loop loop;
static evl_io *watchers;

static void read_cb(evl_loop *l, evl_io *w, unsigned revents) {
    int idx = (int)(w - watchers);
    (void)l;
    (void)revents;
    pipes_readable(idx, pipes[2 * idx]);
}

static const char *lib_name(void) {
    static char name[64];
    snprintf(name, sizeof name, "evloop (%s)", evl_backend_name());
    return name;
}

static void lib_init(void) {
    BENCH_CHECK(evl_init(&loop) == 0, "evl_init failed");
    watchers = bench_calloc((size_t)num_pipes, sizeof *watchers);
}

static void lib_watch(int idx, int fd, int first_time) {
    evl_io *w = &watchers[idx];
    int rc;
    if (!first_time) evl_io_stop(&loop, w);
    evl_io_init(w, read_cb, fd, EVL_READ);
    rc = evl_io_start(&loop, w);
    BENCH_CHECK(rc == 0, "evl_io_start: %d", rc);
}

static void lib_run_nowait(void) {
    int rc = evl_run(&loop, 0);
    BENCH_CHECK(rc >= 0, "evl_run: %d", rc);
}
