/* embed - running evloop inside someone else's main loop.
 *
 *   ./embed
 *
 * Some programs already own the main loop (a GUI toolkit, a game loop, a plain poll() loop as
 * here).  evloop can live inside it: the outer loop waits on evl_backend_fd() (readable when evloop
 * has io work, including wake-ups from other threads) for at most evl_backend_timeout() (when
 * evloop's next timer is due), then lets evloop do one non-blocking pass with evl_run(loop, 0). */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <poll.h>
#include <stdio.h>
#include <unistd.h>

static int ticks;
static evl_time start;

static void on_tick(evl_loop *loop, evl_timer *t) {
    (void)t;
    printf("evloop timer: tick %d at %.1f ms\n", ++ticks, (double)(evl_now(loop) - start) / 1e6);
}

static void on_pipe(evl_loop *loop, evl_io *w, unsigned revents) {
    char c;
    (void)revents;
    if (read(w->fd, &c, 1) == 1) printf("evloop io: read '%c'\n", c);
    else evl_io_stop(loop, w);
}

int main(void) {
    evl_loop loop;
    evl_timer tick;
    evl_io in;
    int fds[2], outer_wakeups = 0;
    if (evl_init(&loop) < 0 || pipe(fds) < 0) return 1;
    start = evl_now(&loop);
    evl_timer_init(&tick, on_tick);
    evl_timer_start(&loop, &tick, EVL_MS(30), EVL_MS(30));
    evl_io_init(&in, on_pipe, fds[0], EVL_READ);
    evl_io_start(&loop, &in);
    (void)!write(fds[1], "hi", 2);

    while (ticks < 5) {                     /* the outer program's own loop */
        struct pollfd p;
        evl_time wait = evl_backend_timeout(&loop);
        int timeout_ms = wait == EVL_FOREVER ? -1 : (int)((wait + EVL_MS(1) - 1) / EVL_MS(1));  /* round up */
        p.fd = evl_backend_fd(&loop);
        p.events = POLLIN;
        poll(&p, 1, timeout_ms);            /* ... with the outer program's own descriptors too */
        outer_wakeups++;
        evl_run(&loop, 0);                  /* one pass: whatever is ready or due, nothing more */
    }
    printf("the outer loop woke %d times for 5 ticks and 2 bytes\n", outer_wakeups);
    evl_deinit(&loop);
    return 0;
}
