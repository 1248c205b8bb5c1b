/* echo_win - a TCP echo server for Windows (the IOCP backend), with callbacks, and a fiber client.
 *
 *   echo_win [port]          serve on 127.0.0.1:port (default 7000) until Ctrl-C or Ctrl-Break
 *   echo_win --self-test     serve on a free port, and let three fiber clients talk to it: each
 *                            sends messages, reads every echo back and checks it; exits 0 if all did
 *
 * Build: x86_64-w64-mingw32-gcc -O2 echo_win.c -o echo_win.exe -lws2_32
 *
 * Descriptors are evl_fd (a SOCKET here); each connection has an io watcher and a buffer, and the
 * watcher switches from reading to writing while an echo waits to go out, as examples/echo_server.c
 * does on POSIX. */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct conn {
    evl_io io;
    char buf[4096];
    size_t len, sent;                   /* bytes held, bytes of them already written back */
} conn;

static int connections;

static void conn_close(evl_loop *loop, conn *c) {
    evl_io_stop(loop, &c->io);          /* stop before close: the loop must forget the socket first */
    closesocket(c->io.fd);
    free(c);
    connections--;
}

static void on_conn(evl_loop *loop, evl_io *w, unsigned revents) {
    conn *c = (conn *)w->data;
    int n;
    (void)revents;
    if (c->len == 0) {                  /* reading */
        n = recv(w->fd, c->buf, (int)sizeof c->buf, 0);
        if (n == 0 || (n < 0 && WSAGetLastError() != WSAEWOULDBLOCK)) {
            conn_close(loop, c);
            return;
        }
        if (n < 0) return;
        c->len = (size_t)n;
        c->sent = 0;
    }
    n = send(w->fd, c->buf + c->sent, (int)(c->len - c->sent), 0);
    if (n < 0 && WSAGetLastError() != WSAEWOULDBLOCK) {
        conn_close(loop, c);
        return;
    }
    if (n > 0) c->sent += (size_t)n;
    if (c->sent == c->len) c->len = 0;
    evl_io_set(loop, w, c->len ? EVL_WRITE : EVL_READ);
}

static void on_accept(evl_loop *loop, evl_io *w, unsigned revents) {
    SOCKET s = accept(w->fd, NULL, NULL);
    u_long nonblocking = 1;
    conn *c;
    (void)revents;
    if (s == INVALID_SOCKET) return;
    ioctlsocket(s, (long)FIONBIO, &nonblocking);
    c = (conn *)calloc(1, sizeof *c);
    if (!c) {
        closesocket(s);
        return;
    }
    evl_io_init(&c->io, on_conn, s, EVL_READ);
    c->io.data = c;
    if (evl_io_start(loop, &c->io) < 0) {
        closesocket(s);
        free(c);
        return;
    }
    connections++;
}

static void on_interrupt(evl_loop *loop, evl_signal *s, int signum) {
    (void)s;
    printf("signal %d: stopping\n", signum);
    evl_stop(loop);
}

/* ---- the self-test's clients ------------------------------------------------------------------- */

enum { CLIENTS = 3, MESSAGES = 50 };

typedef struct client {
    struct sockaddr_in addr;
    int id, ok;
} client;

static int clients_done;

static void talk(void *arg) {
    client *me = (client *)arg;
    SOCKET s = socket(AF_INET, SOCK_STREAM, 0);
    char msg[64], echo[64];
    int i;
    if (s == INVALID_SOCKET) return;
    if (evl_connect(s, (struct sockaddr *)&me->addr, sizeof me->addr, EVL_SEC(5)) == 0) {
        for (i = 0; i < MESSAGES; i++) {
            size_t len = (size_t)snprintf(msg, sizeof msg, "client %d message %d", me->id, i), got = 0;
            if (evl_write(s, msg, len, EVL_SEC(5)) != (ssize_t)len) break;
            while (got < len) {         /* TCP may hand the echo back in pieces */
                ssize_t n = evl_read(s, echo + got, len - got, EVL_SEC(5));
                if (n <= 0) break;
                got += (size_t)n;
            }
            if (got != len || memcmp(msg, echo, len) != 0) break;
        }
        me->ok = i == MESSAGES;
    }
    closesocket(s);
    clients_done++;
}

/* Stops the server once every client has finished and the server has closed every connection. */
static void check_done(evl_loop *loop, evl_hook *h) {
    (void)h;
    if (clients_done == CLIENTS && connections == 0) evl_stop(loop);
}

int main(int argc, char **argv) {
    int self_test = argc > 1 && strcmp(argv[1], "--self-test") == 0;
    int port = argc > 1 && !self_test ? atoi(argv[1]) : self_test ? 0 : 7000, len, i, ok = 1;
    evl_loop loop;
    evl_io listener;
    evl_signal interrupt, brk;
    evl_hook done;
    evl_fiber fibers[CLIENTS];
    client clients[CLIENTS];
    struct sockaddr_in addr;
    SOCKET s;
    u_long nonblocking = 1;
    if (evl_init(&loop) < 0) return 1;          /* also starts Winsock for this program */
    s = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((u_short)port);
    len = (int)sizeof addr;
    if (s == INVALID_SOCKET || bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 16) != 0 ||
        getsockname(s, (struct sockaddr *)&addr, &len) != 0) {
        fprintf(stderr, "cannot listen on port %d\n", port);
        return 1;
    }
    ioctlsocket(s, (long)FIONBIO, &nonblocking);
    evl_io_init(&listener, on_accept, s, EVL_READ);
    evl_io_start(&loop, &listener);
    evl_signal_init(&interrupt, on_interrupt, SIGINT);
    evl_signal_start(&loop, &interrupt);
    evl_signal_init(&brk, on_interrupt, SIGBREAK);
    evl_signal_start(&loop, &brk);
    printf("echo server on 127.0.0.1:%d (%s backend)\n", ntohs(addr.sin_port), evl_backend_name());
    if (self_test) {
        for (i = 0; i < CLIENTS; i++) {
            clients[i].addr = addr;
            clients[i].id = i;
            clients[i].ok = 0;
            evl_fiber_start(&loop, &fibers[i], NULL, 0, talk, &clients[i]);
        }
        evl_hook_init(&done, check_done, EVL_CHECK);
        evl_hook_start(&loop, &done);
        evl_run(&loop, EVL_SEC(30));
        for (i = 0; i < CLIENTS; i++) ok &= clients[i].ok;
        printf("%d clients, %d messages each: %s\n", CLIENTS, MESSAGES, ok ? "all echoed" : "FAILED");
    } else {
        evl_run(&loop, EVL_FOREVER);
    }
    evl_io_stop(&loop, &listener);
    closesocket(s);
    evl_deinit(&loop);                          /* and Winsock's cleanup: sockets first */
    return ok ? 0 : 1;
}
