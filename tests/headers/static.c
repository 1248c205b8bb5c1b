/* EVLOOP_STATIC: a private copy of the implementation in one translation unit, every function
   static, and no warning about the ones this file does not call. */
#define EVLOOP_STATIC
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"

static int fired;

static void on_timer(evl_loop *loop, evl_timer *t) {
    (void)loop;
    (void)t;
    fired++;
}

int main(void) {
    evl_loop loop;
    evl_timer t;
    if (evl_init(&loop) < 0) return 1;
    evl_timer_init(&t, on_timer);
    evl_timer_start(&loop, &t, 0, 0);
    evl_run(&loop, EVL_FOREVER);
    evl_deinit(&loop);
    return fired == 1 ? 0 : 1;
}
