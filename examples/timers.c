/* timers - one-shot, repeating, restartable and unreferenced timers.
 *
 *   ./timers
 *
 * A 250 ms heartbeat repeats without drift (each deadline is the previous one plus the period, so
 * the printed times stay on the 250 ms grid however late a callback runs).  A watchdog is pushed
 * back with evl_timer_again each time the "work" ticks, and fires once the work stops.  A
 * housekeeping timer is unreferenced: it runs while others do, but does not keep the loop alive.
 * A last one is started at an absolute time with evl_timer_start_at. */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <stdio.h>

static evl_time start;

static double elapsed_ms(evl_loop *loop) { return (double)(evl_now(loop) - start) / 1e6; }

static void on_heartbeat(evl_loop *loop, evl_timer *t) {
    int *beats = (int *)t->data;
    printf("%8.3f ms  heartbeat %d\n", elapsed_ms(loop), ++*beats);
    if (*beats == 6) evl_timer_stop(loop, t);
}

static void on_work(evl_loop *loop, evl_timer *t) {
    evl_timer *watchdog = (evl_timer *)t->data;
    static int steps;
    printf("%8.3f ms  work step %d, watchdog pushed back\n", elapsed_ms(loop), ++steps);
    evl_timer_again(loop, watchdog);    /* restart its 400 ms from now */
    if (steps == 3) evl_timer_stop(loop, t);
}

static void on_watchdog(evl_loop *loop, evl_timer *t) {
    printf("%8.3f ms  watchdog: no work for 400 ms\n", elapsed_ms(loop));
    evl_timer_stop(loop, t);            /* it repeats with its period otherwise */
}

static void on_deadline(evl_loop *loop, evl_timer *t) {
    (void)t;
    printf("%8.3f ms  the absolute deadline (start + 1.2 s) has come\n", elapsed_ms(loop));
}

static void on_housekeeping(evl_loop *loop, evl_timer *t) {
    (void)t;
    printf("%8.3f ms  housekeeping (unreferenced)\n", elapsed_ms(loop));
}

int main(void) {
    evl_loop loop;
    evl_timer heartbeat, work, watchdog, housekeeping, deadline;
    int beats = 0;
    if (evl_init(&loop) < 0) return 1;
    start = evl_now(&loop);

    evl_timer_init(&heartbeat, on_heartbeat);
    heartbeat.data = &beats;
    evl_timer_start(&loop, &heartbeat, EVL_MS(250), EVL_MS(250));

    evl_timer_init(&watchdog, on_watchdog);
    watchdog.repeat = EVL_MS(400);      /* what evl_timer_again restarts it with */
    evl_timer_again(&loop, &watchdog);

    evl_timer_init(&work, on_work);
    work.data = &watchdog;
    evl_timer_start(&loop, &work, EVL_MS(100), EVL_MS(200));

    evl_timer_init(&deadline, on_deadline);
    evl_timer_start_at(&loop, &deadline, start + EVL_MS(1200), 0);   /* on the loop's clock */

    evl_timer_init(&housekeeping, on_housekeeping);
    evl_timer_start(&loop, &housekeeping, EVL_MS(500), EVL_MS(500));
    evl_unref(&loop, &housekeeping);

    evl_run(&loop, EVL_FOREVER);        /* returns once heartbeat, work and watchdog are done */
    printf("%8.3f ms  done, housekeeping still active: %s\n", elapsed_ms(&loop),
           evl_timer_active(&housekeeping) ? "yes" : "no");
    evl_deinit(&loop);
    return 0;
}
