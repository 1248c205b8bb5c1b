/* A second translation unit that only declares: linked with impl.c it must build and run, which
   proves the header can be included anywhere without the implementation. */
#include "../../evloop.h"

#include <stdio.h>

static int fired;

static void on_timer(evl_loop *loop, evl_timer *t) {
    (void)t;
    fired++;
    evl_stop(loop);
}

int main(void) {
    evl_loop loop;
    evl_timer t;
    if (evl_init(&loop) < 0) return 1;
    evl_timer_init(&t, on_timer);
    evl_timer_start(&loop, &t, EVL_MS(1), 0);
    evl_unref(&loop, &t);
    evl_ref(&loop, &t);
    if (evl_run(&loop, EVL_FOREVER) < 0) return 2;
    evl_deinit(&loop);
    printf("%s: %s backend, timer fired %d time(s)\n", __FILE__, evl_backend_name(), fired);
    return fired == 1 ? 0 : 3;
}
