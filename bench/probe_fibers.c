/* Built (never run) by the Makefile: if it compiles and links, evloop.h offers fibers and fibers.c
 * measures evl_yield. */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

static void fn(void *arg) {
    (void)arg;
    evl_yield();
}

int main(void) {
    static evl_loop loop;
    static evl_fiber f;
    evl_init(&loop);
    return evl_fiber_start(&loop, &f, NULL, 65536, fn, NULL);
}
