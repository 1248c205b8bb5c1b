/* Cross-thread wake-ups: sends from other threads and signal handlers, coalescing, and the rule
   that no send is lost. */
#include "t.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

typedef struct poked {
    evl_async a;
    int calls;
    int resend;                                 /* sends to do from inside the callback */
} poked;

static void on_poke(evl_loop *loop, evl_async *a) {
    poked *p = (poked *)a->data;
    (void)loop;
    p->calls++;
    if (p->resend > 0) {
        p->resend--;
        evl_async_send(a);
    }
}

static void start_poked(evl_loop *loop, poked *p) {
    memset(p, 0, sizeof *p);
    evl_async_init(&p->a, on_poke);
    p->a.data = p;
    CHECK_EQ(evl_async_start(loop, &p->a), 0);
}

static void send_from_the_loop_thread_calls_back(void) {
    evl_loop loop;
    poked p;
    CHECK_EQ(evl_init(&loop), 0);
    start_poked(&loop, &p);
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(p.calls, 0);
    evl_async_send(&p.a);
    CHECK(t_run_until(&loop, &p.calls, EVL_SEC(5)));
    CHECK_EQ(p.calls, 1);
    evl_deinit(&loop);
}

static void sends_before_the_callback_coalesce(void) {
    evl_loop loop;
    poked p;
    int i;
    CHECK_EQ(evl_init(&loop), 0);
    start_poked(&loop, &p);
    for (i = 0; i < 10; i++) evl_async_send(&p.a);
    CHECK(t_run_until(&loop, &p.calls, EVL_SEC(5)));
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);
    CHECK_EQ(p.calls, 1);
    evl_deinit(&loop);
}

static void send_during_the_callback_causes_another_call(void) {
    evl_loop loop;
    poked p;
    evl_time start;
    CHECK_EQ(evl_init(&loop), 0);
    start_poked(&loop, &p);
    p.resend = 3;
    evl_async_send(&p.a);
    start = t_clock();
    while (p.calls < 4 && t_clock() - start < EVL_SEC(5)) evl_run(&loop, EVL_MS(10));
    CHECK_EQ(p.calls, 4);
    evl_deinit(&loop);
}

static void send_to_a_stopped_async_is_ignored(void) {
    evl_loop loop;
    poked p;
    CHECK_EQ(evl_init(&loop), 0);
    start_poked(&loop, &p);
    evl_async_stop(&loop, &p.a);
    evl_async_send(&p.a);
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 0);
    CHECK_EQ(p.calls, 0);
    CHECK_EQ(evl_async_start(&loop, &p.a), 0);
    evl_async_send(&p.a);
    CHECK(t_run_until(&loop, &p.calls, EVL_SEC(5)));
    evl_deinit(&loop);
}

/* Many threads each do a request/answer exchange many times: a thread sends, then waits until
   the loop has answered.  A lost send would hang that thread, so the test either finishes with
   exact counts or times out. */
enum { SENDERS = 4, ROUNDS = 2000 };

typedef struct sender {
    poked p;
    int asked, answered;                        /* atomics */
    t_thread th;
} sender;

static sender senders[SENDERS];

static void answer(evl_loop *loop, evl_async *a) {
    sender *s = (sender *)a->data;
    (void)loop;
    s->p.calls++;
    __atomic_store_n(&s->answered, __atomic_load_n(&s->asked, __ATOMIC_SEQ_CST), __ATOMIC_SEQ_CST);
}

static void *ask_repeatedly(void *arg) {
    sender *s = (sender *)arg;
    int i;
    for (i = 1; i <= ROUNDS; i++) {
        __atomic_store_n(&s->asked, i, __ATOMIC_SEQ_CST);
        evl_async_send(&s->p.a);
        while (__atomic_load_n(&s->answered, __ATOMIC_SEQ_CST) < i) sched_yield();
    }
    return NULL;
}

static void no_send_from_any_thread_is_lost(void) {
    evl_loop loop;
    int i, done;
    evl_time start = t_clock();
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < SENDERS; i++) {
        memset(&senders[i], 0, sizeof senders[i]);
        evl_async_init(&senders[i].p.a, answer);
        senders[i].p.a.data = &senders[i];
        CHECK_EQ(evl_async_start(&loop, &senders[i].p.a), 0);
    }
    for (i = 0; i < SENDERS; i++) t_thread_start(&senders[i].th, ask_repeatedly, &senders[i]);
    do {
        CHECK(evl_run(&loop, EVL_MS(100)) >= 0);
        for (done = 0, i = 0; i < SENDERS; i++) done += __atomic_load_n(&senders[i].answered, __ATOMIC_SEQ_CST) == ROUNDS;
        CHECK(t_clock() - start < EVL_SEC(t_slow ? 600 : 60));
    } while (done < SENDERS);
    for (i = 0; i < SENDERS; i++) {
        t_thread_join(&senders[i].th);
        CHECK(senders[i].p.calls >= 1 && senders[i].p.calls <= ROUNDS);
    }
    evl_deinit(&loop);
}

#if T_POSIX
static evl_async *async_for_handler;
#endif

#if T_POSIX
static void send_from_handler(int sig) {
    (void)sig;
    evl_async_send(async_for_handler);
}

static void send_from_a_signal_handler_wakes_the_loop(void) {
    evl_loop loop;
    poked p;
    struct sigaction sa;
    CHECK_EQ(evl_init(&loop), 0);
    start_poked(&loop, &p);
    async_for_handler = &p.a;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = send_from_handler;
    sigaction(SIGALRM, &sa, NULL);
    ualarm(20000, 0);                           /* arrives while the loop waits */
    CHECK(t_run_until(&loop, &p.calls, EVL_SEC(5)));
    evl_deinit(&loop);
}
#endif

static void async_unref_does_not_keep_the_loop_alive(void) {
    evl_loop loop;
    poked p;
    CHECK_EQ(evl_init(&loop), 0);
    start_poked(&loop, &p);
    evl_unref(&loop, &p.a);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    evl_deinit(&loop);
}

#if defined(EVLOOP_BACKEND_EPOLL) || defined(EVLOOP_BACKEND_POLL)   /* swaps the wake-up descriptor behind the loop's back */
/* A wake-up whose write failed (a full pipe elsewhere, EIO, a descriptor swapped behind the loop's
   back) must not leave the loop deaf: the next send writes again. */
typedef struct sent_count {
    evl_async a;
    int calls;
} sent_count;

static void count_call(evl_loop *loop, evl_async *a) {
    (void)loop;
    ((sent_count *)a)->calls++;
}

static void *send_later(void *arg) {
    evl_async_send((evl_async *)arg);
    return NULL;
}

static void a_failed_wake_up_write_does_not_disable_later_ones(void) {
    evl_loop loop;
    sent_count sc;
    t_thread th;
    int wakefd, saved, readonly = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK_EQ(evl_init(&loop), 0);
    evl_async_init(&sc.a, count_call);
    sc.calls = 0;
    CHECK_EQ(evl_async_start(&loop, &sc.a), 0);
    wakefd = loop.backend.wakefd;
    saved = dup(wakefd);
    CHECK(readonly >= 0 && saved >= 0);
    CHECK(dup2(readonly, wakefd) == wakefd);      /* writes to it now fail with EBADF */
    evl_async_send(&sc.a);
    CHECK(dup2(saved, wakefd) == wakefd);         /* the real wake-up descriptor again */
    t_thread_start(&th, send_later, &sc.a);       /* while the loop blocks */
    CHECK(t_run_until(&loop, &sc.calls, EVL_SEC(5)));
    t_thread_join(&th);
    close(saved);
    close(readonly);
    evl_deinit(&loop);
}

/* The one failure that is counted as sent: EAGAIN, which the wake-up descriptor gives only when it
   is full (an eventfd's counter at its maximum, a pipe's buffer), hence readable, so the loop wakes
   anyway.  Filled for real here, then a send must still run the callback, and a later send from
   another thread must still wake the loop. */
static void wake_up_write_that_finds_the_descriptor_full_still_wakes_the_loop(void) {
    evl_loop loop;
    sent_count sc;
    t_thread th;
    uint64_t most = UINT64_MAX - 1;             /* an eventfd's counter holds at most this */
    CHECK_EQ(evl_init(&loop), 0);
    evl_async_init(&sc.a, count_call);
    sc.calls = 0;
    CHECK_EQ(evl_async_start(&loop, &sc.a), 0);
    while (write(loop.backend.wakefd, &most, sizeof most) == (ssize_t)sizeof most) {
    }
    CHECK_EQ(errno, EAGAIN);                    /* full: the next wake-up write gets EAGAIN */
    evl_async_send(&sc.a);
    CHECK(t_run_until(&loop, &sc.calls, EVL_SEC(5)));
    CHECK_EQ(sc.calls, 1);
    sc.calls = 0;
    t_thread_start(&th, send_later, &sc.a);
    CHECK(t_run_until(&loop, &sc.calls, EVL_SEC(5)));
    t_thread_join(&th);
    evl_deinit(&loop);
}
#endif

const t_case async_tests[] = {
    T(send_from_the_loop_thread_calls_back),
    T(sends_before_the_callback_coalesce),
    T(send_during_the_callback_causes_another_call),
    T(send_to_a_stopped_async_is_ignored),
    T(no_send_from_any_thread_is_lost),
#if T_POSIX
    T(send_from_a_signal_handler_wakes_the_loop),
#endif
    T(async_unref_does_not_keep_the_loop_alive),
#if defined(EVLOOP_BACKEND_EPOLL) || defined(EVLOOP_BACKEND_POLL)
    T(a_failed_wake_up_write_does_not_disable_later_ones),
    T(wake_up_write_that_finds_the_descriptor_full_still_wakes_the_loop),
#endif
    T_END,
};
