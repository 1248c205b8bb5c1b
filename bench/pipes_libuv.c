/* pipes benchmark, libuv 1.x (uv_poll_t: readiness on a plain descriptor). See pipes.h. */
#include "pipes.h"

#include <uv.h>

static uv_loop_t loop;
static uv_poll_t *polls;

static void read_cb(uv_poll_t *h, int status, int events) {
    int idx = (int)(h - polls);
    (void)events;
    if (status < 0) failures++;
    pipes_readable(idx, pipes[2 * idx]);
}

static const char *lib_name(void) {
    static char name[64];
    snprintf(name, sizeof name, "libuv %s", uv_version_string());
    return name;
}

static void lib_init(void) {
    BENCH_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init failed");
    polls = bench_calloc((size_t)num_pipes, sizeof *polls);
}

static void lib_watch(int idx, int fd, int first_time) {
    uv_poll_t *h = &polls[idx];
    if (first_time)
        BENCH_CHECK(uv_poll_init(&loop, h, fd) == 0, "uv_poll_init failed");
    else
        uv_poll_stop(h);
    BENCH_CHECK(uv_poll_start(h, UV_READABLE, read_cb) == 0, "uv_poll_start failed");
}

static void lib_run_nowait(void) { uv_run(&loop, UV_RUN_NOWAIT); }
