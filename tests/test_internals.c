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

const t_case internals_tests[] = {
    T(child_deinit_ignores_a_lock_and_handlers_of_threads_it_does_not_have),
    T_END,
};
