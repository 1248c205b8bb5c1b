/* The operations started in one iteration reach the kernel in one io_uring_enter: 4 rounds of 32
   reads, each round started together (the first before evl_run, the others from the callback that
   ends the round before), counted by strace in make check-files.  Prints the engine and the number
   of operations; the count of system calls is strace's. */
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { ROUNDS = 4, PER_ROUND = 32 };

static int fd, done_in_round, rounds_started, ops_done;
static evl_op ops[PER_ROUND];
static char bufs[PER_ROUND][512];

static void start_round(evl_loop *loop);

static void on_read(evl_loop *loop, evl_op *op, ssize_t result) {
    (void)op;
    if (result != 512) {
        fprintf(stderr, "read: %d\n", (int)result);
        exit(1);
    }
    ops_done++;
    if (++done_in_round == PER_ROUND && rounds_started < ROUNDS) start_round(loop);
}

static void start_round(evl_loop *loop) {
    int i;
    done_in_round = 0;
    rounds_started++;
    for (i = 0; i < PER_ROUND; i++) {
        evl_op_init(&ops[i], on_read);
        if (evl_op_read(loop, &ops[i], fd, bufs[i], sizeof bufs[i], (int64_t)i * 512) < 0) exit(1);
    }
}

int main(void) {
    char path[] = "/tmp/evl-batch-XXXXXX";
    static char data[PER_ROUND * 512];
    evl_loop loop;
    if ((fd = mkstemp(path)) < 0 || write(fd, data, sizeof data) != (ssize_t)sizeof data) return 1;
    unlink(path);
    if (evl_init(&loop) < 0) return 1;
    start_round(&loop);
    evl_run(&loop, EVL_FOREVER);
    printf("%s %d %d\n", evl_op_engine(&loop), ops_done, ROUNDS);
    evl_deinit(&loop);
    close(fd);
    return ops_done == ROUNDS * PER_ROUND ? 0 : 1;
}
