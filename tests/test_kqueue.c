/* The kqueue backend's own promises: each change answered on its own (EV_RECEIPT), EVL_PRI through
   EVFILT_EXCEPT or -ENOSYS, regular files always ready whatever kqueue says of them, timeouts to
   the nanosecond, a child reaped by its pid alone, a second watcher of a descriptor refused in
   either direction, read and write merged into one call, and a fork()ed child that deinits the
   loop it inherited without touching a descriptor that took the kqueue's number.  The rest of the
   suite runs on this backend as it is (make check-kqueue, on the Linux emulation of tests/kqueue).

   White-box: this file has a private copy of the library (EVLOOP_STATIC), whose kevent calls go
   through a spy that keeps the last wait's timeout. */
#define EVLOOP_STATIC
#define EVLOOP_IMPLEMENTATION
#if defined(EVLOOP_BACKEND_KQUEUE) || (!defined(EVLOOP_BACKEND_POLL) && !defined(EVLOOP_BACKEND_EPOLL) && \
                                       (defined(__APPLE__) || defined(__FreeBSD__)))
#define kevent(kq, changes, nchanges, events, nevents, timeout) t_kevent_spy(kq, changes, nchanges, events, nevents, timeout)
#endif
#include "t.h"

#if T_KQUEUE

#undef kevent
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist, int nevents,
           const struct timespec *timeout);

#include <sys/stat.h>
#include <sys/wait.h>

static struct {
    int waits;                  /* calls that fetched events */
    int timed;                  /* the last of them had a timeout */
    struct timespec timeout;
} spy;

int t_kevent_spy(int kq, const struct kevent *changes, int nchanges, struct kevent *events, int nevents,
                 const struct timespec *timeout) {
    if (nchanges == 0 && nevents > 0) {
        spy.waits++;
        spy.timed = timeout != NULL;
        if (timeout) spy.timeout = *timeout;
    }
    return kevent(kq, changes, nchanges, events, nevents, timeout);
}

static void record_io(evl_loop *loop, evl_io *w, unsigned revents) { t_record_io(loop, w, revents); }

/* t_run_until with this file's copy of the library: the suite's copy keeps process-wide signal
   state of its own, which must not see a loop this copy listed. */
static int run_until(evl_loop *loop, volatile int *flag, evl_time limit) {
    evl_time end = t_clock() + limit;
    while (!*flag && t_clock() < end) CHECK(evl_run(loop, EVL_MS(10)) >= 0);
    return *flag;
}

static int signal_calls;

static void count_signal(evl_loop *loop, evl_signal *s, int signum) {
    (void)loop;
    (void)s;
    (void)signum;
    signal_calls++;
}

static void start_watcher(evl_loop *loop, evl_io *w, t_seen *seen, int fd, unsigned events) {
    memset(seen, 0, sizeof *seen);
    evl_io_init(w, record_io, fd, events);
    w->data = seen;
    CHECK_EQ(evl_io_start(loop, w), 0);
}

static void backend_is_kqueue_and_its_descriptor_polls_ready(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    struct kevent got;
    struct timespec zero = {0, 0};
    int fds[2];
    CHECK(strcmp(evl_backend_name(), "kqueue") == 0);
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    start_watcher(&loop, &w, &seen, fds[0], EVL_READ);
    CHECK_EQ(kevent(evl_backend_fd(&loop), NULL, 0, &got, 1, &zero), 0);   /* a kqueue, nothing ready */
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK_EQ(kevent(evl_backend_fd(&loop), NULL, 0, &got, 1, &zero), 1);   /* what an outer loop would see */
    CHECK(got.filter == EVFILT_READ && (int)got.ident == fds[0]);
    evl_deinit(&loop);
}

/* Three changes in one call, the middle one on a descriptor that cannot be open (beyond any
   limit: a number just closed could be taken again by the kernel's side of the first change):
   the other two take effect and each change gets its own answer. */
static void every_change_is_answered_on_its_own(void) {
    evl_loop loop;
    struct kevent changes[3], got[4];
    struct timespec zero = {0, 0};
    int fds[2], errs[3], n, i, read_seen = 0, write_seen = 0;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    evl__kq_set(&changes[0], (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, NULL);
    evl__kq_set(&changes[1], (uintptr_t)INT_MAX, EVFILT_READ, EV_ADD, 0, NULL);
    evl__kq_set(&changes[2], (uintptr_t)fds[1], EVFILT_WRITE, EV_ADD, 0, NULL);
    CHECK_EQ(evl__kq_apply(&loop.backend, changes, 3, errs), 0);
    CHECK_EQ(errs[0], 0);
    CHECK_EQ(errs[1], EBADF);
    CHECK_EQ(errs[2], 0);
    n = kevent(loop.backend.kq, NULL, 0, got, 4, &zero);
    for (i = 0; i < n; i++) {
        read_seen += got[i].filter == EVFILT_READ && (int)got[i].ident == fds[0];
        write_seen += got[i].filter == EVFILT_WRITE && (int)got[i].ident == fds[1];
    }
    CHECK(read_seen == 1 && write_seen == 1);
    evl_deinit(&loop);
}

/* EVL_PRI where EVFILT_EXCEPT exists; elsewhere -ENOSYS, and the watcher keeps what it had. */
static void pri_is_urgent_data_or_refused_with_enosys(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    start_watcher(&loop, &w, &seen, fds[0], EVL_READ);
    if (!T_HAS_PRI) {
        evl_io pri;
        evl_io_init(&pri, record_io, fds[1], EVL_PRI);
        CHECK_EQ(evl_io_start(&loop, &pri), -ENOSYS);
        CHECK_EQ(evl_io_set(&loop, &w, EVL_READ | EVL_PRI), -ENOSYS);
        CHECK_EQ(w.events, EVL_READ);
        CHECK_EQ(write(fds[1], "x", 1), 1);
        CHECK(run_until(&loop, &seen.calls, EVL_SEC(5)));   /* the read interest is still there */
        CHECK_EQ(seen.last, EVL_READ);
    } else {
        CHECK_EQ(evl_io_set(&loop, &w, EVL_PRI), 0);
        CHECK_EQ(write(fds[1], "x", 1), 1);                    /* ordinary data: no PRI */
        CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);
        CHECK_EQ(seen.calls, 0);
        CHECK_EQ(send(fds[1], "!", 1, MSG_OOB), 1);
        CHECK(run_until(&loop, &seen.calls, EVL_SEC(5)));
        CHECK(seen.last & EVL_PRI);
    }
    evl_deinit(&loop);
    close(fds[0]);
    close(fds[1]);
}

/* kqueue calls a regular file readable only before its end; the contract says always ready. */
static void regular_file_is_ready_at_every_iteration_even_at_its_end(void) {
    evl_loop loop;
    evl_io w, dir;
    t_seen seen, dir_seen;
    char path[] = "/tmp/evl-kqueue-XXXXXX";
    int fd = mkstemp(path), dirfd, i;
    CHECK(fd >= 0);
    unlink(path);
    CHECK_EQ(lseek(fd, 0, SEEK_END), 0);                  /* empty, at its end */
    CHECK_EQ(evl_init(&loop), 0);
    start_watcher(&loop, &w, &seen, fd, EVL_READ | EVL_WRITE);
    dirfd = open("/tmp", O_RDONLY);
    CHECK(dirfd >= 0);
    start_watcher(&loop, &dir, &dir_seen, dirfd, EVL_READ);
    for (i = 0; i < 3; i++) CHECK_EQ(evl_run(&loop, 0), 2);
    CHECK_EQ(seen.calls, 3);
    CHECK_EQ(seen.all, EVL_READ | EVL_WRITE);
    CHECK_EQ(dir_seen.calls, 3);
    evl_deinit(&loop);
    close(fd);
    close(dirfd);
}

static void fire(evl_loop *loop, evl_timer *t) {
    (void)loop;
    ++*(int *)t->data;
}

/* The wait for a timer 20.5 ms away is given to kevent to the nanosecond: a timeout rounded to
   milliseconds would be a whole number of them. */
static void timer_wait_is_given_in_nanoseconds(void) {
    evl_loop loop;
    evl_timer t;
    int fired = 0;
    long long ns;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, fire);
    t.data = &fired;
    evl_timer_start(&loop, &t, EVL_US(20500), 0);
    spy.waits = 0;
    CHECK_EQ(evl_run(&loop, EVL_SEC(5)), 0);
    CHECK_EQ(fired, 1);
    CHECK(spy.waits >= 1 && spy.timed);
    ns = (long long)spy.timeout.tv_sec * 1000000000LL + spy.timeout.tv_nsec;
    if (spy.waits == 1) {                               /* the first wait: the whole 20.5 ms */
        CHECK_OP(ns, <=, 20500000LL);
        CHECK_OP(ns, >, 10000000LL);
    }
    CHECK(ns % 1000000LL != 0);
    evl_deinit(&loop);
}

/* kqueue keeps one registration per descriptor and filter, so a second watcher with another
   direction would silently share it: refused, and the first keeps working. */
static void second_watcher_is_refused_in_either_direction(void) {
    evl_loop loop;
    evl_io reader, writer;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_socketpair(SOCK_STREAM, fds);
    start_watcher(&loop, &reader, &seen, fds[0], EVL_READ);
    evl_io_init(&writer, record_io, fds[0], EVL_WRITE);
    CHECK_EQ(evl_io_start(&loop, &writer), -EEXIST);
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);
    CHECK_EQ(seen.calls, 0);                            /* writable, but nobody asked for that */
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK(run_until(&loop, &seen.calls, EVL_SEC(5)));
    CHECK_EQ(seen.last, EVL_READ);
    evl_io_stop(&loop, &reader);
    CHECK_EQ(evl_io_start(&loop, &writer), 0);          /* free again once stopped */
    evl_deinit(&loop);
    close(fds[0]);
    close(fds[1]);
}

/* Read and write come as two kevents: one callback gets both. */
static void read_and_write_come_in_one_call(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_socketpair(SOCK_STREAM, fds);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    start_watcher(&loop, &w, &seen, fds[0], EVL_READ | EVL_WRITE);
    CHECK_EQ(evl_run(&loop, 0), 1);                     /* one pass */
    CHECK_EQ(seen.calls, 1);
    CHECK_EQ(seen.last, EVL_READ | EVL_WRITE);
    evl_deinit(&loop);
    close(fds[0]);
    close(fds[1]);
}

/* The reduction the README names: a writer hears the reader's end as EVL_WRITE | EVL_HUP. */
static void a_closed_reader_reaches_the_writer_as_hangup(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_socketpair(SOCK_STREAM, fds);
    close(fds[0]);
    start_watcher(&loop, &w, &seen, fds[1], EVL_WRITE);
    CHECK(run_until(&loop, &seen.calls, EVL_SEC(5)));
    CHECK(seen.last & EVL_HUP);
    CHECK(seen.last & EVL_WRITE);
    evl_deinit(&loop);
    close(fds[1]);
}

typedef struct exited {
    evl_child c;
    int calls, status;
} exited;

static void on_exit_status(evl_loop *loop, evl_child *c, int status) {
    exited *e = (exited *)c->data;
    (void)loop;
    e->calls++;
    e->status = status;
}

static pid_t exit_with(int code) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(code);
    return pid;
}

/* Two children exit; only the watched one is reaped, the other stays the program's. */
static void child_watcher_reaps_only_its_pid(void) {
    evl_loop loop;
    exited e;
    pid_t other, watched;
    int status;
    siginfo_t info;
    CHECK_EQ(evl_init(&loop), 0);
    other = exit_with(4);
    watched = exit_with(5);
    memset(&e, 0, sizeof e);
    evl_child_init(&e.c, on_exit_status, watched);
    e.c.data = &e;
    CHECK_EQ(evl_child_start(&loop, &e.c), 0);
    CHECK(run_until(&loop, &e.calls, EVL_SEC(10)));
    CHECK(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 5);
    memset(&info, 0, sizeof info);
    CHECK_EQ(waitid(P_PID, (id_t)other, &info, WEXITED | WNOWAIT), 0);   /* still there to reap */
    CHECK_EQ(waitpid(other, &status, 0), other);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 4);
    evl_deinit(&loop);
}

/* The child of fork() has no kqueue: the number may be taken by a file the child opens.  Deinit
   of the inherited loop (with io, signal and child watchers) must leave that file open, and the
   parent's loop goes on. */
static void fork_child_deinit_leaves_the_kqueue_number_alone(void) {
    evl_loop loop;
    evl_io w;
    evl_signal s;
    exited e;
    t_seen seen;
    int fds[2], status, kq;
    pid_t pid, sleeper;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    start_watcher(&loop, &w, &seen, fds[0], EVL_READ);
    evl_signal_init(&s, count_signal, SIGUSR2);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    sleeper = t_fork_sleeper();
    memset(&e, 0, sizeof e);
    evl_child_init(&e.c, on_exit_status, sleeper);
    e.c.data = &e;
    CHECK_EQ(evl_child_start(&loop, &e.c), 0);
    kq = evl_backend_fd(&loop);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int file = open("/dev/null", O_RDONLY);
        if (file < 0 || dup2(file, kq) != kq) _exit(10);   /* the kqueue's number now names a file */
        evl_deinit(&loop);
        _exit(fcntl(kq, F_GETFD) < 0 ? 11 : 0);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);                   /* the parent's registrations are all there */
    CHECK(run_until(&loop, &seen.calls, EVL_SEC(5)));
    CHECK_EQ(kill(sleeper, SIGKILL), 0);
    CHECK(run_until(&loop, &e.calls, EVL_SEC(10)));
    CHECK(WIFSIGNALED(e.status) && WTERMSIG(e.status) == SIGKILL);
    evl_deinit(&loop);
}

/* On the BSDs the kqueue records signals and the disposition is only "ignore" meanwhile; macOS
   takes the handler (see evloop_kqueue.h).  Either way the watcher is called, and the program's
   own disposition comes back. */

static void signals_are_recorded_by_the_kqueue_except_on_macos(void) {
    evl_loop loop;
    evl_signal s;
    struct sigaction sa;
    CHECK_EQ(evl_init(&loop), 0);
    evl_signal_init(&s, count_signal, SIGUSR1);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    CHECK_EQ(sigaction(SIGUSR1, NULL, &sa), 0);
#ifdef EVL__KQ_SIGNALS_BY_HANDLER
    CHECK(sa.sa_handler != SIG_IGN && sa.sa_handler != SIG_DFL);
    CHECK(!evl__signal_in(loop.sig_recorded, SIGUSR1));
#else
    CHECK(sa.sa_handler == SIG_IGN);
    CHECK(evl__signal_in(loop.sig_recorded, SIGUSR1));
#endif
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK(run_until(&loop, &signal_calls, EVL_SEC(5)));
    evl_signal_stop(&loop, &s);
    CHECK_EQ(sigaction(SIGUSR1, NULL, &sa), 0);
    CHECK(sa.sa_handler == SIG_DFL);
    evl_deinit(&loop);
}

static void count_async(evl_loop *loop, evl_async *a) {
    (void)loop;
    ++*(int *)a->data;
}

/* EVFILT_USER where the system has it; a pipe without it (EVLOOP_KQUEUE_PIPE_WAKEUP builds that
   path here), which wakes the loop even when full and is drained by the wake. */
static void wake_ups_take_the_path_the_build_says(void) {
    evl_loop loop;
    evl_async a;
    int calls = 0;
    char byte;
    CHECK_EQ(evl_init(&loop), 0);
    evl_async_init(&a, count_async);
    a.data = &calls;
    CHECK_EQ(evl_async_start(&loop, &a), 0);
#ifdef EVL__KQ_HAS_USER
    CHECK(loop.backend.wakefd < 0 && loop.backend.wake_read < 0);
#else
    CHECK(loop.backend.wakefd >= 0 && loop.backend.wake_read >= 0);
    while (write(loop.backend.wakefd, "x", 1) == 1) {
    }
    CHECK_EQ(errno, EAGAIN);                            /* full: the send must still get through */
#endif
    evl_async_send(&a);
    CHECK(run_until(&loop, &calls, EVL_SEC(5)));
    CHECK_EQ(calls, 1);
#ifndef EVL__KQ_HAS_USER
    CHECK(read(loop.backend.wake_read, &byte, 1) < 0 && errno == EAGAIN);   /* drained */
#else
    (void)byte;
#endif
    evl_deinit(&loop);
}

const t_case kqueue_tests[] = {
    T(backend_is_kqueue_and_its_descriptor_polls_ready),
    T(every_change_is_answered_on_its_own),
    T(pri_is_urgent_data_or_refused_with_enosys),
    T(regular_file_is_ready_at_every_iteration_even_at_its_end),
    T(timer_wait_is_given_in_nanoseconds),
    T(second_watcher_is_refused_in_either_direction),
    T(read_and_write_come_in_one_call),
    T(a_closed_reader_reaches_the_writer_as_hangup),
    T(child_watcher_reaps_only_its_pid),
    T(fork_child_deinit_leaves_the_kqueue_number_alone),
    T(signals_are_recorded_by_the_kqueue_except_on_macos),
    T(wake_ups_take_the_path_the_build_says),
    T_END,
};

#else
const t_case kqueue_tests[] = {T_END};
#endif
