/* test_kqueue_emul.c - the kqueue emulation's own semantics, checked against what the FreeBSD and
   macOS manual pages promise, so that a wrong emulation cannot hide a wrong backend.

   Each test runs in its own child process (signal actions, descriptors and threads cannot leak into
   the next one) and prints one line; the last line is "N passed, N failed".  Built once per flavour
   (see sys/event.h); tests whose expectation differs between FreeBSD and macOS say so.

       make check-kqueue-emul          all flavours, and the fallbacks (KQEMU_NOSYS=1)
       ./test_kqueue_emul [name...]    only the tests whose name contains one of the arguments */
#define _GNU_SOURCE 1
#include <sys/event.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ============================================================================================== */
/* Harness                                                                                        */
/* ============================================================================================== */

static const char *t_name;

static void t_fail(const char *file, int line, const char *what, const char *detail) {
    printf("FAIL %s: %s:%d: %s%s%s\n", t_name, file, line, what, detail ? " -- " : "", detail ? detail : "");
    fflush(stdout);
    _exit(1);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) t_fail(__FILE__, __LINE__, #cond, NULL);                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ != t_b_) {                                                                        \
            char t_detail_[96];                                                                    \
            snprintf(t_detail_, sizeof t_detail_, "%lld != %lld (errno %d)", t_a_, t_b_, errno);  \
            t_fail(__FILE__, __LINE__, #a " == " #b, t_detail_);                                   \
        }                                                                                          \
    } while (0)

/* ---- Helpers ---------------------------------------------------------------------------------- */

static int kq_open(void) {
    int kq = kqueue();
    CHECK(kq >= 0);
    return kq;
}

/* One change, no event list: 0, or -1 and errno. */
static int change(int kq, uintptr_t ident, int filter, unsigned flags, unsigned fflags, intptr_t data, void *udata) {
    struct kevent ch;
    EV_SET(&ch, ident, (short)filter, (unsigned short)flags, fflags, data, udata);
    return kevent(kq, &ch, 1, NULL, 0, NULL);
}

/* Collects events, waiting at most `ns` nanoseconds (< 0: no limit). */
static int collect(int kq, struct kevent *out, int max, long long ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return kevent(kq, NULL, 0, out, max, ns < 0 ? NULL : &ts);
}

static int poll_kq(int kq, struct kevent *out, int max) { return collect(kq, out, max, 0); }

/* The long wait a test allows for something that must happen. */
#define T_LONG 5000000000LL

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void make_pipe(int fds[2]) { CHECK_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0); }

static void make_socketpair(int fds[2]) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
}

static int tcp_listener(struct sockaddr_in *addr) {
    socklen_t len = sizeof *addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    CHECK_EQ(listen(fd, 8), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

/* fds[0]: the accepted side, fds[1]: the client; both non-blocking. */
static void tcp_pair(int fds[2]) {
    struct sockaddr_in addr;
    int lfd = tcp_listener(&addr);
    fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fds[1] >= 0);
    CHECK_EQ(connect(fds[1], (struct sockaddr *)&addr, sizeof addr), 0);
    fds[0] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    CHECK(fds[0] >= 0);
    CHECK_EQ(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    close(lfd);
}

static void put(int fd, const char *s) { CHECK_EQ(write(fd, s, strlen(s)), (long long)strlen(s)); }

static const struct kevent *find(const struct kevent *evs, int n, uintptr_t ident, int filter) {
    int i;
    for (i = 0; i < n; i++)
        if (evs[i].ident == ident && evs[i].filter == filter) return &evs[i];
    return NULL;
}

/* Collects until an event for (ident, filter) comes, and returns it; other events are dropped. */
static struct kevent await_event(int kq, uintptr_t ident, int filter) {
    struct kevent out[8];
    const struct kevent *ev;
    int rounds, n;
    for (rounds = 0; rounds < 100; rounds++) {
        n = collect(kq, out, 8, T_LONG);
        CHECK(n > 0);
        if ((ev = find(out, n, ident, filter)) != NULL) return *ev;
    }
    t_fail(__FILE__, __LINE__, "await_event", "the event never came");
    return out[0];
}

/* A thread that runs fn(arg) once. */
static pthread_t spawn(void *(*fn)(void *), void *arg) {
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, fn, arg), 0);
    return th;
}

/* Waits until thread `tid` of this process sleeps in the kernel (in kevent's wait, for the tests
   that call this): its state in /proc turns to S. */
static void wait_until_asleep(pid_t tid) {
    char path[64], buf[512], *state;
    int fd;
    ssize_t n;
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    for (;;) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) abort();
        n = read(fd, buf, sizeof buf - 1);
        (close)(fd);
        if (n <= 0) abort();
        buf[n] = 0;
        state = strrchr(buf, ')');
        if (state && state[1] == ' ' && state[2] == 'S') return;
        sched_yield();
    }
}

static void block_signal(int signum, int how) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signum);
    CHECK_EQ(pthread_sigmask(how, &set, NULL), 0);
}

static void set_action(int signum, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(signum, &sa, NULL), 0);   /* through the wrapper, as a backend would */
}

/* What the kernel really has, behind the wrapper. */
static void (*real_handler(int signum))(int) {
    struct sigaction sa;
    CHECK_EQ((sigaction)(signum, NULL, &sa), 0);
    return sa.sa_handler;
}

static void (*shown_handler(int signum))(int) {
    struct sigaction sa;
    CHECK_EQ(sigaction(signum, NULL, &sa), 0);
    return sa.sa_handler;
}

static volatile sig_atomic_t handler_calls;
static void count_handler(int signum) {
    (void)signum;
    handler_calls++;
}

/* A child that waits for a byte on `gate` (or its end) and exits with `code`. */
static pid_t spawn_child(int gate[2], int code) {
    pid_t pid;
    CHECK_EQ(pipe2(gate, O_CLOEXEC), 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char c;
        (close)(gate[1]);
        if (read(gate[0], &c, 1) < 0) _exit(99);
        _exit(code);
    }
    (close)(gate[0]);
    return pid;
}

static void release_child(int gate[2]) { (close)(gate[1]); }

/* ============================================================================================== */
/* The kqueue descriptor                                                                          */
/* ============================================================================================== */

static void kqueue_descriptor_polls_readable_when_an_event_is_pending(void) {
    int kq = kq_open();
    struct pollfd p;
    struct kevent ev;
    p.fd = kq;
    p.events = POLLIN;
    CHECK_EQ(change(kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    CHECK_EQ(poll(&p, 1, 0), 0);
    CHECK_EQ(change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), 0);
    CHECK_EQ(poll(&p, 1, 1000), 1);
    CHECK_EQ(poll_kq(kq, &ev, 1), 1);
    CHECK_EQ(poll(&p, 1, 0), 0);
}

static void kqueue_descriptor_polls_readable_when_a_descriptor_becomes_ready(void) {
    int kq = kq_open(), fds[2];
    struct pollfd p;
    p.fd = kq;
    p.events = POLLIN;
    make_pipe(fds);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll(&p, 1, 0), 0);
    put(fds[1], "x");
    CHECK_EQ(poll(&p, 1, 1000), 1);
}

/* BSD requeues a level-triggered knote it reported, so the kqueue stays readable until the next
   kevent() finds the condition gone. */
static void kqueue_descriptor_stays_readable_after_a_level_event(void) {
    int kq = kq_open(), fds[2];
    struct pollfd p;
    struct kevent ev;
    char buf[8];
    p.fd = kq;
    p.events = POLLIN;
    make_pipe(fds);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    put(fds[1], "x");
    CHECK_EQ(poll_kq(kq, &ev, 1), 1);
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(read(fds[0], buf, sizeof buf), 1);
    CHECK_EQ(poll_kq(kq, &ev, 1), 0);
    CHECK_EQ(poll(&p, 1, 0), 0);
}

static void kevent_on_a_closed_kqueue_or_another_descriptor_fails_with_ebadf(void) {
    int kq = kq_open(), fds[2];
    struct kevent ev;
    make_pipe(fds);
    errno = 0;
    CHECK_EQ(poll_kq(fds[0], &ev, 1), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(close(kq), 0);
    errno = 0;
    CHECK_EQ(poll_kq(kq, &ev, 1), -1);
    CHECK_EQ(errno, EBADF);
}

static void kqueue_is_not_inherited_by_a_child(void) {
    int kq = kq_open(), status;
    pid_t pid;
    CHECK_EQ(change(kq, 1, EVFILT_USER, EV_ADD, NOTE_TRIGGER, 0, NULL), 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct kevent ev;
        _exit(poll_kq(kq, &ev, 1) == -1 && errno == EBADF ? 0 : 1);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    {
        struct kevent ev;               /* the parent's kqueue is untouched */
        CHECK_EQ(poll_kq(kq, &ev, 1), 1);
    }
}

static void kevent_with_no_room_returns_at_once_whatever_the_timeout(void) {
    int kq = kq_open();
    long long start = now_ns();
    CHECK_EQ(collect(kq, NULL, 0, T_LONG), 0);
    CHECK(now_ns() - start < 1000000000LL);
}

/* ============================================================================================== */
/* Changes and their errors                                                                       */
/* ============================================================================================== */

static void a_failed_change_gives_an_error_entry_with_errno_ident_and_udata(void) {
    int kq = kq_open(), fds[2];
    struct kevent ch, out[2];
    make_pipe(fds);
    (close)(fds[0]);
    EV_SET(&ch, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, &ch);
    CHECK_EQ(kevent(kq, &ch, 1, out, 2, NULL), 1);
    CHECK_EQ(out[0].flags, EV_ERROR);
    CHECK_EQ(out[0].data, EBADF);
    CHECK_EQ(out[0].ident, fds[0]);
    CHECK_EQ(out[0].filter, EVFILT_READ);
    CHECK(out[0].udata == &ch);
}

static void a_failed_change_without_room_fails_the_call_after_the_earlier_changes(void) {
    int kq = kq_open(), fds[2];
    struct kevent ch[3];
    make_pipe(fds);
    (close)(fds[0]);
    EV_SET(&ch[0], 1, EVFILT_USER, EV_ADD, 0, 0, NULL);
    EV_SET(&ch[1], (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    EV_SET(&ch[2], 2, EVFILT_USER, EV_ADD, 0, 0, NULL);
    errno = 0;
    CHECK_EQ(kevent(kq, ch, 3, NULL, 0, NULL), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(change(kq, 1, EVFILT_USER, EV_DELETE, 0, 0, NULL), 0);     /* applied */
    CHECK_EQ(change(kq, 2, EVFILT_USER, EV_DELETE, 0, 0, NULL), -1);    /* never reached */
    CHECK_EQ(errno, ENOENT);
}

/* Like FreeBSD's kqueue_kevent: once an entry was written for a change, no event is collected. */
static void an_error_entry_ends_the_call_before_events_are_collected(void) {
    int kq = kq_open(), fds[2];
    struct kevent ch, out[4];
    make_pipe(fds);
    put(fds[1], "x");
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    EV_SET(&ch, 7, EVFILT_USER, EV_DELETE, 0, 0, NULL);
    CHECK_EQ(kevent(kq, &ch, 1, out, 4, NULL), 1);
    CHECK_EQ(out[0].flags, EV_ERROR);
    CHECK_EQ(out[0].data, ENOENT);
    CHECK_EQ(poll_kq(kq, out, 4), 1);               /* still there for the next call */
    CHECK_EQ(out[0].ident, fds[0]);
}

static void receipt_gives_a_zero_entry_per_change_and_leaves_events_queued(void) {
    int kq = kq_open(), fds[2];
    struct kevent ch[2], out[4];
    make_pipe(fds);
    put(fds[1], "x");
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    EV_SET(&ch[0], 1, EVFILT_USER, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[1], 2, EVFILT_USER, EV_ADD | EV_RECEIPT, NOTE_TRIGGER, 0, NULL);
    CHECK_EQ(kevent(kq, ch, 2, out, 4, NULL), 2);
    CHECK_EQ(out[0].flags, EV_ERROR);
    CHECK_EQ(out[0].data, 0);
    CHECK_EQ(out[0].ident, 1);
    CHECK_EQ(out[1].flags, EV_ERROR);
    CHECK_EQ(out[1].data, 0);
    CHECK_EQ(out[1].ident, 2);
    CHECK_EQ(poll_kq(kq, out, 4), 2);               /* the pipe and the triggered user event */
}

/* FreeBSD stops at a receipt it has no room for, without an error. */
static void receipt_without_room_stops_at_that_change(void) {
    int kq = kq_open();
    struct kevent ch[2];
    EV_SET(&ch[0], 1, EVFILT_USER, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[1], 2, EVFILT_USER, EV_ADD, 0, 0, NULL);
    CHECK_EQ(kevent(kq, ch, 2, NULL, 0, NULL), 0);
    CHECK_EQ(change(kq, 1, EVFILT_USER, EV_DELETE, 0, 0, NULL), 0);
    CHECK_EQ(change(kq, 2, EVFILT_USER, EV_DELETE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
}

static void changing_a_missing_knote_fails_with_enoent(void) {
    int kq = kq_open(), fds[2];
    make_pipe(fds);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ENABLE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_DISABLE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_WRITE, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), -1);  /* (ident, filter) */
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(change(kq, 5, EVFILT_USER, EV_DELETE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
}

static void changing_a_closed_descriptor_fails_with_ebadf(void) {
    int kq = kq_open(), fds[2];
    make_pipe(fds);
    CHECK_EQ(change(kq, (uintptr_t)fds[1], EVFILT_WRITE, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(close(fds[1]), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[1], EVFILT_WRITE, EV_DELETE, 0, 0, NULL), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(change(kq, (uintptr_t)fds[1], EVFILT_WRITE, EV_ADD, 0, 0, NULL), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(change(kq, (uintptr_t)-1, EVFILT_READ, EV_ADD, 0, 0, NULL), -1);
    CHECK_EQ(errno, EBADF);
}

static void unknown_filters_and_bad_signals_fail_with_einval(void) {
    int kq = kq_open();
    CHECK_EQ(change(kq, 1, EVFILT_TIMER, EV_ADD, 0, 10, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(change(kq, 1, -99, EV_ADD, 0, 0, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(change(kq, 0, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(change(kq, 100000, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), -1);
    CHECK_EQ(errno, EINVAL);
#if !defined(EVFILT_EXCEPT)
    CHECK_EQ(change(kq, 0, -15, EV_ADD, 2, 0, NULL), -1);   /* FreeBSD has no EVFILT_EXCEPT */
    CHECK_EQ(errno, EINVAL);
#endif
}

static void changes_apply_in_order(void) {
    int kq = kq_open();
    struct kevent ch[2], out[2];
    struct timespec zero = {0, 0};
    EV_SET(&ch[0], 1, EVFILT_USER, EV_ADD, NOTE_TRIGGER, 0, NULL);
    EV_SET(&ch[1], 1, EVFILT_USER, EV_DELETE, 0, 0, NULL);
    CHECK_EQ(kevent(kq, ch, 2, out, 2, &zero), 0);  /* added, then deleted: nothing to report */
    EV_SET(&ch[0], 2, EVFILT_USER, EV_DELETE, 0, 0, NULL);
    EV_SET(&ch[1], 2, EVFILT_USER, EV_ADD, NOTE_TRIGGER, 0, NULL);
    CHECK_EQ(kevent(kq, ch, 2, out, 2, NULL), 1);   /* the delete fails, the add works */
    CHECK_EQ(out[0].flags, EV_ERROR);
    CHECK_EQ(out[0].data, ENOENT);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].ident, 2);
}

static void re_adding_updates_udata_and_keeps_one_knote(void) {
    int kq = kq_open(), fds[2], a, b;
    struct kevent out[4];
    make_pipe(fds);
    put(fds[1], "x");
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, &a), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, &b), 0);
    CHECK_EQ(poll_kq(kq, out, 4), 1);
    CHECK(out[0].udata == &b);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), -1);
}

/* A trap for backends: EV_ENABLE, EV_DISABLE and a NOTE_TRIGGER also store the change's udata. */
static void any_change_replaces_udata(void) {
    int kq = kq_open(), fds[2], a, b;
    struct kevent out[2];
    make_pipe(fds);
    put(fds[1], "x");
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD | EV_DISABLE, 0, 0, &a), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ENABLE, 0, 0, &b), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(out[0].udata == &b);
    CHECK_EQ(change(kq, 9, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, &a), 0);
    CHECK_EQ(change(kq, 9, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 2);
    CHECK(find(out, 2, 9, EVFILT_USER)->udata == NULL);
}

static void the_same_array_can_hold_the_changes_and_the_events(void) {
    int kq = kq_open(), fds[2];
    struct kevent list[2];
    make_pipe(fds);
    (close)(fds[1]);
    EV_SET(&list[0], 3, EVFILT_USER, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&list[1], (uintptr_t)fds[1], EVFILT_WRITE, EV_ADD, 0, 0, NULL);
    CHECK_EQ(kevent(kq, list, 2, list, 2, NULL), 2);
    CHECK(list[0].ident == 3 && list[0].flags == EV_ERROR && list[0].data == 0);
    CHECK(list[1].ident == (uintptr_t)fds[1] && list[1].flags == EV_ERROR && list[1].data == EBADF);
}

/* ============================================================================================== */
/* Behaviour flags                                                                                */
/* ============================================================================================== */

static void oneshot_reports_once_then_deletes_the_knote(void) {
    int kq = kq_open(), fds[2];
    struct kevent out[2];
    make_pipe(fds);
    put(fds[1], "x");
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(out[0].flags & EV_ONESHOT);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
}

static void level_triggered_read_reports_until_drained(void) {
    int kq = kq_open(), fds[2];
    struct kevent out[2];
    char buf[8];
    make_pipe(fds);
    put(fds[1], "abc");
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(read(fds[0], buf, 2), 2);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 1);
    CHECK_EQ(read(fds[0], buf, 1), 1);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
}

static void clear_reports_again_only_after_new_data(void) {
    int kq = kq_open(), fds[2];
    struct kevent out[2];
    make_pipe(fds);
    put(fds[1], "ab");
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(out[0].flags & EV_CLEAR);
    CHECK_EQ(out[0].data, 2);
    CHECK_EQ(poll_kq(kq, out, 2), 0);                /* nothing read, but nothing new either */
    put(fds[1], "c");
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK_EQ(out[0].data, 3);
}

/* Freed send space on a socket must not count as new data for its read knote (BSD keeps the two
   directions on separate lists; the emulation relies on Linux's keyed wake-ups). */
static void clear_read_is_not_woken_by_write_space(void) {
    int kq = kq_open(), a[2];
    struct kevent out[2];
    char buf[64];
    make_socketpair(a);
    put(a[1], "to a0");
    CHECK_EQ(change(kq, (uintptr_t)a[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    put(a[0], "to a1");
    CHECK_EQ(read(a[1], buf, sizeof buf), 5);       /* a[0]'s send buffer empties: a write wake-up */
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    put(a[1], "more");
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
}

static void clear_knote_remembers_an_event_while_disabled(void) {
    int kq = kq_open(), fds[2];
    struct kevent out[2];
    make_pipe(fds);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD | EV_CLEAR | EV_DISABLE, 0, 0, NULL), 0);
    put(fds[1], "x");
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ENABLE, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
}

static void disable_hides_a_ready_knote_and_enable_shows_it(void) {
    int kq = kq_open(), fds[2];
    struct kevent out[2];
    make_pipe(fds);
    put(fds[1], "x");
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_DISABLE, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);  /* a re-add keeps it off */
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ENABLE, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
}

static void dispatch_disables_after_one_report(void) {
    int kq = kq_open(), fds[2];
    struct kevent out[2];
    make_pipe(fds);
    put(fds[1], "x");
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ADD | EV_DISPATCH, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, (uintptr_t)fds[0], EVFILT_READ, EV_ENABLE, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
}

static void ready_knotes_take_turns_when_the_list_is_short(void) {
    int kq = kq_open(), p[2], q[2];
    struct kevent out[1];
    uintptr_t first;
    make_pipe(p);
    make_pipe(q);
    put(p[1], "x");
    put(q[1], "x");
    CHECK_EQ(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(change(kq, (uintptr_t)q[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 1), 1);
    first = out[0].ident;
    CHECK_EQ(poll_kq(kq, out, 1), 1);
    CHECK(out[0].ident != first);
    CHECK_EQ(poll_kq(kq, out, 1), 1);
    CHECK(out[0].ident == first);
}

/* ============================================================================================== */
/* EVFILT_READ and EVFILT_WRITE                                                                   */
/* ============================================================================================== */

static void read_reports_the_bytes_available_in_data(void) {
    int kq = kq_open(), p[2], s[2], x;
    struct kevent out[4];
    make_pipe(p);
    make_socketpair(s);
    put(p[1], "12345");
    put(s[1], "1234567");
    CHECK_EQ(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, &x), 0);
    CHECK_EQ(change(kq, (uintptr_t)s[0], EVFILT_READ, EV_ADD, 0, 0, &x), 0);
    CHECK_EQ(poll_kq(kq, out, 4), 2);
    CHECK_EQ(find(out, 2, (uintptr_t)p[0], EVFILT_READ)->data, 5);
    CHECK_EQ(find(out, 2, (uintptr_t)s[0], EVFILT_READ)->data, 7);
    CHECK(out[0].udata == &x && !(out[0].flags & EV_EOF));
}

static void read_is_quiet_while_nothing_is_available(void) {
    int kq = kq_open(), p[2];
    struct kevent out[2];
    make_pipe(p);
    CHECK_EQ(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(collect(kq, out, 2, 20000000), 0);
}

static void write_reports_the_space_left_in_data(void) {
    int kq = kq_open(), p[2], size;
    struct kevent out[2];
    make_pipe(p);
    size = fcntl(p[1], F_GETPIPE_SZ);
    put(p[1], "abc");
    CHECK_EQ(change(kq, (uintptr_t)p[1], EVFILT_WRITE, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, size - 3);
}

static void write_waits_while_the_pipe_is_full(void) {
    int kq = kq_open(), p[2];
    struct kevent out[2];
    char buf[65536];
    memset(buf, 'x', sizeof buf);
    make_pipe(p);
    while (write(p[1], buf, sizeof buf) > 0) {
    }
    CHECK_EQ(change(kq, (uintptr_t)p[1], EVFILT_WRITE, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    while (read(p[0], buf, sizeof buf) > 0) {
    }
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
}

static void pipe_read_side_reports_eof_with_the_bytes_left(void) {
    int kq = kq_open(), p[2];
    struct kevent out[2];
    make_pipe(p);
    put(p[1], "abc");
    CHECK_EQ(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(!(out[0].flags & EV_EOF));
    CHECK_EQ(close(p[1]), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(out[0].flags & EV_EOF);
    CHECK_EQ(out[0].data, 3);
}

static void pipe_write_side_reports_eof_when_the_reader_closes(void) {
    int kq = kq_open(), p[2];
    struct kevent out[2];
    make_pipe(p);
    CHECK_EQ(change(kq, (uintptr_t)p[1], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(!(out[0].flags & EV_EOF));
    CHECK_EQ(close(p[0]), 0);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK(out[0].flags & EV_EOF);
}

static void socket_peer_close_sets_eof_on_read_and_write(void) {
    int kq = kq_open(), s[2], n;
    struct kevent out[4];
    const struct kevent *w;
    make_socketpair(s);
    CHECK_EQ(change(kq, (uintptr_t)s[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(change(kq, (uintptr_t)s[0], EVFILT_WRITE, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 4), 1);               /* writable, nothing to read */
    CHECK(out[0].filter == EVFILT_WRITE && !(out[0].flags & EV_EOF));
    CHECK_EQ(close(s[1]), 0);
    CHECK(await_event(kq, (uintptr_t)s[0], EVFILT_READ).flags & EV_EOF);
    n = poll_kq(kq, out, 4);
    CHECK((w = find(out, n, (uintptr_t)s[0], EVFILT_WRITE)) != NULL);
    CHECK(w->flags & EV_EOF);
}

static void tcp_peer_shutdown_sets_eof_on_read_only(void) {
    int kq = kq_open(), s[2];
    struct kevent out[4];
    const struct kevent *r, *w;
    tcp_pair(s);
    CHECK_EQ(change(kq, (uintptr_t)s[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(change(kq, (uintptr_t)s[0], EVFILT_WRITE, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(shutdown(s[1], SHUT_WR), 0);
    (void)await_event(kq, (uintptr_t)s[0], EVFILT_READ);
    CHECK_EQ(poll_kq(kq, out, 4), 2);
    r = find(out, 2, (uintptr_t)s[0], EVFILT_READ);
    w = find(out, 2, (uintptr_t)s[0], EVFILT_WRITE);
    CHECK(r && (r->flags & EV_EOF) && r->data == 0);
    CHECK(w && !(w->flags & EV_EOF));
}

static void tcp_own_shutdown_sets_eof_on_write(void) {
    int kq = kq_open(), s[2];
    struct kevent out[2];
    tcp_pair(s);
    CHECK_EQ(change(kq, (uintptr_t)s[0], EVFILT_WRITE, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(!(out[0].flags & EV_EOF));
    CHECK_EQ(shutdown(s[0], SHUT_WR), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(out[0].flags & EV_EOF);
}

static void refused_connect_reports_eof_with_the_error_in_fflags(void) {
    int kq = kq_open(), fd, err = 0;
    struct sockaddr_in addr;
    socklen_t len = sizeof err;
    struct kevent out[2];
    (close)(tcp_listener(&addr));             /* a port nobody listens on now */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&addr, sizeof addr), -1);
    CHECK_EQ(errno, EINPROGRESS);
    CHECK_EQ(change(kq, (uintptr_t)fd, EVFILT_WRITE, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK(out[0].flags & EV_EOF);
    CHECK_EQ(out[0].fflags, ECONNREFUSED);
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);   /* still there for the program */
    CHECK_EQ(err, ECONNREFUSED);
}

static void listening_socket_reports_waiting_connections_in_data(void) {
    int kq = kq_open(), lfd, c1, c2;
    struct sockaddr_in addr;
    struct kevent out[2];
    lfd = tcp_listener(&addr);
    CHECK_EQ(change(kq, (uintptr_t)lfd, EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    c1 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(connect(c1, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK_EQ(connect(c2, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK_EQ(out[0].data, 2);
}

static void lowat_holds_a_read_back_until_enough_bytes(void) {
    int kq = kq_open(), s[2];
    struct kevent out[2];
    make_socketpair(s);
    CHECK_EQ(change(kq, (uintptr_t)s[0], EVFILT_READ, EV_ADD, NOTE_LOWAT, 4, NULL), 0);
    put(s[1], "ab");
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    put(s[1], "cd");
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK_EQ(out[0].data, 4);
}

#if defined(EVFILT_EXCEPT)
static void except_reports_out_of_band_data(void) {
    int kq = kq_open(), s[2];
    struct kevent out[2];
    char c;
    tcp_pair(s);
    CHECK_EQ(change(kq, (uintptr_t)s[0], EVFILT_EXCEPT, EV_ADD, NOTE_OOB, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(send(s[1], "!", 1, MSG_OOB), 1);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK_EQ(out[0].filter, EVFILT_EXCEPT);
    CHECK(out[0].fflags & NOTE_OOB);
    CHECK_EQ(recv(s[0], &c, 1, MSG_OOB), 1);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
}
#endif

static void a_device_that_cannot_be_polled_is_refused(void) {
    int kq = kq_open(), fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(change(kq, (uintptr_t)fd, EVFILT_READ, EV_ADD, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENODEV);
}

/* ============================================================================================== */
/* Regular files (BSD vnode rules, not poll's "always ready")                                     */
/* ============================================================================================== */

static int temp_file(const char *content) {
    char path[] = "/tmp/kqemu-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    put(fd, content);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void regular_file_is_readable_while_the_offset_is_before_the_end(void) {
    int kq = kq_open(), fd = temp_file("0123456789");
    struct kevent out[2];
    char buf[4];
    CHECK_EQ(change(kq, (uintptr_t)fd, EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 10);
    CHECK_EQ(read(fd, buf, 4), 4);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 6);
    CHECK_EQ(lseek(fd, 0, SEEK_END), 10);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
}

static void regular_file_offset_past_the_end_gives_negative_data(void) {
    int kq = kq_open(), fd = temp_file("0123456789");
    struct kevent out[2];
    CHECK_EQ(lseek(fd, 15, SEEK_SET), 15);
    CHECK_EQ(change(kq, (uintptr_t)fd, EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, -5);
}

static void *append_three_bytes(void *arg) {
    int fd = *(int *)arg;
    if (pwrite(fd, "abc", 3, 10) != 3) abort();
    return NULL;
}

static void regular_file_at_its_end_wakes_a_wait_when_it_grows(void) {
    int kq = kq_open(), fd = temp_file("0123456789"), other;
    struct kevent out[2];
    pthread_t th;
    char path[64];
    CHECK_EQ(lseek(fd, 0, SEEK_END), 10);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    other = open(path, O_WRONLY | O_CLOEXEC);       /* another open file, as another process would */
    CHECK(other >= 0);
    CHECK_EQ(change(kq, (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    th = spawn(append_three_bytes, &other);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK_EQ(out[0].data, 3);
    pthread_join(th, NULL);
}

static void regular_file_is_always_writable(void) {
    int kq = kq_open(), fd = temp_file("x");
    struct kevent out[2];
    CHECK_EQ(change(kq, (uintptr_t)fd, EVFILT_WRITE, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
}

#if defined(NOTE_FILE_POLL)
static void file_poll_makes_a_regular_file_always_readable(void) {
    int kq = kq_open(), fd = temp_file("x");
    struct kevent out[2];
    CHECK_EQ(lseek(fd, 0, SEEK_END), 1);
    CHECK_EQ(change(kq, (uintptr_t)fd, EVFILT_READ, EV_ADD, NOTE_FILE_POLL, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 0);
}
#endif

/* ============================================================================================== */
/* EVFILT_USER                                                                                    */
/* ============================================================================================== */

static void user_event_with_clear_reports_each_trigger_once(void) {
    int kq = kq_open(), x;
    struct kevent out[2];
    CHECK_EQ(change(kq, 42, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, &x), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, 42, EVFILT_USER, 0, NOTE_TRIGGER, 0, &x), 0);
    CHECK_EQ(change(kq, 42, EVFILT_USER, 0, NOTE_TRIGGER, 0, &x), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(out[0].ident == 42 && out[0].filter == EVFILT_USER && out[0].udata == &x);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, 42, EVFILT_USER, 0, NOTE_TRIGGER, 0, &x), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
}

static void user_event_without_clear_stays_triggered(void) {
    int kq = kq_open();
    struct kevent out[2];
    CHECK_EQ(change(kq, 1, EVFILT_USER, EV_ADD, NOTE_TRIGGER, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
}

static void user_event_flags_follow_the_control_bits_and_data_is_echoed(void) {
    int kq = kq_open();
    struct kevent out[2];
    CHECK_EQ(change(kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, NOTE_FFCOPY | 0x13, 0, NULL), 0);
    CHECK_EQ(change(kq, 1, EVFILT_USER, 0, NOTE_FFOR | 0x100 | NOTE_TRIGGER, 77, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].fflags, 0x113);
    CHECK_EQ(out[0].data, 77);
    CHECK_EQ(change(kq, 1, EVFILT_USER, 0, NOTE_FFAND | 0x101 | NOTE_TRIGGER, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].fflags, 0x101);
    CHECK_EQ(change(kq, 1, EVFILT_USER, 0, NOTE_FFNOP | 0x2 | NOTE_TRIGGER, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].fflags, 0x101);
}

static void *trigger_user_one(void *arg) {
    int kq = *(int *)arg;
    if (change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL) < 0) abort();
    return NULL;
}

static void user_trigger_from_another_thread_wakes_a_blocked_kevent(void) {
    int kq = kq_open();
    struct kevent out[2];
    pthread_t th;
    CHECK_EQ(change(kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    th = spawn(trigger_user_one, &kq);
    CHECK_EQ(collect(kq, out, 2, -1), 1);
    pthread_join(th, NULL);
}

static int handler_kq;
static void trigger_from_handler(int signum) {
    (void)signum;
    if (change(handler_kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL) < 0) abort();
}

/* The thread to signal, once it waits. */
typedef struct target {
    pthread_t thread;
    pid_t tid;
} target;

static target me(void) {
    target t;
    t.thread = pthread_self();
    t.tid = (pid_t)syscall(SYS_gettid);
    return t;
}

static void *send_usr1_to(void *arg) {
    const target *t = (const target *)arg;
    wait_until_asleep(t->tid);
    pthread_kill(t->thread, SIGUSR1);
    return NULL;
}

/* As evl_async_send may: kevent() from a signal handler must neither deadlock nor be lost. */
static void user_trigger_from_a_signal_handler(void) {
    struct kevent out[2];
    target self = me();
    pthread_t th;
    handler_kq = kq_open();
    set_action(SIGUSR1, trigger_from_handler);
    CHECK_EQ(change(handler_kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL), 0);
    th = spawn(send_usr1_to, &self);
    errno = 0;
    CHECK_EQ(collect(handler_kq, out, 2, T_LONG), -1);     /* a caught signal: EINTR, as on BSD */
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(collect(handler_kq, out, 2, T_LONG), 1);      /* the handler's trigger is kept */
    pthread_join(th, NULL);
}

/* ============================================================================================== */
/* Timeouts and interruptions                                                                     */
/* ============================================================================================== */

static void zero_timeout_returns_at_once(void) {
    int kq = kq_open();
    struct kevent out[2];
    long long start = now_ns();
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK(now_ns() - start < 50000000LL);
}

static void timeout_expires_no_sooner_than_asked(void) {
    int kq = kq_open();
    struct kevent out[2];
    long long start = now_ns();
    CHECK_EQ(collect(kq, out, 2, 30000000), 0);
    CHECK(now_ns() - start >= 30000000LL);
}

/* Not rounded up to a millisecond: of a few 200 us waits, one at least must end within 1 ms. */
static void sub_millisecond_timeout_is_honoured(void) {
    int kq = kq_open(), i;
    struct kevent out[2];
    long long best = -1, took, start;
    for (i = 0; i < 10; i++) {
        start = now_ns();
        CHECK_EQ(collect(kq, out, 2, 200000), 0);
        took = now_ns() - start;
        CHECK(took >= 200000);
        if (best < 0 || took < best) best = took;
    }
    CHECK(best < 1000000);
}

static volatile sig_atomic_t alarm_calls;
static void on_alarm(int signum) {
    (void)signum;
    alarm_calls++;
}

static void a_caught_signal_interrupts_kevent_with_eintr(void) {
    int kq = kq_open();
    struct kevent out[2];
    struct itimerval it;
    set_action(SIGALRM, on_alarm);
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 20000;
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
    errno = 0;
    CHECK_EQ(collect(kq, out, 2, T_LONG), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(alarm_calls, 1);
}

/* ============================================================================================== */
/* EVFILT_PROC                                                                                    */
/* ============================================================================================== */

#if defined(NOTE_EXITSTATUS)
#define T_EXIT_FLAGS (NOTE_EXIT | NOTE_EXITSTATUS)
#else
#define T_EXIT_FLAGS NOTE_EXIT
#endif

static void process_exit_reports_the_wait_status(void) {
    int kq = kq_open(), gate[2], status, x;
    struct kevent out[2];
    pid_t pid = spawn_child(gate, 7);
    CHECK_EQ(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, T_EXIT_FLAGS, 0, &x), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    release_child(gate);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK(out[0].ident == (uintptr_t)pid && out[0].filter == EVFILT_PROC && out[0].udata == &x);
    CHECK(out[0].fflags & NOTE_EXIT);
    CHECK((out[0].flags & (EV_EOF | EV_ONESHOT)) == (EV_EOF | EV_ONESHOT));
    status = (int)out[0].data;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
    CHECK_EQ(waitpid(pid, &status, WNOHANG), pid);  /* left for the program to reap */
    CHECK_EQ(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_DELETE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
}

static void process_killed_by_a_signal_reports_it(void) {
    int kq = kq_open(), gate[2], status;
    struct kevent out[2];
    pid_t pid = spawn_child(gate, 0);
    CHECK_EQ(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, T_EXIT_FLAGS, 0, NULL), 0);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    status = (int)out[0].data;
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    release_child(gate);
}

static void process_that_was_reaped_fails_with_esrch(void) {
    int kq = kq_open(), gate[2], status;
    pid_t pid = spawn_child(gate, 0);
    release_child(gate);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, NOTE_EXIT, 0, NULL), -1);
    CHECK_EQ(errno, ESRCH);
}

/* FreeBSD finds a zombie and reports its exit at once; macOS does not find it. */
static void process_that_exited_but_was_not_reaped(void) {
    int kq = kq_open(), gate[2];
    siginfo_t info;
    struct kevent out[2];
    pid_t pid = spawn_child(gate, 3);
    release_child(gate);
    memset(&info, 0, sizeof info);
    CHECK_EQ(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);    /* a zombie now */
#if defined(KQEMU_MACOS)
    CHECK_EQ(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, T_EXIT_FLAGS, 0, NULL), -1);
    CHECK_EQ(errno, ESRCH);
    (void)out;
#else
    CHECK_EQ(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, NOTE_EXIT, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(WIFEXITED((int)out[0].data) && WEXITSTATUS((int)out[0].data) == 3);
#endif
}

#if defined(KQEMU_MACOS)
static void macos_gives_the_exit_status_only_with_note_exitstatus(void) {
    int kq = kq_open(), gate[2];
    struct kevent out[2];
    pid_t pid = spawn_child(gate, 7);
    CHECK_EQ(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, NOTE_EXIT, 0, NULL), 0);
    release_child(gate);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK_EQ(out[0].data, 0);
    CHECK_EQ(out[0].fflags & NOTE_EXITSTATUS, 0);
}
#endif

/* ============================================================================================== */
/* EVFILT_SIGNAL                                                                                  */
/* ============================================================================================== */

static void signal_is_recorded_while_ignored(void) {
    int kq = kq_open(), x;
    struct kevent out[2];
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(change(kq, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, &x), 0);
    CHECK(shown_handler(SIGUSR1) == SIG_IGN);       /* the disposition looks unchanged */
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK(out[0].ident == SIGUSR1 && out[0].filter == EVFILT_SIGNAL && out[0].udata == &x);
    CHECK_EQ(out[0].data, 1);
    CHECK(out[0].flags & EV_CLEAR);                 /* set internally, as on BSD */
    CHECK_EQ(poll_kq(kq, out, 2), 0);
}

static void signal_is_recorded_while_blocked_and_not_left_pending(void) {
    int kq = kq_open();
    struct kevent out[2];
    sigset_t pending;
    block_signal(SIGUSR2, SIG_BLOCK);
    set_action(SIGUSR2, SIG_IGN);
    CHECK_EQ(change(kq, SIGUSR2, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(kill(getpid(), SIGUSR2), 0);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK_EQ(out[0].data, 1);
    CHECK_EQ(sigpending(&pending), 0);
    CHECK_EQ(sigismember(&pending, SIGUSR2), 0);    /* an ignored signal does not stay pending */
}

static void deliveries_between_reports_add_up_in_data(void) {
    int kq = kq_open();
    struct kevent out[2];
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(change(kq, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 3);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 1);
}

static void signal_knote_counts_while_disabled(void) {
    int kq = kq_open();
    struct kevent out[2];
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(change(kq, SIGUSR1, EVFILT_SIGNAL, EV_ADD | EV_DISABLE, 0, 0, NULL), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, SIGUSR1, EVFILT_SIGNAL, EV_ENABLE, 0, 0, NULL), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 2);
}

static void the_programs_handler_still_runs(void) {
    int kq = kq_open();
    struct kevent out[2];
    set_action(SIGUSR1, count_handler);
    CHECK_EQ(change(kq, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    CHECK(shown_handler(SIGUSR1) == count_handler);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(handler_calls, 1);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 1);
}

static void an_action_set_while_watched_is_shown_and_obeyed(void) {
    int kq = kq_open();
    struct kevent out[2];
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(change(kq, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    set_action(SIGUSR1, count_handler);
    CHECK(shown_handler(SIGUSR1) == count_handler);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(handler_calls, 1);
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(handler_calls, 1);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 2);
    CHECK(signal(SIGUSR1, SIG_DFL) == SIG_IGN);     /* signal() goes through the emulation too */
    CHECK(shown_handler(SIGUSR1) == SIG_DFL);
}

static void the_action_is_given_back_when_the_last_knote_goes(void) {
    int kq1 = kq_open(), kq2 = kq_open();
    struct kevent out[2];
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(change(kq1, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(change(kq2, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    CHECK(real_handler(SIGUSR1) != SIG_IGN);        /* the recorder */
    CHECK_EQ(change(kq1, SIGUSR1, EVFILT_SIGNAL, EV_DELETE, 0, 0, NULL), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);           /* still recorded for kq2 */
    CHECK_EQ(poll_kq(kq2, out, 2), 1);
    CHECK_EQ(close(kq2), 0);                        /* closing the kqueue drops its knotes */
    CHECK(real_handler(SIGUSR1) == SIG_IGN);
}

static void each_kqueue_counts_for_itself(void) {
    int kq1 = kq_open(), kq2 = kq_open();
    struct kevent out[2];
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(change(kq1, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(change(kq2, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(poll_kq(kq1, out, 2), 1);
    CHECK_EQ(out[0].data, 2);
    CHECK_EQ(poll_kq(kq2, out, 2), 1);
    CHECK_EQ(out[0].data, 1);
}

static void a_default_action_that_ignores_is_recorded(void) {
    int kq = kq_open();
    struct kevent out[2];
    CHECK(shown_handler(SIGURG) == SIG_DFL);
    CHECK_EQ(change(kq, SIGURG, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(kill(getpid(), SIGURG), 0);
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK(shown_handler(SIGURG) == SIG_DFL);
}

/* Sends SIGUSR1 to the process, once the target waits, from a thread that blocks it: the waiting
   thread takes it. */
static void *send_usr1_to_process(void *arg) {
    block_signal(SIGUSR1, SIG_BLOCK);
    wait_until_asleep(((const target *)arg)->tid);
    kill(getpid(), SIGUSR1);
    return NULL;
}

/* An ignored signal delivered while kevent() waits is an event, not an interruption. */
static void an_ignored_signal_wakes_kevent_with_its_event(void) {
    int kq = kq_open();
    struct kevent out[2];
    target self = me();
    pthread_t th;
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(change(kq, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    th = spawn(send_usr1_to_process, &self);
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK_EQ(out[0].filter, EVFILT_SIGNAL);
    pthread_join(th, NULL);
}

/* FreeBSD records signals sent to one thread; macOS only those sent to the process. */
static void a_signal_sent_to_one_thread(void) {
    int kq = kq_open();
    struct kevent out[2];
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(change(kq, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
#if defined(KQEMU_MACOS)
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
#endif
    CHECK_EQ(poll_kq(kq, out, 2), 1);
    CHECK_EQ(out[0].data, 1);
}

/* FreeBSD does not record an ignored SIGCHLD; macOS does.  Children are reaped by the kernel on both. */
static void an_ignored_sigchld(void) {
    int kq = kq_open(), gate[2], n;
    struct kevent out[2];
    pid_t pid;
    set_action(SIGCHLD, SIG_IGN);
    CHECK_EQ(change(kq, SIGCHLD, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    pid = spawn_child(gate, 0);
    CHECK_EQ(change(kq, (uintptr_t)pid, EVFILT_PROC, EV_ADD, NOTE_EXIT, 0, NULL), 0);
    release_child(gate);
    n = collect(kq, out, 2, T_LONG);                /* the signal, if any, comes before the exit shows */
    if (!find(out, n, (uintptr_t)pid, EVFILT_PROC)) n += collect(kq, out + n, 2 - n, T_LONG);
    CHECK(find(out, n, (uintptr_t)pid, EVFILT_PROC) != NULL);
    if (n < 2) n += poll_kq(kq, out + n, 2 - n);
#if defined(KQEMU_MACOS)
    CHECK(find(out, n, SIGCHLD, EVFILT_SIGNAL) != NULL);
#else
    CHECK(find(out, n, SIGCHLD, EVFILT_SIGNAL) == NULL);
#endif
    errno = 0;
    CHECK_EQ(waitpid(pid, NULL, 0), -1);            /* no zombie was left */
    CHECK_EQ(errno, ECHILD);
}

static void a_child_gets_the_programs_actions_back(void) {
    int kq = kq_open(), status;
    pid_t pid;
    set_action(SIGUSR1, SIG_IGN);
    CHECK_EQ(change(kq, SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL), 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(real_handler(SIGUSR1) == SIG_IGN ? 0 : 1);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ============================================================================================== */
/* close()                                                                                        */
/* ============================================================================================== */

/* A new pipe whose read end takes the number `fd` had, made readable. */
static void reuse_number_readable(int fd, int p[2]) {
    make_pipe(p);
    if (p[0] != fd) {
        CHECK_EQ(dup3(p[0], fd, O_CLOEXEC), fd);
        (close)(p[0]);
        p[0] = fd;
    }
    put(p[1], "x");
}

/* The number comes back naming the same pipe, which only the wrapper can tell from before. */
static void close_drops_the_knotes_of_the_descriptor(void) {
    int kq = kq_open(), p[2], keep;
    struct kevent out[2];
    make_pipe(p);
    keep = fcntl(p[0], F_DUPFD_CLOEXEC, 0);
    CHECK(keep >= 0);
    CHECK_EQ(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(close(p[0]), 0);
    CHECK_EQ(dup3(keep, p[0], O_CLOEXEC), p[0]);
    put(p[1], "x");
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
}

/* Closed with the real close() (no wrapper): noticed when the knote is next looked at. */
static void a_close_behind_the_emulations_back_is_noticed(void) {
    int kq = kq_open(), a[2], b[2], c[2];
    struct kevent out[2];
    make_pipe(a);
    make_pipe(c);
    CHECK_EQ(change(kq, (uintptr_t)a[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(change(kq, (uintptr_t)c[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ((close)(a[0]), 0);
    CHECK_EQ((close)(c[0]), 0);
    reuse_number_readable(a[0], b);
    CHECK_EQ(poll_kq(kq, out, 2), 0);
    CHECK_EQ(change(kq, (uintptr_t)a[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
    reuse_number_readable(c[0], b);                 /* the number comes back before a look */
    CHECK_EQ(change(kq, (uintptr_t)c[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
}

static void closing_a_duplicate_keeps_the_other_descriptors_knote(void) {
    int kq = kq_open(), p[2], dup_fd;
    struct kevent out[2];
    make_pipe(p);
    dup_fd = fcntl(p[0], F_DUPFD_CLOEXEC, 0);
    CHECK(dup_fd >= 0);
    CHECK_EQ(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(change(kq, (uintptr_t)dup_fd, EVFILT_READ, EV_ADD, 0, 0, NULL), 0);
    CHECK_EQ(close(p[0]), 0);
    put(p[1], "x");
    CHECK_EQ(collect(kq, out, 2, T_LONG), 1);
    CHECK_EQ(out[0].ident, dup_fd);
}

/* ============================================================================================== */
/* Runner                                                                                         */
/* ============================================================================================== */

#define T(fn) {#fn, fn}
static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    T(kqueue_descriptor_polls_readable_when_an_event_is_pending),
    T(kqueue_descriptor_polls_readable_when_a_descriptor_becomes_ready),
    T(kqueue_descriptor_stays_readable_after_a_level_event),
    T(kevent_on_a_closed_kqueue_or_another_descriptor_fails_with_ebadf),
    T(kqueue_is_not_inherited_by_a_child),
    T(kevent_with_no_room_returns_at_once_whatever_the_timeout),
    T(a_failed_change_gives_an_error_entry_with_errno_ident_and_udata),
    T(a_failed_change_without_room_fails_the_call_after_the_earlier_changes),
    T(an_error_entry_ends_the_call_before_events_are_collected),
    T(receipt_gives_a_zero_entry_per_change_and_leaves_events_queued),
    T(receipt_without_room_stops_at_that_change),
    T(changing_a_missing_knote_fails_with_enoent),
    T(changing_a_closed_descriptor_fails_with_ebadf),
    T(unknown_filters_and_bad_signals_fail_with_einval),
    T(changes_apply_in_order),
    T(re_adding_updates_udata_and_keeps_one_knote),
    T(any_change_replaces_udata),
    T(the_same_array_can_hold_the_changes_and_the_events),
    T(oneshot_reports_once_then_deletes_the_knote),
    T(level_triggered_read_reports_until_drained),
    T(clear_reports_again_only_after_new_data),
    T(clear_read_is_not_woken_by_write_space),
    T(clear_knote_remembers_an_event_while_disabled),
    T(disable_hides_a_ready_knote_and_enable_shows_it),
    T(dispatch_disables_after_one_report),
    T(ready_knotes_take_turns_when_the_list_is_short),
    T(read_reports_the_bytes_available_in_data),
    T(read_is_quiet_while_nothing_is_available),
    T(write_reports_the_space_left_in_data),
    T(write_waits_while_the_pipe_is_full),
    T(pipe_read_side_reports_eof_with_the_bytes_left),
    T(pipe_write_side_reports_eof_when_the_reader_closes),
    T(socket_peer_close_sets_eof_on_read_and_write),
    T(tcp_peer_shutdown_sets_eof_on_read_only),
    T(tcp_own_shutdown_sets_eof_on_write),
    T(refused_connect_reports_eof_with_the_error_in_fflags),
    T(listening_socket_reports_waiting_connections_in_data),
    T(lowat_holds_a_read_back_until_enough_bytes),
#if defined(EVFILT_EXCEPT)
    T(except_reports_out_of_band_data),
#endif
    T(a_device_that_cannot_be_polled_is_refused),
    T(regular_file_is_readable_while_the_offset_is_before_the_end),
    T(regular_file_offset_past_the_end_gives_negative_data),
    T(regular_file_at_its_end_wakes_a_wait_when_it_grows),
    T(regular_file_is_always_writable),
#if defined(NOTE_FILE_POLL)
    T(file_poll_makes_a_regular_file_always_readable),
#endif
    T(user_event_with_clear_reports_each_trigger_once),
    T(user_event_without_clear_stays_triggered),
    T(user_event_flags_follow_the_control_bits_and_data_is_echoed),
    T(user_trigger_from_another_thread_wakes_a_blocked_kevent),
    T(user_trigger_from_a_signal_handler),
    T(zero_timeout_returns_at_once),
    T(timeout_expires_no_sooner_than_asked),
    T(sub_millisecond_timeout_is_honoured),
    T(a_caught_signal_interrupts_kevent_with_eintr),
    T(process_exit_reports_the_wait_status),
    T(process_killed_by_a_signal_reports_it),
    T(process_that_was_reaped_fails_with_esrch),
    T(process_that_exited_but_was_not_reaped),
#if defined(KQEMU_MACOS)
    T(macos_gives_the_exit_status_only_with_note_exitstatus),
#endif
    T(signal_is_recorded_while_ignored),
    T(signal_is_recorded_while_blocked_and_not_left_pending),
    T(deliveries_between_reports_add_up_in_data),
    T(signal_knote_counts_while_disabled),
    T(the_programs_handler_still_runs),
    T(an_action_set_while_watched_is_shown_and_obeyed),
    T(the_action_is_given_back_when_the_last_knote_goes),
    T(each_kqueue_counts_for_itself),
    T(a_default_action_that_ignores_is_recorded),
    T(an_ignored_signal_wakes_kevent_with_its_event),
    T(a_signal_sent_to_one_thread),
    T(an_ignored_sigchld),
    T(a_child_gets_the_programs_actions_back),
    T(close_drops_the_knotes_of_the_descriptor),
    T(a_close_behind_the_emulations_back_is_noticed),
    T(closing_a_duplicate_keeps_the_other_descriptors_knote),
};

static int selected(const char *name, int argc, char **argv) {
    int i;
    if (argc < 2) return 1;
    for (i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

/* Runs one test in a child; waits through a pidfd, with a deadline. */
static int run(size_t i) {
    int status = 0, pidfd;
    struct pollfd p;
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        t_name = tests[i].name;
        tests[i].fn();
        _exit(0);
    }
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    p.fd = pidfd;
    p.events = POLLIN;
    if (pidfd >= 0 && poll(&p, 1, 30000) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        printf("FAIL %s: timed out\n", tests[i].name);
        return 0;
    }
    if (pidfd >= 0) (close)(pidfd);
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok   %s\n", tests[i].name);
        return 1;
    }
    if (WIFSIGNALED(status)) printf("FAIL %s: killed by signal %d\n", tests[i].name, WTERMSIG(status));
    return 0;                           /* a failing check printed its own line */
}

int main(int argc, char **argv) {
    size_t i;
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        if (run(i)) passed++;
        else failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
