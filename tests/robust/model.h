/* model.h - the model-based driver shared by the random tester (model.c) and the fuzz target
   (fuzz_model.c).

   An input is a sequence of 4-byte operations {code, slot, a, b}.  The driver applies each to the
   real loop and to a small reference model of what the loop must do, and checks every callback
   against the model as it happens:
     timers    fire only while active, never before their deadline (on the loop's clock and the
               real one), in deadline order within an iteration, equal deadlines in start order;
               every timer due when an iteration began has fired by its end
     io        a callback reports only events of the current interest that the descriptor had at
               some moment since the iteration began; a descriptor ready all through an iteration
               is reported in it
     signals   a watcher is called no more often than its signal was raised since it started
               (deliveries coalesce), and one raised before an iteration began is delivered in it
     asyncs    the same with evl_async_send
     hooks     called only while active; a prepare hook active when the iteration began is called
     children  called once, after the exit, with the status the process exited with
     fibers    a sleep never ends early; evl_wait on a descriptor (watched by an io watcher too,
               often) reports it readable only if it had data, and times out neither early nor
               while data stayed; each fiber finishes and its done callback runs once
     the loop  evl_run returns the number of referenced active watchers; nested evl_run is -EBUSY
   Operations flagged "in a callback" wait in a queue that the next callbacks (and fibers) take
   from, so everything is also done from inside callbacks: stop, restart or free the watcher being
   called, or any other.  Memory of a freed watcher is returned to malloc at once (ASan sees any
   later touch).  A failed check prints what and where, and exits with status 1. */
#ifndef EVL_MODEL_H
#define EVL_MODEL_H

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Operations ---------------------------------------------------------------------------- */

enum {
    OP_TIMER_INIT, OP_TIMER_START, OP_TIMER_START_AT, OP_TIMER_AGAIN, OP_TIMER_STOP, OP_TIMER_FREE,
    OP_IO_INIT, OP_IO_START, OP_IO_STOP, OP_IO_SET, OP_IO_RESET, OP_IO_FREE,
    OP_SIG_INIT, OP_SIG_START, OP_SIG_STOP, OP_SIG_FREE, OP_RAISE,
    OP_ASYNC_INIT, OP_ASYNC_START, OP_ASYNC_STOP, OP_ASYNC_SEND, OP_ASYNC_FREE,
    OP_HOOK_INIT, OP_HOOK_START, OP_HOOK_STOP, OP_HOOK_FREE,
    OP_CHILD_SPAWN, OP_CHILD_START, OP_CHILD_STOP, OP_CHILD_FREE,
    OP_FIBER_START,
    OP_WRITE, OP_READ, OP_REF, OP_UNREF, OP_RUN, OP_LOOP_STOP, OP_DUMP,
    OP_COUNT
};

static const char *const m_op_names[OP_COUNT] = {
    "timer_init", "timer_start", "timer_start_at", "timer_again", "timer_stop", "timer_free",
    "io_init", "io_start", "io_stop", "io_set", "io_reset", "io_free",
    "signal_init", "signal_start", "signal_stop", "signal_free", "raise",
    "async_init", "async_start", "async_stop", "async_send", "async_free",
    "hook_init", "hook_start", "hook_stop", "hook_free",
    "child_spawn", "child_start", "child_stop", "child_free",
    "fiber_start",
    "write", "read", "ref", "unref", "run", "loop_stop", "dump"};

#define M_IN_CALLBACK 0x80          /* flag in the code byte: queue it for the next callback */
#define M_OP_SIZE 4

typedef struct m_op {
    unsigned char code, slot, a, b;
} m_op;

/* ---- The model ----------------------------------------------------------------------------- */

#define M_TIMERS 8
#define M_FDS 6                     /* pipe 0 (read, write), pipe 1 (read, write), a socketpair */
#define M_SIGS 4
#define M_ASYNCS 3
#define M_HOOKS 4
#define M_CHILDREN 2
#define M_FIBERS 3
#define M_QUEUE 64

typedef struct m_timer {
    evl_timer *t;                   /* NULL: freed (or never allocated) */
    int active, unref;
    evl_time lo, hi;                /* the deadline lies in [lo, hi] (equal when known exactly) */
    uint64_t seq;                   /* when it was last put in the wheel: ties fire in this order */
    unsigned due_gen;               /* due when iteration due_gen began */
} m_timer;

typedef struct m_io {
    evl_io *w;
    int active, unref, inited;
    unsigned events;                /* the interest */
    unsigned touched_gen;           /* started or changed in this iteration */
    unsigned seen;                  /* events reported in the current iteration */
} m_io;

typedef struct m_fd {
    int fd, peer;                   /* peer: the descriptor whose writes this one reads */
    int readable_end, writable_end;
    long buffered;                  /* bytes waiting to be read from fd */
    unsigned long writes, drains;   /* writes into it, times it was read empty: for fiber waits */
    int fiber_waits;                /* fibers in evl_wait on it: one may hold its registration */
    int may_read;                   /* had data at some moment since the iteration began */
    int always_read;                /* had data all through the iteration */
} m_fd;

typedef struct m_flagged {          /* signals, asyncs, hooks: one shape */
    void *w;
    int active, unref, inited;
    int arg;                        /* signal number, or hook phase */
    int raised;                     /* a delivery is owed: raised or sent since the last call */
    long credit;                    /* raises or sends since the start not yet answered: a call
                                       covers all before it, but one caught during a walk may
                                       bring one more call after it, never more calls than those */
    unsigned due_gen;               /* owed when iteration due_gen began */
    int called;                     /* called since the snapshot */
} m_flagged;

typedef struct m_child {
    evl_child *c;
    int active, unref, inited;
    pid_t pid;                      /* 0: none */
    int code;                       /* what it exits with */
    int reaped;                     /* the loop reaped it */
} m_child;

typedef struct m_fiber {
    evl_fiber *f;
    int live, returned, done_calls;
    unsigned char steps, pattern;
} m_fiber;

typedef struct m_stats {            /* what a run did; kept in shared memory by model.c */
    unsigned long long ops, ops_in_callbacks, callbacks, checks, timers_fired, io_calls, signals, asyncs, children,
        fibers;
    unsigned long long sequences;
} m_stats;

typedef struct m_state {
    evl_loop loop;
    evl_hook our_prepare, our_check;
    m_timer timers[M_TIMERS];
    m_io ios[M_FDS];
    m_fd fds[M_FDS];
    m_flagged sigs[M_SIGS], asyncs[M_ASYNCS], hooks[M_HOOKS];
    m_child children[M_CHILDREN];
    m_fiber fibers[M_FIBERS];
    m_op queue[M_QUEUE];
    int queue_head, queue_len;
    unsigned gen;                   /* iterations begun */
    int in_iteration;               /* between our prepare and our check hook */
    int stop_gen_requested;         /* evl_stop called in iteration gen: liveness not owed */
    unsigned check_hooks_gen;       /* check hooks owed a call since our check hook of this gen */
    int in_callback;
    int fuzzing;                    /* short runs, no children */
    evl_time anchor;                /* base of evl_timer_start_at deadlines */
    uint64_t seq;
    int last_fired;                 /* timer fired last in this iteration, or -1 */
    evl_time last_lo, last_hi;
    uint64_t last_seq;
    long op_index;                  /* for the messages */
    m_stats *stats;
} m_state;

static m_state *m_s;

static void m_fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "model: op %ld: ", m_s ? m_s->op_index : -1L);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    if (m_s && m_s->fuzzing) abort();   /* libFuzzer keeps the input of a crash */
    _exit(1);
}

#define M_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (m_s->stats) m_s->stats->checks++;                                                      \
        if (!(cond)) m_fail(__VA_ARGS__);                                                          \
    } while (0)

static evl_time m_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (evl_time)ts.tv_sec * 1000000000u + (evl_time)ts.tv_nsec;
}

/* Durations from one byte: mostly short, some zero, a few up to ~2 ms. */
static evl_time m_duration(unsigned char x) {
    if (x < 32) return 0;
    if (x < 160) return EVL_US(x - 31);
    return EVL_US((evl_time)(x - 159) * 20u);
}

static const int m_signums[3] = {SIGUSR1, SIGUSR2, SIGWINCH};

/* ---- Reference counting ----------------------------------------------------------------------- */

static int m_expected_refs(void) {
    int n = 0, i;
    for (i = 0; i < M_TIMERS; i++) n += m_s->timers[i].active && !m_s->timers[i].unref;
    for (i = 0; i < M_FDS; i++) n += m_s->ios[i].active && !m_s->ios[i].unref;
    for (i = 0; i < M_SIGS; i++) n += m_s->sigs[i].active && !m_s->sigs[i].unref;
    for (i = 0; i < M_ASYNCS; i++) n += m_s->asyncs[i].active && !m_s->asyncs[i].unref;
    for (i = 0; i < M_HOOKS; i++) n += m_s->hooks[i].active && !m_s->hooks[i].unref;
    for (i = 0; i < M_CHILDREN; i++) n += m_s->children[i].active && !m_s->children[i].unref;
    for (i = 0; i < M_FIBERS; i++) n += m_s->fibers[i].live && !m_s->fibers[i].returned;
    return n;
}

/* ---- Callbacks ------------------------------------------------------------------------------- */

static void m_apply(m_op op);

/* Every callback (and fiber step) takes the next queued operation, if any, and sometimes two. */
static void m_take_queued(void) {
    int k;
    for (k = 0; k < 2 && m_s->queue_len > 0; k++) {
        m_op op = m_s->queue[m_s->queue_head];
        m_s->queue_head = (m_s->queue_head + 1) % M_QUEUE;
        m_s->queue_len--;
        if (m_s->stats) m_s->stats->ops_in_callbacks++;
        m_apply(op);
        if (!(op.a & 1)) break;
    }
}

static void m_enter_callback(evl_loop *loop) {
    M_CHECK(loop == &m_s->loop, "callback with the wrong loop");
    M_CHECK(m_s->in_iteration, "callback outside an iteration (before our prepare hook)");
    if (m_s->stats) m_s->stats->callbacks++;
#if EVLOOP_HAS_FIBERS
    M_CHECK(evl_fiber_self() == NULL, "a callback runs inside a fiber");
#endif
}

static void m_on_timer(evl_loop *loop, evl_timer *t) {
    m_timer *m = (m_timer *)t->data;
    evl_time now = evl_now(loop), clock = m_clock();
    int i = (int)(m - m_s->timers);
    m_enter_callback(loop);
    M_CHECK(m->t == t && m->active, "timer %d called while inactive", i);
    M_CHECK(now >= m->lo, "timer %d early on the loop clock: now %llu < deadline %llu", i, (unsigned long long)now,
            (unsigned long long)m->lo);
    M_CHECK(clock >= m->lo, "timer %d early on the real clock by %llu ns", i, (unsigned long long)(m->lo - clock));
    if (m_s->last_fired >= 0) {
        /* after the previous one of this iteration: not certainly earlier, and a tie in start order */
        M_CHECK(m->hi >= m_s->last_lo, "timer %d (deadline <= %llu) fired after one due at >= %llu", i,
                (unsigned long long)m->hi, (unsigned long long)m_s->last_lo);
        if (m->lo == m->hi && m_s->last_lo == m_s->last_hi && m->lo == m_s->last_lo)
            M_CHECK(m->seq > m_s->last_seq, "timer %d with an equal deadline fired before one started earlier", i);
    }
    m_s->last_fired = i;
    m_s->last_lo = m->lo;
    m_s->last_hi = m->hi;
    m_s->last_seq = m->seq;
    m->due_gen = 0;
    if (m_s->stats) m_s->stats->timers_fired++;
    if (t->repeat) {
        /* re-armed before the call: previous deadline + repeat, or now + repeat if that is past */
        evl_time r = t->repeat;
        if (m->hi + r < now) m->lo = m->hi = now + r;
        else if (m->lo + r >= now) m->lo += r, m->hi += r;
        else m->lo = now, m->hi = (m->hi > now ? m->hi : now) + r;
        m->seq = ++m_s->seq;
        M_CHECK(evl_timer_active(t), "repeating timer %d not active in its callback", i);
    } else {
        m->active = 0;
        M_CHECK(!evl_timer_active(t), "one-shot timer %d still active in its callback", i);
    }
    m_take_queued();
}

static void m_on_io(evl_loop *loop, evl_io *w, unsigned revents) {
    m_io *m = (m_io *)w->data;
    int i = (int)(m - m_s->ios);
    m_fd *fd = &m_s->fds[i];
    m_enter_callback(loop);
    if (m_s->stats) m_s->stats->io_calls++;
    M_CHECK(m->w == w && m->active, "io %d called while inactive", i);
    M_CHECK(revents != 0, "io %d called with no event", i);
    M_CHECK((revents & ~(m->events | EVL_ERROR | EVL_HUP)) == 0, "io %d: events %#x outside the interest %#x", i,
            revents, m->events);
    M_CHECK(!(revents & (EVL_ERROR | EVL_HUP)), "io %d: error or hang-up %#x on a healthy descriptor", i, revents);
    if (revents & EVL_READ) M_CHECK(fd->may_read, "io %d: readable reported, nothing was there to read", i);
    if (revents & EVL_WRITE) M_CHECK(fd->writable_end, "io %d: writable reported on a read-only end", i);
    m->seen |= revents;
    m_take_queued();
}

static void m_note(const char *what, int i);

static void m_on_flagged(evl_loop *loop, m_flagged *m, void *w, const char *what, int i) {
    m_note(what, i);
    m_enter_callback(loop);
    M_CHECK(m->w == w && m->active, "%s %d called while inactive", what, i);
    M_CHECK(m->credit > 0, "%s %d called more often than raised or sent since it started", what, i);
    m->credit--;
    m->raised = 0;
    m->due_gen = 0;
    m->called = 1;
    m_take_queued();
}

static void m_on_signal(evl_loop *loop, evl_signal *s, int signum) {
    m_flagged *m = (m_flagged *)s->data;
    M_CHECK(signum == m->arg, "signal watcher got %d, watches %d", signum, m->arg);
    if (m_s->stats) m_s->stats->signals++;
    m_on_flagged(loop, m, s, "signal", (int)(m - m_s->sigs));
}

static void m_on_async(evl_loop *loop, evl_async *a) {
    m_flagged *m = (m_flagged *)a->data;
    if (m_s->stats) m_s->stats->asyncs++;
    m_on_flagged(loop, m, a, "async", (int)(m - m_s->asyncs));
}

static void m_on_hook(evl_loop *loop, evl_hook *h) {
    m_flagged *m = (m_flagged *)h->data;
    int i = (int)(m - m_s->hooks);
    m_enter_callback(loop);
    M_CHECK(m->w == h && m->active, "hook %d called while inactive", i);
    m->called = 1;
    m->due_gen = 0;
    m_take_queued();
}

static void m_on_child(evl_loop *loop, evl_child *c, int status) {
    m_child *m = (m_child *)c->data;
    int i = (int)(m - m_s->children);
    m_enter_callback(loop);
    if (m_s->stats) m_s->stats->children++;
    M_CHECK(m->c == c && m->active, "child watcher %d called while inactive", i);
    M_CHECK(!evl__linked(&c->link), "child watcher %d still active in its callback", i);
    M_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == m->code, "child %d: status %#x, exited with %d", i, status,
            m->code);
    m->active = 0;
    m->reaped = 1;
    m_take_queued();
}

/* Our own hooks, started first: they mark where an iteration begins and ends. */
static void m_iteration_begins(evl_loop *loop, evl_hook *h) {
    int i;
    (void)h;
    (void)loop;
    m_s->gen++;
    m_s->in_iteration = 1;
    m_s->last_fired = -1;
    /* check hooks that were owed a call at the end of the last iteration */
    if (m_s->check_hooks_gen && m_s->stop_gen_requested != (int)m_s->check_hooks_gen)
        for (i = 0; i < M_HOOKS; i++)
            if (m_s->hooks[i].due_gen == m_s->check_hooks_gen)
                M_CHECK(m_s->hooks[i].called, "check hook %d active through an iteration was not called", i);
    m_s->check_hooks_gen = 0;
    for (i = 0; i < M_TIMERS; i++) {
        m_timer *m = &m_s->timers[i];
        m->due_gen = m->active && m->hi <= evl_now(loop) ? m_s->gen : 0;
    }
    for (i = 0; i < M_FDS; i++) {
        m_fd *fd = &m_s->fds[i];
        fd->may_read = fd->always_read = fd->readable_end && fd->buffered > 0;
        m_s->ios[i].seen = 0;
    }
    for (i = 0; i < M_SIGS; i++) m_s->sigs[i].due_gen = m_s->sigs[i].active && m_s->sigs[i].raised ? m_s->gen : 0;
    for (i = 0; i < M_ASYNCS; i++)
        m_s->asyncs[i].due_gen = m_s->asyncs[i].active && m_s->asyncs[i].raised ? m_s->gen : 0;
    for (i = 0; i < M_HOOKS; i++) {
        m_flagged *m = &m_s->hooks[i];
        m->called = 0;
        m->due_gen = m->active && m->arg == EVL_PREPARE ? m_s->gen : 0;
    }
}

static void m_iteration_ends(evl_loop *loop, evl_hook *h) {
    int i;
    unsigned g = m_s->gen;
    (void)h;
    (void)loop;
    if (m_s->stop_gen_requested == (int)g) return;   /* (not reached: a stop ends the iteration first) */
    m_s->in_iteration = 0;
    for (i = 0; i < M_TIMERS; i++)
        M_CHECK(m_s->timers[i].due_gen != g, "timer %d was due when the iteration began and has not fired (deadline %llu, model [%llu, %llu], now %llu, wheel tick %llu next %llu, active %d)", i,
                m_s->timers[i].t ? (unsigned long long)m_s->timers[i].t->deadline : 0ull, (unsigned long long)m_s->timers[i].lo, (unsigned long long)m_s->timers[i].hi,
                (unsigned long long)evl_now(loop), (unsigned long long)(loop->wheel.tick << 10), (unsigned long long)loop->wheel.next, m_s->timers[i].t ? evl_timer_active(m_s->timers[i].t) : -1);
    for (i = 0; i < M_FDS; i++) {
        m_io *m = &m_s->ios[i];
        m_fd *fd = &m_s->fds[i];
        if (!m->active || m->touched_gen == g) continue;
        if ((m->events & EVL_READ) && fd->always_read)
            M_CHECK(m->seen & EVL_READ, "io %d: readable through the iteration, not reported", i);
        if ((m->events & EVL_WRITE) && fd->writable_end)
            M_CHECK(m->seen & EVL_WRITE, "io %d: writable through the iteration, not reported", i);
    }
    for (i = 0; i < M_SIGS; i++)
        M_CHECK(m_s->sigs[i].due_gen != g, "signal watcher %d: raised before the iteration, not called in it", i);
    for (i = 0; i < M_ASYNCS; i++)
        M_CHECK(m_s->asyncs[i].due_gen != g, "async %d: sent before the iteration, not called in it", i);
    for (i = 0; i < M_HOOKS; i++) {
        m_flagged *m = &m_s->hooks[i];
        M_CHECK(m->due_gen != g, "prepare hook %d active when the iteration began was not called", i);
        m->called = 0;
        m->due_gen = m->active && m->arg == EVL_CHECK ? g : 0;
    }
    m_s->check_hooks_gen = g;
    m_s->in_iteration = 1;          /* the user's check hooks come after this one */
}

/* ---- Fibers ---------------------------------------------------------------------------------- */

#if EVLOOP_HAS_FIBERS
static void m_note(const char *what, int i);

/* evl_wait for a readable end (often one an io watcher also watches: the library then waits on a
   duplicate): readable only if data was there or came, a timeout never early and never while data
   stayed there all along. */
static void m_fiber_wait(int i, int fd_index, evl_time d) {
    m_fd *fd = &m_s->fds[fd_index];
    unsigned long writes = fd->writes, drains = fd->drains;
    long buffered = fd->buffered;
    evl_time before = m_clock();
    int rc;
    m_note("fiber wait begins, fiber", i);
    m_note("  descriptor", fd_index);
    m_note("  buffered", (int)buffered);
    m_note("  timeout us", (int)(d / 1000));
    fd->fiber_waits++;
    rc = evl_wait(fd->fd, EVL_READ, d);
    fd->fiber_waits--;
    m_note("fiber wait returns", rc);
    if (rc > 0) {
        M_CHECK(rc == EVL_READ, "fiber %d: evl_wait on descriptor %d returned %#x", i, fd_index, rc);
        M_CHECK(buffered > 0 || fd->writes != writes, "fiber %d: descriptor %d readable with nothing written", i,
                fd_index);
    } else {
        M_CHECK(rc == -ETIMEDOUT, "fiber %d: evl_wait on descriptor %d returned %d", i, fd_index, rc);
        M_CHECK(m_clock() >= before + d, "fiber %d: evl_wait timed out early", i);
        M_CHECK(buffered == 0 || fd->drains != drains, "fiber %d: evl_wait timed out on readable descriptor %d", i,
                fd_index);
    }
}

static void m_fiber_main(void *arg) {
    static const int readable[4] = {0, 2, 4, 5};
    m_fiber *m = (m_fiber *)arg;
    int i = (int)(m - m_s->fibers), k;
    M_CHECK(evl_fiber_self() == m->f, "fiber %d: evl_fiber_self is not the fiber", i);
    for (k = 0; k < m->steps; k++) {
        int kind = m->pattern >> (2 * k) & 3;
        evl_time d = m_duration((unsigned char)(m->pattern * 37u + (unsigned)k * 11u + m->steps));
        if (kind == 3) {
            m_fiber_wait(i, readable[(m->steps + k) % 4], d);
        } else if (kind != 0) {
            evl_time before = m_clock();
            int rc = evl_sleep(d);
            M_CHECK(rc == 0, "fiber %d: evl_sleep returned %d", i, rc);
            M_CHECK(m_clock() >= before + d, "fiber %d: a sleep of %llu ns ended early", i, (unsigned long long)d);
        } else {
            int rc = evl_yield();
            M_CHECK(rc == 0, "fiber %d: evl_yield returned %d", i, rc);
        }
        M_CHECK(evl_fiber_self() == m->f, "fiber %d resumed as another", i);
        m_take_queued();
    }
    m->returned = 1;
}

static void m_fiber_done(evl_loop *loop, evl_fiber *f) {
    m_fiber *m = (m_fiber *)f->data;
    int i = (int)(m - m_s->fibers);
    M_CHECK(loop == &m_s->loop, "fiber done callback with the wrong loop");
    M_CHECK(m->f == f && m->live && m->returned, "fiber %d: done callback before it returned", i);
    M_CHECK(++m->done_calls == 1, "fiber %d: done callback called twice", i);
    M_CHECK(evl_fiber_done(f), "fiber %d: evl_fiber_done is 0 in its done callback", i);
    if (m_s->stats) m_s->stats->fibers++;
    m->live = 0;
}
#endif

/* ---- Operations on the model and the loop ---------------------------------------------------- */

static void m_check_timer_state(int i) {
    m_timer *m = &m_s->timers[i];
    if (!m->t) return;
    M_CHECK(evl_timer_active(m->t) == m->active, "timer %d: evl_timer_active is %d, model says %d", i,
            evl_timer_active(m->t), m->active);
    if (m->active) {
        evl_time now = evl_now(&m_s->loop), rem = evl_timer_remaining(&m_s->loop, m->t);
        evl_time lo = m->lo > now ? m->lo - now : 0, hi = m->hi > now ? m->hi - now : 0;
        M_CHECK(rem >= lo && rem <= hi, "timer %d: remaining %llu outside [%llu, %llu]", i, (unsigned long long)rem,
                (unsigned long long)lo, (unsigned long long)hi);
    }
}

static void m_timer_started(m_timer *m, evl_time lo, evl_time hi) {
    m->active = 1;
    m->lo = lo;
    m->hi = hi;
    m->seq = ++m_s->seq;
    m->due_gen = 0;
}

static void m_timer_op(m_op op) {
    int i = op.slot % M_TIMERS;
    m_timer *m = &m_s->timers[i];
    evl_loop *loop = &m_s->loop;
    if (op.code == OP_TIMER_INIT) {
        if (m->t && m->active) return;          /* initialising an active one is misuse */
        if (!m->t) m->t = (evl_timer *)malloc(sizeof *m->t);
        evl_timer_init(m->t, m_on_timer);
        m->t->data = m;
        if (m->unref) evl_unref(loop, m->t);
        return;
    }
    if (!m->t) return;
    switch (op.code) {
    case OP_TIMER_START: {
        evl_time after = m_duration(op.a), repeat = op.b & 1 ? m_duration(op.b) : 0, before = m_clock();
        evl_timer_start(loop, m->t, after, repeat);
        m_timer_started(m, before + after, m_clock() + after);
        break;
    }
    case OP_TIMER_START_AT: {
        evl_time deadline = m_s->anchor + EVL_US(op.a % 16u) * 50u;   /* often equal: ties */
        evl_timer_start_at(loop, m->t, deadline, op.b & 1 ? m_duration(op.b) : 0);
        m_timer_started(m, deadline, deadline);
        break;
    }
    case OP_TIMER_AGAIN: {
        evl_time before = m_clock(), repeat;
        m->t->repeat = op.a & 1 ? m_duration(op.b) : m->t->repeat;
        repeat = m->t->repeat;
        evl_timer_again(loop, m->t);
        if (repeat) m_timer_started(m, before + repeat, m_clock() + repeat);
        else m->active = 0;
        break;
    }
    case OP_TIMER_STOP:
        evl_timer_stop(loop, m->t);
        m->active = 0;
        break;
    case OP_TIMER_FREE:
        evl_timer_stop(loop, m->t);
        free(m->t);
        m->t = NULL;
        m->active = 0;
        m->due_gen = 0;
        return;
    }
    if (m->active == 0) m->due_gen = 0;
    m_check_timer_state(i);
}

static unsigned m_io_events(int i, unsigned char x) {
    const m_fd *fd = &m_s->fds[i];
    unsigned e = 0;
    if (fd->readable_end && (x & 1)) e |= EVL_READ;
    if (fd->writable_end && (x & 2)) e |= EVL_WRITE;
    if (!e) e = fd->readable_end ? EVL_READ : EVL_WRITE;
    return e;
}

static void m_io_op(m_op op) {
    int i = op.slot % M_FDS, rc;
    m_io *m = &m_s->ios[i];
    evl_loop *loop = &m_s->loop;
    unsigned events = m_io_events(i, op.a);
    if (op.code == OP_IO_INIT) {
        if (m->w && m->active) return;
        if (!m->w) m->w = (evl_io *)malloc(sizeof *m->w);
        evl_io_init(m->w, m_on_io, m_s->fds[i].fd, events);
        m->w->data = m;
        m->events = events;
        m->inited = 1;
        if (m->unref) evl_unref(loop, m->w);
        return;
    }
    if (!m->w) return;
    m->touched_gen = m_s->gen;
    switch (op.code) {
    case OP_IO_START:
        rc = evl_io_start(loop, m->w);
        if (rc == -EEXIST && !m->active && m_s->fds[i].fiber_waits) break;   /* one registration per descriptor */
        M_CHECK(rc == (m->active ? -EALREADY : 0), "io %d: evl_io_start returned %d (active %d)", i, rc, m->active);
        m->active = 1;
        break;
    case OP_IO_STOP:
        evl_io_stop(loop, m->w);
        m->active = 0;
        break;
    case OP_IO_SET:
        rc = evl_io_set(loop, m->w, events);
        M_CHECK(rc == 0, "io %d: evl_io_set returned %d", i, rc);
        m->events = events;
        break;
    case OP_IO_RESET:
        rc = evl_io_reset(loop, m->w, m_s->fds[i].fd, events);
        m->events = events;
        m->active = rc == 0;
        if (rc == -EEXIST && m_s->fds[i].fiber_waits) break;   /* one registration per descriptor */
        M_CHECK(rc == 0, "io %d: evl_io_reset returned %d", i, rc);
        break;
    case OP_IO_FREE:
        evl_io_stop(loop, m->w);
        free(m->w);
        m->w = NULL;
        m->active = 0;
        return;
    }
    M_CHECK(evl_io_active(m->w) == m->active, "io %d: evl_io_active disagrees with the model", i);
}

/* A signal watcher or an async was started (rc: what the start returned): it owes nothing yet. */
static void m_flagged_started(m_flagged *m, int rc, const char *what, int i) {
    M_CHECK(rc == (m->active ? -EALREADY : 0), "%s %d: the start returned %d (active %d)", what, i, rc, m->active);
    if (!m->active) m->raised = 0, m->credit = 0, m->due_gen = 0;
    m->active = 1;
}

static void m_flagged_stopped(m_flagged *m, int and_freed) {
    m->active = 0;
    m->due_gen = 0;
    if (and_freed) free(m->w), m->w = NULL;
}

/* Signals, asyncs and hooks: init, start, stop, free. */
static void m_flagged_op(m_op op) {
    evl_loop *loop = &m_s->loop;
    m_flagged *m;
    int i;
    switch (op.code) {
    case OP_SIG_INIT: case OP_SIG_START: case OP_SIG_STOP: case OP_SIG_FREE:
        i = op.slot % M_SIGS;
        m = &m_s->sigs[i];
        if (op.code == OP_SIG_INIT) {
            if (m->w && m->active) return;
            if (!m->w) m->w = malloc(sizeof(evl_signal));
            m->arg = m_signums[op.a % 3];
            evl_signal_init((evl_signal *)m->w, m_on_signal, m->arg);
            ((evl_signal *)m->w)->data = m;
            if (m->unref) evl_unref(loop, (evl_signal *)m->w);
            return;
        }
        if (!m->w) return;
        if (op.code == OP_SIG_START) {
            m_flagged_started(m, evl_signal_start(loop, (evl_signal *)m->w), "signal", i);
        } else {
            evl_signal_stop(loop, (evl_signal *)m->w);
            m_flagged_stopped(m, op.code == OP_SIG_FREE);
        }
        return;
    case OP_ASYNC_INIT: case OP_ASYNC_START: case OP_ASYNC_STOP: case OP_ASYNC_FREE:
        i = op.slot % M_ASYNCS;
        m = &m_s->asyncs[i];
        if (op.code == OP_ASYNC_INIT) {
            if (m->w && m->active) return;
            if (!m->w) m->w = malloc(sizeof(evl_async));
            evl_async_init((evl_async *)m->w, m_on_async);
            ((evl_async *)m->w)->data = m;
            if (m->unref) evl_unref(loop, (evl_async *)m->w);
            return;
        }
        if (!m->w) return;
        if (op.code == OP_ASYNC_START) {
            m_flagged_started(m, evl_async_start(loop, (evl_async *)m->w), "async", i);
        } else {
            evl_async_stop(loop, (evl_async *)m->w);
            m_flagged_stopped(m, op.code == OP_ASYNC_FREE);
        }
        return;
    default:
        i = op.slot % M_HOOKS;
        m = &m_s->hooks[i];
        if (op.code == OP_HOOK_INIT) {
            if (m->w && m->active) return;
            if (!m->w) m->w = malloc(sizeof(evl_hook));
            m->arg = op.a & 1 ? EVL_CHECK : EVL_PREPARE;
            evl_hook_init((evl_hook *)m->w, m_on_hook, m->arg);
            ((evl_hook *)m->w)->data = m;
            if (m->unref) evl_unref(loop, (evl_hook *)m->w);
            return;
        }
        if (!m->w) return;
        if (op.code == OP_HOOK_START) {
            evl_hook_start(loop, (evl_hook *)m->w);
            m->active = 1;
        } else {
            evl_hook_stop(loop, (evl_hook *)m->w);
            m->active = 0;
            if (op.code == OP_HOOK_FREE) free(m->w), m->w = NULL;
        }
        m->due_gen = 0;                 /* touched: owed nothing in this iteration */
        return;
    }
}

static void m_raise(m_op op) {
    int signum = m_signums[op.a % 3], i, watched = 0;
    for (i = 0; i < M_SIGS; i++) watched += m_s->sigs[i].active && m_s->sigs[i].arg == signum;
    if (!watched && signum != SIGWINCH) return;     /* the default action would end the process */
    for (i = 0; i < M_SIGS; i++)
        if (m_s->sigs[i].active && m_s->sigs[i].arg == signum) m_s->sigs[i].raised = 1, m_s->sigs[i].credit++;
    raise(signum);
}

static void m_async_send(m_op op) {
    m_flagged *m = &m_s->asyncs[op.slot % M_ASYNCS];
    if (!m->w) return;
    if (m->active) m->raised = 1, m->credit++;
    evl_async_send((evl_async *)m->w);
}

static void m_reap_unwatched(m_child *m) {
    if (m->pid > 0 && !m->reaped) {
        int status;
        M_CHECK(waitpid(m->pid, &status, 0) == m->pid, "could not reap child %d", (int)m->pid);
    }
    m->pid = 0;
}

static void m_child_op(m_op op) {
    int i = op.slot % M_CHILDREN, rc;
    m_child *m = &m_s->children[i];
    evl_loop *loop = &m_s->loop;
    switch (op.code) {
    case OP_CHILD_SPAWN:
        if (m_s->fuzzing || m->active) return;
        m_reap_unwatched(m);
        m->code = op.a % 100;
        m->reaped = 0;
        m->pid = fork();
        M_CHECK(m->pid >= 0, "fork failed");
        if (m->pid == 0) _exit(m->code);
        if (!m->c) m->c = (evl_child *)malloc(sizeof *m->c);
        evl_child_init(m->c, m_on_child, m->pid);
        m->c->data = m;
        if (m->unref) evl_unref(loop, m->c);
        return;
    case OP_CHILD_START:
        if (!m->c || m->pid == 0) return;
        rc = evl_child_start(loop, m->c);
        if (m->active) M_CHECK(rc == -EALREADY, "child %d: a second start returned %d", i, rc);
        else if (m->reaped) M_CHECK(rc < 0, "child %d: watching a reaped child returned %d", i, rc);
        else M_CHECK(rc == 0, "child %d: evl_child_start returned %d", i, rc);
        if (rc == 0) m->active = 1;
        return;
    case OP_CHILD_STOP:
    case OP_CHILD_FREE:
        if (!m->c) return;
        evl_child_stop(loop, m->c);
        m->active = 0;
        if (op.code == OP_CHILD_FREE) free(m->c), m->c = NULL;
        return;
    }
}

static void m_fiber_op(m_op op) {
#if EVLOOP_HAS_FIBERS
    int i = op.slot % M_FIBERS, rc;
    m_fiber *m = &m_s->fibers[i];
    if (m->live) return;
    if (!m->f) m->f = (evl_fiber *)malloc(sizeof *m->f);
    m->returned = 0;
    m->done_calls = 0;
    m->steps = (unsigned char)(1 + op.a % 4);
    m->pattern = op.b;
    rc = evl_fiber_start(&m_s->loop, m->f, NULL, 0, m_fiber_main, m);
    M_CHECK(rc == 0, "fiber %d: evl_fiber_start returned %d", i, rc);
    m->f->data = m;
    evl_fiber_on_done(m->f, m_fiber_done);
    m->live = 1;
#else
    (void)op;
#endif
}

static void m_transfer(m_op op) {
    int i = op.slot % M_FDS;
    m_fd *fd = &m_s->fds[i];
    char buf[256];
    size_t n = 1 + op.a % sizeof buf;
    ssize_t got;
    if (op.code == OP_WRITE) {
        m_fd *reader = &m_s->fds[fd->peer];
        if (!fd->writable_end || reader->buffered > 8192) return;   /* never near full */
        memset(buf, op.b, n);
        got = write(fd->fd, buf, n);
        M_CHECK(got == (ssize_t)n, "write of %zu bytes to descriptor %d returned %zd", n, i, got);
        reader->buffered += (long)n;
        reader->writes++;
        reader->may_read = 1;
        return;
    }
    if (!fd->readable_end) return;
    got = read(fd->fd, buf, n);
    if (fd->buffered == 0) {
        M_CHECK(got < 0 && errno == EAGAIN, "read from empty descriptor %d returned %zd", i, got);
        return;
    }
    M_CHECK(got > 0 && got <= fd->buffered, "read from descriptor %d returned %zd, %ld buffered", i, got, fd->buffered);
    fd->buffered -= got;
    if (fd->buffered == 0) fd->always_read = 0, fd->drains++;
}

static void m_set_ref(m_op op, int referenced) {
    evl_loop *loop = &m_s->loop;
    int *unref = NULL;
    evl__node *link = NULL;
    switch (op.a % 6) {
    case 0: { m_timer *m = &m_s->timers[op.slot % M_TIMERS]; if (m->t) unref = &m->unref, link = &m->t->link; break; }
    case 1: { m_io *m = &m_s->ios[op.slot % M_FDS]; if (m->w) unref = &m->unref, link = &m->w->link; break; }
    case 2: { m_flagged *m = &m_s->sigs[op.slot % M_SIGS]; if (m->w) unref = &m->unref, link = (evl__node *)m->w; break; }
    case 3: { m_flagged *m = &m_s->asyncs[op.slot % M_ASYNCS]; if (m->w) unref = &m->unref, link = (evl__node *)m->w; break; }
    case 4: { m_flagged *m = &m_s->hooks[op.slot % M_HOOKS]; if (m->w) unref = &m->unref, link = (evl__node *)m->w; break; }
    default: { m_child *m = &m_s->children[op.slot % M_CHILDREN]; if (m->c) unref = &m->unref, link = &m->c->link; break; }
    }
    if (!link) return;
    evl__set_ref(loop, link, referenced);       /* what evl_ref and evl_unref expand to */
    *unref = !referenced;
}

static void m_run(m_op op) {
    evl_time d = m_s->fuzzing ? (op.a < 128 ? 0 : EVL_US(op.a % 20u)) : (op.a < 96 ? 0 : m_duration(op.a) / 4u);
    int rc, want;
    if (m_s->in_callback) {
        rc = evl_run(&m_s->loop, d);
        M_CHECK(rc == -EBUSY, "evl_run inside a callback returned %d, not -EBUSY", rc);
        return;
    }
    m_s->in_callback = 1;
    rc = evl_run(&m_s->loop, d);
    m_s->in_callback = 0;
    m_s->in_iteration = 0;
    want = m_expected_refs();
    M_CHECK(rc == want, "evl_run returned %d, the model counts %d referenced active watchers", rc, want);
}

static int m_trace = -1;            /* MODEL_TRACE=1 in the environment: every operation and call */

static void m_note(const char *what, int i) {
    if (m_trace < 0) m_trace = getenv("MODEL_TRACE") != NULL;
    if (m_trace) fprintf(stderr, "  [gen %u] %s %d\n", m_s->gen, what, i);
}

static void m_apply(m_op op) {
    int code = op.code & ~M_IN_CALLBACK;
    if (m_s->stats) m_s->stats->ops++;
    m_note(m_op_names[code], op.slot);
    op.code = (unsigned char)code;
    switch (code) {
    case OP_TIMER_INIT: case OP_TIMER_START: case OP_TIMER_START_AT: case OP_TIMER_AGAIN: case OP_TIMER_STOP:
    case OP_TIMER_FREE:
        m_timer_op(op);
        break;
    case OP_IO_INIT: case OP_IO_START: case OP_IO_STOP: case OP_IO_SET: case OP_IO_RESET: case OP_IO_FREE:
        m_io_op(op);
        break;
    case OP_RAISE: m_raise(op); break;
    case OP_ASYNC_SEND: m_async_send(op); break;
    case OP_CHILD_SPAWN: case OP_CHILD_START: case OP_CHILD_STOP: case OP_CHILD_FREE: m_child_op(op); break;
    case OP_FIBER_START: m_fiber_op(op); break;
    case OP_WRITE: case OP_READ: m_transfer(op); break;
    case OP_REF: m_set_ref(op, 1); break;
    case OP_UNREF: m_set_ref(op, 0); break;
    case OP_RUN: m_run(op); break;
    case OP_LOOP_STOP:
        evl_stop(&m_s->loop);
        if (m_s->in_callback) m_s->stop_gen_requested = (int)m_s->gen;
        break;
    case OP_DUMP: {
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) evl_dump(&m_s->loop, devnull), fclose(devnull);
        break;
    }
    default: m_flagged_op(op); break;
    }
}

/* ---- A whole sequence ------------------------------------------------------------------------ */

static int m_count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void m_open_fds(void) {
    int p[2], k;
    for (k = 0; k < 2; k++) {
        m_fd *r = &m_s->fds[2 * k], *w = &m_s->fds[2 * k + 1];
        M_CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2 failed");
        r->fd = p[0], r->peer = 2 * k + 1, r->readable_end = 1;
        w->fd = p[1], w->peer = 2 * k, w->writable_end = 1;
    }
    M_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p) == 0, "socketpair failed");
    m_s->fds[4].fd = p[0], m_s->fds[4].peer = 5;
    m_s->fds[5].fd = p[1], m_s->fds[5].peer = 4;
    m_s->fds[4].readable_end = m_s->fds[4].writable_end = 1;
    m_s->fds[5].readable_end = m_s->fds[5].writable_end = 1;
}

/* Runs the loop until every fiber has finished and every watched child has been reported. */
static void m_drain(void) {
    evl_time end = m_clock() + EVL_SEC(10);
    int i, waiting;
    m_s->queue_len = 0;
    do {
        waiting = 0;
        for (i = 0; i < M_FIBERS; i++) waiting += m_s->fibers[i].live;
        for (i = 0; i < M_CHILDREN; i++) waiting += m_s->children[i].active && !m_s->children[i].reaped;
        if (!waiting) break;
        m_s->in_callback = 1;
        M_CHECK(evl_run(&m_s->loop, EVL_MS(5)) >= 0, "evl_run failed while draining");
        m_s->in_callback = 0;
    } while (m_clock() < end);
    for (i = 0; i < M_FIBERS; i++) M_CHECK(!m_s->fibers[i].live, "fiber %d never finished", i);
    for (i = 0; i < M_CHILDREN; i++)
        M_CHECK(!m_s->children[i].active, "child %d (pid %d) exited but its watcher was never called", i,
                (int)m_s->children[i].pid);
}

static void m_release_all(void) {
    int i;
    for (i = 0; i < M_TIMERS; i++) {
        if (m_s->timers[i].t) M_CHECK(!evl_timer_active(m_s->timers[i].t), "timer %d active after evl_deinit", i);
        free(m_s->timers[i].t);
    }
    for (i = 0; i < M_FDS; i++) {
        if (m_s->ios[i].w) M_CHECK(!evl_io_active(m_s->ios[i].w), "io %d active after evl_deinit", i);
        free(m_s->ios[i].w);
        close(m_s->fds[i].fd);
    }
    for (i = 0; i < M_SIGS; i++) free(m_s->sigs[i].w);
    for (i = 0; i < M_ASYNCS; i++) free(m_s->asyncs[i].w);
    for (i = 0; i < M_HOOKS; i++) free(m_s->hooks[i].w);
    for (i = 0; i < M_CHILDREN; i++) {
        m_reap_unwatched(&m_s->children[i]);
        free(m_s->children[i].c);
    }
    for (i = 0; i < M_FIBERS; i++) free(m_s->fibers[i].f);
}

/* Applies a whole sequence of operations to a new loop, then checks the loop ends clean. */
static void m_run_sequence(const unsigned char *data, size_t size, int fuzzing, m_stats *stats) {
    static m_state state;
    size_t k;
    int fds_before = fuzzing ? 0 : m_count_fds(), rc;
    memset(&state, 0, sizeof state);
    m_s = &state;
    m_s->fuzzing = fuzzing;
    m_s->stats = stats;
    m_s->op_index = -1;
    M_CHECK((rc = evl_init(&m_s->loop)) == 0, "evl_init returned %d", rc);
    m_s->anchor = evl_now(&m_s->loop) + EVL_US(200);
    evl_hook_init(&m_s->our_prepare, m_iteration_begins, EVL_PREPARE);
    evl_hook_init(&m_s->our_check, m_iteration_ends, EVL_CHECK);
    evl_unref(&m_s->loop, &m_s->our_prepare);
    evl_unref(&m_s->loop, &m_s->our_check);
    evl_hook_start(&m_s->loop, &m_s->our_prepare);
    evl_hook_start(&m_s->loop, &m_s->our_check);
    m_open_fds();
    for (k = 0; k + M_OP_SIZE <= size; k += M_OP_SIZE) {
        m_op op;
        op.code = (unsigned char)(data[k] % OP_COUNT | (data[k] & M_IN_CALLBACK));
        op.slot = data[k + 1], op.a = data[k + 2], op.b = data[k + 3];
        m_s->op_index = (long)(k / M_OP_SIZE);
        if ((op.code & M_IN_CALLBACK) && m_s->queue_len < M_QUEUE) {
            m_s->queue[(m_s->queue_head + m_s->queue_len) % M_QUEUE] = op;
            m_s->queue_len++;
            continue;
        }
        m_apply(op);
    }
    m_s->op_index = -1;
    m_drain();
    m_apply((m_op){OP_DUMP, 0, 0, 0});
    evl_deinit(&m_s->loop);
    m_release_all();
    if (stats) stats->sequences++;
    /* (not under libFuzzer, whose own threads may hold a descriptor for a moment) */
    if (!fuzzing)
        M_CHECK(m_count_fds() == fds_before, "descriptors: %d before the sequence, %d after", fds_before, m_count_fds());
    m_s = NULL;
}

#endif
