/* pipes.h - the "pipes" benchmark, shared by every pipes_<library>.c.
 *
 * A re-implementation (not a copy) of the experiment in libevent's test/bench.c, as also used for
 * libev's published comparison:
 *
 *   - n AF_UNIX stream socketpairs; pair i has a persistent read watcher on its first socket;
 *   - a "tokens" are put in flight by writing one byte into every (n/a)-th pair;
 *   - a read callback reads one byte and, while writes remain, writes one byte into the next pair,
 *     so each token walks around the ring of pairs; w writes are done in total;
 *   - one run first re-registers every watcher (stop + set up + start, as a program that changes its
 *     interest would), does one non-blocking pass, plants the tokens, then drives the loop with
 *     non-blocking single passes until every byte written has been read;
 *   - 25 runs; we report the median "loop" time (the passes only) and the median "total" time
 *     (re-registration + loop), like the original's two columns.
 *
 * A library file defines the four hooks below and calls pipes_readable() from its read callback. All
 * bookkeeping, timing and checking live here, so every library runs exactly the same program and only
 * the event-library calls differ. Everything is in one translation unit, so the hooks inline.
 *
 * Checks: every recv/send must move exactly one byte, the number of bytes read must equal a + w, and
 * afterwards no pair may hold an unread byte. The pass loop also gives up (and fails) after far more
 * passes than any correct loop needs, so a library that loses an event fails instead of hanging.
 */
#ifndef PIPES_H
#define PIPES_H

#include "bench.h"

#include <sys/socket.h>

/* Hooks every library file defines. */
static const char *lib_name(void);
static void lib_init(void);
static void lib_watch(int idx, int fd, int first_time); /* (re-)register a persistent read watcher */
static void lib_run_nowait(void);                       /* one pass of the loop that does not block */

/* Descriptors beyond the pairs: stdio, the backend's own (epoll fd, eventfds, signal pipes). run.py
 * uses the same margin when a low hard RLIMIT_NOFILE forces it to shrink n. */
#define PIPES_FD_MARGIN 32

static int num_pipes = 100, num_active = 1, num_writes = 100;
static int *pipes; /* pipes[2*i] is watched for reading, pipes[2*i + 1] is written to */
static long count, fired, writes, failures;

/* The body of every library's read callback: consume the token, pass it on while writes remain. */
static inline void pipes_readable(int idx, int fd) {
    unsigned char ch;
    if (recv(fd, &ch, 1, 0) == 1)
        count++;
    else
        failures++;
    if (writes) {
        int widx = idx + 1;
        if (widx >= num_pipes) widx -= num_pipes;
        if (send(pipes[2 * widx + 1], "e", 1, 0) != 1) failures++;
        writes--;
        fired++;
    }
}

static void pipes_run_once(double *loop_us, double *total_us, long *passes) {
    uint64_t t_total, t_loop, t_end;
    long pass_limit = 1000L * (num_active + num_writes) + 100000L;
    int space, i;

    t_total = bench_now_ns();
    for (i = 0; i < num_pipes; i++) lib_watch(i, pipes[2 * i], 0);
    lib_run_nowait();

    fired = 0;
    space = (num_pipes / num_active) * 2;
    for (i = 0; i < num_active; i++, fired++)
        BENCH_CHECK(send(pipes[i * space + 1], "e", 1, 0) == 1, "send: %s", strerror(errno));

    count = 0;
    writes = num_writes;
    *passes = 0;
    t_loop = bench_now_ns();
    do {
        lib_run_nowait();
        ++*passes;
    } while (count != fired && failures == 0 && *passes < pass_limit);
    t_end = bench_now_ns();

    BENCH_CHECK(failures == 0, "%ld recv/send calls did not move exactly one byte", failures);
    BENCH_CHECK(*passes < pass_limit, "gave up after %ld passes: %ld of %ld bytes read", *passes, count, fired);
    BENCH_CHECK(count == (long)num_active + num_writes && writes == 0, "read %ld bytes, expected %d (writes left: %ld)",
                count, num_active + num_writes, writes);
    *loop_us = (double)(t_end - t_loop) / 1e3;
    *total_us = (double)(t_end - t_total) / 1e3;
}

int main(int argc, char **argv) {
    int runs = 25, opt, i;
    double *loop_us, *total_us, *pass_v;

    while ((opt = getopt(argc, argv, "n:a:w:r:")) != -1) {
        switch (opt) {
        case 'n': num_pipes = atoi(optarg); break;
        case 'a': num_active = atoi(optarg); break;
        case 'w': num_writes = atoi(optarg); break;
        case 'r': runs = atoi(optarg); break;
        default: fprintf(stderr, "usage: %s [-n pipes] [-a active] [-w writes] [-r runs]\n", argv[0]); return 64;
        }
    }
    BENCH_CHECK(num_pipes > 0 && num_active > 0 && num_active <= num_pipes && num_writes >= 0 && runs > 0,
                "bad parameters");

    bench_raise_nofile((rlim_t)num_pipes * 2 + PIPES_FD_MARGIN);
    pipes = bench_calloc((size_t)num_pipes * 2, sizeof *pipes);
    for (i = 0; i < num_pipes; i++) {
        BENCH_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, &pipes[2 * i]) == 0, "socketpair #%d: %s", i, strerror(errno));
        bench_set_nonblock(pipes[2 * i]); /* libuv insists on it, so everyone gets it */
    }

    lib_init();
    bench_info("library", lib_name());
    for (i = 0; i < num_pipes; i++) lib_watch(i, pipes[2 * i], 1);

    loop_us = bench_calloc((size_t)runs, sizeof *loop_us);
    total_us = bench_calloc((size_t)runs, sizeof *total_us);
    pass_v = bench_calloc((size_t)runs, sizeof *pass_v);
    for (i = 0; i < runs; i++) {
        long passes;
        pipes_run_once(&loop_us[i], &total_us[i], &passes);
        pass_v[i] = (double)passes;
    }

    /* Nothing may be left unread: every byte sent was counted as read, none sent twice. */
    for (i = 0; i < num_pipes; i++) {
        unsigned char ch;
        BENCH_CHECK(recv(pipes[2 * i], &ch, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "pair %d still holds data", i);
    }

    bench_result("events", (double)(num_active + num_writes));
    bench_result("loop_us", bench_median(loop_us, (size_t)runs));
    bench_result("total_us", bench_median(total_us, (size_t)runs));
    bench_result("loop_us_min", loop_us[0]); /* sorted by bench_median */
    bench_result("passes", bench_median(pass_v, (size_t)runs));
    return 0;
}

#endif /* PIPES_H */
