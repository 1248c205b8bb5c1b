/* signals - handling SIGHUP, SIGUSR1 and SIGTERM in the loop, as a daemon would.
 *
 *   ./signals        (sends itself the signals so it runs on its own; try kill -HUP <pid> too)
 *
 * The callbacks run in the loop like any other, not in a signal handler, so they may do anything:
 * reload a configuration, print, stop the loop.  When the last watcher of a signal stops, the
 * signal's previous disposition comes back. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static void on_hup(evl_loop *loop, evl_signal *s, int signum) {
    (void)loop;
    (void)s;
    printf("SIGHUP (%d): reloading the configuration\n", signum);
}

static void on_usr1(evl_loop *loop, evl_signal *s, int signum) {
    (void)s;
    (void)signum;
    printf("SIGUSR1: state of the loop:\n");
    evl_dump(loop, stdout);
}

static void on_term(evl_loop *loop, evl_signal *s, int signum) {
    (void)s;
    printf("SIGTERM (%d): stopping\n", signum);
    evl_stop(loop);
}

/* Plays the part of an administrator: one signal every 200 ms. */
static void send_next(evl_loop *loop, evl_timer *t) {
    static const int script[] = {SIGHUP, SIGUSR1, SIGHUP, SIGTERM};
    static unsigned next;
    (void)loop;
    if (next < sizeof script / sizeof script[0]) kill(getpid(), script[next++]);
    else evl_timer_stop(loop, t);
}

int main(void) {
    evl_loop loop;
    evl_signal hup, usr1, term;
    evl_timer admin;
    struct sigaction now;
    if (evl_init(&loop) < 0) return 1;
    evl_signal_init(&hup, on_hup, SIGHUP);
    evl_signal_init(&usr1, on_usr1, SIGUSR1);
    evl_signal_init(&term, on_term, SIGTERM);
    if (evl_signal_start(&loop, &hup) < 0 || evl_signal_start(&loop, &usr1) < 0 || evl_signal_start(&loop, &term) < 0)
        return 1;
    evl_timer_init(&admin, send_next);
    evl_timer_start(&loop, &admin, EVL_MS(200), EVL_MS(200));
    printf("pid %d waiting for signals\n", (int)getpid());
    evl_run(&loop, EVL_FOREVER);
    evl_deinit(&loop);                  /* stops the watchers: dispositions are restored */
    sigaction(SIGTERM, NULL, &now);
    printf("SIGTERM is back to %s\n", now.sa_handler == SIG_DFL ? "its default action" : "something else");
    return 0;
}
