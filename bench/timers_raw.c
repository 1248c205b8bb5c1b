/* timer benchmarks, hand-written reference: a binary min-heap of (deadline, id) pairs with each
 * timer's heap position kept beside it, and a timerfd to sleep with nanosecond resolution. No
 * generality (one callback, ids instead of watchers), so it shows what the work itself costs. See
 * timers.h for the experiments.
 *
 * It sleeps on a timerfd armed at the earliest deadline (absolute, CLOCK_MONOTONIC) rather than on an
 * epoll_wait/epoll_pwait2 timeout: the kernel adds the thread's timer slack (50 us by default) to
 * poll-style timeouts but not to timerfd expiries, and this program is the precision floor. */
#include "timers.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>

struct raw_slot {
    uint64_t at; /* deadline, cached in the heap so sifting never leaves the array */
    size_t id;
};

static struct raw_slot *heap;
static size_t heap_n;
static size_t *pos; /* pos[id] = heap index + 1; 0 when inactive */
static uint64_t now_cached;
static int epfd = -1, tfd = -1;
static void (*defer_fn)(void);

static void heap_place(size_t k, struct raw_slot s) {
    heap[k] = s;
    pos[s.id] = k + 1;
}

static size_t sift_up(size_t k) {
    struct raw_slot s = heap[k];
    while (k > 0) {
        size_t parent = (k - 1) / 2;
        if (heap[parent].at <= s.at) break;
        heap_place(k, heap[parent]);
        k = parent;
    }
    heap_place(k, s);
    return k;
}

static void sift_down(size_t k) {
    struct raw_slot s = heap[k];
    for (;;) {
        size_t child = 2 * k + 1;
        if (child >= heap_n) break;
        if (child + 1 < heap_n && heap[child + 1].at < heap[child].at) child++;
        if (heap[child].at >= s.at) break;
        heap_place(k, heap[child]);
        k = child;
    }
    heap_place(k, s);
}

static const char *lib_name(void) { return "raw (binary heap + timerfd)"; }

static void lib_init(size_t n) {
    heap = bench_calloc(n, sizeof *heap);
    pos = bench_calloc(n, sizeof *pos);
    struct epoll_event ev;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    BENCH_CHECK(epfd >= 0 && tfd >= 0, "epoll_create1/timerfd_create: %s", strerror(errno));
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    BENCH_CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) == 0, "epoll_ctl: %s", strerror(errno));
}

static void lib_defer(void (*fn)(void)) { defer_fn = fn; }

static void lib_now_update(void) { now_cached = bench_now_ns(); }

static void lib_timer_start(size_t i, uint64_t after_ns) {
    size_t k = heap_n++;
    heap[k].at = now_cached + after_ns;
    heap[k].id = i;
    sift_up(k);
}

static void lib_timer_restart(size_t i, uint64_t after_ns) {
    size_t k = pos[i] - 1;
    heap[k].at = now_cached + after_ns;
    sift_down(sift_up(k));
}

static void lib_timer_stop(size_t i) {
    size_t k;
    if (!pos[i]) return;
    k = pos[i] - 1;
    pos[i] = 0;
    if (k < --heap_n) {
        heap_place(k, heap[heap_n]);
        sift_down(sift_up(k));
    }
}

static void lib_run(void) {
    lib_now_update();
    if (defer_fn) defer_fn();
    while (heap_n) {
        struct epoll_event ev;
        struct itimerspec its;
        uint64_t expirations;
        lib_now_update();
        while (heap_n && heap[0].at <= now_cached) {
            size_t id = heap[0].id;
            lib_timer_stop(id);
            timers_fired(id);
        }
        if (!heap_n) break;
        memset(&its, 0, sizeof its);
        its.it_value.tv_sec = (time_t)(heap[0].at / BENCH_NS_PER_SEC);
        its.it_value.tv_nsec = (long)(heap[0].at % BENCH_NS_PER_SEC);
        BENCH_CHECK(timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0, "timerfd_settime: %s", strerror(errno));
        BENCH_CHECK(epoll_wait(epfd, &ev, 1, -1) >= 0, "epoll_wait: %s", strerror(errno));
        if (read(tfd, &expirations, sizeof expirations) < 0)
            BENCH_CHECK(errno == EAGAIN, "read(timerfd): %s", strerror(errno));
    }
}
