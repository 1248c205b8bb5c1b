/* size program, libuv 1.x. See size.h. */
#include "size.h"

#include <uv.h>

static uv_loop_t loop;
static uv_poll_t io_w;
static uv_timer_t timer_w;
static uv_signal_t signal_w;
static uv_async_t async_w;

static void io_cb(uv_poll_t *h, int status, int events) {
    char c;
    (void)events;
    BENCH_CHECK(status == 0 && read(size_pipe[0], &c, 1) == 1, "read failed");
    uv_poll_stop(h);
    size_hits++;
}

static void timer_cb(uv_timer_t *t) {
    (void)t;
    size_hits++;
    raise(SIGUSR1);
}

static void signal_cb(uv_signal_t *s, int signum) {
    (void)signum;
    uv_signal_stop(s);
    size_hits++;
}

static void async_cb(uv_async_t *a) {
    uv_close((uv_handle_t *)a, NULL); /* an async handle is active until closed */
    size_hits++;
}

static void *sender(void *arg) {
    (void)arg;
    uv_async_send(&async_w);
    return NULL;
}

int main(void) {
    size_begin();
    BENCH_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init failed");
    size_report_heap("heap_after_init");
    uv_poll_init(&loop, &io_w, size_pipe[0]);
    uv_poll_start(&io_w, UV_READABLE, io_cb);
    uv_timer_init(&loop, &timer_w);
    uv_timer_start(&timer_w, timer_cb, 1, 0);
    uv_signal_init(&loop, &signal_w);
    uv_signal_start(&signal_w, signal_cb, SIGUSR1);
    uv_async_init(&loop, &async_w, async_cb);
    size_report_heap("heap_with_watchers");
    size_start_thread(sender);
    BENCH_CHECK(write(size_pipe[1], "x", 1) == 1, "write failed");
    uv_run(&loop, UV_RUN_DEFAULT);

    bench_result("sizeof_io", sizeof(uv_poll_t));
    bench_result("sizeof_timer", sizeof(uv_timer_t));
    bench_result("sizeof_signal", sizeof(uv_signal_t));
    bench_result("sizeof_async", sizeof(uv_async_t));
    bench_result("sizeof_loop", sizeof(uv_loop_t));
    return size_end();
}
