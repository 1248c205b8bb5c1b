/* size program, evloop. See size.h. */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include "size.h"

static evl_loop loop;
static evl_io io_w;
static evl_timer timer_w;
static evl_signal signal_w;
static evl_async async_w;

static void io_cb(evl_loop *l, evl_io *w, unsigned revents) {
    char c;
    (void)revents;
    BENCH_CHECK(read(size_pipe[0], &c, 1) == 1, "read failed");
    evl_io_stop(l, w);
    size_hits++;
}

static void timer_cb(evl_loop *l, evl_timer *t) {
    (void)l;
    (void)t;
    size_hits++;
    raise(SIGUSR1);
}

static void signal_cb(evl_loop *l, evl_signal *s, int signum) {
    (void)signum;
    evl_signal_stop(l, s);
    size_hits++;
}

static void async_cb(evl_loop *l, evl_async *a) {
    evl_async_stop(l, a);
    size_hits++;
}

static void *sender(void *arg) {
    (void)arg;
    evl_async_send(&async_w);
    return NULL;
}

int main(void) {
    int rc;
    size_begin();
    BENCH_CHECK(evl_init(&loop) == 0, "evl_init failed");
    size_report_heap("heap_after_init");
    evl_io_init(&io_w, io_cb, size_pipe[0], EVL_READ);
    BENCH_CHECK(evl_io_start(&loop, &io_w) == 0, "evl_io_start failed");
    evl_timer_init(&timer_w, timer_cb);
    evl_timer_start(&loop, &timer_w, EVL_MS(1), 0);
    evl_signal_init(&signal_w, signal_cb, SIGUSR1);
    BENCH_CHECK(evl_signal_start(&loop, &signal_w) == 0, "evl_signal_start failed");
    evl_async_init(&async_w, async_cb);
    BENCH_CHECK(evl_async_start(&loop, &async_w) == 0, "evl_async_start failed");
    size_report_heap("heap_with_watchers");
    size_start_thread(sender);
    BENCH_CHECK(write(size_pipe[1], "x", 1) == 1, "write failed");
    rc = evl_run(&loop, EVL_FOREVER);
    BENCH_CHECK(rc >= 0, "evl_run: %d", rc);

    bench_result("sizeof_io", sizeof(evl_io));
    bench_result("sizeof_timer", sizeof(evl_timer));
    bench_result("sizeof_signal", sizeof(evl_signal));
    bench_result("sizeof_async", sizeof(evl_async));
    bench_result("sizeof_loop", sizeof(evl_loop));
    return size_end();
}
