/* Child processes: the exit status, death by a signal, other children left alone, processes that
   are not children, stopping before the exit, children that exited before the watcher started.
   Run with --nosys, the same tests cover the SIGCHLD fallback. */
#include "t.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
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
#if !defined(SYS_pidfd_open) || !defined(SYS_epoll_pwait2)
    t_skip("the C library's headers do not number pidfd_open and epoll_pwait2");
#else
    evl_loop loop;
    exited e;
    int go[2];
    long pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    int have_pidfd = pidfd >= 0 || errno != ENOSYS;
    int64_t zero[2] = {0, 0};                   /* the kernel's timespec: 64-bit seconds everywhere */
    int epfd = epoll_create1(0);
    int have_pwait2 = syscall(SYS_epoll_pwait2, epfd, NULL, 1, zero, NULL, 0) >= 0 || errno != ENOSYS;
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
    T(deinit_with_a_watched_child_leaves_it_waitable),
    T_END,
};
