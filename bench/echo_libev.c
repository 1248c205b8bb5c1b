/* echo server, libev 4 (epoll backend). See echo.h. */
#include "echo.h"

#include <ev.h>

struct conn {
    ev_io io;
    struct echo_buf buf;
};

static struct ev_loop *loop;
static ev_io listener;

static void conn_close(struct conn *c) {
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c);
    echo_closed++;
}

static void conn_set(struct conn *c, int events) {
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->io.fd, events);
    ev_io_start(loop, &c->io);
}

static void conn_cb(struct ev_loop *l, ev_io *w, int revents) {
    struct conn *c = (struct conn *)w; /* io is the first member */
    int r;
    (void)l;
    r = (revents & EV_WRITE) ? echo_on_writable(w->fd, &c->buf) : echo_on_readable(w->fd, &c->buf);
    if (r == ECHO_CLOSE)
        conn_close(c);
    else if (r == ECHO_WANT_WRITE && !(revents & EV_WRITE))
        conn_set(c, EV_WRITE);
    else if (r == ECHO_KEEP_READING && (revents & EV_WRITE))
        conn_set(c, EV_READ);
}

static void accept_cb(struct ev_loop *l, ev_io *w, int revents) {
    int fd;
    (void)revents;
    while ((fd = echo_accept(w->fd)) >= 0) {
        struct conn *c = bench_calloc(1, sizeof *c);
        ev_io_init(&c->io, conn_cb, fd, EV_READ);
        ev_io_start(l, &c->io);
    }
    if (echo_accepted >= echo_expected) { /* everyone is in: the loop now ends with the last close */
        ev_io_stop(l, w);
        close(w->fd);
    }
}

int main(int argc, char **argv) {
    echo_parse_args(argc, argv);
    loop = ev_loop_new(EVBACKEND_EPOLL);
    BENCH_CHECK(loop != NULL, "ev_loop_new failed");
    ev_io_init(&listener, accept_cb, echo_listen(), EV_READ);
    ev_io_start(loop, &listener);
    ev_run(loop, 0);
    return echo_finish();
}
