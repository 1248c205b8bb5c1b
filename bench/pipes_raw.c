/* pipes benchmark, hand-written epoll loop: the floor every library is measured against.
 *
 * It does only what the kernel interface requires: the descriptor's index rides in epoll_data, one
 * epoll_wait(timeout 0) per pass fetches up to 64 events (evloop's default batch), and re-registering
 * a watcher costs one epoll_ctl(EPOLL_CTL_MOD), the least a library that forwards a changed interest
 * to the kernel can do. See pipes.h for the experiment. */
#include "pipes.h"

#include <sys/epoll.h>

#ifndef RAW_MAX_EVENTS
#define RAW_MAX_EVENTS 1024
#endif

static int epfd = -1;

static const char *lib_name(void) { return "raw epoll"; }

static void lib_init(void) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    BENCH_CHECK(epfd >= 0, "epoll_create1: %s", strerror(errno));
}

static void lib_watch(int idx, int fd, int first_time) {
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)idx;
    BENCH_CHECK(epoll_ctl(epfd, first_time ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) == 0, "epoll_ctl: %s",
                strerror(errno));
}

static void lib_run_nowait(void) {
    struct epoll_event evs[RAW_MAX_EVENTS];
    int n = epoll_wait(epfd, evs, RAW_MAX_EVENTS, 0), i;
    BENCH_CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
    for (i = 0; i < n; i++) {
        int idx = (int)evs[i].data.u64;
        pipes_readable(idx, pipes[2 * idx]);
    }
}
