/* demo - the loop on its own, no setup: an echo server and its client in one process.
 *
 *   make demo        (or: ./build/examples/demo)
 *
 * The server listens on a free loopback port.  The client connects without blocking, then a
 * repeating timer makes it send a message every 250 ms; the server echoes it back and the client
 * prints the round trip.  After a few messages the client hangs up, the server notices, and the
 * loop runs out of work and returns.  A SIGINT watcher (Ctrl-C) ends it early, and is unreferenced
 * so that it does not keep the loop alive by itself.  Everything happens on one thread. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MESSAGES 8

static evl_time start;
static evl_io listener, server_conn, client;
static evl_timer sender;
static evl_signal sigint;
static evl_time sent_at;
static int sent, echoed;

static double ms(evl_loop *loop) { return (double)(evl_now(loop) - start) / 1e6; }

/* ---- server side ---------------------------------------------------------------------------- */

static void server_read(evl_loop *loop, evl_io *w, unsigned revents) {
    char buf[256];
    ssize_t n = read(w->fd, buf, sizeof buf);
    (void)revents;
    if (n <= 0) {
        printf("%7.1f ms  server: client hung up, closing the connection\n", ms(loop));
        evl_io_stop(loop, w);
        close(w->fd);
        evl_io_stop(loop, &listener);   /* nothing left to serve: let the loop run out of work */
        return;
    }
    printf("%7.1f ms  server: got %d bytes, echoing\n", ms(loop), (int)n);
    (void)!write(w->fd, buf, (size_t)n);   /* tiny messages: a loopback socket takes them at once */
}

/* Non-blocking and closed on exec, set with fcntl: macOS has no accept4 and no SOCK_NONBLOCK. */
static int nonblocking_cloexec(int fd) {
    if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void server_accept(evl_loop *loop, evl_io *w, unsigned revents) {
    int fd = nonblocking_cloexec(accept(w->fd, NULL, NULL));
    (void)revents;
    if (fd < 0) return;
    printf("%7.1f ms  server: accepted a connection (fd %d)\n", ms(loop), fd);
    evl_io_init(&server_conn, server_read, fd, EVL_READ);
    evl_io_start(loop, &server_conn);
}

/* ---- client side ---------------------------------------------------------------------------- */

static void client_send(evl_loop *loop, evl_timer *t) {
    char msg[64];
    int len;
    if (sent == MESSAGES) {
        printf("%7.1f ms  client: done, hanging up\n", ms(loop));
        evl_timer_stop(loop, t);
        evl_io_stop(loop, &client);
        close(client.fd);
        return;
    }
    len = snprintf(msg, sizeof msg, "message %d", ++sent);
    sent_at = evl_now_update(loop);
    printf("%7.1f ms  client: sending \"%s\"\n", ms(loop), msg);
    (void)!write(client.fd, msg, (size_t)len);
    if (sent == 3) {
        printf("           what the loop is watching right now (evl_dump):\n");
        evl_dump(loop, stdout);
    }
}

static void client_ready(evl_loop *loop, evl_io *w, unsigned revents) {
    char buf[256];
    ssize_t n;
    if (revents & EVL_WRITE) {          /* the non-blocking connect finished */
        printf("%7.1f ms  client: connected; a timer will send every 250 ms\n", ms(loop));
        evl_io_set(loop, w, EVL_READ);
        evl_timer_start(loop, &sender, 0, EVL_MS(250));
        return;
    }
    n = read(w->fd, buf, sizeof buf - 1);
    if (n <= 0) return;
    buf[n] = 0;
    echoed++;
    printf("%7.1f ms  client: echo \"%s\" after %.0f us\n", ms(loop), buf,
           (double)(evl_now_update(loop) - sent_at) / 1e3);
}

static void on_sigint(evl_loop *loop, evl_signal *s, int signum) {
    (void)s;
    (void)signum;
    printf("\n%7.1f ms  Ctrl-C: stopping early\n", ms(loop));
    evl_stop(loop);
}

int main(void) {
    evl_loop loop;
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int lfd, cfd, one = 1, active;

    if (evl_init(&loop) < 0) return 1;
    start = evl_now(&loop);
    printf("evloop demo: backend %s\n", evl_backend_name());

    lfd = nonblocking_cloexec(socket(AF_INET, SOCK_STREAM, 0));
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 8) < 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) {
        perror("demo: listen");
        return 1;
    }
    printf("%7.1f ms  server: listening on 127.0.0.1:%d\n", ms(&loop), ntohs(addr.sin_port));
    evl_io_init(&listener, server_accept, lfd, EVL_READ);
    evl_io_start(&loop, &listener);

    cfd = nonblocking_cloexec(socket(AF_INET, SOCK_STREAM, 0));
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(cfd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        perror("demo: connect");
        return 1;
    }
    evl_io_init(&client, client_ready, cfd, EVL_WRITE);      /* writable = connected */
    evl_io_start(&loop, &client);
    evl_timer_init(&sender, client_send);

    evl_signal_init(&sigint, on_sigint, SIGINT);
    evl_signal_start(&loop, &sigint);
    evl_unref(&loop, &sigint);

    active = evl_run(&loop, EVL_SEC(10));
    printf("%7.1f ms  evl_run returned %d: %d messages sent, %d echoed\n", ms(&loop), active, sent, echoed);
    close(lfd);
    evl_deinit(&loop);
    return echoed == MESSAGES ? 0 : 1;
}
