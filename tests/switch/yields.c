/* yields.c - two fibers yield to each other 100 000 times each; run under strace by
   `make check-switch` to show that a switch makes no system call (glibc's swapcontext makes a
   sigprocmask call on every switch; evloop's assembly none).  The loop itself polls once every
   128 resumes, which is the only system call left. */
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"

#include <stdio.h>

enum { YIELDS = 100000 };
static long done;

static void ping_pong(void *arg) {
    int i;
    (void)arg;
    for (i = 0; i < YIELDS; i++) evl_yield();
    done += YIELDS;
}

int main(void) {
    evl_loop loop;
    evl_fiber a, b;
    if (evl_init(&loop) < 0) return 1;
    evl_fiber_start(&loop, &a, NULL, 0, ping_pong, NULL);
    evl_fiber_start(&loop, &b, NULL, 0, ping_pong, NULL);
    evl_run(&loop, EVL_FOREVER);
    evl_deinit(&loop);
    printf("%ld yields\n", done);
    return done == 2 * YIELDS ? 0 : 1;
}
