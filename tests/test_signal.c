/* Signals: delivery in loop context, coalescing, several watchers and loops per signal, other
   threads' masks, restoring the previous disposition and mask, and the signals refused. */
#include "t.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

typedef struct caught {
    evl_signal s;
    int calls;
    int signum;
    int in_handler;                             /* set if the callback ran inside a handler */
} caught;

static volatile sig_atomic_t inside_user_handler;

static void on_signal(evl_loop *loop, evl_signal *s, int signum) {
    caught *c = (caught *)s->data;
    (void)loop;
    c->calls++;
    c->signum = signum;
    if (inside_user_handler) c->in_handler = 1;
}

static void watch(evl_loop *loop, caught *c, int signum) {
    memset(c, 0, sizeof *c);
    evl_signal_init(&c->s, on_signal, signum);
    c->s.data = c;
    CHECK_EQ(evl_signal_start(loop, &c->s), 0);
}

static void signal_calls_back_in_loop_context(void) {
    evl_loop loop;
    caught c;
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &c, SIGUSR1);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK(t_run_until(&loop, &c.calls, EVL_SEC(5)));
    CHECK_EQ(c.signum, SIGUSR1);
    CHECK_EQ(c.in_handler, 0);
    evl_signal_stop(&loop, &c.s);
    evl_deinit(&loop);
}

static void signal_raised_right_after_start_is_not_lost(void) {
    evl_loop loop;
    caught c;
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &c, SIGUSR2);
    raise(SIGUSR2);                             /* before the loop ever ran */
    CHECK(t_run_until(&loop, &c.calls, EVL_SEC(5)));
    evl_deinit(&loop);
}

static void deliveries_before_the_callback_coalesce(void) {
    evl_loop loop;
    caught c;
    int i;
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &c, SIGUSR1);
    for (i = 0; i < 5; i++) raise(SIGUSR1);
    CHECK(t_run_until(&loop, &c.calls, EVL_SEC(5)));
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);
    CHECK(c.calls >= 1 && c.calls <= 5);
    c.calls = 0;
    raise(SIGUSR1);                             /* a later one is a new call */
    CHECK(t_run_until(&loop, &c.calls, EVL_SEC(5)));
    evl_deinit(&loop);
}

static void every_watcher_of_a_signal_is_called(void) {
    evl_loop loop;
    caught a, b, other;
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &a, SIGUSR1);
    watch(&loop, &b, SIGUSR1);
    watch(&loop, &other, SIGUSR2);
    raise(SIGUSR1);
    CHECK(t_run_until(&loop, &b.calls, EVL_SEC(5)));
    CHECK_EQ(a.calls, 1);
    CHECK_EQ(other.calls, 0);
    evl_deinit(&loop);
}

/* A delivery still pending when the last watcher of its signal stops belongs to no one: a
   watcher started later must not be called for it (it arrived before that start). */
static void a_signal_pending_at_the_last_stop_is_not_given_to_a_later_watcher(void) {
    evl_loop loop;
    caught a, b;
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &a, SIGUSR1);
    raise(SIGUSR1);                             /* caught, not yet handled by the loop */
    evl_signal_stop(&loop, &a.s);
    watch(&loop, &b, SIGUSR1);
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);
    CHECK_EQ(a.calls, 0);
    CHECK_EQ(b.calls, 0);
    raise(SIGUSR1);                             /* one after the start is b's */
    CHECK(t_run_until(&loop, &b.calls, EVL_SEC(5)));
    CHECK_EQ(b.calls, 1);
    evl_deinit(&loop);
}

/* The same while another watcher of the signal is active: the delivery is that watcher's alone. */
static void a_signal_caught_before_a_start_is_not_given_to_the_new_watcher(void) {
    evl_loop loop;
    caught a, b;
    if (!T_SIGNALS_SETTLED_AT_START) t_skip("the kernel keeps such a delivery until the next wait (kqueue: README)");
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &a, SIGUSR1);
    raise(SIGUSR1);                             /* caught, not yet handled by the loop */
    watch(&loop, &b, SIGUSR1);
    CHECK(t_run_until(&loop, &a.calls, EVL_SEC(5)));
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 2);
    CHECK_EQ(a.calls, 1);
    CHECK_EQ(b.calls, 0);
    raise(SIGUSR1);                             /* one after both starts is for both */
    CHECK(t_run_until(&loop, &b.calls, EVL_SEC(5)));
    CHECK_EQ(a.calls, 2);
    evl_deinit(&loop);
}

static void start_a_second_watcher(evl_loop *loop, evl_signal *s, int signum) {
    caught *c = (caught *)s->data, *second = c + 1;
    (void)signum;
    c->calls++;
    if (c->calls == 1) {
        raise(SIGUSR2);                         /* caught during the walk: for this watcher only */
        memset(second, 0, sizeof *second);
        evl_signal_init(&second->s, on_signal, SIGUSR2);
        second->s.data = second;
        CHECK_EQ(evl_signal_start(loop, &second->s), 0);
    }
}

/* A start from inside a signal callback hands what was caught before it to the watchers that
   were active: the one already called in this pass is called again, not forgotten. */
static void a_signal_caught_during_the_callbacks_is_delivered_in_the_next_pass(void) {
    evl_loop loop;
    caught c[2];
    int i;
    if (!T_SIGNALS_SETTLED_AT_START) t_skip("the kernel keeps such a delivery until the next wait (kqueue: README)");
    CHECK_EQ(evl_init(&loop), 0);
    memset(c, 0, sizeof c);
    evl_signal_init(&c[0].s, start_a_second_watcher, SIGUSR2);
    c[0].s.data = &c[0];
    CHECK_EQ(evl_signal_start(&loop, &c[0].s), 0);
    raise(SIGUSR2);
    CHECK(t_run_until(&loop, &c[0].calls, EVL_SEC(5)));
    for (i = 0; i < 100 && c[0].calls < 2; i++) CHECK_EQ(evl_run(&loop, EVL_MS(10)), 2);
    CHECK_EQ(c[0].calls, 2);
    CHECK_EQ(c[1].calls, 0);
    evl_deinit(&loop);
}

typedef struct loop_thread {
    evl_loop loop;
    caught c;
    int ready, done;
    t_thread th;
} loop_thread;

static void *run_signal_loop(void *arg) {
    loop_thread *lt = (loop_thread *)arg;
    __atomic_store_n(&lt->ready, 1, __ATOMIC_SEQ_CST);
    while (!lt->c.calls) evl_run(&lt->loop, EVL_MS(10));
    __atomic_store_n(&lt->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void watchers_in_several_loops_on_several_threads_are_all_called(void) {
    static loop_thread lt[3];
    sigset_t set;
    int i;
    /* Block the signal here: it must reach the loops through their own threads' masks. */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (i = 0; i < 3; i++) {
        CHECK_EQ(evl_init(&lt[i].loop), 0);
        watch(&lt[i].loop, &lt[i].c, SIGUSR1);
        t_thread_start(&lt[i].th, run_signal_loop, &lt[i]);
    }
    for (i = 0; i < 3; i++)
        while (!__atomic_load_n(&lt[i].ready, __ATOMIC_SEQ_CST)) sched_yield();
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    for (i = 0; i < 3; i++) {
        t_thread_join(&lt[i].th);
        CHECK_EQ(lt[i].c.calls, 1);
        evl_deinit(&lt[i].loop);
    }
}

static void *block_everything_and_wait(void *arg) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!__atomic_load_n((int *)arg, __ATOMIC_SEQ_CST)) sched_yield();
    return NULL;
}

static void signal_arrives_when_every_thread_had_it_blocked(void) {
    evl_loop loop;
    caught c;
    sigset_t set, now;
    t_thread th;
    int quit = 0;
    t_skip_unless_signals_keep_the_thread_pointer();
    /* The common "block signals before creating threads" setup. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    t_thread_start(&th, block_everything_and_wait, &quit);
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &c, SIGTERM);
    CHECK_EQ(kill(getpid(), SIGTERM), 0);
    CHECK(t_run_until(&loop, &c.calls, EVL_SEC(5)));
    evl_signal_stop(&loop, &c.s);
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    CHECK(sigismember(&now, SIGTERM));          /* blocked again, as before */
    __atomic_store_n(&quit, 1, __ATOMIC_SEQ_CST);
    t_thread_join(&th);
    evl_deinit(&loop);
}

static volatile sig_atomic_t user_handler_calls;

static void user_handler(int sig) {
    (void)sig;
    user_handler_calls++;
}

static void last_stop_restores_the_previous_disposition(void) {
    evl_loop loop;
    caught a, b;
    struct sigaction sa, now;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = user_handler;
    sigaction(SIGUSR1, &sa, NULL);
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &a, SIGUSR1);
    watch(&loop, &b, SIGUSR1);
    sigaction(SIGUSR1, NULL, &now);
    CHECK(now.sa_handler != user_handler);
    evl_signal_stop(&loop, &a.s);
    sigaction(SIGUSR1, NULL, &now);
    CHECK(now.sa_handler != user_handler);      /* b still watches */
    evl_signal_stop(&loop, &b.s);
    sigaction(SIGUSR1, NULL, &now);
    CHECK(now.sa_handler == user_handler);
    raise(SIGUSR1);
    CHECK_EQ(user_handler_calls, 1);
    CHECK_EQ(evl_run(&loop, 0), 0);
    CHECK_EQ(a.calls + b.calls, 0);
    evl_deinit(&loop);
}

static void deinit_restores_the_default_disposition(void) {
    evl_loop loop;
    caught c;
    struct sigaction now;
    signal(SIGHUP, SIG_DFL);                    /* a runner started by nohup ignores it */
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &c, SIGHUP);
    evl_deinit(&loop);
    sigaction(SIGHUP, NULL, &now);
    CHECK(now.sa_handler == SIG_DFL);
}

static void disposition_stays_while_another_loop_watches(void) {
    evl_loop one, two;
    caught a, b;
    struct sigaction now;
    CHECK_EQ(evl_init(&one), 0);
    CHECK_EQ(evl_init(&two), 0);
    watch(&one, &a, SIGUSR2);
    watch(&two, &b, SIGUSR2);
    evl_deinit(&one);
    sigaction(SIGUSR2, NULL, &now);
    CHECK(now.sa_handler != SIG_DFL);
    raise(SIGUSR2);
    CHECK(t_run_until(&two, &b.calls, EVL_SEC(5)));
    CHECK_EQ(a.calls, 0);
    evl_deinit(&two);
    sigaction(SIGUSR2, NULL, &now);
    CHECK(now.sa_handler == SIG_DFL);
}

static void realtime_signals_are_supported(void) {
#ifdef SIGRTMIN
    evl_loop loop;
    caught c;
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &c, SIGRTMIN + 2);
    raise(SIGRTMIN + 2);
    CHECK(t_run_until(&loop, &c.calls, EVL_SEC(5)));
    CHECK_EQ(c.signum, SIGRTMIN + 2);
    evl_deinit(&loop);
#else
    t_skip("no realtime signals on this system (macOS)");
#endif
}

static void invalid_signals_are_refused(void) {
    static const int bad[] = {0, -1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, 65, 1000};
    evl_loop loop;
    evl_signal s;
    unsigned i;
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        evl_signal_init(&s, on_signal, bad[i]);
        CHECK_EQ(evl_signal_start(&loop, &s), -EINVAL);
    }
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_deinit(&loop);
}

static void stopping_a_watcher_from_its_callback_is_safe(void);

static void stop_self(evl_loop *loop, evl_signal *s, int signum) {
    caught *c = (caught *)s->data;
    (void)signum;
    c->calls++;
    evl_signal_stop(loop, s);
}

static void stopping_a_watcher_from_its_callback_is_safe(void) {
    evl_loop loop;
    caught c;
    struct sigaction now;
    CHECK_EQ(evl_init(&loop), 0);
    memset(&c, 0, sizeof c);
    evl_signal_init(&c.s, stop_self, SIGWINCH);
    c.s.data = &c;
    CHECK_EQ(evl_signal_start(&loop, &c.s), 0);
    raise(SIGWINCH);
    CHECK_EQ(evl_run(&loop, EVL_SEC(5)), 0);
    CHECK_EQ(c.calls, 1);
    sigaction(SIGWINCH, NULL, &now);
    CHECK(now.sa_handler == SIG_DFL);
    evl_deinit(&loop);
}

static void *send_signals(void *arg) {
    int i;
    for (i = 0; i < 200; i++) {
        kill(getpid(), SIGUSR1);
        if (i % 20 == 0) sched_yield();
    }
    __atomic_store_n((int *)arg, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void signals_from_another_thread_while_starting_and_stopping(void) {
    evl_loop loop;
    caught steady, flapping;
    t_thread th;
    int done = 0, rounds = 0;
    t_skip_unless_signals_keep_the_thread_pointer();
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &steady, SIGUSR1);
    memset(&flapping, 0, sizeof flapping);
    evl_signal_init(&flapping.s, on_signal, SIGUSR1);
    flapping.s.data = &flapping;
    t_thread_start(&th, send_signals, &done);
    while (!__atomic_load_n(&done, __ATOMIC_SEQ_CST) || rounds < 10) {
        CHECK_EQ(evl_signal_start(&loop, &flapping.s), 0);
        CHECK(evl_run(&loop, 0) >= 0);
        evl_signal_stop(&loop, &flapping.s);
        rounds++;
    }
    t_thread_join(&th);
    raise(SIGUSR1);                             /* the last one is seen for sure */
    steady.calls = 0;
    CHECK(t_run_until(&loop, &steady.calls, EVL_SEC(5)));
    evl_deinit(&loop);
}

/* ---- Threads and masks (the daemon pattern: signals blocked in every thread) ----------------- */

static void block_in_this_thread(int signum) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signum);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
}

static int blocked_in_this_thread(int signum) {
    sigset_t now;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    return sigismember(&now, signum) == 1;
}

/* A wait that finds events ready returns them without delivering a signal pending when it began:
   the kernel delivers it only when the wait is interrupted, and puts the thread's mask back
   otherwise.  A loop that always has work (a descriptor that stays readable) must still hear a
   signal its thread blocks. */
static void blocked_signal_arrives_while_the_loop_always_has_events(void) {
    evl_loop loop;
    caught c;
    evl_io busy;
    t_seen seen;
    int fds[2], passes;
    block_in_this_thread(SIGUSR1);
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    CHECK_EQ(write(fds[1], "x", 1), 1);         /* never read: ready at every pass */
    memset(&seen, 0, sizeof seen);
    evl_io_init(&busy, t_record_io, fds[0], EVL_READ);
    busy.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &busy), 0);
    watch(&loop, &c, SIGUSR1);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    for (passes = 0; passes < 100 && !c.calls; passes++) CHECK_EQ(evl_run(&loop, 0), 2);
    CHECK_EQ(c.calls, 1);
    CHECK(seen.calls > 0);
    CHECK(blocked_in_this_thread(SIGUSR1));     /* and the thread's mask is as it was */
    evl_deinit(&loop);
    close(fds[0]);
    close(fds[1]);
}

typedef struct first_watcher {
    evl_loop loop;
    caught c;
    int signum;
} first_watcher;

static void *start_first_watcher_and_exit(void *arg) {
    first_watcher *fw = (first_watcher *)arg;
    CHECK_EQ(evl_init(&fw->loop), 0);
    watch(&fw->loop, &fw->c, fw->signum);
    return NULL;                                /* the thread ends; its loop keeps watching */
}

static void signal_still_arrives_after_the_first_watchers_thread_exited(void) {
    static first_watcher fw;
    evl_loop loop;
    caught c;
    t_thread th;
    block_in_this_thread(SIGUSR1);             /* inherited by the thread below */
    fw.signum = SIGUSR1;
    t_thread_start(&th, start_first_watcher_and_exit, &fw);
    t_thread_join(&th);
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &c, SIGUSR1);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK(t_run_until(&loop, &c.calls, EVL_SEC(5)));
    CHECK(blocked_in_this_thread(SIGUSR1));    /* unblocked only while the loop waited */
    evl_deinit(&loop);
}

typedef struct mask_probe {
    evl_loop loop;
    caught c;
    int started, stopped, go_stop;             /* atomic */
    int blocked_while_watching, blocked_after_stop;
} mask_probe;

static void *watch_then_stop_first(void *arg) {
    mask_probe *mp = (mask_probe *)arg;
    CHECK_EQ(evl_init(&mp->loop), 0);
    watch(&mp->loop, &mp->c, SIGUSR2);
    CHECK_EQ(evl_run(&mp->loop, 0), 1);
    mp->blocked_while_watching = blocked_in_this_thread(SIGUSR2);
    __atomic_store_n(&mp->started, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&mp->go_stop, __ATOMIC_SEQ_CST)) sched_yield();
    evl_signal_stop(&mp->loop, &mp->c.s);      /* not the last watcher of SIGUSR2 */
    mp->blocked_after_stop = blocked_in_this_thread(SIGUSR2);
    __atomic_store_n(&mp->stopped, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void thread_masks_stay_as_the_program_set_them(void) {
    static mask_probe mp;
    evl_loop loop;
    caught c;
    sigset_t pending;
    t_thread th;
    block_in_this_thread(SIGUSR2);
    t_thread_start(&th, watch_then_stop_first, &mp);
    while (!__atomic_load_n(&mp.started, __ATOMIC_SEQ_CST)) sched_yield();
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &c, SIGUSR2);
    __atomic_store_n(&mp.go_stop, 1, __ATOMIC_SEQ_CST);
    t_thread_join(&th);
    evl_signal_stop(&loop, &c.s);              /* the last watcher */
    CHECK(mp.blocked_while_watching);
    CHECK(mp.blocked_after_stop);
    CHECK(blocked_in_this_thread(SIGUSR2));
    /* Before the program used evloop, SIGUSR2 stayed pending harmlessly; so it does afterwards. */
    CHECK_EQ(kill(getpid(), SIGUSR2), 0);
    CHECK_EQ(sigpending(&pending), 0);
    CHECK(sigismember(&pending, SIGUSR2) == 1);
    evl_deinit(&mp.loop);
    evl_deinit(&loop);
}

static void info_handler(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)info;
    (void)context;
}

static void last_stop_restores_a_siginfo_handler_with_its_flags_and_mask(void) {
    struct sigaction before, after;
    evl_loop loop;
    caught c;
    memset(&before, 0, sizeof before);
    before.sa_sigaction = info_handler;
    before.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&before.sa_mask);
    sigaddset(&before.sa_mask, SIGUSR2);
#ifdef SIGRTMIN
    sigaddset(&before.sa_mask, SIGRTMIN + 3);
#endif
    CHECK_EQ(sigaction(SIGUSR1, &before, NULL), 0);
    CHECK_EQ(evl_init(&loop), 0);
    watch(&loop, &c, SIGUSR1);
    evl_signal_stop(&loop, &c.s);
    CHECK_EQ(sigaction(SIGUSR1, NULL, &after), 0);
    CHECK(after.sa_flags & SA_SIGINFO);
    CHECK(after.sa_flags & SA_RESTART);
    CHECK(after.sa_sigaction == info_handler);
    CHECK(sigismember(&after.sa_mask, SIGUSR2) == 1);
#ifdef SIGRTMIN
    CHECK(sigismember(&after.sa_mask, SIGRTMIN + 3) == 1);
#endif
    CHECK(sigismember(&after.sa_mask, SIGTERM) == 0);
    evl_deinit(&loop);
}

const t_case signal_tests[] = {
    T(signal_calls_back_in_loop_context),
    T(signal_raised_right_after_start_is_not_lost),
    T(deliveries_before_the_callback_coalesce),
    T(every_watcher_of_a_signal_is_called),
    T(a_signal_pending_at_the_last_stop_is_not_given_to_a_later_watcher),
    T(a_signal_caught_before_a_start_is_not_given_to_the_new_watcher),
    T(a_signal_caught_during_the_callbacks_is_delivered_in_the_next_pass),
    T(watchers_in_several_loops_on_several_threads_are_all_called),
    T(signal_arrives_when_every_thread_had_it_blocked),
    T(last_stop_restores_the_previous_disposition),
    T(deinit_restores_the_default_disposition),
    T(disposition_stays_while_another_loop_watches),
    T(realtime_signals_are_supported),
    T(invalid_signals_are_refused),
    T(stopping_a_watcher_from_its_callback_is_safe),
    T(signals_from_another_thread_while_starting_and_stopping),
    T(signal_still_arrives_after_the_first_watchers_thread_exited),
    T(blocked_signal_arrives_while_the_loop_always_has_events),
    T(thread_masks_stay_as_the_program_set_them),
    T(last_stop_restores_a_siginfo_handler_with_its_flags_and_mask),
    T_END,
};
