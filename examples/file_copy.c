/* file_copy - copy a large file with file operations while a timer ticks and a TCP echo server
 * keeps answering, all on one thread.
 *
 *   ./file_copy [--workers N] SRC DST
 *
 * Both files are opened with evl_op_openat; then CHUNKS chunks of CHUNK_SIZE bytes are in flight,
 * each reading its piece of SRC and writing it at the same offset of DST before taking the next
 * piece, until every chunk reads the end of the file; DST is flushed (evl_op_fdatasync) and both
 * are closed (evl_op_close).  Meanwhile, on the same loop:
 *   - a 1 ms repeating timer notes how late each tick runs;
 *   - an echo server listens on a free loopback port (try nc 127.0.0.1 PORT during a long copy),
 *     and a client of its own sends a message every 2 ms and times the answer.
 * At the end it prints the rate, where the operations ran (evl_op_engine: io_uring where the
 * kernel allows it; otherwise the --workers threads; otherwise inline, blocking the loop), how late
 * the timer ever was and the slowest echo.  Exit status 1 on any error. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNKS 8
#define CHUNK_SIZE (256 * 1024)
#define MAX_WORKERS 16
#define MAX_CONNS 4
#define PING "ping from the client"

typedef struct chunk {
    evl_op op;
    int64_t offset;            /* where this piece starts, in both files */
    size_t len, written;       /* bytes read into buf, bytes of them written */
    int writing;
    unsigned char buf[CHUNK_SIZE];
} chunk;

static evl_loop loop;
static chunk chunks[CHUNKS];
static evl_op open_src, open_dst, flush_dst, close_src, close_dst;
static int src = -1, dst = -1, chunks_reading, files_open, files_closed, failed;
static int64_t next_offset, copied;
static const char *engine = "none";
static evl_time copy_start, copy_end;

static evl_timer ticker;
static evl_time tick_due, tick_latest;
static long ticks;

static evl_io listener, conns[MAX_CONNS], client;
static evl_timer pinger;
static evl_time ping_sent, echo_slowest;
static long echoes;

static void stop_everything(void);

static void fail(const char *what, ssize_t err) {
    fprintf(stderr, "file_copy: %s: %s\n", what, strerror((int)-err));
    failed = 1;
    evl_stop(&loop);    /* evl_deinit then cancels what is still in flight */
}

/* Starts an operation and notes the engine it goes to. */
static void started(int rc, const char *what) {
    if (rc < 0) fail(what, rc);
    engine = evl_op_engine(&loop);
}

/* ---- the copy --------------------------------------------------------------------------------- */

static void on_closed(evl_loop *l, evl_op *op, ssize_t result) {
    (void)l;
    if (result < 0) fail(op == &close_src ? "close SRC" : "close DST", result);
    if (++files_closed == 2) stop_everything();
}

static void on_flushed(evl_loop *l, evl_op *op, ssize_t result) {
    (void)op;
    if (result < 0) {
        fail("fdatasync DST", result);
        return;
    }
    copy_end = evl_now_update(l);
    started(evl_op_close(l, &close_src, src), "close SRC");
    started(evl_op_close(l, &close_dst, dst), "close DST");
}

static void read_next_piece(chunk *c) {
    c->offset = next_offset;
    next_offset += CHUNK_SIZE;
    c->len = c->written = 0;
    c->writing = 0;
    started(evl_op_read(&loop, &c->op, src, c->buf, CHUNK_SIZE, c->offset), "read");
}

static void on_chunk(evl_loop *l, evl_op *op, ssize_t result) {
    chunk *c = (chunk *)op->data;
    if (result < 0) {
        fail(c->writing ? "write" : "read", result);
        return;
    }
    if (c->writing) {
        c->written += (size_t)result;
        copied += result;
        if (c->written < c->len) {          /* a short write: the rest */
            started(evl_op_write(l, op, dst, c->buf + c->written, c->len - c->written,
                                 c->offset + (int64_t)c->written), "write");
        } else {
            read_next_piece(c);
        }
        return;
    }
    c->len += (size_t)result;
    if (result > 0 && c->len < CHUNK_SIZE) {    /* a short read: ask for the rest */
        started(evl_op_read(l, op, src, c->buf + c->len, CHUNK_SIZE - c->len, c->offset + (int64_t)c->len),
                "read");
    } else if (c->len > 0) {                    /* a full piece, or the last one */
        c->writing = 1;
        started(evl_op_write(l, op, dst, c->buf, c->len, c->offset), "write");
    } else if (--chunks_reading == 0) {         /* this chunk read past the end; it was the last */
        started(evl_op_fdatasync(l, &flush_dst, dst), "fdatasync DST");
    }
}

static void on_opened(evl_loop *l, evl_op *op, ssize_t result) {
    int i;
    if (result < 0) {
        fail(op == &open_src ? "open SRC" : "open DST", result);
        return;
    }
    *(op == &open_src ? &src : &dst) = (int)result;
    if (++files_open < 2) return;
    copy_start = evl_now_update(l);
    chunks_reading = CHUNKS;
    for (i = 0; i < CHUNKS; i++) {
        evl_op_init(&chunks[i].op, on_chunk);
        chunks[i].op.data = &chunks[i];
        read_next_piece(&chunks[i]);
    }
}

/* ---- the timer -------------------------------------------------------------------------------- */

static void on_tick(evl_loop *l, evl_timer *t) {
    evl_time now = evl_now_update(l), late = now > tick_due ? now - tick_due : 0;
    if (late > tick_latest) tick_latest = late;
    ticks++;
    tick_due = evl_now(l) + evl_timer_remaining(l, t);  /* the next deadline, as the loop has it */
}

/* ---- the echo server and its client ----------------------------------------------------------- */

static void on_conn(evl_loop *l, evl_io *w, unsigned revents) {
    char buf[512];
    ssize_t n = read(w->fd, buf, sizeof buf);
    (void)revents;
    if (n == 0 || (n < 0 && errno != EAGAIN) || (n > 0 && write(w->fd, buf, (size_t)n) != n)) {
        evl_io_stop(l, w);  /* a write that does not fit closes the connection: see echo_server.c */
        close(w->fd);
    }
}

/* Non-blocking and closed on exec, set with fcntl: macOS has no accept4 and no SOCK_NONBLOCK. */
static int nonblocking_cloexec(int fd) {
    if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void on_accept(evl_loop *l, evl_io *w, unsigned revents) {
    int fd = nonblocking_cloexec(accept(w->fd, NULL, NULL)), i;
    (void)revents;
    if (fd < 0) return;
    for (i = 0; i < MAX_CONNS; i++) {
        if (!evl_io_active(&conns[i])) {
            evl_io_init(&conns[i], on_conn, fd, EVL_READ);
            if (evl_io_start(l, &conns[i]) == 0) return;
            break;
        }
    }
    close(fd);              /* no room: a demo serves a few connections */
}

static void on_ping_timer(evl_loop *l, evl_timer *t) {
    (void)t;
    if (ping_sent) return;  /* the last one has not come back yet */
    if (write(client.fd, PING, sizeof PING) != (ssize_t)sizeof PING) {
        fail("client write", -errno);
        return;
    }
    ping_sent = evl_now_update(l);
}

static void on_echo(evl_loop *l, evl_io *w, unsigned revents) {
    char buf[sizeof PING];
    ssize_t n = read(w->fd, buf, sizeof buf);
    evl_time rtt;
    (void)revents;
    if (n < 0 && errno == EAGAIN) return;
    if (n != (ssize_t)sizeof PING || memcmp(buf, PING, sizeof PING) != 0) {
        fail("echo", n < 0 ? -errno : -EPROTO);
        return;
    }
    rtt = evl_now_update(l) - ping_sent;
    if (rtt > echo_slowest) echo_slowest = rtt;
    echoes++;
    ping_sent = 0;
}

static int start_echo(void) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int lfd = nonblocking_cloexec(socket(AF_INET, SOCK_STREAM, 0)), cfd;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  /* port 0: the kernel picks a free one */
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 16) < 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &len) < 0)
        return -errno;
    evl_io_init(&listener, on_accept, lfd, EVL_READ);
    /* A loopback connect completes in the kernel's backlog, before the loop accepts it. */
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&addr, sizeof addr) < 0) return -errno;
    if (nonblocking_cloexec(cfd) < 0) return -errno;
    evl_io_init(&client, on_echo, cfd, EVL_READ);
    evl_timer_init(&pinger, on_ping_timer);
    evl_timer_start(&loop, &pinger, EVL_MS(2), EVL_MS(2));
    printf("echo server on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    if (evl_io_start(&loop, &listener) < 0 || evl_io_start(&loop, &client) < 0) return -EINVAL;
    return 0;
}

/* The copy is done: everything else stops, so evl_run returns. */
static void stop_everything(void) {
    int i;
    evl_timer_stop(&loop, &ticker);
    evl_timer_stop(&loop, &pinger);
    for (i = 0; i < MAX_CONNS; i++) {
        if (evl_io_active(&conns[i])) {
            evl_io_stop(&loop, &conns[i]);
            close(conns[i].fd);
        }
    }
    evl_io_stop(&loop, &client);
    close(client.fd);
    evl_io_stop(&loop, &listener);
    close(listener.fd);
}

int main(int argc, char **argv) {
    static evl_worker workers[MAX_WORKERS];
    int nworkers = 0, argi = 1, rc;
    double secs;
    if (argc == 5 && strcmp(argv[1], "--workers") == 0) {
        nworkers = atoi(argv[2]);
        argi = 3;
    }
    if (argc - argi != 2 || nworkers < 0 || nworkers > MAX_WORKERS) {
        fprintf(stderr, "usage: %s [--workers N (0-%d)] SRC DST\n", argv[0], MAX_WORKERS);
        return 2;
    }
    if (evl_init(&loop) < 0) return 1;
    if (nworkers && (rc = evl_workers_start(&loop, workers, (unsigned)nworkers)) < 0) {
        fprintf(stderr, "file_copy: evl_workers_start: %s\n", strerror(-rc));
        return 1;
    }
    if ((rc = start_echo()) < 0) {
        fprintf(stderr, "file_copy: echo server: %s\n", strerror(-rc));
        return 1;
    }
    evl_timer_init(&ticker, on_tick);
    tick_due = evl_now_update(&loop) + EVL_MS(1);
    evl_timer_start_at(&loop, &ticker, tick_due, EVL_MS(1));

    evl_op_init(&open_src, on_opened);
    evl_op_init(&open_dst, on_opened);
    evl_op_init(&flush_dst, on_flushed);
    evl_op_init(&close_src, on_closed);
    evl_op_init(&close_dst, on_closed);
    started(evl_op_openat(&loop, &open_src, AT_FDCWD, argv[argi], O_RDONLY | O_CLOEXEC, 0), "open SRC");
    started(evl_op_openat(&loop, &open_dst, AT_FDCWD, argv[argi + 1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                          0644), "open DST");
    evl_run(&loop, EVL_FOREVER);
    if (nworkers) evl_workers_stop(&loop);
    evl_deinit(&loop);          /* after an error: cancels and waits for what is in flight */
    if (failed) return 1;

    secs = (double)(copy_end - copy_start) / 1e9;
    printf("copied %.1f MiB in %.3f s (%.0f MiB/s), %d chunks of %d KiB in flight, engine %s\n",
           (double)copied / 1048576.0, secs, secs > 0 ? (double)copied / 1048576.0 / secs : 0.0, CHUNKS,
           CHUNK_SIZE / 1024, engine);
    printf("1 ms timer: %ld ticks, the latest %.3f ms late\n", ticks, (double)tick_latest / 1e6);
    printf("echo: %ld round trips answered during the copy, the slowest in %.3f ms\n", echoes,
           (double)echo_slowest / 1e6);
    return 0;
}
