/* echo_server - a TCP echo server with callbacks.
 *
 *   ./echo_server [port]        (default 7000; try: nc 127.0.0.1 7000)
 *
 * One io watcher accepts connections; each connection has its own io watcher and a buffer.  What
 * cannot be written at once waits in the buffer, and the watcher switches from reading to writing
 * until it has gone out, so a slow client never makes the server buffer without bound.  Idle
 * connections are closed after 30 s by a per-connection timer.  Ctrl-C stops the server cleanly. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct conn {
    evl_io io;
    evl_timer idle;
    char buf[4096];
    size_t len, sent;                   /* bytes held, bytes of them already written back */
} conn;

static void conn_close(evl_loop *loop, conn *c) {
    evl_io_stop(loop, &c->io);          /* stop before close: the loop must forget the fd first */
    evl_timer_stop(loop, &c->idle);
    close(c->io.fd);
    free(c);                            /* safe: nothing refers to the watchers any more */
}

static void on_idle(evl_loop *loop, evl_timer *t) {
    conn *c = (conn *)t->data;
    printf("fd %d: idle for too long, closing\n", c->io.fd);
    conn_close(loop, c);
}

static void on_conn(evl_loop *loop, evl_io *w, unsigned revents) {
    conn *c = (conn *)w->data;
    ssize_t n;
    (void)revents;
    evl_timer_again(loop, &c->idle);    /* any activity restarts the idle timeout */
    if (c->len == 0) {                  /* reading */
        n = read(w->fd, c->buf, sizeof c->buf);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            printf("fd %d: closed by the client\n", w->fd);
            conn_close(loop, c);
            return;
        }
        if (n < 0) return;
        c->len = (size_t)n;
        c->sent = 0;
    }
    n = write(w->fd, c->buf + c->sent, c->len - c->sent);
    if (n < 0 && errno != EAGAIN) {
        conn_close(loop, c);
        return;
    }
    if (n > 0) c->sent += (size_t)n;
    if (c->sent == c->len) c->len = 0;
    /* Read again once everything went out; until then, wait until the socket is writable. */
    evl_io_set(loop, w, c->len ? EVL_WRITE : EVL_READ);
}

/* Non-blocking and closed on exec, set with fcntl: macOS has no accept4 and no SOCK_NONBLOCK. */
static int nonblocking_cloexec(int fd) {
    if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void on_accept(evl_loop *loop, evl_io *w, unsigned revents) {
    int fd = nonblocking_cloexec(accept(w->fd, NULL, NULL));
    conn *c;
    (void)revents;
    if (fd < 0) return;
    c = (conn *)calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    evl_io_init(&c->io, on_conn, fd, EVL_READ);
    c->io.data = c;
    evl_timer_init(&c->idle, on_idle);
    c->idle.data = c;
    c->idle.repeat = EVL_SEC(30);
    if (evl_io_start(loop, &c->io) < 0) {
        close(fd);
        free(c);
        return;
    }
    evl_timer_again(loop, &c->idle);
    printf("fd %d: connected\n", fd);
}

static void on_sigint(evl_loop *loop, evl_signal *s, int signum) {
    (void)s;
    printf("signal %d: shutting down\n", signum);
    evl_stop(loop);
}

int main(int argc, char **argv) {
    evl_loop loop;
    evl_io listener;
    evl_signal sigint;
    struct sockaddr_in addr;
    int one = 1, fd = nonblocking_cloexec(socket(AF_INET, SOCK_STREAM, 0));
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)(argc > 1 ? atoi(argv[1]) : 7000));
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 128) < 0) {
        perror("echo_server: listen");
        return 1;
    }
    if (evl_init(&loop) < 0) return 1;
    evl_io_init(&listener, on_accept, fd, EVL_READ);
    evl_io_start(&loop, &listener);
    evl_signal_init(&sigint, on_sigint, SIGINT);
    evl_signal_start(&loop, &sigint);
    evl_unref(&loop, &sigint);          /* watching SIGINT alone would not keep a server running */
    printf("echo server on port %d (Ctrl-C to stop)\n", ntohs(addr.sin_port));
    evl_run(&loop, EVL_FOREVER);
    evl_deinit(&loop);                  /* open connections are detached; the process ends anyway */
    close(fd);
    return 0;
}
