/* White-box tests: this file has a private copy of the whole library (EVLOOP_STATIC), so it can
   put the library's own process-wide state into the states that are hard to reach from outside
   at the instant they matter. */
#define EVLOOP_STATIC
#define EVLOOP_IMPLEMENTATION
#include "t.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void nop_signal(evl_loop *loop, evl_signal *s, int signum) {
    (void)loop;
    (void)s;
    (void)signum;
}

/* fork() copies memory as the parent's threads left it.  Here another thread of the parent was,
   at that instant, inside the signal list's lock and inside the signal handler: neither thread
   exists in the child, which must still be able to deinit the loop it inherited. */
static void child_deinit_ignores_a_lock_and_handlers_of_threads_it_does_not_have(void) {
    evl_loop loop;
    evl_signal s;
    int status;
    pid_t pid;
    CHECK_EQ(evl_init(&loop), 0);
    evl_signal_init(&s, nop_signal, SIGUSR1);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    evl__signals.lock = 1;
    evl__signals.handlers_running = 1;
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(5);                               /* a hang would end here, killed by SIGALRM */
        evl_deinit(&loop);
        _exit(0);
    }
    evl__signals.lock = 0;
    evl__signals.handlers_running = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    evl_deinit(&loop);
}

#if defined(EVLOOP_BACKEND_EPOLL)   /* the epoll backend's probes */
static void on_exit_code(evl_loop *loop, evl_child *c, int status) {
    (void)loop;
    *(int *)c->data = status;
}

static pid_t exit_with(int code, int go_fd) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char ch;
        (void)!read(go_fd, &ch, 1);
        _exit(code);
    }
    return pid;
}

/* Linux 5.3 has pidfd_open but cannot wait through a pidfd: the probe must see that and keep
   children on SIGCHLD, where the watcher can still tell their status. */
static void a_kernel_that_cannot_wait_through_a_pidfd_keeps_children_on_sigchld(void) {
    evl_loop loop;
    evl_child c;
    int status = 0, go[2];
    if (t_refuse_waitid_pidfd() < 0) t_skip("cannot install a seccomp filter here");
    evl__epoll_has_pidfd = 0;                   /* this copy of the library probes afresh */
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(evl__epoll_has_pidfd, -1);
    CHECK_EQ(pipe(go), 0);
    evl_child_init(&c, on_exit_code, exit_with(5, go[0]));
    c.data = &status;
    CHECK_EQ(evl_child_start(&loop, &c), 0);
    CHECK(c.by_signal);
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK_EQ(evl_run(&loop, EVL_SEC(10)), 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 5);
    evl_deinit(&loop);
}

/* waitid(P_PIDFD) refused after the probe said yes (a sandbox arriving late): the watcher that
   already holds a pidfd reaps by pid instead, with the right status. */
static void a_pidfd_watcher_reaps_by_pid_when_waiting_through_the_pidfd_is_refused_later(void) {
    evl_loop loop;
    evl_child c;
    int status = 0, go[2];
    CHECK_EQ(evl_init(&loop), 0);
    if (evl__epoll_has_pidfd <= 0) t_skip("no pidfds in this run");
    CHECK_EQ(pipe(go), 0);
    evl_child_init(&c, on_exit_code, exit_with(6, go[0]));
    c.data = &status;
    CHECK_EQ(evl_child_start(&loop, &c), 0);
    CHECK(!c.by_signal);
    if (t_refuse_waitid_pidfd() < 0) t_skip("cannot install a seccomp filter here");
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK_EQ(evl_run(&loop, EVL_SEC(10)), 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 6);
    evl_deinit(&loop);
}
#endif

const t_case internals_tests[] = {
    T(child_deinit_ignores_a_lock_and_handlers_of_threads_it_does_not_have),
#if defined(EVLOOP_BACKEND_EPOLL)
    T(a_kernel_that_cannot_wait_through_a_pidfd_keeps_children_on_sigchld),
    T(a_pidfd_watcher_reaps_by_pid_when_waiting_through_the_pidfd_is_refused_later),
#endif
    T_END,
};
