/* fork(): the child shares the parent's epoll set and eventfd.  It may evl_deinit the loop it
   inherited and build a new one, and the parent's loop must not notice. */
#include "t.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct child_done {
    evl_child c;
    int calls, status;
} child_done;

static void on_child(evl_loop *loop, evl_child *c, int status) {
    child_done *d = (child_done *)c->data;
    (void)loop;
    d->calls++;
    d->status = status;
}

static int child_timer_fired;

static void child_timer(evl_loop *loop, evl_timer *t) {
    (void)loop;
    (void)t;
    child_timer_fired = 1;
}

static void async_nop(evl_loop *loop, evl_async *a) {
    int *calls = (int *)a->data;
    (void)loop;
    (*calls)++;
}

/* In the child: tear down the inherited loop, then run a fresh one. */
static int child_main(evl_loop *inherited) {
    evl_loop fresh;
    evl_timer t;
    evl_deinit(inherited);
    if (evl_init(&fresh) < 0) return 10;
    evl_timer_init(&t, child_timer);
    evl_timer_start(&fresh, &t, EVL_MS(5), 0);
    if (evl_run(&fresh, EVL_SEC(5)) != 0 || !child_timer_fired) return 11;
    evl_deinit(&fresh);
    return 0;
}

static void child_deinit_leaves_the_parents_loop_working(void) {
    evl_loop loop;
    evl_io w;
    evl_async a;
    t_seen seen;
    child_done d;
    int fds[2], async_calls = 0;
    pid_t pid;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    memset(&seen, 0, sizeof seen);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ);
    w.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    evl_async_init(&a, async_nop);
    a.data = &async_calls;
    CHECK_EQ(evl_async_start(&loop, &a), 0);

    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(child_main(&loop));

    memset(&d, 0, sizeof d);
    evl_child_init(&d.c, on_child, pid);
    d.c.data = &d;
    CHECK_EQ(evl_child_start(&loop, &d.c), 0);
    CHECK(t_run_until(&loop, &d.calls, EVL_SEC(10)));
    CHECK(WIFEXITED(d.status));
    CHECK_EQ(WEXITSTATUS(d.status), 0);
    CHECK_EQ(seen.calls, 0);
    /* the parent's registrations are all still there */
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(5)));
    evl_async_send(&a);
    CHECK(t_run_until(&loop, &async_calls, EVL_SEC(5)));
    evl_deinit(&loop);
}

typedef struct sig_seen {
    evl_signal s;
    int calls;
} sig_seen;

static void on_sig(evl_loop *loop, evl_signal *s, int signum) {
    sig_seen *ss = (sig_seen *)s->data;
    (void)loop;
    (void)signum;
    ss->calls++;
}

static int child_signal_main(evl_loop *inherited) {
    evl_loop fresh;
    sig_seen ss;
    evl_deinit(inherited);
    if (evl_init(&fresh) < 0) return 10;
    memset(&ss, 0, sizeof ss);
    evl_signal_init(&ss.s, on_sig, SIGUSR2);
    ss.s.data = &ss;
    if (evl_signal_start(&fresh, &ss.s) < 0) return 11;
    raise(SIGUSR2);
    if (!t_run_until(&fresh, &ss.calls, EVL_SEC(5))) return 12;
    evl_deinit(&fresh);
    return 0;
}

static void child_may_watch_signals_on_a_new_loop(void) {
    evl_loop loop;
    sig_seen parent;
    int status;
    pid_t pid;
    CHECK_EQ(evl_init(&loop), 0);
    memset(&parent, 0, sizeof parent);
    evl_signal_init(&parent.s, on_sig, SIGUSR2);
    parent.s.data = &parent;
    CHECK_EQ(evl_signal_start(&loop, &parent.s), 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(child_signal_main(&loop));
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);
    CHECK_EQ(parent.calls, 0);                  /* the child's signal stayed in the child */
    raise(SIGUSR2);
    CHECK(t_run_until(&loop, &parent.calls, EVL_SEC(5)));
    evl_deinit(&loop);
}

/* A worker thread runs a loop that watches a signal and a child, forever, while the main thread
   forks helpers (a supervisor's pattern).  Each helper inherits the loop as it was in the worker at
   that instant: running, maybe inside the signal list's lock.  It must still be able to deinit it. */
typedef struct worker {
    evl_loop loop;
    evl_signal s;
    evl_async quit;
    int churn;                                  /* atomic: keep starting and stopping a watcher */
} worker;

static void quit_worker(evl_loop *loop, evl_async *a) {
    (void)a;
    evl_stop(loop);
}

static void *run_worker(void *arg) {
    worker *w = (worker *)arg;
    evl_signal churned;
    evl_signal_init(&churned, on_sig, SIGUSR1);
    while (__atomic_load_n(&w->churn, __ATOMIC_SEQ_CST)) {
        /* takes and releases the process-wide signal lock, over and over */
        if (evl_signal_start(&w->loop, &churned) == 0) evl_signal_stop(&w->loop, &churned);
        evl_run(&w->loop, 0);
    }
    evl_run(&w->loop, EVL_FOREVER);
    return NULL;
}

static int helper_main(evl_loop *inherited) {
    alarm(5);                                   /* a hang is the bug this test looks for */
    evl_deinit(inherited);
    return 0;
}

static void children_of_a_threaded_parent_can_deinit_an_inherited_running_loop(void) {
    static worker w;
    sig_seen ss;
    t_thread th;
    int i, forks = t_slow ? 40 : 300, hung = 0, failed = 0;
    CHECK_EQ(evl_init(&w.loop), 0);
    memset(&ss, 0, sizeof ss);
    evl_signal_init(&w.s, on_sig, SIGUSR2);
    w.s.data = &ss;
    CHECK_EQ(evl_signal_start(&w.loop, &w.s), 0);
    evl_async_init(&w.quit, quit_worker);
    CHECK_EQ(evl_async_start(&w.loop, &w.quit), 0);
    w.churn = 1;
    t_thread_start(&th, run_worker, &w);
    for (i = 0; i < forks; i++) {
        int status;
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) _exit(helper_main(&w.loop));
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) hung++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
        if (i == forks / 2) __atomic_store_n(&w.churn, 0, __ATOMIC_SEQ_CST);   /* now in evl_run */
    }
    CHECK_EQ(hung, 0);
    CHECK_EQ(failed, 0);
    evl_async_send(&w.quit);
    t_thread_join(&th);
    evl_deinit(&w.loop);
}

const t_case fork_tests[] = {
    T(child_deinit_leaves_the_parents_loop_working),
    T(child_may_watch_signals_on_a_new_loop),
    T(children_of_a_threaded_parent_can_deinit_an_inherited_running_loop),
    T_END,
};
