/* size program, libevent 2.1 (every watcher is a struct event; the cross-thread wake-up is
 * event_active from the other thread, which needs libevent's pthreads glue). See size.h. */
#include "size.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/thread.h>

static struct event_base *base;
static struct event io_w, timer_w, signal_w, async_w;

static void io_cb(evutil_socket_t fd, short what, void *arg) {
    char c;
    (void)what;
    (void)arg;
    BENCH_CHECK(read(fd, &c, 1) == 1, "read failed");
    event_del(&io_w);
    size_hits++;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    size_hits++;
    raise(SIGUSR1);
}

static void signal_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    event_del(&signal_w);
    size_hits++;
}

static void async_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)arg;
    if (what & EV_TIMEOUT) return; /* only the keep-alive timeout: never expected */
    event_del(&async_w);
    size_hits++;
}

static void *sender(void *arg) {
    (void)arg;
    event_active(&async_w, EV_READ, 0);
    return NULL;
}

int main(void) {
    struct timeval ms1 = {0, 1000}, keep_alive = {60, 0};
    size_begin();
    BENCH_CHECK(evthread_use_pthreads() == 0, "evthread_use_pthreads failed");
    base = event_base_new();
    BENCH_CHECK(base != NULL, "event_base_new failed");
    size_report_heap("heap_after_init");
    event_assign(&io_w, base, size_pipe[0], EV_READ | EV_PERSIST, io_cb, NULL);
    event_add(&io_w, NULL);
    evtimer_assign(&timer_w, base, timer_cb, NULL);
    evtimer_add(&timer_w, &ms1);
    evsignal_assign(&signal_w, base, SIGUSR1, signal_cb, NULL);
    evsignal_add(&signal_w, NULL);
    /* An event with no descriptor is not pending by itself; a long timeout keeps the loop alive until
     * the other thread activates it, the usual libevent way to receive a wake-up. */
    event_assign(&async_w, base, -1, 0, async_cb, NULL);
    event_add(&async_w, &keep_alive);
    size_report_heap("heap_with_watchers");
    size_start_thread(sender);
    BENCH_CHECK(write(size_pipe[1], "x", 1) == 1, "write failed");
    BENCH_CHECK(event_base_dispatch(base) >= 0, "event_base_dispatch failed");

    bench_result("sizeof_io", sizeof(struct event));
    bench_result("sizeof_timer", sizeof(struct event));
    bench_result("sizeof_signal", sizeof(struct event));
    bench_result("sizeof_async", sizeof(struct event));
    return size_end(); /* struct event_base is opaque: its size shows up as heap_after_init */
}
