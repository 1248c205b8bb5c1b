/* Bad input: NULL and never-initialised objects, double starts and stops, deinit with active
   watchers, use after deinit.  Each gives an error or a documented no-op; misuse that a void
   function cannot report goes to EVLOOP_ASSERT, which the tests count instead of aborting. */
#include "t.h"

#include <signal.h>
#include <unistd.h>

extern int t_asserts_expected, t_asserts;

static void nop_io(evl_loop *loop, evl_io *w, unsigned revents) {
    (void)loop;
    (void)w;
    (void)revents;
}

static void nop_timer(evl_loop *loop, evl_timer *t) {
    (void)loop;
    (void)t;
}

static void nop_signal(evl_loop *loop, evl_signal *s, int signum) {
    (void)loop;
    (void)s;
    (void)signum;
}

static void nop_child(evl_loop *loop, evl_child *c, int status) {
    (void)loop;
    (void)c;
    (void)status;
}

static void nop_async(evl_loop *loop, evl_async *a) {
    (void)loop;
    (void)a;
}

static void nop_hook(evl_loop *loop, evl_hook *h) {
    (void)loop;
    (void)h;
}

static void null_loop_is_refused_by_every_function_that_returns_int(void) {
    evl_io w;
    evl_signal s;
    evl_child c;
    evl_async a;
    evl_io_init(&w, nop_io, 0, EVL_READ);
    evl_signal_init(&s, nop_signal, SIGUSR1);
    evl_child_init(&c, nop_child, t_own_pid());
    evl_async_init(&a, nop_async);
    CHECK_EQ(evl_init(NULL), -EINVAL);
    CHECK_EQ(evl_run(NULL, 0), -EINVAL);
    CHECK_EQ(evl_io_start(NULL, &w), -EINVAL);
    CHECK_EQ(evl_signal_start(NULL, &s), -EINVAL);
    CHECK_EQ(evl_child_start(NULL, &c), -EINVAL);
    CHECK_EQ(evl_async_start(NULL, &a), -EINVAL);
    CHECK_EQ(evl_backend_fd(NULL), -1);
    CHECK(evl_backend_timeout(NULL) == EVL_FOREVER);
    evl_stop(NULL);
    evl_deinit(NULL);
    CHECK_EQ(evl_now(NULL), 0);
}

static void null_watchers_are_refused_or_ignored(void) {
    evl_loop loop;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(evl_io_start(&loop, NULL), -EINVAL);
    CHECK_EQ(evl_io_set(&loop, NULL, EVL_READ), -EINVAL);
    CHECK_EQ(evl_signal_start(&loop, NULL), -EINVAL);
    CHECK_EQ(evl_child_start(&loop, NULL), -EINVAL);
    CHECK_EQ(evl_async_start(&loop, NULL), -EINVAL);
    evl_io_stop(&loop, NULL);
    evl_timer_stop(&loop, NULL);
    evl_signal_stop(&loop, NULL);
    evl_child_stop(&loop, NULL);
    evl_async_stop(&loop, NULL);
    evl_hook_stop(&loop, NULL);
    evl_async_send(NULL);
    evl_io_init(NULL, nop_io, 0, 0);
    evl_timer_init(NULL, nop_timer);
    CHECK_EQ(evl_timer_active(NULL), 0);
    CHECK_EQ(evl_timer_remaining(&loop, NULL), 0);
    t_asserts_expected = 1;
    evl_timer_start(&loop, NULL, EVL_MS(1), 0);
    evl_hook_start(&loop, NULL);
    CHECK_EQ(t_asserts, 2);
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_deinit(&loop);
}

static void never_initialised_watchers_are_refused(void) {
    evl_loop loop;
    static evl_io w;                            /* zero-filled, never passed to evl_io_init */
    static evl_signal s;
    static evl_child c;
    static evl_async a;
    static evl_hook h;
    static evl_timer t;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(evl_io_start(&loop, &w), -EINVAL);
    CHECK_EQ(evl_io_set(&loop, &w, EVL_READ), -EINVAL);
    CHECK_EQ(evl_signal_start(&loop, &s), -EINVAL);
    CHECK_EQ(evl_child_start(&loop, &c), -EINVAL);
    CHECK_EQ(evl_async_start(&loop, &a), -EINVAL);
    t_asserts_expected = 1;
    evl_hook_start(&loop, &h);
    evl_timer_start(&loop, &t, 0, 0);
    CHECK_EQ(t_asserts, 2);
    evl_io_stop(&loop, &w);                     /* stops are no-ops */
    evl_signal_stop(&loop, &s);
    evl_child_stop(&loop, &c);
    evl_async_stop(&loop, &a);
    evl_hook_stop(&loop, &h);
    evl_timer_stop(&loop, &t);
    evl_async_send(&a);
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_deinit(&loop);
}

static void watchers_without_a_callback_are_refused(void) {
    evl_loop loop;
    evl_io w;
    evl_signal s;
    evl_async a;
    CHECK_EQ(evl_init(&loop), 0);
    evl_io_init(&w, NULL, 0, EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), -EINVAL);
    evl_signal_init(&s, NULL, SIGUSR1);
    CHECK_EQ(evl_signal_start(&loop, &s), -EINVAL);
    evl_async_init(&a, NULL);
    CHECK_EQ(evl_async_start(&loop, &a), -EINVAL);
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_deinit(&loop);
}

static void a_watcher_of_one_kind_is_not_taken_for_another(void) {
    evl_loop loop;
    evl_io w;
    CHECK_EQ(evl_init(&loop), 0);
    evl_io_init(&w, nop_io, 0, EVL_READ);
    /* the same bytes seen as a signal watcher (a cast the compiler was told to accept) */
    CHECK(sizeof(evl_signal) <= sizeof(evl_io));
    CHECK_EQ(evl_signal_start(&loop, (evl_signal *)(void *)&w), -EINVAL);
    evl_deinit(&loop);
}

static void starting_an_active_watcher_again_is_refused(void) {
    evl_loop loop;
    evl_io w;
    evl_signal s;
    evl_async a;
    evl_hook h;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    evl_io_init(&w, nop_io, fds[0], EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK_EQ(evl_io_start(&loop, &w), -EALREADY);
    evl_signal_init(&s, nop_signal, SIGUSR1);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    CHECK_EQ(evl_signal_start(&loop, &s), -EALREADY);
    evl_async_init(&a, nop_async);
    CHECK_EQ(evl_async_start(&loop, &a), 0);
    CHECK_EQ(evl_async_start(&loop, &a), -EALREADY);
    evl_hook_init(&h, nop_hook, EVL_CHECK);
    evl_hook_start(&loop, &h);
    evl_hook_start(&loop, &h);                  /* void: a no-op */
    CHECK_EQ(evl_run(&loop, 0), 4);             /* each counted once */
    evl_deinit(&loop);
}

static void invalid_hook_phase_is_reported_and_ignored(void) {
    evl_loop loop;
    evl_hook h;
    CHECK_EQ(evl_init(&loop), 0);
    evl_hook_init(&h, nop_hook, 7);
    t_asserts_expected = 1;
    evl_hook_start(&loop, &h);
    CHECK_EQ(t_asserts, 1);
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_deinit(&loop);
}

static void deinit_with_active_watchers_detaches_them(void) {
    evl_loop loop;
    evl_io w;
    evl_timer t, r;
    evl_signal s;
    evl_async a;
    evl_hook h;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    evl_io_init(&w, nop_io, fds[0], EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    evl_timer_init(&t, nop_timer);
    evl_timer_start(&loop, &t, EVL_MS(1), 0);
    evl_timer_init(&r, nop_timer);
    evl_timer_start(&loop, &r, EVL_SEC(1000), EVL_SEC(1));
    evl_signal_init(&s, nop_signal, SIGUSR1);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    evl_async_init(&a, nop_async);
    CHECK_EQ(evl_async_start(&loop, &a), 0);
    evl_hook_init(&h, nop_hook, EVL_PREPARE);
    evl_hook_start(&loop, &h);
    evl_deinit(&loop);
    CHECK(!evl_timer_active(&t));
    CHECK(!evl_timer_active(&r));
    CHECK(w.link.next == NULL && s.link.next == NULL && a.link.next == NULL && h.link.next == NULL);
    /* everything after deinit is harmless */
    evl_io_stop(&loop, &w);
    evl_timer_stop(&loop, &t);
    evl_signal_stop(&loop, &s);
    evl_async_stop(&loop, &a);
    evl_async_send(&a);
    evl_hook_stop(&loop, &h);
    evl_deinit(&loop);                          /* twice */
    CHECK_EQ(evl_run(&loop, 0), -EINVAL);
    CHECK_EQ(evl_io_start(&loop, &w), -EINVAL);
    evl_stop(&loop);
    /* the same watchers work again on a new loop */
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    CHECK_EQ(evl_run(&loop, 0), 2);
    evl_deinit(&loop);
}

static void deinit_inside_a_callback(evl_loop *loop, evl_timer *t) {
    (void)t;
    evl_deinit(loop);
}

static void deinit_from_a_callback_is_reported_and_ignored(void) {
    evl_loop loop;
    evl_timer t;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, deinit_inside_a_callback);
    evl_timer_start(&loop, &t, 0, 0);
    t_asserts_expected = 1;
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(t_asserts, 1);
    CHECK(T_BACKEND_HAS_FD ? evl_backend_fd(&loop) >= 0 : evl_run(&loop, 0) == 0);   /* still alive */
    evl_deinit(&loop);
}

static void stopping_with_the_wrong_loop_is_reported_and_ignored(void) {
    evl_loop loop;
    evl_timer t;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, nop_timer);
    evl_timer_start(&loop, &t, EVL_SEC(5), 0);
    t_asserts_expected = 1;
    evl_timer_stop(NULL, &t);
    CHECK_EQ(t_asserts, 1);
    CHECK(evl_timer_active(&t));
    CHECK_EQ(evl_run(&loop, 0), 1);
    evl_deinit(&loop);
}

static void zeroed_loop_is_not_initialised(void) {
    static evl_loop loop;
    evl_timer t;
    CHECK_EQ(evl_run(&loop, 0), -EINVAL);
    CHECK_EQ(evl_backend_fd(&loop), -1);
    evl_stop(&loop);
    evl_deinit(&loop);
    evl_timer_init(&t, nop_timer);
    t_asserts_expected = 1;
    evl_timer_start(&loop, &t, 0, 0);
    CHECK_EQ(t_asserts, 1);
    CHECK(!evl_timer_active(&t));
}

static void init_on_a_live_loop_is_refused(void) {
    evl_loop loop;
    evl_signal s;
    CHECK_EQ(evl_init(&loop), 0);
    evl_signal_init(&s, nop_signal, SIGUSR1);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);   /* the loop is on the process-wide signal list */
    CHECK_EQ(evl_init(&loop), -EBUSY);
    CHECK_EQ(evl_run(&loop, 0), 1);             /* untouched */
    evl_deinit(&loop);
    CHECK_EQ(evl_init(&loop), 0);               /* once deinit'd, it may be made again */
    evl_deinit(&loop);
}

#if T_POSIX
static void stopping_a_watcher_with_another_loop_is_reported_and_ignored(void) {
    evl_loop a, b;
    evl_io w;
    evl_signal s;
    evl_hook h;
    evl_child c;
    evl_async as;
    int fds[2];
    pid_t pid;
    CHECK_EQ(evl_init(&a), 0);
    CHECK_EQ(evl_init(&b), 0);
    t_pipe(fds);
    evl_io_init(&w, nop_io, fds[0], EVL_READ);
    CHECK_EQ(evl_io_start(&a, &w), 0);
    evl_signal_init(&s, nop_signal, SIGUSR1);
    CHECK_EQ(evl_signal_start(&a, &s), 0);
    evl_hook_init(&h, nop_hook, EVL_CHECK);
    evl_hook_start(&a, &h);
    pid = t_fork_sleeper();
    evl_child_init(&c, nop_child, pid);
    CHECK_EQ(evl_child_start(&a, &c), 0);
    evl_async_init(&as, nop_async);
    CHECK_EQ(evl_async_start(&a, &as), 0);
    t_asserts_expected = 1;
    evl_io_stop(&b, &w);
    evl_signal_stop(&b, &s);
    evl_hook_stop(&b, &h);
    evl_child_stop(&b, &c);
    evl_async_stop(&b, &as);
    CHECK_EQ(t_asserts, 5);
    CHECK_EQ(evl_io_set(&b, &w, EVL_WRITE), -EINVAL);
    CHECK_EQ(evl_run(&b, 0), 0);                /* b's count did not wrap around */
    CHECK_EQ(evl_run(&a, 0), 5);                /* a still has all five */
    kill(pid, SIGKILL);
    evl_deinit(&a);
    evl_deinit(&b);
}
#endif

static void initialising_an_active_watcher_again_is_caught(void) {
    evl_loop loop;
    evl_io w;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    evl_io_init(&w, nop_io, fds[0], EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    evl_io_init(&w, nop_io, fds[0], EVL_READ);  /* the mistake: it looks inactive now */
    t_asserts_expected = 1;
    CHECK_EQ(evl_io_start(&loop, &w), -EALREADY);
    CHECK_EQ(t_asserts, 1);
    CHECK_EQ(evl_run(&loop, 0), 1);             /* counted once */
    evl_deinit(&loop);
}

/* A new loop with three io watchers on the read ends of three new pipes, started a, b, c. */
static void start_three_readers(evl_loop *loop, evl_io *a, evl_io *b, evl_io *c, int p[3][2]) {
    int i;
    CHECK_EQ(evl_init(loop), 0);
    for (i = 0; i < 3; i++) t_pipe(p[i]);
    evl_io_init(a, nop_io, p[0][0], EVL_READ);
    evl_io_init(b, nop_io, p[1][0], EVL_READ);
    evl_io_init(c, nop_io, p[2][0], EVL_READ);
    CHECK_EQ(evl_io_start(loop, a), 0);
    CHECK_EQ(evl_io_start(loop, b), 0);
    CHECK_EQ(evl_io_start(loop, c), 0);
}

/* Past what a start can see: a watcher in the middle of its list initialised again, started, and
   its neighbour stopped leaves a list that loops on itself.  evl_dump and evl_deinit must still
   end, and say so. */
static void dump_and_deinit_end_on_a_corrupted_list(void) {
    evl_loop loop;
    evl_io a, b, c;
    int p[3][2];
    FILE *devnull = fopen("/dev/null", "w");
    CHECK(devnull != NULL);
    start_three_readers(&loop, &a, &b, &c, p);
    evl_io_stop(&loop, &b);
    CHECK_EQ(evl_io_start(&loop, &b), 0);       /* now last: a, c, b */
    evl_io_init(&c, nop_io, p[2][0], EVL_READ);  /* c, in the middle, forgets it is active */
    evl_io_stop(&loop, &c);                      /* a no-op now */
    t_asserts_expected = 1;
    evl_dump(&loop, devnull);
    evl_deinit(&loop);
    CHECK(t_asserts >= 1);                      /* reached, and the damage was reported */
    fclose(devnull);
}

#if T_POSIX
/* After evl_deinit the loop is refused by every start: an error where the function returns one,
   EVLOOP_ASSERT where it cannot; nothing is left active. */
static void every_start_on_a_deinitialised_loop_is_refused(void) {
    evl_loop loop;
    evl_io w;
    evl_timer t;
    evl_signal s;
    evl_child c;
    evl_async a;
    evl_hook h;
    int fds[2];
    pid_t pid = t_fork_sleeper();
    CHECK_EQ(evl_init(&loop), 0);
    evl_deinit(&loop);
    t_pipe(fds);
    evl_io_init(&w, nop_io, fds[0], EVL_READ);
    evl_timer_init(&t, nop_timer);
    evl_signal_init(&s, nop_signal, SIGUSR1);
    evl_child_init(&c, nop_child, pid);
    evl_async_init(&a, nop_async);
    evl_hook_init(&h, nop_hook, EVL_PREPARE);
    CHECK_EQ(evl_io_start(&loop, &w), -EINVAL);
    CHECK_EQ(evl_signal_start(&loop, &s), -EINVAL);
    CHECK_EQ(evl_child_start(&loop, &c), -EINVAL);
    CHECK_EQ(evl_async_start(&loop, &a), -EINVAL);
    t_asserts_expected = 1;
    evl_timer_start(&loop, &t, EVL_MS(1), 0);
    evl_hook_start(&loop, &h);
    CHECK_EQ(t_asserts, 2);
    CHECK(!evl_io_active(&w) && !evl_timer_active(&t) && s.link.next == NULL && c.link.next == NULL &&
          a.link.next == NULL && h.link.next == NULL);
#if EVLOOP_HAS_FIBERS
    {
        evl_fiber f;
        CHECK_EQ(evl_fiber_start(&loop, &f, NULL, 0, (evl_fiber_fn)(void (*)(void))nop_hook, NULL), -EINVAL);
    }
#endif
    CHECK_EQ(evl_run(&loop, 0), -EINVAL);
    kill(pid, SIGKILL);
}

/* A watcher active on one loop is refused by another: -EALREADY, or a no-op for a hook (whose
   start returns nothing); neither loop's count moves. */
static void a_watcher_active_on_one_loop_is_refused_by_another(void) {
    evl_loop a, b;
    evl_io w;
    evl_signal s;
    evl_child c;
    evl_async as;
    evl_hook h;
    int fds[2];
    pid_t pid = t_fork_sleeper();
    CHECK_EQ(evl_init(&a), 0);
    CHECK_EQ(evl_init(&b), 0);
    t_pipe(fds);
    evl_io_init(&w, nop_io, fds[0], EVL_READ);
    evl_signal_init(&s, nop_signal, SIGUSR1);
    evl_child_init(&c, nop_child, pid);
    evl_async_init(&as, nop_async);
    evl_hook_init(&h, nop_hook, EVL_CHECK);
    CHECK_EQ(evl_io_start(&a, &w), 0);
    CHECK_EQ(evl_signal_start(&a, &s), 0);
    CHECK_EQ(evl_child_start(&a, &c), 0);
    CHECK_EQ(evl_async_start(&a, &as), 0);
    evl_hook_start(&a, &h);
    CHECK_EQ(evl_io_start(&b, &w), -EALREADY);
    CHECK_EQ(evl_signal_start(&b, &s), -EALREADY);
    CHECK_EQ(evl_child_start(&b, &c), -EALREADY);
    CHECK_EQ(evl_async_start(&b, &as), -EALREADY);
    evl_hook_start(&b, &h);
    t_asserts_expected = 1;                     /* reset's stop with the wrong loop is reported */
    CHECK_EQ(evl_io_reset(&b, &w, fds[0], EVL_READ), -EALREADY);
    CHECK_EQ(t_asserts, 1);
    CHECK_EQ(evl_run(&b, 0), 0);
    CHECK_EQ(evl_run(&a, 0), 5);
    evl_deinit(&b);                             /* b never had them: a keeps all five */
    CHECK(evl_io_active(&w) && h.link.next != NULL);
    CHECK_EQ(evl_run(&a, 0), 5);
    kill(pid, SIGKILL);
    evl_deinit(&a);
}
#endif

/* The same damage on an io list: the watcher in the middle initialised again and started (it is
   neither first nor last, so the start cannot see it), then the last one stopped: b's next is b. */
static void dump_and_deinit_end_on_a_list_that_loops_on_one_watcher(void) {
    evl_loop loop;
    evl_io a, b, c;
    int p[3][2];
    FILE *devnull = fopen(T_POSIX ? "/dev/null" : "NUL", "w");
    CHECK(devnull != NULL);
    start_three_readers(&loop, &a, &b, &c, p);
    evl_io_init(&b, nop_io, p[1][1], EVL_WRITE);    /* the mistake (another descriptor, so the */
                                                    /* kernel takes the start): b is now last */
    t_asserts_expected = 1;
    if (T_KQUEUE) {
        /* kqueue's own search for a second watcher of the descriptor meets b on the list: refused */
        CHECK_EQ(evl_io_start(&loop, &b), -EEXIST);
        evl_io_stop(&loop, &c);
    } else {
        CHECK_EQ(evl_io_start(&loop, &b), 0);
        evl_io_stop(&loop, &c);
    }
    evl_dump(&loop, devnull);
    evl_deinit(&loop);
    if (!T_KQUEUE) CHECK(t_asserts >= 1);
    fclose(devnull);
}

/* evl_timer_init on an active timer, then a restart and a neighbour's stop, leave a wheel slot
   that loops on itself: nothing at start can see it (the init wiped what would tell).  evl_dump
   and evl_deinit still end, and report it. */
static void dump_and_deinit_end_on_a_timer_initialised_while_active(void) {
    evl_loop loop;
    evl_timer a, b, c;
    evl_time deadline;
    FILE *devnull = fopen(T_POSIX ? "/dev/null" : "NUL", "w");
    CHECK(devnull != NULL);
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&a, nop_timer);
    evl_timer_init(&b, nop_timer);
    evl_timer_init(&c, nop_timer);
    deadline = evl_now(&loop) + EVL_SEC(60);    /* one slot for the three */
    evl_timer_start_at(&loop, &a, deadline, 0);
    evl_timer_start_at(&loop, &b, deadline, 0);
    evl_timer_start_at(&loop, &c, deadline, 0);
    evl_timer_init(&b, nop_timer);              /* the mistake */
    evl_timer_start_at(&loop, &b, deadline, 0);
    evl_timer_stop(&loop, &c);                  /* now b's next is b */
    t_asserts_expected = 1;
    evl_dump(&loop, devnull);
    evl_deinit(&loop);
    CHECK(t_asserts >= 1);
    fclose(devnull);
}

const t_case misuse_tests[] = {
    T(null_loop_is_refused_by_every_function_that_returns_int),
    T(null_watchers_are_refused_or_ignored),
    T(never_initialised_watchers_are_refused),
    T(watchers_without_a_callback_are_refused),
    T(a_watcher_of_one_kind_is_not_taken_for_another),
    T(starting_an_active_watcher_again_is_refused),
    T(invalid_hook_phase_is_reported_and_ignored),
    T(deinit_with_active_watchers_detaches_them),
    T(deinit_from_a_callback_is_reported_and_ignored),
    T(stopping_with_the_wrong_loop_is_reported_and_ignored),
    T(zeroed_loop_is_not_initialised),
    T(init_on_a_live_loop_is_refused),
#if T_POSIX
    T(stopping_a_watcher_with_another_loop_is_reported_and_ignored),
#endif
    T(initialising_an_active_watcher_again_is_caught),
    T(dump_and_deinit_end_on_a_corrupted_list),
#if T_POSIX
    T(every_start_on_a_deinitialised_loop_is_refused),
    T(a_watcher_active_on_one_loop_is_refused_by_another),
#endif
    T(dump_and_deinit_end_on_a_list_that_loops_on_one_watcher),
    T(dump_and_deinit_end_on_a_timer_initialised_while_active),
    T_END,
};
