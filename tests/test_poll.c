/* The poll backend's own promises: EVLOOP_POLL_MAX descriptors and -ENOSPC beyond them, a slot
   table that stays right whatever the order of starts and stops, a batch larger than the loop's
   ready array, the plain POSIX path (EVLOOP_POLL_POSIX_ONLY), and a descriptor closed while
   watched.  The rest of the suite runs on this backend as it is (make check-poll). */
#include "t.h"

#if defined(EVLOOP_BACKEND_POLL)

#include <sys/resource.h>

/* Every watcher counts its calls in its own slot of this array (w->data points there). */
static void count_call(evl_loop *loop, evl_io *w, unsigned revents) {
    (void)loop;
    (void)revents;
    ++*(int *)w->data;
}

/* A readable descriptor at exactly `number`: a pipe's read end with a byte in it, moved there. */
static int readable_at(int number, int *write_end) {
    int p[2];
    t_pipe(p);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK(dup2(p[0], number) == number);
    close(p[0]);
    *write_end = p[1];
    return number;
}

static void raise_descriptor_limit(rlim_t want) {
    struct rlimit r;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &r), 0);
    if (r.rlim_cur >= want) return;
    if (r.rlim_max != RLIM_INFINITY && r.rlim_max < want) t_skip("the descriptor limit is too low for this test");
    r.rlim_cur = want;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &r), 0);
}

static void backend_is_poll_and_has_no_descriptor(void) {
    evl_loop loop;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK(strcmp(evl_backend_name(), "poll") == 0);
    CHECK_EQ(evl_backend_fd(&loop), -1);
    evl_deinit(&loop);
}

/* EVLOOP_POLL_MAX descriptors fit; one more is refused with -ENOSPC until one stops. */
static void starts_beyond_evloop_poll_max_are_refused_with_enospc(void) {
    enum { MAX = EVLOOP_POLL_MAX };
    static evl_io w[MAX + 1];
    static int calls[MAX + 1];
    evl_loop loop;
    int fds[2], i;
    raise_descriptor_limit(MAX + 64);
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    for (i = 0; i <= MAX; i++) {
        int fd = i == 0 ? fds[0] : dup(fds[0]);
        CHECK(fd >= 0);
        evl_io_init(&w[i], count_call, fd, EVL_READ);
        w[i].data = &calls[i];
    }
    for (i = 0; i < MAX; i++) CHECK_EQ(evl_io_start(&loop, &w[i]), 0);
    CHECK_EQ(evl_io_start(&loop, &w[MAX]), -ENOSPC);
    CHECK(!evl_io_active(&w[MAX]));
    evl_io_stop(&loop, &w[MAX / 2]);
    CHECK_EQ(evl_io_start(&loop, &w[MAX]), 0);
    for (i = 0; i < (MAX + EVLOOP_MAX_EVENTS - 1) / EVLOOP_MAX_EVENTS; i++)
        CHECK_EQ(evl_run(&loop, 0), MAX);       /* every one is readable: a pass per ready array */
    for (i = 0; i <= MAX; i++) CHECK_EQ(calls[i] > 0, i != MAX / 2);
    evl_deinit(&loop);
    for (i = 0; i <= MAX; i++) close(w[i].fd);
    close(fds[1]);
}

/* Descriptor numbers chosen to collide in the backend's table: four numbers for each of 16
   neighbouring entries, the run of them wrapping round the table's end.  Watchers start and stop
   in a pseudo-random order; after every few changes, one pass must call exactly the active ones
   (every descriptor is readable), once each, and a second watcher for an active descriptor is
   refused. */
static void random_starts_and_stops_keep_every_slot_right(void) {
    enum { N = EVLOOP_POLL_MAX < 64 ? EVLOOP_POLL_MAX : 64, STEPS = 3000 };
    static evl_io w[N], second;
    static int calls[N], active[N], write_end[N];
    static evl_loop loop;
    int table = (int)(sizeof loop.backend.slot_of / sizeof loop.backend.slot_of[0]);
    int base = 2 * table - 8, i, step, second_calls = 0;
    uint32_t seed = 12345;
    raise_descriptor_limit((rlim_t)(base + 4 * table + 64));
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < N; i++) {
        int fd = readable_at(base + (i % 4) * table + i / 4, &write_end[i]);
        evl_io_init(&w[i], count_call, fd, EVL_READ);
        w[i].data = &calls[i];
    }
    evl_io_init(&second, count_call, w[0].fd, EVL_READ);
    second.data = &second_calls;
    for (step = 1; step <= STEPS; step++) {
        seed = seed * 1664525u + 1013904223u;
        i = (int)(seed >> 16) % N;
        if (active[i]) evl_io_stop(&loop, &w[i]);
        else CHECK_EQ(evl_io_start(&loop, &w[i]), 0);
        active[i] = !active[i];
        if (step % 37 != 0) continue;
        memset(calls, 0, sizeof calls);
        CHECK(evl_run(&loop, 0) >= 0);
        for (i = 0; i < N; i++) CHECK_EQ(calls[i], active[i]);
        second.fd = w[step % N].fd;
        CHECK_EQ(evl_io_start(&loop, &second), active[step % N] ? -EEXIST : 0);
        evl_io_stop(&loop, &second);
    }
    CHECK_EQ(second_calls, 0);
    evl_deinit(&loop);
    for (i = 0; i < N; i++) {
        close(w[i].fd);
        close(write_end[i]);
    }
}

/* More ready descriptors than the loop's ready array holds: the next pass goes on where the last
   one stopped, so each is called within two passes.  Only with EVLOOP_POLL_MAX above
   EVLOOP_MAX_EVENTS (make check-poll builds such a configuration). */
static void a_batch_larger_than_the_ready_array_reaches_every_descriptor(void) {
    enum { N = EVLOOP_POLL_MAX };
    static evl_io w[N];
    static int calls[N];
    evl_loop loop;
    int fds[2], i, pass;
    if (EVLOOP_POLL_MAX <= EVLOOP_MAX_EVENTS) t_skip("EVLOOP_POLL_MAX does not exceed EVLOOP_MAX_EVENTS here");
    raise_descriptor_limit(N + 64);
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    for (i = 0; i < N; i++) {
        evl_io_init(&w[i], count_call, i == 0 ? fds[0] : dup(fds[0]), EVL_READ);
        CHECK(w[i].fd >= 0);
        w[i].data = &calls[i];
        CHECK_EQ(evl_io_start(&loop, &w[i]), 0);
    }
    for (pass = 0; pass < (N + EVLOOP_MAX_EVENTS - 1) / EVLOOP_MAX_EVENTS; pass++) CHECK_EQ(evl_run(&loop, 0), N);
    for (i = 0; i < N; i++) CHECK(calls[i] >= 1);
    evl_deinit(&loop);
    for (i = 0; i < N; i++) close(w[i].fd);
    close(fds[1]);
}

/* The path this build takes: a pipe for wake-ups with EVLOOP_POLL_POSIX_ONLY (and off Linux), an
   eventfd on Linux otherwise.  The whole suite runs in both configurations. */
static void the_build_takes_the_wake_up_path_it_says(void) {
    evl_loop loop;
    int flags;
    CHECK_EQ(evl_init(&loop), 0);
#if defined(EVLOOP_POLL_POSIX_ONLY) || !defined(__linux__)
    CHECK(loop.backend.wakefd != loop.backend.wake_read);
    flags = fcntl(loop.backend.wakefd, F_GETFL);
    CHECK(flags >= 0 && (flags & O_NONBLOCK));
    CHECK_EQ(fcntl(loop.backend.wake_read, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
#else
    CHECK_EQ(loop.backend.wakefd, loop.backend.wake_read);
    flags = fcntl(loop.backend.wakefd, F_GETFL);
    CHECK(flags >= 0 && (flags & O_NONBLOCK));
#endif
    CHECK_EQ(fcntl(loop.backend.wakefd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    evl_deinit(&loop);
}

static void count_async(evl_loop *loop, evl_async *a) {
    (void)loop;
    ++*(int *)a->data;
}

static void hook_count(evl_loop *loop, evl_hook *h) {
    (void)loop;
    ++*(int *)h->data;
}

static void stop_the_loop(evl_loop *loop, evl_timer *t) {
    (void)t;
    evl_stop(loop);
}

/* A wake-up descriptor that is already full (the pipe, or the eventfd's counter) neither blocks a
   sender nor loses its wake-up, and one wait drains it all: the loop does not spin afterwards. */
static void a_full_wake_up_descriptor_wakes_the_loop_once_and_is_drained(void) {
    evl_loop loop;
    evl_async a;
    evl_hook check;
    evl_timer end;
    int calls = 0, passes = 0;
    char byte = 0;
    uint64_t left;                              /* an eventfd reads 8 bytes or nothing */
    CHECK_EQ(evl_init(&loop), 0);
    evl_async_init(&a, count_async);
    a.data = &calls;
    CHECK_EQ(evl_async_start(&loop, &a), 0);
    if (loop.backend.wakefd == loop.backend.wake_read) {
        uint64_t most = UINT64_MAX - 1;             /* an eventfd's counter, full */
        CHECK_EQ(write(loop.backend.wakefd, &most, sizeof most), (ssize_t)sizeof most);
    } else {
        while (write(loop.backend.wakefd, &byte, 1) == 1) {
        }
        CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    }
    evl_async_send(&a);                         /* would block here on a blocking descriptor */
    CHECK(t_run_until(&loop, &calls, EVL_SEC(5)));
    CHECK_EQ(calls, 1);
    CHECK(read(loop.backend.wake_read, &left, sizeof left) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    evl_hook_init(&check, hook_count, EVL_CHECK);
    check.data = &passes;
    evl_hook_start(&loop, &check);
    evl_timer_init(&end, stop_the_loop);
    evl_timer_start(&loop, &end, EVL_MS(30), 0);
    CHECK(evl_run(&loop, EVL_FOREVER) >= 0);
    CHECK(passes <= 3);
    calls = 0;
    evl_async_send(&a);                         /* and the next wake-up still arrives */
    CHECK(t_run_until(&loop, &calls, EVL_SEC(5)));
    evl_deinit(&loop);
}

/* poll() answers POLLNVAL for a descriptor closed while watched, at every wait.  The backend then
   forgets it, as epoll does: the loop does not spin and the watcher is not called; evl_io_set on a
   new descriptor with that number watches it again. */
static void a_descriptor_closed_while_watched_neither_spins_nor_calls(void) {
    evl_loop loop;
    evl_io w;
    evl_hook check;
    evl_timer end;
    int fds[2], again[2], calls = 0, passes = 0, number;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    number = fds[0];
    evl_io_init(&w, count_call, fds[0], EVL_READ);
    w.data = &calls;
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    evl_hook_init(&check, hook_count, EVL_CHECK);
    check.data = &passes;
    evl_hook_start(&loop, &check);
    close(fds[0]);
    close(fds[1]);
    evl_timer_init(&end, stop_the_loop);
    evl_timer_start(&loop, &end, EVL_MS(30), 0);
    CHECK(evl_run(&loop, EVL_FOREVER) >= 0);
    CHECK_EQ(calls, 0);
    CHECK(passes <= 3);                         /* a spinning loop makes thousands */
    CHECK(evl_io_active(&w));
    t_pipe(again);
    if (again[0] != number) {
        CHECK(dup2(again[0], number) == number);
        close(again[0]);
    }
    CHECK_EQ(write(again[1], "x", 1), 1);
    CHECK_EQ(evl_io_set(&loop, &w, EVL_READ), 0);
    CHECK(t_run_until(&loop, &calls, EVL_SEC(5)));
    evl_io_stop(&loop, &w);
    evl_hook_stop(&loop, &check);
    close(number);
    close(again[1]);
    evl_deinit(&loop);
}

const t_case poll_tests[] = {
    T(backend_is_poll_and_has_no_descriptor),
    T(starts_beyond_evloop_poll_max_are_refused_with_enospc),
    T(random_starts_and_stops_keep_every_slot_right),
    T(a_batch_larger_than_the_ready_array_reaches_every_descriptor),
    T(the_build_takes_the_wake_up_path_it_says),
    T(a_full_wake_up_descriptor_wakes_the_loop_once_and_is_drained),
    T(a_descriptor_closed_while_watched_neither_spins_nor_calls),
    T_END,
};

#else
const t_case poll_tests[] = {T_END};
#endif
