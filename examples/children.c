/* children - starting processes and learning how they ended.
 *
 *   ./children
 *
 * Three children: one exits with a code, one is killed, one runs a command.  A child watcher
 * reports each one's waitpid() status once it has ended, and reaps only that process: a fourth
 * child that the program waits for itself is left alone. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_exit_status(evl_loop *loop, evl_child *c, int status) {
    (void)loop;
    if (WIFEXITED(status))
        printf("%-12s pid %d exited with %d\n", (const char *)c->data, (int)c->pid, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%-12s pid %d killed by signal %d\n", (const char *)c->data, (int)c->pid, WTERMSIG(status));
    /* the watcher is already stopped here: it could be freed or started for another process */
}

static pid_t spawn(void (*body)(void)) {
    pid_t pid = fork();
    if (pid == 0) {
        body();
        _exit(0);
    }
    return pid;
}

static void exit_with_3(void) { _exit(3); }
static void wait_forever(void) { pause(); }
static void run_a_command(void) { execlp("sh", "sh", "-c", "echo '  (hello from a shell)'; exit 7", (char *)NULL); }

static void kill_the_sleeper(evl_loop *loop, evl_timer *t) {
    (void)loop;
    kill(*(pid_t *)t->data, SIGTERM);
}

int main(void) {
    evl_loop loop;
    evl_child c1, c2, c3;
    evl_timer killer;
    pid_t sleeper, own;
    int status;
    if (evl_init(&loop) < 0) return 1;
    own = spawn(exit_with_3);           /* not watched: the program reaps it below */

    evl_child_init(&c1, on_exit_status, spawn(exit_with_3));
    c1.data = (void *)"exit 3";
    evl_child_init(&c2, on_exit_status, sleeper = spawn(wait_forever));
    c2.data = (void *)"sleeper";
    evl_child_init(&c3, on_exit_status, spawn(run_a_command));
    c3.data = (void *)"sh -c";
    if (evl_child_start(&loop, &c1) < 0 || evl_child_start(&loop, &c2) < 0 || evl_child_start(&loop, &c3) < 0)
        return 1;
    evl_timer_init(&killer, kill_the_sleeper);
    killer.data = &sleeper;
    evl_timer_start(&loop, &killer, EVL_MS(100), 0);

    evl_run(&loop, EVL_FOREVER);        /* until the three watched children are done */
    if (waitpid(own, &status, 0) == own)
        printf("%-12s pid %d reaped by the program itself, status %d\n", "unwatched", (int)own, WEXITSTATUS(status));
    evl_deinit(&loop);
    return 0;
}
