/* size program, libev 4. See size.h. */
#include "size.h"

#include <ev.h>

static struct ev_loop *loop;
static ev_io io_w;
static ev_timer timer_w;
static ev_signal signal_w;
static ev_async async_w;

static void io_cb(struct ev_loop *l, ev_io *w, int revents) {
    char c;
    (void)revents;
    BENCH_CHECK(read(w->fd, &c, 1) == 1, "read failed");
    ev_io_stop(l, w);
    size_hits++;
}

static void timer_cb(struct ev_loop *l, ev_timer *w, int revents) {
    (void)l;
    (void)w;
    (void)revents;
    size_hits++;
    raise(SIGUSR1);
}

static void signal_cb(struct ev_loop *l, ev_signal *w, int revents) {
    (void)revents;
    ev_signal_stop(l, w);
    size_hits++;
}

static void async_cb(struct ev_loop *l, ev_async *w, int revents) {
    (void)revents;
    ev_async_stop(l, w);
    size_hits++;
}

static void *sender(void *arg) {
    (void)arg;
    ev_async_send(loop, &async_w);
    return NULL;
}

int main(void) {
    size_begin();
    loop = ev_loop_new(EVBACKEND_EPOLL);
    BENCH_CHECK(loop != NULL, "ev_loop_new failed");
    size_report_heap("heap_after_init");
    ev_io_init(&io_w, io_cb, size_pipe[0], EV_READ);
    ev_io_start(loop, &io_w);
    ev_timer_init(&timer_w, timer_cb, 0.001, 0.);
    ev_timer_start(loop, &timer_w);
    ev_signal_init(&signal_w, signal_cb, SIGUSR1);
    ev_signal_start(loop, &signal_w);
    ev_async_init(&async_w, async_cb);
    ev_async_start(loop, &async_w);
    size_report_heap("heap_with_watchers");
    size_start_thread(sender);
    BENCH_CHECK(write(size_pipe[1], "x", 1) == 1, "write failed");
    ev_run(loop, 0);

    bench_result("sizeof_io", sizeof(ev_io));
    bench_result("sizeof_timer", sizeof(ev_timer));
    bench_result("sizeof_signal", sizeof(ev_signal));
    bench_result("sizeof_async", sizeof(ev_async));
    return size_end(); /* struct ev_loop is opaque: its size shows up as heap_after_init */
}
