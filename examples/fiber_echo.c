/* fiber_echo - a TCP echo server written with fibers: one straight-line function per connection.
 *
 *   ./fiber_echo [port]          serve on port (default 7001); try: nc 127.0.0.1 7001
 *   ./fiber_echo --self-test     serve on a free port, run 20 client fibers against it, and exit
 *
 * An acceptor fiber waits in evl_accept and starts a fiber for each connection; that fiber reads
 * and writes back until the client closes or stays idle for 30 s, then returns, and its stack is
 * unmapped.  The code reads like a blocking server, but everything runs on one thread in one
 * loop, next to an ordinary SIGINT watcher. */
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
    int fd;
    evl_fiber fiber;
} conn;

static evl_loop loop;
static evl_fiber acceptor;
static int listen_fd, connections, echoed_bytes;

static void serve(void *arg) {
    conn *c = (conn *)arg;
    char buf[4096];
    ssize_t n;
    while ((n = evl_read(c->fd, buf, sizeof buf, EVL_SEC(30))) > 0) {
        if (evl_write(c->fd, buf, (size_t)n, EVL_SEC(30)) < 0) break;
        echoed_bytes += (int)n;
    }
    if (n == -ETIMEDOUT) printf("fd %d: idle for 30 s, closing\n", c->fd);
    close(c->fd);
    /* Not free(c) here: the fiber still runs on c->fiber until it has returned. */
}

static void free_conn(evl_loop *l, evl_fiber *f) {
    (void)l;
    free((char *)f - offsetof(conn, fiber));   /* called once the library is done with f */
}

static void accept_forever(void *arg) {
    int fd;
    (void)arg;
    while ((fd = evl_accept(listen_fd, NULL, NULL, EVL_FOREVER)) >= 0) {
        conn *c = (conn *)calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        connections++;
        /* NULL stack: the library maps 64 KiB with a guard page and unmaps it at the end. */
        if (evl_fiber_start(&loop, &c->fiber, NULL, 0, serve, c) < 0) {
            close(fd);
            free(c);
            continue;
        }
        evl_fiber_on_done(&c->fiber, free_conn);
    }
    printf("acceptor: %s\n", strerror(-fd));     /* -ECANCELED after Ctrl-C */
}

static void on_sigint(evl_loop *l, evl_signal *s, int signum) {
    (void)l;
    (void)s;
    (void)signum;
    evl_fiber_cancel(&acceptor);        /* its evl_accept returns -ECANCELED */
}

/* Non-blocking and closed on exec, set with fcntl: macOS has no accept4 and no SOCK_NONBLOCK. */
static int nonblocking_cloexec(int fd) {
    if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* --self-test: clients, also fibers, in the same loop. */
static struct sockaddr_in server_addr;
static int clients_done, sent_bytes;

static void client(void *arg) {
    int id = (int)(intptr_t)arg, fd = nonblocking_cloexec(socket(AF_INET, SOCK_STREAM, 0)), i;
    char msg[64], reply[64];
    if (evl_connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr, EVL_SEC(5)) < 0) {
        printf("client %d: connect failed\n", id);
        close(fd);
        return;
    }
    for (i = 0; i < 5; i++) {
        int len = snprintf(msg, sizeof msg, "client %d message %d", id, i);
        ssize_t got = 0, n;
        evl_write(fd, msg, (size_t)len, EVL_SEC(5));
        sent_bytes += len;
        while (got < len && (n = evl_read(fd, reply + got, sizeof reply - (size_t)got, EVL_SEC(5))) > 0) got += n;
        if (got != len || memcmp(msg, reply, (size_t)len) != 0) printf("client %d: wrong echo\n", id);
    }
    close(fd);
    if (++clients_done == 20) evl_fiber_cancel(&acceptor);
}

int main(int argc, char **argv) {
    evl_signal sigint;
    static evl_fiber clients[20];
    int self_test = argc > 1 && strcmp(argv[1], "--self-test") == 0, one = 1, i;
    socklen_t len = sizeof server_addr;

    listen_fd = nonblocking_cloexec(socket(AF_INET, SOCK_STREAM, 0));
    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(self_test ? INADDR_LOOPBACK : INADDR_ANY);
    server_addr.sin_port = htons((unsigned short)(self_test ? 0 : argc > 1 ? atoi(argv[1]) : 7001));
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listen_fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 || listen(listen_fd, 128) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&server_addr, &len) < 0) {
        perror("fiber_echo: listen");
        return 1;
    }
    if (evl_init(&loop) < 0) return 1;
    evl_fiber_start(&loop, &acceptor, NULL, 0, accept_forever, NULL);
    evl_signal_init(&sigint, on_sigint, SIGINT);
    evl_signal_start(&loop, &sigint);
    evl_unref(&loop, &sigint);
    printf("fiber echo server on port %d%s\n", ntohs(server_addr.sin_port), self_test ? " (self-test)" : "");
    if (self_test)
        for (i = 0; i < 20; i++) evl_fiber_start(&loop, &clients[i], NULL, 0, client, (void *)(intptr_t)i);
    evl_run(&loop, EVL_FOREVER);        /* until the acceptor and every connection have returned */
    printf("%d connections, %d bytes echoed\n", connections, echoed_bytes);
    evl_deinit(&loop);
    close(listen_fd);
    return self_test && (clients_done != 20 || echoed_bytes != sent_bytes) ? 1 : 0;
}
