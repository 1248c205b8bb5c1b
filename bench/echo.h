/* echo.h - what every echo_<library>.c server shares: arguments, the listening socket, the byte
 * accounting, and the read-then-echo step for libraries that hand the program a readable descriptor.
 *
 * A server: listens on 127.0.0.1 on a kernel-chosen port and prints "PORT <n>" (run.py reads it and
 * starts echo_client with that port); pins itself to the CPU given with -C; accepts exactly -c
 * connections; echoes every byte back; and leaves its loop when all of them have been closed by the
 * client, because nothing is then active. It then prints "RESULT bytes <n>" and exits 0 only if every
 * byte read was written back and no connection failed; run.py also checks that n equals what the
 * client counted. It also prints its CPU time (user + system), from which run.py derives CPU per
 * message: unlike messages per second, that figure does not drop when another process takes a core.
 *
 * Every server does the same per readiness: one read of up to ECHO_BUF bytes, one write of what was
 * read. A short write (never seen with 64-byte messages, but handled) parks the rest, switches the
 * watcher to write interest until it is flushed, then back to read interest.
 */
#ifndef ECHO_H
#define ECHO_H

#include "bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define ECHO_BUF 4096

static long echo_expected = 100, echo_accepted, echo_closed, echo_errors;
static uint64_t echo_bytes_in, echo_bytes_out;
static int echo_cpu = -1;

struct echo_buf {
    size_t off, len; /* unsent bytes are data[off..len) */
    char data[ECHO_BUF];
};

static inline void echo_parse_args(int argc, char **argv) {
    int opt;
    while ((opt = getopt(argc, argv, "c:C:")) != -1) {
        switch (opt) {
        case 'c': echo_expected = atol(optarg); break;
        case 'C': echo_cpu = atoi(optarg); break;
        default: fprintf(stderr, "usage: %s [-c connections] [-C cpu]\n", argv[0]); exit(64);
        }
    }
    BENCH_CHECK(echo_expected > 0, "need at least one connection");
    bench_raise_nofile((rlim_t)echo_expected + 64);
    bench_pin_cpu(echo_cpu);
}

/* Creates the non-blocking listening socket and announces its port. */
static inline int echo_listen(void) {
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    BENCH_CHECK(fd >= 0, "socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    BENCH_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s", strerror(errno));
    BENCH_CHECK(listen(fd, 1024) == 0, "listen: %s", strerror(errno));
    BENCH_CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0, "getsockname: %s", strerror(errno));
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

/* Accepts one pending connection as a non-blocking, TCP_NODELAY socket; -1 when none is pending. */
static inline int echo_accept(int lfd) {
    int one = 1;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        BENCH_CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED, "accept: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    echo_accepted++;
    return fd;
}

enum { ECHO_KEEP_READING, ECHO_WANT_WRITE, ECHO_CLOSE };

/* One read and the echo of what it got. */
static inline int echo_on_readable(int fd, struct echo_buf *b) {
    ssize_t n = read(fd, b->data, sizeof b->data), w;
    if (n == 0) return ECHO_CLOSE;
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return ECHO_KEEP_READING;
        echo_errors++;
        return ECHO_CLOSE;
    }
    echo_bytes_in += (uint64_t)n;
    w = write(fd, b->data, (size_t)n);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            echo_errors++;
            return ECHO_CLOSE;
        }
        w = 0;
    }
    echo_bytes_out += (uint64_t)w;
    if (w == n) return ECHO_KEEP_READING;
    b->off = (size_t)w;
    b->len = (size_t)n;
    return ECHO_WANT_WRITE;
}

/* Flushes parked bytes: ECHO_KEEP_READING once all are out, ECHO_WANT_WRITE while some remain. */
static inline int echo_on_writable(int fd, struct echo_buf *b) {
    ssize_t w = write(fd, b->data + b->off, b->len - b->off);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return ECHO_WANT_WRITE;
        echo_errors++;
        return ECHO_CLOSE;
    }
    echo_bytes_out += (uint64_t)w;
    b->off += (size_t)w;
    return b->off == b->len ? ECHO_KEEP_READING : ECHO_WANT_WRITE;
}

static inline int echo_finish(void) {
    BENCH_CHECK(echo_errors == 0, "%ld connections failed", echo_errors);
    BENCH_CHECK(echo_accepted == echo_expected && echo_closed == echo_expected,
                "accepted %ld, closed %ld, expected %ld", echo_accepted, echo_closed, echo_expected);
    BENCH_CHECK(echo_bytes_in == echo_bytes_out, "read %llu bytes but echoed %llu", (unsigned long long)echo_bytes_in,
                (unsigned long long)echo_bytes_out);
    bench_result("bytes", (double)echo_bytes_out);
    {
        /* CPU time is what a busy machine cannot inflate: time spent preempted is not counted. */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        bench_result("cpu_s", (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    }
    return 0;
}

#endif /* ECHO_H */
