/* Dispatch safety: a callback may stop, free or restart any watcher, including itself and those
   whose events are pending in the same batch, and may start new ones.  Watchers here live on the
   heap and are freed inside callbacks, so AddressSanitizer and valgrind see any later touch. */
#include "t.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- io ------------------------------------------------------------------------------------- */

typedef struct pal {
    evl_io w;
    struct pal **others;                        /* every watcher of the test, NULL once freed */
    int n, index;
    int *calls;
} pal;

static void free_all_others(evl_loop *loop, evl_io *w, unsigned revents) {
    pal *me = (pal *)w->data;
    int i;
    (void)revents;
    (*me->calls)++;
    for (i = 0; i < me->n; i++) {
        pal *o = me->others[i];
        if (!o || o == me) continue;
        evl_io_stop(loop, &o->w);
        memset(o, 0xAA, sizeof *o);             /* poison, then free: any later use shows */
        free(o);
        me->others[i] = NULL;
    }
}

static void stopping_pending_io_watchers_drops_their_events(void) {
    enum { N = 8 };
    evl_loop loop;
    pal *p[N];
    int fds[N][2], i, calls = 0;
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < N; i++) {
        t_pipe(fds[i]);
        p[i] = (pal *)calloc(1, sizeof *p[i]);
        evl_io_init(&p[i]->w, free_all_others, fds[i][0], EVL_READ);
        p[i]->w.data = p[i];
        p[i]->others = p;
        p[i]->n = N;
        p[i]->calls = &calls;
        CHECK_EQ(evl_io_start(&loop, &p[i]->w), 0);
        CHECK_EQ(write(fds[i][1], "x", 1), 1);  /* all ready in one batch */
    }
    CHECK(evl_run(&loop, 0) >= 0);
    CHECK_EQ(calls, 1);
    for (i = 0; i < N; i++)
        if (p[i]) {
            evl_io_stop(&loop, &p[i]->w);
            free(p[i]);
        }
    evl_deinit(&loop);
}

static void free_self(evl_loop *loop, evl_io *w, unsigned revents) {
    int *calls = (int *)w->data;
    (void)revents;
    (*calls)++;
    evl_io_stop(loop, w);
    memset(w, 0xAA, sizeof *w);
    free(w);
}

static void io_callback_may_free_its_own_watcher(void) {
    evl_loop loop;
    evl_io *w = (evl_io *)malloc(sizeof *w);
    int fds[2], calls = 0;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    evl_io_init(w, free_self, fds[0], EVL_READ);
    w->data = &calls;
    CHECK_EQ(evl_io_start(&loop, w), 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK_EQ(evl_run(&loop, EVL_SEC(2)), 0);
    CHECK_EQ(calls, 1);
    evl_deinit(&loop);
}

/* A callback stops a pending watcher and reuses its memory for a watcher on another, idle
   descriptor: the stale event must not reach the new watcher. */
typedef struct reuse {
    evl_io *victim;
    int idle_fd;
    int victim_calls, reused_calls, first_calls;
} reuse;

static reuse *the_reuse;

static void reused_cb(evl_loop *loop, evl_io *w, unsigned revents) {
    (void)loop;
    (void)w;
    (void)revents;
    the_reuse->reused_calls++;
}

static void victim_cb(evl_loop *loop, evl_io *w, unsigned revents) {
    (void)loop;
    (void)w;
    (void)revents;
    the_reuse->victim_calls++;
}

static void reuse_victim(evl_loop *loop, evl_io *w, unsigned revents) {
    reuse *r = the_reuse;
    (void)revents;
    evl_io_stop(loop, w);                       /* once is enough for the test */
    if (r->victim_calls) return;                /* the victim went first: nothing to test */
    r->first_calls++;
    evl_io_stop(loop, r->victim);
    evl_io_init(r->victim, reused_cb, r->idle_fd, EVL_READ);
    CHECK_EQ(evl_io_start(loop, r->victim), 0);
}

static void reused_watcher_memory_gets_no_stale_event(void) {
    evl_loop loop;
    evl_io a, b;
    reuse r;
    int p1[2], p2[2], idle[2], round;
    t_pipe(idle);
    for (round = 0; round < 2; round++) {
        /* The kernel orders the batch; try both orders so the interesting one happens. */
        memset(&r, 0, sizeof r);
        the_reuse = &r;
        CHECK_EQ(evl_init(&loop), 0);
        t_pipe(p1);
        t_pipe(p2);
        r.idle_fd = idle[0];
        evl_io_init(&a, reuse_victim, p1[0], EVL_READ);
        evl_io_init(&b, victim_cb, p2[0], EVL_READ);
        CHECK_EQ(evl_io_start(&loop, round ? &b : &a), 0);
        CHECK_EQ(evl_io_start(&loop, round ? &a : &b), 0);
        r.victim = &b;
        CHECK_EQ(write(p1[1], "x", 1), 1);
        CHECK_EQ(write(p2[1], "x", 1), 1);
        CHECK(evl_run(&loop, 0) >= 0);
        if (r.first_calls) {
            CHECK_EQ(r.victim_calls, 0);
            CHECK_EQ(r.reused_calls, 0);
        }
        evl_deinit(&loop);
        close(p1[0]), close(p1[1]), close(p2[0]), close(p2[1]);
    }
}

typedef struct narrow {
    evl_io reader, writer;
    int writer_calls, reader_calls;
} narrow;

static void narrow_writer(evl_loop *loop, evl_io *w, unsigned revents) {
    narrow *n = (narrow *)w->data;
    (void)revents;
    n->reader_calls++;
    CHECK_EQ(evl_io_set(loop, &n->writer, EVL_READ), 0);   /* no more interest in WRITE */
}

static void count_writer(evl_loop *loop, evl_io *w, unsigned revents) {
    narrow *n = (narrow *)w->data;
    (void)loop;
    if (revents & EVL_WRITE) n->writer_calls++;
}

static void narrowed_interest_is_respected_within_a_batch(void) {
    evl_loop loop;
    narrow n;
    int a[2], b[2];
    memset(&n, 0, sizeof n);
    CHECK_EQ(evl_init(&loop), 0);
    t_socketpair(SOCK_STREAM, a);
    t_socketpair(SOCK_STREAM, b);
    evl_io_init(&n.reader, narrow_writer, a[0], EVL_READ);
    evl_io_init(&n.writer, count_writer, b[0], EVL_WRITE);
    n.reader.data = n.writer.data = &n;
    CHECK_EQ(evl_io_start(&loop, &n.reader), 0);
    CHECK_EQ(evl_io_start(&loop, &n.writer), 0);
    CHECK_EQ(write(a[1], "x", 1), 1);
    CHECK(evl_run(&loop, 0) >= 0);
    CHECK_EQ(n.reader_calls, 1);
    /* if the writer came first in the batch it saw WRITE once; if second, never */
    CHECK(n.writer_calls <= 1);
    n.writer_calls = 0;
    CHECK(evl_run(&loop, 0) >= 0);
    CHECK_EQ(n.writer_calls, 0);
    evl_deinit(&loop);
}

static void start_in_callback(evl_loop *loop, evl_io *w, unsigned revents) {
    evl_io *other = (evl_io *)w->data;
    (void)revents;
    evl_io_stop(loop, w);
    CHECK_EQ(evl_io_start(loop, other), 0);
}

static void watchers_started_in_a_callback_work(void) {
    evl_loop loop;
    evl_io first, second;
    t_seen seen;
    int a[2], b[2];
    memset(&seen, 0, sizeof seen);
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(a);
    t_pipe(b);
    evl_io_init(&first, start_in_callback, a[0], EVL_READ);
    first.data = &second;
    evl_io_init(&second, t_record_io, b[0], EVL_READ);
    second.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &first), 0);
    CHECK_EQ(write(a[1], "x", 1), 1);
    CHECK_EQ(write(b[1], "x", 1), 1);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    evl_deinit(&loop);
}

static void stop_io_from_timer(evl_loop *loop, evl_timer *t) {
    evl_io *w = (evl_io *)t->data;
    evl_io_stop(loop, w);
    memset(w, 0xAA, sizeof *w);
    free(w);
}

static void timer_callback_may_free_an_io_watcher_with_a_pending_event(void) {
    evl_loop loop;
    evl_io *w = (evl_io *)malloc(sizeof *w);
    evl_timer t;
    t_seen seen;
    int fds[2];
    memset(&seen, 0, sizeof seen);
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    evl_io_init(w, t_record_io, fds[0], EVL_READ);
    w->data = &seen;
    CHECK_EQ(evl_io_start(&loop, w), 0);
    evl_timer_init(&t, stop_io_from_timer);
    t.data = w;
    evl_timer_start(&loop, &t, 0, 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);        /* the event and the timer come in one pass */
    CHECK_EQ(evl_run(&loop, 0), 0);
    CHECK_EQ(seen.calls, 0);
    evl_deinit(&loop);
}

/* ---- files ----------------------------------------------------------------------------------- */

#if T_POSIX
static void stop_next_file(evl_loop *loop, evl_io *w, unsigned revents) {
    pal *me = (pal *)w->data;
    (void)revents;
    (*me->calls)++;
    if (me->index + 1 < me->n && me->others[me->index + 1]) {
        evl_io_stop(loop, &me->others[me->index + 1]->w);
        free(me->others[me->index + 1]);
        me->others[me->index + 1] = NULL;
    }
}

static void always_ready_watchers_may_stop_each_other(void) {
    enum { N = 6 };
    evl_loop loop;
    pal *p[N];
    int i, calls = 0, fd[N];
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < N; i++) {
        fd[i] = open("/proc/self/status", 0);
        CHECK(fd[i] >= 0);
        p[i] = (pal *)calloc(1, sizeof *p[i]);
        evl_io_init(&p[i]->w, stop_next_file, fd[i], EVL_READ);
        p[i]->w.data = p[i];
        p[i]->others = p;
        p[i]->n = N;
        p[i]->index = i;
        p[i]->calls = &calls;
        CHECK_EQ(evl_io_start(&loop, &p[i]->w), 0);
    }
    CHECK_EQ(evl_run(&loop, 0), N / 2);         /* 0 stops 1, 2 stops 3, 4 stops 5 */
    CHECK_EQ(calls, N / 2);
    for (i = 0; i < N; i++)
        if (p[i]) {
            evl_io_stop(&loop, &p[i]->w);
            free(p[i]);
        }
    evl_deinit(&loop);
}
#endif

/* ---- timers ---------------------------------------------------------------------------------- */

typedef struct tpal {
    evl_timer t;
    struct tpal **all;
    int n;
    int *calls;
} tpal;

static void timer_frees_everyone(evl_loop *loop, evl_timer *t) {
    tpal *me = (tpal *)t->data;
    int i;
    (*me->calls)++;
    for (i = 0; i < me->n; i++) {
        if (!me->all[i]) continue;
        evl_timer_stop(loop, &me->all[i]->t);
        if (me->all[i] == me) {
            me->all[i] = NULL;
            continue;                           /* freed last, below */
        }
        memset(me->all[i], 0xAA, sizeof *me->all[i]);
        free(me->all[i]);
        me->all[i] = NULL;
    }
    memset(me, 0xAA, sizeof *me);
    free(me);
}

static void timer_callback_may_free_timers_due_in_the_same_iteration(void) {
    enum { N = 10 };
    evl_loop loop;
    tpal *p[N];
    int i, calls = 0;
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < N; i++) {
        p[i] = (tpal *)calloc(1, sizeof *p[i]);
        evl_timer_init(&p[i]->t, timer_frees_everyone);
        p[i]->t.data = p[i];
        p[i]->all = p;
        p[i]->n = N;
        p[i]->calls = &calls;
        evl_timer_start(&loop, &p[i]->t, 0, i % 2 ? EVL_MS(1) : 0);   /* some repeating */
    }
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(calls, 1);
    evl_deinit(&loop);
}

static void restart_self_in_callback(evl_loop *loop, evl_timer *t) {
    int *calls = (int *)t->data;
    if (++*calls < 5) evl_timer_start(loop, t, 0, 0);
}

static void timer_may_restart_itself_in_its_callback(void) {
    evl_loop loop;
    evl_timer t;
    int calls = 0;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, restart_self_in_callback);
    t.data = &calls;
    evl_timer_start(&loop, &t, 0, EVL_SEC(100));    /* repeating, restarted as one-shot */
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(calls, 5);
    evl_deinit(&loop);
}

/* ---- hooks, signals, asyncs ------------------------------------------------------------------- */

typedef struct hpal {
    evl_hook h;
    struct hpal **all;
    int n, index;
    int *calls;
    evl_hook *added;
} hpal;

static void hook_count(evl_loop *loop, evl_hook *h) {
    hpal *me = (hpal *)h->data;
    (void)loop;
    (*me->calls)++;
}

static void hook_stops_next_and_adds_one(evl_loop *loop, evl_hook *h) {
    hpal *me = (hpal *)h->data;
    (*me->calls)++;
    if (me->index + 1 < me->n && me->all[me->index + 1]) {
        evl_hook_stop(loop, &me->all[me->index + 1]->h);
        free(me->all[me->index + 1]);
        me->all[me->index + 1] = NULL;
    }
    if (me->added) {
        evl_hook_start(loop, me->added);        /* runs from the next iteration on */
        me->added = NULL;
    }
    evl_hook_stop(loop, h);
}

static void hooks_may_stop_each_other_and_start_new_ones(void) {
    enum { N = 6 };
    evl_loop loop;
    hpal *p[N], extra;
    int i, calls = 0, extra_calls = 0;
    CHECK_EQ(evl_init(&loop), 0);
    memset(&extra, 0, sizeof extra);
    evl_hook_init(&extra.h, hook_count, EVL_PREPARE);
    extra.h.data = &extra;
    extra.calls = &extra_calls;
    for (i = 0; i < N; i++) {
        p[i] = (hpal *)calloc(1, sizeof *p[i]);
        evl_hook_init(&p[i]->h, hook_stops_next_and_adds_one, EVL_PREPARE);
        p[i]->h.data = p[i];
        p[i]->all = p;
        p[i]->n = N;
        p[i]->index = i;
        p[i]->calls = &calls;
        p[i]->added = i == 0 ? &extra.h : NULL;
        evl_hook_start(&loop, &p[i]->h);
    }
    CHECK_EQ(evl_run(&loop, 0), 1);             /* only extra is left */
    CHECK_EQ(calls, N / 2);
    CHECK_EQ(extra_calls, 0);
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(extra_calls, 1);
    for (i = 0; i < N; i++) free(p[i]);
    evl_deinit(&loop);
}

typedef struct spal {
    evl_signal s;
    struct spal *other;
    int calls;
} spal;

#if T_POSIX
static spal *signal_survivor;

static void signal_frees_other(evl_loop *loop, evl_signal *s, int signum) {
    spal *me = (spal *)s->data;
    (void)signum;
    me->calls++;
    signal_survivor = me;
    if (me->other) {
        spal *o = me->other;
        evl_signal_stop(loop, &o->s);
        o->other->other = NULL;
        me->other = NULL;
        memset(o, 0xAA, sizeof *o);
        free(o);
    }
}

static void signal_callback_may_free_a_pending_watcher(void) {
    evl_loop loop;
    spal *a = (spal *)calloc(1, sizeof *a), *b = (spal *)calloc(1, sizeof *b), *survivor;
    CHECK_EQ(evl_init(&loop), 0);
    a->other = b;
    b->other = a;
    evl_signal_init(&a->s, signal_frees_other, SIGUSR1);
    evl_signal_init(&b->s, signal_frees_other, SIGUSR1);
    a->s.data = a;
    b->s.data = b;
    CHECK_EQ(evl_signal_start(&loop, &a->s), 0);
    CHECK_EQ(evl_signal_start(&loop, &b->s), 0);
    raise(SIGUSR1);                             /* both pending at once */
    CHECK_EQ(evl_run(&loop, 0), 1);
    survivor = signal_survivor;
    CHECK(survivor != NULL);
    CHECK_EQ(survivor->calls, 1);
    evl_signal_stop(&loop, &survivor->s);
    free(survivor);
    evl_deinit(&loop);
}
#endif

typedef struct apal {
    evl_async a;
    struct apal *other;
    int calls;
} apal;

static apal *async_survivor;

static void async_frees_other(evl_loop *loop, evl_async *a) {
    apal *me = (apal *)a->data;
    me->calls++;
    async_survivor = me;
    if (me->other) {
        apal *o = me->other;
        evl_async_stop(loop, &o->a);
        o->other->other = NULL;
        me->other = NULL;
        memset(o, 0xAA, sizeof *o);
        free(o);
    }
}

static void async_callback_may_free_a_sent_async(void) {
    evl_loop loop;
    apal *a = (apal *)calloc(1, sizeof *a), *b = (apal *)calloc(1, sizeof *b), *survivor;
    CHECK_EQ(evl_init(&loop), 0);
    a->other = b;
    b->other = a;
    evl_async_init(&a->a, async_frees_other);
    evl_async_init(&b->a, async_frees_other);
    a->a.data = a;
    b->a.data = b;
    CHECK_EQ(evl_async_start(&loop, &a->a), 0);
    CHECK_EQ(evl_async_start(&loop, &b->a), 0);
    evl_async_send(&a->a);
    evl_async_send(&b->a);
    CHECK_EQ(evl_run(&loop, 0), 1);
    survivor = async_survivor;
    CHECK(survivor != NULL);
    CHECK_EQ(survivor->calls, 1);
    evl_async_stop(&loop, &survivor->a);
    free(survivor);
    evl_deinit(&loop);
}

#if T_POSIX
static void child_frees_itself(evl_loop *loop, evl_child *c, int status) {
    int *calls = (int *)c->data;
    (void)loop;
    (void)status;
    (*calls)++;
    memset(c, 0xAA, sizeof *c);
    free(c);
}

static void child_callback_may_free_its_watcher(void) {
    evl_loop loop;
    evl_child *c = (evl_child *)malloc(sizeof *c);
    int calls = 0;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(0);
    CHECK_EQ(evl_init(&loop), 0);
    evl_child_init(c, child_frees_itself, pid);
    c->data = &calls;
    CHECK_EQ(evl_child_start(&loop, c), 0);
    CHECK_EQ(evl_run(&loop, EVL_SEC(10)), 0);
    CHECK_EQ(calls, 1);
    evl_deinit(&loop);
}
#endif

const t_case safety_tests[] = {
    T(stopping_pending_io_watchers_drops_their_events),
    T(io_callback_may_free_its_own_watcher),
    T(reused_watcher_memory_gets_no_stale_event),
    T(narrowed_interest_is_respected_within_a_batch),
    T(watchers_started_in_a_callback_work),
    T(timer_callback_may_free_an_io_watcher_with_a_pending_event),
#if T_POSIX
    T(always_ready_watchers_may_stop_each_other),
#endif
    T(timer_callback_may_free_timers_due_in_the_same_iteration),
    T(timer_may_restart_itself_in_its_callback),
    T(hooks_may_stop_each_other_and_start_new_ones),
#if T_POSIX
    T(signal_callback_may_free_a_pending_watcher),
#endif
    T(async_callback_may_free_a_sent_async),
#if T_POSIX
    T(child_callback_may_free_its_watcher),
#endif
    T_END,
};
