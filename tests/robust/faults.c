/* faults.c - the driver that tests/robust/faults.sh runs under strace, which makes one system call
   of this process fail (strace -e inject=CALL:error=ERRNO:when=N).  The library is the shipped
   code, unchanged; this program only uses it and judges what it sees.

   Phases, in one thread (the traced one): evl_init; then, FAULT_ROUNDS times (default 1), timers,
   io on a pipe and a socket pair, a signal the thread blocks, a child process, async sends from
   another thread and from the loop's own, evl_stop from another thread, and a fiber on a mapped
   stack that sleeps and waits on a duplicated descriptor; then evl_deinit, and a second evl_init
   and evl_deinit.  Each phase either works
   completely (every expected callback, in time, in order) or an API call reports exactly the
   injected errno (FAULT_ERRNO=NAME in the environment), after which the phase is abandoned
   cleanly.  Always: no descriptor is left behind by a failed evl_init or by evl_deinit (counted in
   /proc/self/fd), and the loop never spins (at most 1000 iterations while a phase waits).

   Verdict on stdout: "ok", or "reported PHASE ERRNO" for each phase that reported the fault; exit
   status 0.  Anything else is a failure: a message on stderr and exit status 1.

   EAGAIN on the wake-up write: for an eventfd the kernel says EAGAIN only when the counter is full,
   so the descriptor is readable and the wake-up is on its way; the library counts it as sent.
   strace's EAGAIN comes with an empty counter, a state the kernel never produces, so when a phase
   stalls under that fault the driver makes the state real (writes to the eventfd, as a full counter
   would be readable) and the phase must then complete. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int fault_errno;                         /* the injected errno, 0 without injection */
static int fault_on_write_eagain;
static int reported;
static long iterations;

static void fail(const char *phase, const char *what) {
    fprintf(stderr, "faults: %s: %s\n", phase, what);
    exit(1);
}

static const struct {
    const char *name;
    int value;
} errno_names[] = {{"EINTR", EINTR},   {"ENOMEM", ENOMEM}, {"ENOSPC", ENOSPC}, {"EMFILE", EMFILE},
                   {"ENFILE", ENFILE}, {"EAGAIN", EAGAIN}, {"EPERM", EPERM},   {"ENOSYS", ENOSYS}};

static int errno_by_name(const char *name) {
    unsigned i;
    for (i = 0; i < sizeof errno_names / sizeof *errno_names; i++)
        if (!strcmp(errno_names[i].name, name)) return errno_names[i].value;
    fail("setup", "unknown FAULT_ERRNO");
    return 0;
}

static const char *errno_name(int err) {
    unsigned i;
    for (i = 0; i < sizeof errno_names / sizeof *errno_names; i++)
        if (errno_names[i].value == err) return errno_names[i].name;
    return strerror(err);
}

/* An API call's result: 0 goes on; the injected errno ends the phase as reported; anything else
   fails the run. */
static int accept_result(const char *phase, int rc) {
    char msg[160];
    if (rc >= 0) return 0;
    if (fault_errno && rc == -fault_errno) {
        printf("reported %s %s\n", phase, errno_name(-rc));
        reported++;
        return -1;
    }
    snprintf(msg, sizeof msg, "unexpected error %s (injected: %s)", errno_name(-rc),
             fault_errno ? errno_name(fault_errno) : "none");
    fail(phase, msg);
    return -1;
}

/* A start that reported an error left its watcher inactive: it may be started again, or freed. */
static int started(const char *phase, int rc, const evl__node *link) {
    if (accept_result(phase, rc) == 0) return 1;
    if (evl__linked(link)) fail(phase, "a failed start left the watcher active");
    return 0;
}

static long open_descriptors(void) {
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    struct dirent *e;
    if (!d) fail("setup", "cannot read /proc/self/fd");
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;                               /* the directory's own descriptor */
}

static void count_iteration(evl_loop *loop, evl_hook *h) {
    (void)loop;
    (void)h;
    iterations++;
}

/* Makes the state strace's EAGAIN claims real: a full eventfd counter is a readable one. */
static void make_the_claimed_wake_up_real(evl_loop *loop) {
    uint64_t one = 1;
    if (!fault_on_write_eagain || !EVL__LOAD(&loop->wake_pending)) return;
    if (write(loop->backend.wakefd, &one, sizeof one) != (ssize_t)sizeof one) fail("emulation", "eventfd write");
    printf("made real: the full counter EAGAIN stands for\n");
}

/* Runs the loop until *done, within 3 seconds and 1000 iterations (the callbacks that set a done
   flag stop the loop, so iterations count only while nothing has happened yet). */
static void run_until(evl_loop *loop, volatile int *done, const char *phase) {
    evl_time start = evl__clock_now();
    long first = iterations;
    int emulated = 0;
    while (!*done) {
        int rc = evl_run(loop, EVL_MS(20));
        if (rc < 0 && accept_result(phase, rc) < 0) return;
        if (iterations - first > 1000) fail(phase, "the loop spins: over 1000 iterations while waiting");
        if (!emulated && evl__clock_now() - start > EVL_MS(300)) {
            make_the_claimed_wake_up_real(loop);
            emulated = 1;
        }
        if (evl__clock_now() - start > EVL_SEC(3)) fail(phase, "an event was lost: nothing came in 3 s");
    }
}

/* ---- phases ------------------------------------------------------------------------------------ */

static int timer_order[3], timers_fired, timers_done;
static evl_time timer_due[3];

static void on_timer(evl_loop *loop, evl_timer *t) {
    int i = (int)(intptr_t)t->data;
    if (evl_now(loop) < timer_due[i]) fail("timers", "a timer fired early");
    timer_order[timers_fired++] = i;
    timers_done = timers_fired == 3;
    if (timers_done) evl_stop(loop);
}

/* Three timers started out of order fire in deadline order, none early. */
static void phase_timers(evl_loop *loop) {
    static const int after_ms[3] = {5, 0, 2};
    evl_timer t[3];
    int i;
    timers_fired = timers_done = 0;
    for (i = 0; i < 3; i++) {
        evl_timer_init(&t[i], on_timer);
        t[i].data = (void *)(intptr_t)i;
        timer_due[i] = evl__clock_now() + EVL_MS(after_ms[i]);
        evl_timer_start(loop, &t[i], EVL_MS(after_ms[i]), 0);
    }
    run_until(loop, &timers_done, "timers");
    if (timer_order[0] != 1 || timer_order[1] != 2 || timer_order[2] != 0) fail("timers", "not in deadline order");
}

typedef struct io_seen {
    int calls;
    unsigned revents;
} io_seen;

static void on_io(evl_loop *loop, evl_io *w, unsigned revents) {
    io_seen *s = (io_seen *)w->data;
    char buf[16];
    if (revents & EVL_READ) (void)!read(w->fd, buf, sizeof buf);
    s->calls++;
    s->revents |= revents;
    evl_stop(loop);
}

static void phase_io(evl_loop *loop) {
    evl_io r, sock;
    io_seen seen_r = {0, 0}, seen_s = {0, 0};
    int p[2], s[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) fail("io", "harness: no pipe");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) < 0) fail("io", "harness: no socket pair");
    evl_io_init(&r, on_io, p[0], EVL_READ);
    r.data = &seen_r;
    evl_io_init(&sock, on_io, s[0], 0);
    sock.data = &seen_s;
    if (started("io", evl_io_start(loop, &r), &r.link)) {
        if (write(p[1], "x", 1) != 1) fail("io", "harness: write");
        run_until(loop, &seen_r.calls, "io");
        if (seen_r.calls && seen_r.revents != EVL_READ) fail("io", "wrong events on the pipe");
        evl_io_stop(loop, &r);
    }
    if (started("io", evl_io_start(loop, &sock), &sock.link)) {
        if (accept_result("io", evl_io_set(loop, &sock, EVL_WRITE)) == 0) {
            run_until(loop, &seen_s.calls, "io");
            if (seen_s.calls && !(seen_s.revents & EVL_WRITE)) fail("io", "no EVL_WRITE on the socket");
        } else if (!evl_io_active(&sock) || sock.events != 0) {
            fail("io", "a failed evl_io_set changed the watcher");
        }
        evl_io_stop(loop, &sock);
    }
    close(p[0]), close(p[1]), close(s[0]), close(s[1]);
}

static int signal_calls;

static void on_signal(evl_loop *loop, evl_signal *s, int signum) {
    (void)s;
    if (signum != SIGUSR1) fail("signal", "wrong signal");
    signal_calls++;
    evl_stop(loop);
}

/* The thread blocks the signal, so it is delivered only while the loop waits with it unblocked
   (epoll_pwait and epoll_pwait2 with a mask). */
static void phase_signal(evl_loop *loop) {
    evl_signal s;
    sigset_t usr1, old;
    signal_calls = 0;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old);
    evl_signal_init(&s, on_signal, SIGUSR1);
    if (started("signal", evl_signal_start(loop, &s), &s.link)) {
        if (kill(getpid(), SIGUSR1) < 0) fail("signal", "harness: kill");
        run_until(loop, &signal_calls, "signal");
        evl_signal_stop(loop, &s);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int child_done, child_status;

static void on_child(evl_loop *loop, evl_child *c, int status) {
    (void)c;
    child_done = 1;
    child_status = status;
    evl_stop(loop);
}

static void phase_child(evl_loop *loop) {
    evl_child c;
    pid_t pid;
    child_done = 0;
    fflush(NULL);
    pid = fork();
    if (pid < 0) fail("child", "harness: fork");
    if (pid == 0) _exit(3);                     /* no system call but exit: nothing to inject */
    evl_child_init(&c, on_child, pid);
    if (!started("child", evl_child_start(loop, &c), &c.link)) {
        waitpid(pid, NULL, 0);
        return;
    }
    run_until(loop, &child_done, "child");
    if (child_done && !(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 3)) fail("child", "wrong status");
}

static int async_calls;
static evl_loop *stop_target;

static void on_async(evl_loop *loop, evl_async *a) {
    (void)a;
    async_calls++;
    evl_stop(loop);
}

static void *send_from_a_thread(void *arg) {
    evl_async_send((evl_async *)arg);
    return NULL;
}

static void *stop_from_a_thread(void *arg) {
    (void)arg;
    usleep(20000);                              /* let the loop block first: this wakes it */
    evl_stop(stop_target);
    return NULL;
}

static void phase_async(evl_loop *loop) {
    evl_async a;
    pthread_t thread;
    evl_async_init(&a, on_async);
    if (!started("async", evl_async_start(loop, &a), &a.link)) return;
    async_calls = 0;                            /* from another thread */
    if (pthread_create(&thread, NULL, send_from_a_thread, &a) != 0) fail("async", "harness: thread");
    pthread_join(thread, NULL);
    run_until(loop, &async_calls, "async");
    async_calls = 0;                            /* from the loop's own thread */
    evl_async_send(&a);
    run_until(loop, &async_calls, "async");
    evl_async_stop(loop, &a);
}

/* evl_stop from another thread ends a run that would otherwise block for two seconds.  (Under a
   strace EAGAIN on the wake-up, made real only by run_until, it may not.) */
static void phase_stop(evl_loop *loop) {
    evl_timer forever;
    pthread_t thread;
    evl_time start;
    int rc;
    evl_timer_init(&forever, on_timer);         /* keeps the loop alive; never fires */
    evl_timer_start(loop, &forever, EVL_SEC(60), 0);
    stop_target = loop;
    if (pthread_create(&thread, NULL, stop_from_a_thread, NULL) != 0) fail("stop", "harness: thread");
    start = evl__clock_now();
    rc = evl_run(loop, EVL_SEC(2));
    if (rc < 0) accept_result("stop", rc);
    else if (evl__clock_now() - start >= EVL_SEC(2) && !fault_on_write_eagain) fail("stop", "evl_stop was lost");
    pthread_join(thread, NULL);
    evl_timer_stop(loop, &forever);
}

#if EVLOOP_HAS_FIBERS
/* A fiber on a stack the library maps: it sleeps, then waits on a descriptor that a watcher already
   has (evl_wait watches a duplicate), and reads what came.  A wait that reports the fault ends it. */
typedef struct fiber_job {
    int fd, writer, result, done;
} fiber_job;

static void fiber_body(void *arg) {
    fiber_job *job = (fiber_job *)arg;
    char c;
    int rc = evl_sleep(EVL_MS(1));
    if (rc == 0) {
        if (write(job->writer, "f", 1) != 1) fail("fiber", "harness: write");
        rc = evl_wait(job->fd, EVL_READ, EVL_SEC(3));
    }
    if (rc > 0) {
        ssize_t n = evl_read(job->fd, &c, 1, EVL_SEC(3));
        rc = n < 0 ? (int)n : n == 1 && c == 'f' ? 0 : -1;
    }
    job->result = rc;
}

static void fiber_finished(evl_loop *loop, evl_fiber *f) {
    fiber_job *job = (fiber_job *)f->data;
    (void)loop;
    job->done = 1;
    evl_stop(loop);
}

static void phase_fiber(evl_loop *loop) {
    evl_fiber f;
    evl_io other;
    fiber_job job;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) fail("fiber", "harness: no pipe");
    evl_io_init(&other, on_io, p[0], 0);        /* holds the descriptor's registration */
    if (started("fiber", evl_io_start(loop, &other), &other.link)) {
        memset(&job, 0, sizeof job);
        job.fd = p[0];
        job.writer = p[1];
        if (accept_result("fiber", evl_fiber_start(loop, &f, NULL, 0, fiber_body, &job)) == 0) {
            f.data = &job;
            evl_fiber_on_done(&f, fiber_finished);
            run_until(loop, &job.done, "fiber");
            if (job.result == -1) fail("fiber", "read the wrong byte, or none");
            if (job.result < 0) accept_result("fiber", job.result);
        }
        evl_io_stop(loop, &other);
    }
    close(p[0]), close(p[1]);
}
#else
static void phase_fiber(evl_loop *loop) { (void)loop; }
#endif

/* ---- main ------------------------------------------------------------------------------------- */

static int init_without_leak(evl_loop *loop, long before, const char *phase) {
    int rc = evl_init(loop);
    if (rc < 0 && open_descriptors() != before) fail(phase, "a failed evl_init left a descriptor open");
    return accept_result(phase, rc);
}

int main(void) {
    evl_loop loop, second;
    evl_hook hook;
    const char *name = getenv("FAULT_ERRNO");
    int round, rounds = getenv("FAULT_ROUNDS") ? atoi(getenv("FAULT_ROUNDS")) : 1;
    long before;
    fault_errno = name && *name ? errno_by_name(name) : 0;
    fault_on_write_eagain = fault_errno == EAGAIN && getenv("FAULT_CALL") && !strcmp(getenv("FAULT_CALL"), "write");
    setvbuf(stdout, NULL, _IOLBF, 0);
    before = open_descriptors();
    if (init_without_leak(&loop, before, "init") == 0) {
        evl_hook_init(&hook, count_iteration, EVL_PREPARE);
        evl_hook_start(&loop, &hook);
        evl_unref(&loop, &hook);
        for (round = 0; round < rounds; round++) {
            phase_timers(&loop);
            phase_io(&loop);
            phase_signal(&loop);
            phase_child(&loop);
            phase_async(&loop);
            phase_stop(&loop);
            phase_fiber(&loop);
        }
        evl_deinit(&loop);
        if (open_descriptors() != before) fail("deinit", "evl_deinit left a descriptor open");
    }
    if (init_without_leak(&second, before, "init2") == 0) {
        evl_deinit(&second);
        if (open_descriptors() != before) fail("deinit2", "evl_deinit left a descriptor open");
    }
    if (!reported) printf("ok\n");
    return 0;
}
