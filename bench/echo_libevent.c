/* echo server, libevent 2.1 (plain events on the descriptors, the same shape as the other servers;
 * bufferevents would add a buffer copy the others do not make). See echo.h. */
#include "echo.h"

#include <event2/event.h>
#include <event2/event_struct.h>

struct conn {
    struct event ev;
    struct echo_buf buf;
};

static struct event_base *base;
static struct event listener;

static void conn_cb(evutil_socket_t fd, short what, void *arg);

static void conn_close(struct conn *c) {
    event_del(&c->ev);
    close(event_get_fd(&c->ev));
    free(c);
    echo_closed++;
}

static void conn_set(struct conn *c, short events) {
    evutil_socket_t fd = event_get_fd(&c->ev);
    event_del(&c->ev);
    event_assign(&c->ev, base, fd, events | EV_PERSIST, conn_cb, c);
    event_add(&c->ev, NULL);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg) {
    struct conn *c = arg;
    int r = (what & EV_WRITE) ? echo_on_writable(fd, &c->buf) : echo_on_readable(fd, &c->buf);
    if (r == ECHO_CLOSE)
        conn_close(c);
    else if (r == ECHO_WANT_WRITE && !(what & EV_WRITE))
        conn_set(c, EV_WRITE);
    else if (r == ECHO_KEEP_READING && (what & EV_WRITE))
        conn_set(c, EV_READ);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg) {
    int fd;
    (void)what;
    (void)arg;
    while ((fd = echo_accept(lfd)) >= 0) {
        struct conn *c = bench_calloc(1, sizeof *c);
        event_assign(&c->ev, base, fd, EV_READ | EV_PERSIST, conn_cb, c);
        event_add(&c->ev, NULL);
    }
    if (echo_accepted >= echo_expected) {
        event_del(&listener);
        close(lfd);
    }
}

int main(int argc, char **argv) {
    echo_parse_args(argc, argv);
    base = event_base_new();
    BENCH_CHECK(base != NULL, "event_base_new failed");
    event_assign(&listener, base, echo_listen(), EV_READ | EV_PERSIST, accept_cb, NULL);
    event_add(&listener, NULL);
    BENCH_CHECK(event_base_dispatch(base) >= 0, "event_base_dispatch failed");
    return echo_finish();
}
