/* echo server, hand-written epoll loop: the floor. The connection pointer rides in epoll_data. See
 * echo.h. */
#include "echo.h"

#include <sys/epoll.h>

#define RAW_MAX_EVENTS 1024

struct conn {
    int fd;
    int writing;
    struct echo_buf buf;
};

static int epfd;

static void conn_set(struct conn *c, int writing) {
    struct epoll_event ev;
    ev.events = writing ? EPOLLOUT : EPOLLIN;
    ev.data.ptr = c;
    BENCH_CHECK(epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0, "epoll_ctl: %s", strerror(errno));
    c->writing = writing;
}

int main(int argc, char **argv) {
    struct epoll_event ev, evs[RAW_MAX_EVENTS];
    struct conn listener;
    long open_conns = 0;
    int listening = 1;

    echo_parse_args(argc, argv);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    BENCH_CHECK(epfd >= 0, "epoll_create1: %s", strerror(errno));
    listener.fd = echo_listen();
    ev.events = EPOLLIN;
    ev.data.ptr = &listener;
    BENCH_CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, listener.fd, &ev) == 0, "epoll_ctl: %s", strerror(errno));

    while (listening || open_conns > 0) {
        int n = epoll_wait(epfd, evs, RAW_MAX_EVENTS, -1), i;
        BENCH_CHECK(n >= 0 || errno == EINTR, "epoll_wait: %s", strerror(errno));
        for (i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            int r;
            if (c == &listener) {
                int fd;
                while ((fd = echo_accept(listener.fd)) >= 0) {
                    struct conn *nc = bench_calloc(1, sizeof *nc);
                    nc->fd = fd;
                    ev.events = EPOLLIN;
                    ev.data.ptr = nc;
                    BENCH_CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl: %s", strerror(errno));
                    open_conns++;
                }
                if (echo_accepted >= echo_expected && listening) {
                    close(listener.fd); /* also leaves the epoll set */
                    listening = 0;
                }
                continue;
            }
            r = c->writing ? echo_on_writable(c->fd, &c->buf) : echo_on_readable(c->fd, &c->buf);
            if (r == ECHO_CLOSE) {
                close(c->fd); /* no other event of this batch can name c: one event per fd */
                free(c);
                open_conns--;
                echo_closed++;
            } else if (r == ECHO_WANT_WRITE && !c->writing) {
                conn_set(c, 1);
            } else if (r == ECHO_KEEP_READING && c->writing) {
                conn_set(c, 0);
            }
        }
    }
    return echo_finish();
}
