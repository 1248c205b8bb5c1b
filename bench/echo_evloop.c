/* echo server, evloop. See echo.h. */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include "echo.h"

struct conn {
    evl_io io;
    int fd;
    struct echo_buf buf;
};

static evl_loop loop;
static evl_io listener;
static int listen_fd;

static void conn_cb(evl_loop *l, evl_io *w, unsigned revents) {
    struct conn *c = (struct conn *)w; /* io is the first member */
    int r;
    r = (revents & EVL_WRITE) ? echo_on_writable(c->fd, &c->buf) : echo_on_readable(c->fd, &c->buf);
    if (r == ECHO_CLOSE) {
        evl_io_stop(l, w);
        close(c->fd);
        free(c);
        echo_closed++;
    } else if (r == ECHO_WANT_WRITE && !(revents & EVL_WRITE)) {
        BENCH_CHECK(evl_io_set(l, w, EVL_WRITE) == 0, "evl_io_set failed");
    } else if (r == ECHO_KEEP_READING && (revents & EVL_WRITE)) {
        BENCH_CHECK(evl_io_set(l, w, EVL_READ) == 0, "evl_io_set failed");
    }
}

static void accept_cb(evl_loop *l, evl_io *w, unsigned revents) {
    int fd, rc;
    (void)revents;
    while ((fd = echo_accept(listen_fd)) >= 0) {
        struct conn *c = bench_calloc(1, sizeof *c);
        c->fd = fd;
        evl_io_init(&c->io, conn_cb, fd, EVL_READ);
        rc = evl_io_start(l, &c->io);
        BENCH_CHECK(rc == 0, "evl_io_start: %d", rc);
    }
    if (echo_accepted >= echo_expected) {
        evl_io_stop(l, w);
        close(listen_fd);
    }
}

int main(int argc, char **argv) {
    int rc;
    echo_parse_args(argc, argv);
    BENCH_CHECK(evl_init(&loop) == 0, "evl_init failed");
    listen_fd = echo_listen();
    evl_io_init(&listener, accept_cb, listen_fd, EVL_READ);
    BENCH_CHECK(evl_io_start(&loop, &listener) == 0, "evl_io_start failed");
    rc = evl_run(&loop, EVL_FOREVER);
    BENCH_CHECK(rc >= 0, "evl_run: %d", rc);
    return echo_finish();
}
