/* The loop: init and deinit, what evl_run returns and when, evl_stop from everywhere it may be
   called, references, hooks, the backend descriptor, evl_dump. */
#include "t.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#if T_POSIX
#include <poll.h>
#include <pthread.h>
#endif

static int calls;

#if T_POSIX
static void count_io(evl_loop *loop, evl_io *w, unsigned revents) {
    (void)loop;
    (void)w;
    (void)revents;
    calls++;
}

static void count_async(evl_loop *loop, evl_async *a) {
    (void)loop;
    (void)a;
    calls++;
}
#endif

#if T_POSIX
static void count_signal(evl_loop *loop, evl_signal *s, int signum) {
    (void)loop;
    (void)s;
    (void)signum;
    calls++;
}
#endif

static void count_timer(evl_loop *loop, evl_timer *t) {
    (void)loop;
    (void)t;
    calls++;
}

static void stop_loop_timer(evl_loop *loop, evl_timer *t) {
    (void)t;
    calls++;
    evl_stop(loop);
}

#if T_POSIX
static void init_and_deinit_release_the_descriptors(void) {
    evl_loop loop;
    int before, after;
#ifdef KQEMU_SYS_EVENT_H
    /* The Linux emulation of kqueue keeps a descriptor of its own from its first kqueue() on. */
    CHECK_EQ(evl_init(&loop), 0);
    evl_deinit(&loop);
#endif
    before = open("/dev/null", O_RDONLY);
    close(before);
    CHECK_EQ(evl_init(&loop), 0);
    if (T_BACKEND_HAS_FD) CHECK(evl_backend_fd(&loop) >= 0);
    evl_deinit(&loop);
    after = open("/dev/null", O_RDONLY);
    CHECK_EQ(after, before);                    /* the lowest free number is free again */
    close(after);
}

#endif

static void backend_name_is_the_backend_built(void) { CHECK(strcmp(evl_backend_name(), T_BACKEND) == 0); }

static void run_without_watchers_returns_zero_at_once(void) {
    evl_loop loop;
    evl_time start;
    CHECK_EQ(evl_init(&loop), 0);
    start = t_clock();
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK(t_clock() - start < EVL_MS(500));
    evl_deinit(&loop);
}

static void run_returns_number_of_referenced_active_watchers(void) {
    evl_loop loop;
    evl_timer a, b, c;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&a, count_timer);
    evl_timer_init(&b, count_timer);
    evl_timer_init(&c, count_timer);
    evl_timer_start(&loop, &a, EVL_SEC(100), 0);
    evl_timer_start(&loop, &b, EVL_SEC(100), 0);
    evl_timer_start(&loop, &c, EVL_SEC(100), 0);
    evl_unref(&loop, &c);
    CHECK_EQ(evl_run(&loop, 0), 2);
    evl_timer_stop(&loop, &a);
    CHECK_EQ(evl_run(&loop, 0), 1);
    evl_deinit(&loop);
}

static void run_with_zero_duration_does_not_block(void) {
    evl_loop loop;
    evl_timer t;
    evl_time start;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, count_timer);
    evl_timer_start(&loop, &t, EVL_SEC(5), 0);
    start = t_clock();
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK(t_clock() - start < EVL_MS(200));
    CHECK_EQ(calls, 0);
    evl_deinit(&loop);
}

static void run_with_duration_returns_after_it(void) {
    evl_loop loop;
    evl_timer t;
    evl_time start, took;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, count_timer);
    evl_timer_start(&loop, &t, EVL_SEC(30), 0);
    start = t_clock();
    CHECK_EQ(evl_run(&loop, EVL_MS(50)), 1);
    took = t_clock() - start;
    CHECK(took >= EVL_MS(50));
    CHECK(took < EVL_MS(t_slow ? 5000 : 1000));
    evl_deinit(&loop);
}

static void run_returns_when_last_referenced_watcher_stops(void) {
    evl_loop loop;
    evl_timer once, housekeeping;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&once, count_timer);
    evl_timer_init(&housekeeping, count_timer);
    evl_timer_start(&loop, &once, EVL_MS(5), 0);
    evl_timer_start(&loop, &housekeeping, EVL_MS(1), EVL_MS(1));
    evl_unref(&loop, &housekeeping);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK(calls >= 2);                          /* the unreferenced one ran meanwhile */
    CHECK(evl_timer_active(&housekeeping));
    evl_deinit(&loop);
}

static void ref_and_unref_before_start_are_kept(void) {
    evl_loop loop;
    evl_timer t;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, count_timer);
    evl_unref(&loop, &t);
    evl_unref(&loop, &t);                       /* twice is the same as once */
    evl_timer_start(&loop, &t, EVL_SEC(10), 0);
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_ref(&loop, &t);
    CHECK_EQ(evl_run(&loop, 0), 1);
    evl_timer_stop(&loop, &t);
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_timer_start(&loop, &t, EVL_SEC(10), 0);  /* still referenced after a restart */
    CHECK_EQ(evl_run(&loop, 0), 1);
    evl_deinit(&loop);
}

static void stop_from_callback_returns_after_that_callback(void) {
    evl_loop loop;
    evl_timer first, second;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&first, stop_loop_timer);
    evl_timer_init(&second, count_timer);
    evl_timer_start(&loop, &first, 0, 0);
    evl_timer_start(&loop, &second, 0, 0);      /* due in the same iteration, after first */
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 1);
    CHECK_EQ(calls, 1);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);  /* the stop request is gone; second fires now */
    CHECK_EQ(calls, 2);
    evl_deinit(&loop);
}

static void stop_before_run_makes_next_run_return_at_once(void) {
    evl_loop loop;
    evl_timer t;
    evl_time start;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, count_timer);
    evl_timer_start(&loop, &t, EVL_SEC(10), 0);
    evl_stop(&loop);
    start = t_clock();
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 1);
    CHECK(t_clock() - start < EVL_MS(500));
    /* and the request was consumed: the next run waits for its duration */
    start = t_clock();
    CHECK_EQ(evl_run(&loop, EVL_MS(30)), 1);
    CHECK(t_clock() - start >= EVL_MS(30));
    evl_deinit(&loop);
}

static evl_loop *shared_loop;
static volatile int thread_may_stop;

static void *stop_from_thread(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&thread_may_stop, __ATOMIC_SEQ_CST)) sched_yield();
    evl_stop(shared_loop);
    return NULL;
}

static void mark_blocking(evl_loop *loop, evl_hook *h) {
    (void)loop;
    (void)h;
    __atomic_store_n(&thread_may_stop, 1, __ATOMIC_SEQ_CST);
}

static void stop_from_another_thread_wakes_a_blocked_run(void) {
    evl_loop loop;
    evl_timer t;
    evl_hook prepare;
    t_thread th;
    CHECK_EQ(evl_init(&loop), 0);
    shared_loop = &loop;
    evl_timer_init(&t, count_timer);
    evl_timer_start(&loop, &t, EVL_SEC(60), 0);
    evl_hook_init(&prepare, mark_blocking, EVL_PREPARE);
    evl_hook_start(&loop, &prepare);            /* the thread stops us once we are about to block */
    t_thread_start(&th, stop_from_thread, NULL);
    CHECK_EQ(evl_run(&loop, EVL_SEC(30)), 2);
    CHECK(evl_timer_remaining(&loop, &t) > EVL_SEC(25));
    t_thread_join(&th);
    evl_deinit(&loop);
}

#if T_POSIX
static void on_usr2(int sig) {
    (void)sig;
    evl_stop(shared_loop);
}

static void *signal_from_thread(void *arg) {
    sigset_t set;
    (void)arg;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);     /* so the handler runs on the loop's thread */
    while (!__atomic_load_n(&thread_may_stop, __ATOMIC_SEQ_CST)) sched_yield();
    kill(getpid(), SIGUSR2);
    return NULL;
}

static void stop_from_signal_handler_wakes_the_loop(void) {
    evl_loop loop;
    evl_timer t;
    evl_hook prepare;
    struct sigaction sa;
    t_thread th;
    evl_time start;
    t_skip_unless_signals_keep_the_thread_pointer();
    CHECK_EQ(evl_init(&loop), 0);
    shared_loop = &loop;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    evl_timer_init(&t, count_timer);
    evl_timer_start(&loop, &t, EVL_SEC(60), 0);
    evl_hook_init(&prepare, mark_blocking, EVL_PREPARE);
    evl_hook_start(&loop, &prepare);
    t_thread_start(&th, signal_from_thread, NULL);
    start = t_clock();
    CHECK_EQ(evl_run(&loop, EVL_SEC(30)), 2);
    CHECK(t_clock() - start < EVL_SEC(10));
    t_thread_join(&th);
    /* a stop raised by a handler before evl_run is not lost either */
    kill(getpid(), SIGUSR2);
    start = t_clock();
    CHECK_EQ(evl_run(&loop, EVL_SEC(30)), 2);
    CHECK(t_clock() - start < EVL_SEC(10));
    evl_deinit(&loop);
}
#endif

static void nested_run_is_refused(void);
static int nested_result = 1;

static void run_inside(evl_loop *loop, evl_timer *t) {
    (void)t;
    nested_result = evl_run(loop, 0);
}

static void nested_run_is_refused(void) {
    evl_loop loop;
    evl_timer t;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, run_inside);
    evl_timer_start(&loop, &t, 0, 0);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(nested_result, -EBUSY);
    evl_deinit(&loop);
}

static int order[16], order_len;

static void record_hook(evl_loop *loop, evl_hook *h) {
    (void)loop;
    if (order_len < 16) order[order_len++] = (int)(intptr_t)h->data;
}

static void record_timer(evl_loop *loop, evl_timer *t) {
    (void)loop;
    if (order_len < 16) order[order_len++] = (int)(intptr_t)t->data;
}

static void hooks_run_before_and_after_waiting_in_start_order(void) {
    evl_loop loop;
    evl_hook p1, p2, c1;
    evl_timer t;
    CHECK_EQ(evl_init(&loop), 0);
    evl_hook_init(&p1, record_hook, EVL_PREPARE);
    evl_hook_init(&p2, record_hook, EVL_PREPARE);
    evl_hook_init(&c1, record_hook, EVL_CHECK);
    p1.data = (void *)1;
    p2.data = (void *)2;
    c1.data = (void *)3;
    evl_hook_start(&loop, &c1);
    evl_hook_start(&loop, &p1);
    evl_hook_start(&loop, &p2);
    evl_unref(&loop, &p1);
    evl_unref(&loop, &p2);
    evl_unref(&loop, &c1);
    evl_timer_init(&t, record_timer);
    t.data = (void *)9;
    evl_timer_start(&loop, &t, EVL_MS(50), 0);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    /* Every pass is: prepare hooks in start order, the wait, the timer if it is due, the check
       hook.  How many passes come before the timer depends on the machine. */
    {
        int i = 0, timer_passes = 0;
        while (i < order_len) {
            CHECK(i + 2 < order_len);
            CHECK_EQ(order[i], 1);
            CHECK_EQ(order[i + 1], 2);
            if (order[i + 2] == 9) {
                timer_passes++;
                i++;
                CHECK(i + 2 < order_len);
            }
            CHECK_EQ(order[i + 2], 3);
            i += 3;
        }
        CHECK_EQ(timer_passes, 1);
        CHECK_EQ(order[order_len - 2], 9);      /* the loop ended with the pass that fired it */
    }
    evl_deinit(&loop);
}

static void oversleep_once(evl_loop *loop, evl_hook *h) {
    evl_time end = t_clock() + EVL_MS(10);
    (void)loop;
    while (t_clock() < end) {
    }
    h->data = (void *)1;
}

static void timer_due_within_the_run_fires_even_if_the_wait_overslept(void) {
    evl_loop loop;
    evl_timer t;
    evl_hook slow;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, count_timer);
    evl_timer_start(&loop, &t, EVL_MS(5), 0);
    evl_hook_init(&slow, oversleep_once, EVL_PREPARE);
    evl_hook_start(&loop, &slow);
    evl_unref(&loop, &slow);
    CHECK_EQ(evl_run(&loop, EVL_MS(6)), 0);    /* the run's end passed too, but the timer was due */
    CHECK_EQ(calls, 1);
    evl_deinit(&loop);
}

#if T_POSIX
static void backend_fd_becomes_readable_when_io_is_ready(void) {
    evl_loop loop;
    evl_io w;
    int fds[2];
    struct pollfd p;
    if (!T_BACKEND_HAS_FD) t_skip("this backend has no descriptor (evl_backend_fd is -1)");
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    evl_io_init(&w, count_io, fds[0], EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    p.fd = evl_backend_fd(&loop);
    p.events = POLLIN;
    CHECK_EQ(poll(&p, 1, 0), 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK_EQ(poll(&p, 1, 1000), 1);
    evl_io_stop(&loop, &w);
    evl_deinit(&loop);
}
#endif

/* The time an embedding program may wait: forever without timers, never past the next deadline
   (the wheel may ask for an earlier pass, to move far timers closer), and 0 once one is due. */
static void backend_timeout_reports_the_next_timer(void) {
    evl_loop loop;
    evl_timer t, due;
    evl_time left, deadline;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK(evl_backend_timeout(&loop) == EVL_FOREVER);
    evl_timer_init(&t, count_timer);
    evl_timer_start(&loop, &t, EVL_MS(1500), 0);
    deadline = evl_now(&loop) + EVL_MS(1500);  /* the start read the clock into the loop time */
    left = evl_backend_timeout(&loop);
    CHECK(left > 0 && left <= EVL_MS(1500));
    CHECK(evl_now(&loop) + left <= deadline);
    evl_timer_init(&due, count_timer);
    evl_timer_start(&loop, &due, 0, 0);
    CHECK_EQ(evl_backend_timeout(&loop), 0);
    evl_deinit(&loop);
}

static void now_is_cached_and_update_reads_the_clock(void) {
    evl_loop loop;
    evl_time cached, fresh, before;
    CHECK_EQ(evl_init(&loop), 0);
    cached = evl_now(&loop);
    before = t_clock();
    while (t_clock() - before < EVL_MS(2)) {
    }
    CHECK_EQ(evl_now(&loop), cached);
    fresh = evl_now_update(&loop);
    CHECK(fresh >= cached + EVL_MS(2));
    CHECK_EQ(evl_now(&loop), fresh);
    CHECK(fresh <= t_clock());
    evl_deinit(&loop);
}

#if T_POSIX
static void ignore_io(evl_loop *loop, evl_io *w, unsigned revents) {
    (void)loop;
    (void)w;
    (void)revents;
}
#endif

#if T_POSIX
static void dump_lists_every_active_watcher(void) {
    evl_loop loop;
    evl_io w;
    evl_timer t;
    evl_hook h;
    evl_async a;
    evl_signal s;
    char buf[4096], expect[32];
    size_t n;
    int fds[2];
    FILE *f = tmpfile();
    CHECK(f != NULL);
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    evl_io_init(&w, ignore_io, fds[0], T_HAS_PRI ? EVL_READ | EVL_PRI : EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    evl_timer_init(&t, count_timer);
    evl_timer_start(&loop, &t, EVL_SEC(3), EVL_SEC(1));
    evl_unref(&loop, &t);
    evl_hook_init(&h, record_hook, EVL_CHECK);
    evl_hook_start(&loop, &h);
    evl_async_init(&a, count_async);
    CHECK_EQ(evl_async_start(&loop, &a), 0);
    evl_signal_init(&s, count_signal, SIGUSR1);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    evl_dump(&loop, f);
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    CHECK(strstr(buf, "backend " T_BACKEND) != NULL);
    CHECK(strstr(buf, "4 referenced watchers") != NULL);
    CHECK(strstr(buf, T_HAS_PRI ? "events READ PRI" : "events READ") != NULL);
    CHECK(strstr(buf, "timer") != NULL && (strstr(buf, "due in 2.9") != NULL || strstr(buf, "due in 3.0") != NULL) && strstr(buf, "repeat 1.0") != NULL);
    CHECK(strstr(buf, "unref") != NULL);
    CHECK(strstr(buf, "check") != NULL);
    CHECK(strstr(buf, "async") != NULL);
    snprintf(expect, sizeof expect, "signal %d", SIGUSR1);   /* 10 on x86 and ARM, 16 on MIPS */
    CHECK(strstr(buf, expect) != NULL);
    evl_deinit(&loop);
    fclose(f);
}
#endif

const t_case loop_tests[] = {
#if T_POSIX
    T(init_and_deinit_release_the_descriptors),
#endif
    T(backend_name_is_the_backend_built),
    T(run_without_watchers_returns_zero_at_once),
    T(run_returns_number_of_referenced_active_watchers),
    T(run_with_zero_duration_does_not_block),
    T(run_with_duration_returns_after_it),
    T(run_returns_when_last_referenced_watcher_stops),
    T(ref_and_unref_before_start_are_kept),
    T(stop_from_callback_returns_after_that_callback),
    T(stop_before_run_makes_next_run_return_at_once),
    T(stop_from_another_thread_wakes_a_blocked_run),
#if T_POSIX
    T(stop_from_signal_handler_wakes_the_loop),
#endif
    T(nested_run_is_refused),
    T(hooks_run_before_and_after_waiting_in_start_order),
    T(timer_due_within_the_run_fires_even_if_the_wait_overslept),
#if T_POSIX
    T(backend_fd_becomes_readable_when_io_is_ready),
#endif
    T(backend_timeout_reports_the_next_timer),
    T(now_is_cached_and_update_reads_the_clock),
#if T_POSIX
    T(dump_lists_every_active_watcher),
#endif
    T_END,
};
