/* Child processes: the exit status, death by a signal, other children left alone, processes that
   are not children, stopping before the exit, children that exited before the watcher started.
   Run with --nosys, the same tests cover the SIGCHLD fallback. */
#include "t.h"

#include <fcntl.h>
#include <signal.h>
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/syscall.h>
#endif
#include <sys/wait.h>
#include <unistd.h>

typedef struct exited {
    evl_child c;
    int calls;
    int status;
    int active_in_callback;
} exited;

static void on_exit_status(evl_loop *loop, evl_child *c, int status) {
    exited *e = (exited *)c->data;
    (void)loop;
    e->calls++;
    e->status = status;
}

static pid_t spawn_exiting(int code, int wait_fd) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char c;
        if (wait_fd >= 0) (void)!read(wait_fd, &c, 1);     /* until the parent says go */
        _exit(code);
    }
    return pid;
}

static void watch(evl_loop *loop, exited *e, pid_t pid) {
    memset(e, 0, sizeof *e);
    evl_child_init(&e->c, on_exit_status, pid);
    e->c.data = e;
    CHECK_EQ(evl_child_start(loop, &e->c), 0);
}

static void exit_status_is_reported(void) {
    evl_loop loop;
    exited e;
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &e, spawn_exiting(42, -1));
    CHECK_EQ(evl_run(&loop, EVL_SEC(10)), 0);  /* the watcher stops itself, so run ends */
    CHECK_EQ(e.calls, 1);
    CHECK(WIFEXITED(e.status));
    CHECK_EQ(WEXITSTATUS(e.status), 42);
    evl_deinit(&loop);
}

static void death_by_signal_is_reported(void) {
    evl_loop loop;
    exited e;
    int go[2];
    pid_t pid;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(pipe(go), 0);
    pid = spawn_exiting(0, go[0]);
    watch(&loop, &e, pid);
    CHECK_EQ(evl_run(&loop, 0), 1);
    kill(pid, SIGKILL);
    CHECK(t_run_until(&loop, &e.calls, EVL_SEC(10)));
    CHECK(WIFSIGNALED(e.status));
    CHECK_EQ(WTERMSIG(e.status), SIGKILL);
    evl_deinit(&loop);
}

static void other_children_are_not_reaped(void) {
    evl_loop loop;
    exited e;
    int status;
    pid_t mine, theirs;
    CHECK_EQ(evl_init(&loop), 0);
    theirs = spawn_exiting(7, -1);
    mine = spawn_exiting(3, -1);
    watch(&loop, &e, mine);
    CHECK(t_run_until(&loop, &e.calls, EVL_SEC(10)));
    CHECK_EQ(WEXITSTATUS(e.status), 3);
    /* the program can still wait for its own child */
    CHECK_EQ(waitpid(theirs, &status, 0), theirs);
    CHECK_EQ(WEXITSTATUS(status), 7);
    evl_deinit(&loop);
}

static void stopped_watcher_leaves_the_child_to_the_program(void) {
    evl_loop loop;
    exited e;
    int go[2], status;
    pid_t pid;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(pipe(go), 0);
    pid = spawn_exiting(5, go[0]);
    watch(&loop, &e, pid);
    evl_child_stop(&loop, &e.c);
    evl_child_stop(&loop, &e.c);
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK_EQ(evl_run(&loop, EVL_MS(50)), 0);
    CHECK_EQ(e.calls, 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(WEXITSTATUS(status), 5);
    evl_deinit(&loop);
}

static void child_that_exited_before_start_is_reported(void) {
    evl_loop loop;
    exited e;
    siginfo_t info;
    pid_t pid = spawn_exiting(9, -1);
    memset(&info, 0, sizeof info);
    CHECK_EQ(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);   /* a zombie now */
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &e, pid);
    CHECK_EQ(evl_run(&loop, EVL_SEC(10)), 0);
    CHECK_EQ(e.calls, 1);
    CHECK_EQ(WEXITSTATUS(e.status), 9);
    evl_deinit(&loop);
}

static void not_a_child_is_refused(void) {
    evl_loop loop;
    evl_child c;
    CHECK_EQ(evl_init(&loop), 0);
    evl_child_init(&c, on_exit_status, 1);      /* init is nobody's child here */
    CHECK_EQ(evl_child_start(&loop, &c), -ECHILD);
    evl_child_init(&c, on_exit_status, 0);
    CHECK_EQ(evl_child_start(&loop, &c), -EINVAL);
    evl_child_init(&c, on_exit_status, -5);
    CHECK_EQ(evl_child_start(&loop, &c), -EINVAL);
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_deinit(&loop);
}

static void reap_restart(evl_loop *loop, evl_child *c, int status) {
    exited *e = (exited *)c->data;
    e->calls++;
    e->status = status;
    e->active_in_callback = evl_child_start(loop, c) == -EALREADY;   /* must already be stopped */
}

static void watcher_is_stopped_when_its_callback_runs(void) {
    evl_loop loop;
    exited e;
    CHECK_EQ(evl_init(&loop), 0);
    memset(&e, 0, sizeof e);
    evl_child_init(&e.c, reap_restart, spawn_exiting(1, -1));
    e.c.data = &e;
    CHECK_EQ(evl_child_start(&loop, &e.c), 0);
    CHECK_EQ(evl_run(&loop, EVL_SEC(10)), 0);
    CHECK_EQ(e.calls, 1);
    CHECK_EQ(e.active_in_callback, 0);          /* restart was tried: -ECHILD, the pid is gone */
    evl_deinit(&loop);
}

/* Two children have exited before the loop looks, so both exits come in one batch: whichever
   callback runs first stops the other watcher, whose exit must then not be reported (the kqueue
   backend once called child callbacks from inside its wait, past such a stop). */
static exited pair[2];

static void never_called(evl_loop *loop, evl_child *c, int status) {
    (void)loop;
    (void)c;
    (void)status;
    CHECK(!"a stopped child watcher was called");
}

static void stop_the_other(evl_loop *loop, evl_child *c, int status) {
    exited *other = &pair[c == &pair[0].c ? 1 : 0];
    on_exit_status(loop, c, status);
    evl_child_stop(loop, &other->c);
    other->c.cb = never_called;
}

static void stopping_a_child_watcher_drops_its_exit_from_the_batch(void) {
    evl_loop loop;
    siginfo_t info;
    int i, status;
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < 2; i++) {
        pid_t pid = spawn_exiting(10 + i, -1);
        memset(&info, 0, sizeof info);
        CHECK_EQ(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);   /* a zombie now */
        watch(&loop, &pair[i], pid);
        pair[i].c.cb = stop_the_other;
    }
    CHECK_EQ(evl_run(&loop, EVL_SEC(10)), 0);
    CHECK_EQ(pair[0].calls + pair[1].calls, 1);
    i = pair[0].calls ? 1 : 0;                          /* the stopped one: still the program's */
    CHECK_EQ(waitpid(pair[i].c.pid, &status, 0), pair[i].c.pid);
    CHECK_EQ(WEXITSTATUS(status), 10 + i);
    evl_deinit(&loop);
}

static void many_children_each_reported_once(void) {
    enum { N = 24 };
    evl_loop loop;
    static exited e[N];
    int i;
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < N; i++) watch(&loop, &e[i], spawn_exiting(i, -1));
    CHECK_EQ(evl_run(&loop, EVL_SEC(20)), 0);
    for (i = 0; i < N; i++) {
        CHECK_EQ(e[i].calls, 1);
        CHECK_EQ(WEXITSTATUS(e[i].status), i);
    }
    evl_deinit(&loop);
}

static void deinit_with_a_watched_child_leaves_it_waitable(void) {
    evl_loop loop;
    exited e;
    int go[2], status;
    pid_t pid;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(pipe(go), 0);
    pid = spawn_exiting(11, go[0]);
    watch(&loop, &e, pid);
    evl_deinit(&loop);
    evl_child_stop(&loop, &e.c);                /* a no-op now */
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(WEXITSTATUS(status), 11);
    CHECK_EQ(e.calls, 0);
}

/* Proves which path this run exercises: pidfd and epoll_pwait2 where the kernel has them, the
   SIGCHLD and timerfd fallbacks where they fail with ENOSYS (the --nosys run).  The system call
   numbers come from the C library's headers: they differ between ABIs (MIPS adds 4000, 5000 or
   6000 to them). */
static void backend_uses_the_newest_calls_the_kernel_allows(void) {
#if !defined(EVLOOP_BACKEND_EPOLL)
    t_skip("the epoll backend's calls: not this backend");
#elif !defined(SYS_pidfd_open) || !defined(SYS_epoll_pwait2)
    t_skip("the C library's headers do not number pidfd_open and epoll_pwait2");
#else
    evl_loop loop;
    exited e;
    int go[2];
    long pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    int have_pidfd = pidfd >= 0 || (errno != ENOSYS && errno != EPERM);   /* EPERM: a sandbox */
    int64_t zero[2] = {0, 0};                   /* the kernel's timespec: 64-bit seconds everywhere */
    int epfd = epoll_create1(0);
    int have_pwait2 = syscall(SYS_epoll_pwait2, epfd, NULL, 1, zero, NULL, 0) >= 0 ||
                      (errno != ENOSYS && errno != EPERM);
    if (pidfd >= 0) close((int)pidfd);
    close(epfd);
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(pipe(go), 0);
    watch(&loop, &e, spawn_exiting(0, go[0]));
    CHECK_EQ(e.c.by_signal, !have_pidfd);
    CHECK_EQ(loop.backend.timerfd >= 0, !have_pwait2);
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK(t_run_until(&loop, &e.calls, EVL_SEC(10)));
    evl_deinit(&loop);
#endif
}

/* Whether this run watches children through pidfds (else through SIGCHLD). */
static int on_the_pidfd_path(evl_loop *loop) {
    exited e;
    int go[2], pidfd_path;
    CHECK_EQ(pipe(go), 0);
    watch(loop, &e, spawn_exiting(0, go[0]));
    pidfd_path = !e.c.by_signal;
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK(t_run_until(loop, &e.calls, EVL_SEC(10)));
    close(go[0]);
    close(go[1]);
    return pidfd_path;
}

/* A process that sleeps until killed, forked so that it gets pid `want` if the kernel allows:
   ns_last_pid names the pid handed out last (root only); something else on the machine may take
   the number first, so it is tried a few times.  Returns its pid, or 0. */
static pid_t spawn_with_pid(pid_t want) {
    int attempt;
    for (attempt = 0; attempt < 50; attempt++) {
        char last[32];
        int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC), n, status;
        pid_t pid;
        if (fd < 0) return 0;
        n = snprintf(last, sizeof last, "%ld", (long)want - 1);
        if (write(fd, last, (size_t)n) != n) {
            close(fd);
            return 0;
        }
        close(fd);
        pid = t_fork_sleeper();
        if (pid == want) return pid;
        kill(pid, SIGKILL);
        CHECK_EQ(waitpid(pid, &status, 0), pid);
    }
    return 0;
}

typedef struct counting_hook {
    evl_hook h;
    long passes;
} counting_hook;

static void count_pass(evl_loop *loop, evl_hook *h) {
    (void)loop;
    ((counting_hook *)h)->passes++;
}

static void a_child_the_program_reaped_is_not_confused_with_a_new_one_of_the_same_pid(void) {
    evl_loop loop;
    exited e;
    counting_hook hook;
    pid_t first, second;
    int status;
#ifdef KQEMU_SYS_EVENT_H
    if (t_refused_errno || getenv("KQEMU_NOSYS"))
        t_skip("the kqueue emulation without pidfd_open polls the pid, which a reused pid fools (not so a real kqueue)");
#endif
    CHECK_EQ(evl_init(&loop), 0);
    if (!on_the_pidfd_path(&loop))
        t_skip("on the SIGCHLD path a reused pid cannot be told apart (documented); pidfds are off in this run");
    first = spawn_exiting(3, -1);
    watch(&loop, &e, first);
    CHECK_EQ(waitpid(first, &status, 0), first);   /* the program reaps it itself */
    second = spawn_with_pid(first);
    if (!second) t_skip("cannot choose the next pid here (/proc/sys/kernel/ns_last_pid needs root)");
    evl_hook_init(&hook.h, count_pass, EVL_CHECK);
    hook.passes = 0;
    evl_hook_start(&loop, &hook.h);
    evl_unref(&loop, &hook.h);
    CHECK(t_run_until(&loop, &e.calls, EVL_SEC(5)));
    CHECK_EQ(e.calls, 1);
    CHECK_EQ(e.status, -1);                       /* reaped by someone else */
    CHECK_OP(hook.passes, <, 1000);               /* no busy loop while it waited */
    /* the new process with the same pid is still the program's to reap */
    CHECK_EQ(kill(second, SIGKILL), 0);
    CHECK_EQ(waitpid(second, &status, 0), second);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    evl_deinit(&loop);
}

/* A container's seccomp profile that arrives after the loop was made (or a sandbox installed by
   the program itself): the newer calls start failing with EPERM, and the loop must fall back. */
static void ticked(evl_loop *loop, evl_timer *t) {
    (void)loop;
    (*(int *)t->data)++;
}

static void newer_calls_refused_after_init_fall_back(void) {
    evl_loop loop, fresh;
    evl_timer t;
    exited e;
    int ticks = 0, go[2];
    if (T_KQUEUE) t_skip("the kqueue backend makes none of these calls (its Linux emulation needs them)");
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, ticked);
    t.data = &ticks;
    evl_timer_start(&loop, &t, EVL_US(300), 0);
    CHECK(t_run_until(&loop, &ticks, EVL_SEC(5)));
    if (t_refuse_new_syscalls(EPERM) < 0) t_skip("cannot install a seccomp filter here");
    ticks = 0;
    evl_timer_start(&loop, &t, EVL_US(300), 0);
    CHECK_EQ(evl_run(&loop, EVL_SEC(5)), 0);      /* not -EPERM */
    CHECK_EQ(ticks, 1);
    CHECK_EQ(pipe(go), 0);
    watch(&loop, &e, spawn_exiting(7, go[0]));    /* pidfd_open refused: SIGCHLD instead */
    CHECK(e.c.by_signal);
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK(t_run_until(&loop, &e.calls, EVL_SEC(10)));
    CHECK(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 7);
    evl_deinit(&loop);
    CHECK_EQ(evl_init(&fresh), 0);               /* and so does a loop made afterwards */
    ticks = 0;
    evl_timer_start(&fresh, &t, EVL_US(300), 0);
    CHECK_EQ(evl_run(&fresh, EVL_SEC(5)), 0);
    CHECK_EQ(ticks, 1);
    evl_deinit(&fresh);
}

const t_case child_tests[] = {
    T(backend_uses_the_newest_calls_the_kernel_allows),
    T(exit_status_is_reported),
    T(death_by_signal_is_reported),
    T(other_children_are_not_reaped),
    T(stopped_watcher_leaves_the_child_to_the_program),
    T(child_that_exited_before_start_is_reported),
    T(not_a_child_is_refused),
    T(watcher_is_stopped_when_its_callback_runs),
    T(many_children_each_reported_once),
    T(stopping_a_child_watcher_drops_its_exit_from_the_batch),
    T(deinit_with_a_watched_child_leaves_it_waitable),
    T(a_child_the_program_reaped_is_not_confused_with_a_new_one_of_the_same_pid),
    T(newer_calls_refused_after_init_fall_back),
    T_END,
};
