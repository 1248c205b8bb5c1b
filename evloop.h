/* evloop.h - v0.1.0 - a small, portable event loop in one header.  MIT license (end of file).

   Do this:
       #define EVLOOP_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Copy evloop.h and the backend header of your platform (evloop_epoll.h on Linux) next to it.

   OVERVIEW
   ========
   evloop runs callbacks when something happens: a file descriptor becomes readable or writable,
   a timer expires, a signal arrives, a child process exits, another thread pokes the loop.  It is
   meant for programs that want libev-class speed without a build system or a dependency: firmware-
   like Linux boards, daemons, tools that vendor their dependencies.

     - no allocation: every object (the loop, every watcher) is a struct the caller owns
     - nanosecond time base on the monotonic clock, sub-millisecond timers on Linux
     - a callback may start, stop or free any watcher, including itself and watchers whose events
       are already pending in the same batch
     - descriptors, signals and child processes are acquired when a watcher starts, so failure shows
       up there as a negative errno; stopping never fails

   EXAMPLE
   =======
       #define EVLOOP_IMPLEMENTATION
       #include "evloop.h"
       #include <stdio.h>
       #include <unistd.h>

       static void on_input(evl_loop *loop, evl_io *w, unsigned revents) {
           char buf[256];
           ssize_t n = read(w->fd, buf, sizeof buf);
           if (n <= 0) { evl_io_stop(loop, w); return; }   // end of input: nothing left to watch
           printf("read %d bytes (events %#x)\n", (int)n, revents);
       }
       static void on_tick(evl_loop *loop, evl_timer *t) {
           printf("tick at %.3f s (next in %.3f s)\n", (double)evl_now(loop) / 1e9,
                  (double)evl_timer_remaining(loop, t) / 1e9);
       }
       int main(void) {
           evl_loop loop; evl_io input; evl_timer tick;
           if (evl_init(&loop) < 0) return 1;
           evl_io_init(&input, on_input, 0, EVL_READ);   evl_io_start(&loop, &input);
           evl_timer_init(&tick, on_tick);  evl_timer_start(&loop, &tick, EVL_SEC(1), EVL_SEC(1));
           evl_unref(&loop, &tick);            // the ticker alone does not keep the loop running
           evl_run(&loop, EVL_FOREVER);        // returns when standard input ends
           evl_deinit(&loop);
           return 0;
       }

   CONFIGURATION (define before including; the same values in every file that includes evloop.h)
   =============
     EVLOOP_IMPLEMENTATION    emit the implementation in this translation unit
     EVLOOP_STATIC            make every function static (a private copy in this translation unit;
                              use it together with EVLOOP_IMPLEMENTATION)
     EVLOOP_BACKEND_EPOLL     force a backend instead of the platform default
     EVLOOP_BACKEND_KQUEUE      (the kqueue, IOCP and poll backends are not written yet:
     EVLOOP_BACKEND_IOCP         selecting one stops the build with a clear #error)
     EVLOOP_BACKEND_POLL
     EVLOOP_NO_FIBERS         leave fibers out (fibers are not part of this version yet)
     EVLOOP_ASSERT(x)         assertion used for API misuse by functions that cannot return an error
                              (default: assert(x); misuse is then ignored when NDEBUG is set)
     EVLOOP_MAX_EVENTS        events fetched from the kernel per poll (default 64)

   The implementation needs POSIX and, on Linux, GNU declarations.  It defines _GNU_SOURCE itself,
   which works when evloop.h is the first header of the implementation file; otherwise define
   _GNU_SOURCE yourself (or compile with -std=gnu99).

   BACKENDS
   ========
     backend  platform       status in this version
     epoll    Linux          complete: epoll, eventfd wake-ups, epoll_pwait2 sub-ms timers with a
                             timerfd fallback, pidfd child watchers with a SIGCHLD fallback
     kqueue   BSD, macOS     not written yet
     iocp     Windows        not written yet
     poll     other POSIX    not written yet

   GUARANTEES
   ==========
     - evloop never calls malloc, calloc, realloc or free.
     - *_init never fails and touches no loop.  *_stop never fails, is idempotent, and may be called
       on a watcher that was only initialised; after it returns the library no longer touches the
       watcher's memory, so it can be freed or reused at once, even from inside a callback.
     - An event that is pending for a watcher which a callback stops in the same batch is dropped.
     - Callbacks run on the thread that calls evl_run, never inside a signal handler.
     - evl_stop and evl_async_send may be called from any thread and from signal handlers.
     - A zero-filled watcher (static storage) that was never initialised is refused: start
       functions return -EINVAL, stop functions do nothing.
     - Functions that return int give 0 (or a count) on success and a negative errno on failure.

   LIMITS
   ======
     - One loop must be driven by one thread at a time; only evl_stop and evl_async_send are
       thread-safe.  evl_run is not re-entrant (a nested call returns -EBUSY).
     - Stop an io watcher before you close its descriptor: the kernel cannot tell evloop that a
       descriptor number was closed and reused.
     - Signals 1 to 64 can be watched, except SIGKILL, SIGSTOP and the hardware fault signals
       (SIGSEGV, SIGBUS, SIGFPE, SIGILL), whose handlers cannot return.  Signal watchers replace the
       signal's disposition while any is active.  With EVLOOP_STATIC in several translation units,
       use signals and child watchers from only one of them.
     - In a child created by fork(), the only thing to do with an inherited loop is evl_deinit.
*/
#ifndef EVLOOP_H
#define EVLOOP_H

/* The implementation needs POSIX and GNU declarations; asking for them here only works when this
   is the first header of the translation unit (see CONFIGURATION). */
#if defined(EVLOOP_IMPLEMENTATION) && defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>                  /* FILE, for evl_dump */
#ifndef _WIN32
#include <sys/types.h>              /* pid_t */
#endif

/* ============================================================================================== */
/* Configuration                                                                                  */
/* ============================================================================================== */

#ifndef EVLOOP_MAX_EVENTS
#define EVLOOP_MAX_EVENTS 64
#endif

#ifdef EVLOOP_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define EVLOOP_API static __attribute__((unused))
#else
#define EVLOOP_API static
#endif
#else
#define EVLOOP_API extern
#endif

/* Backend choice: the platform default unless one is forced. */
#if !defined(EVLOOP_BACKEND_EPOLL) && !defined(EVLOOP_BACKEND_KQUEUE) && \
    !defined(EVLOOP_BACKEND_IOCP) && !defined(EVLOOP_BACKEND_POLL)
#if defined(__linux__)
#define EVLOOP_BACKEND_EPOLL
#elif defined(_WIN32)
#define EVLOOP_BACKEND_IOCP
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
    defined(__DragonFly__)
#define EVLOOP_BACKEND_KQUEUE
#else
#define EVLOOP_BACKEND_POLL
#endif
#endif

#if defined(EVLOOP_BACKEND_KQUEUE) || defined(EVLOOP_BACKEND_IOCP) || defined(EVLOOP_BACKEND_POLL)
#error "evloop: only the epoll backend (Linux) exists in this version; kqueue, IOCP and poll are planned"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================== */
/* Types                                                                                          */
/* ============================================================================================== */

typedef uint64_t evl_time;                      /* nanoseconds on the monotonic clock */
#define EVL_NS(n)   ((evl_time)(n))
#define EVL_US(n)   ((evl_time)(n) * 1000u)
#define EVL_MS(n)   ((evl_time)(n) * 1000000u)
#define EVL_SEC(n)  ((evl_time)(n) * 1000000000u)
#define EVL_FOREVER ((evl_time)-1)

#ifdef _WIN32
typedef void *evl_pid;                          /* the process HANDLE */
#else
typedef pid_t evl_pid;
#endif

enum { EVL_READ = 1, EVL_WRITE = 2, EVL_PRI = 4, EVL_ERROR = 8, EVL_HUP = 16 };
enum { EVL_PREPARE = 1, EVL_CHECK = 2 };

typedef struct evl_loop evl_loop;
typedef struct evl_io evl_io;
typedef struct evl_timer evl_timer;
typedef struct evl_signal evl_signal;
typedef struct evl_child evl_child;
typedef struct evl_async evl_async;
typedef struct evl_hook evl_hook;

typedef void (*evl_io_cb)(evl_loop *loop, evl_io *w, unsigned revents);
typedef void (*evl_timer_cb)(evl_loop *loop, evl_timer *t);
typedef void (*evl_signal_cb)(evl_loop *loop, evl_signal *s, int signum);
typedef void (*evl_child_cb)(evl_loop *loop, evl_child *c, int status);
typedef void (*evl_async_cb)(evl_loop *loop, evl_async *a);
typedef void (*evl_hook_cb)(evl_loop *loop, evl_hook *h);

/* Every watcher starts with this link.  It puts the watcher on the loop's list for its kind (or
   in the timer wheel) and is NULL-linked while the watcher is inactive.  The low bit of prev_bits
   holds the watcher's evl_unref flag: nodes are pointer-aligned, so the bit is free, and keeping
   the flag there is what lets an evl_timer fit in 48 bytes. */
typedef struct evl__node {
    struct evl__node *next;
    uintptr_t prev_bits;
} evl__node;

/* Fields without a comment are private: read them in a debugger, never write them. */

struct evl_io {
    evl__node link;
    void *data;                 /* yours; the library never touches it */
    evl_io_cb cb;
    int fd;                     /* read-only: the descriptor given to evl_io_init */
    unsigned char events;       /* read-only: the interest, EVL_READ | EVL_WRITE | EVL_PRI */
    unsigned char kind;
    unsigned char flags;
};

struct evl_timer {
    evl__node link;
    void *data;                 /* yours */
    evl_timer_cb cb;
    evl_time deadline;
    evl_time repeat;            /* may be changed before evl_timer_again */
};

struct evl_signal {
    evl__node link;
    void *data;                 /* yours */
    evl_signal_cb cb;
    int signum;                 /* read-only */
    unsigned char kind;
    unsigned char pending;
};

struct evl_async {
    evl__node link;
    void *data;                 /* yours */
    evl_async_cb cb;
    evl_loop *loop;
    int sent;
    unsigned char kind;
};

struct evl_hook {
    evl__node link;
    void *data;                 /* yours */
    evl_hook_cb cb;
    int phase;                  /* read-only: EVL_PREPARE or EVL_CHECK */
    unsigned char kind;
};

/* The backend header defines evl__backend (its part of the loop) and evl__child_backend (its part
   of a child watcher). */
#if defined(EVLOOP_BACKEND_EPOLL)
#include "evloop_epoll.h"
#endif

struct evl_child {
    evl__node link;
    void *data;                 /* yours */
    evl_child_cb cb;
    evl_pid pid;                /* read-only */
    unsigned char kind;
    unsigned char by_signal;    /* watched through SIGCHLD because the backend could not */
    evl__child_backend backend;
};

/* The timer wheel: 9 levels of 64 slots.  A timer sits at the level of the highest 6-bit group in
   which its deadline tick differs from the wheel's current tick, so levels cover about 65 us,
   4 ms, 268 ms, 17 s, 18 min, 19 h, 51 days, 9 years and the rest of time. */
#define EVL__TICK_SHIFT 10u         /* a tick is 1024 ns */
#define EVL__WHEEL_BITS 6u
#define EVL__WHEEL_SLOTS 64u
#define EVL__WHEEL_LEVELS 9u

typedef struct evl__wheel {
    uint64_t tick;                  /* every timer still in a slot is due at this tick or later */
    evl_time next;                  /* no slot needs work before this time */
    uint64_t occupied[EVL__WHEEL_LEVELS];   /* bit per slot that may hold timers */
    evl__node due;                  /* collected timers, in firing order */
    evl__node slot[EVL__WHEEL_LEVELS][EVL__WHEEL_SLOTS];
} evl__wheel;

typedef struct evl__ready {         /* one io event fetched from the kernel */
    evl_io *w;                      /* NULL once a callback stopped the watcher */
    unsigned revents;
} evl__ready;

#define EVL__MAX_SIGNAL 64

struct evl_loop {
    evl_time now;
    evl_time run_end;
    unsigned refs;                  /* active, referenced watchers: what evl_run returns */
    unsigned magic;
    int running;
    int stop;                       /* atomic: evl_stop was called */
    int wake_pending;               /* atomic: a wake-up is on its way to the backend */
    int async_sent;                 /* atomic: some evl_async_send since the last look */
    unsigned char woken, signals_due, children_due, asyncs_due;
    int ready_count;
    evl__node *walk_next, *walk_last;
    evl__node ios, files, prepares, checks, asyncs, signals, children;
    unsigned child_watchers_by_signal;
    uint32_t sig_watched[2];        /* atomic: signals 1..64 this loop wants */
    uint32_t sig_pending[2];        /* atomic: signals caught, not yet handled */
    evl_loop *sig_next;             /* on the process-wide list of loops that watch signals */
    int sig_listed;
    unsigned short sig_users[EVL__MAX_SIGNAL + 1];
    evl__wheel wheel;
    evl__ready ready[EVLOOP_MAX_EVENTS];
    evl__backend backend;
};

/* ============================================================================================== */
/* API                                                                                            */
/* ============================================================================================== */

/* ---- Time ------------------------------------------------------------------------------------ */
/* The loop time is read once per iteration; evl_now returns that cached value, and evl_now_update
   reads the clock again, stores it and returns it. */
EVLOOP_API evl_time evl_now(const evl_loop *loop);
EVLOOP_API evl_time evl_now_update(evl_loop *loop);

/* ---- Loop ------------------------------------------------------------------------------------ */
/* evl_init acquires the backend's descriptors (0 or -errno).  evl_deinit releases them; active
   watchers are detached (they become inactive and are never called) and signal dispositions are
   restored.  Calling evl_deinit from a callback of the same loop is refused (EVLOOP_ASSERT).

   evl_run runs until evl_stop is called, until no referenced watcher is active, or until duration
   has elapsed (0: one pass that does not block; EVL_FOREVER: no limit).  It returns the number of
   referenced watchers still active, -EBUSY when called from inside the same loop, -EINVAL for a
   loop that is not initialised, or another negative errno if the backend failed.

   One iteration: PREPARE hooks, wait for events, due timers, io callbacks (in the order the kernel
   reported them), always-ready descriptors, signals, child processes, async wake-ups, CHECK hooks.

   evl_stop makes evl_run return after the callback that is running; it may be called from a
   callback, another thread or a signal handler.  A stop requested while evl_run is not running
   makes the next evl_run return after at most one pass that does not block.

   evl_backend_fd is a descriptor that becomes readable when the loop has io work (to embed the
   loop in another one), and evl_backend_timeout the time after which its timers need a pass
   (0: now; EVL_FOREVER: no timer). */
EVLOOP_API int evl_init(evl_loop *loop);
EVLOOP_API void evl_deinit(evl_loop *loop);
EVLOOP_API int evl_run(evl_loop *loop, evl_time duration);
EVLOOP_API void evl_stop(evl_loop *loop);
EVLOOP_API int evl_backend_fd(const evl_loop *loop);
EVLOOP_API evl_time evl_backend_timeout(evl_loop *loop);
EVLOOP_API const char *evl_backend_name(void);

/* evl_unref(loop, w) stops an active watcher of any type from keeping evl_run alive (a SIGINT
   watcher, a housekeeping timer); evl_ref undoes it.  Either may be called before or after the
   watcher starts, and the setting survives stop and start. */
#define evl_ref(loop, w) evl__set_ref((loop), &(w)->link, 1)
#define evl_unref(loop, w) evl__set_ref((loop), &(w)->link, 0)
EVLOOP_API void evl__set_ref(evl_loop *loop, evl__node *link, int referenced);

/* ---- File descriptors -------------------------------------------------------------------------
   Level-triggered.  events is a mix of EVL_READ, EVL_WRITE and EVL_PRI; EVL_ERROR and EVL_HUP are
   reported whenever they happen.  After EVL_HUP or EVL_ERROR, read or write to learn the details
   or stop the watcher, as these conditions stay reported.  One active watcher per descriptor per
   loop (-EEXIST for a second one).  Works with any descriptor the kernel can poll; a regular file
   or directory, which epoll refuses, is accepted and reported ready at every iteration, as poll()
   would.  evl_io_start returns -EBADF for a closed or invalid descriptor, -EINVAL for unknown
   event bits, -EALREADY if the watcher is already active.  evl_io_set changes the interest of an
   active or inactive watcher.  */
EVLOOP_API void evl_io_init(evl_io *w, evl_io_cb cb, int fd, unsigned events);
EVLOOP_API int evl_io_start(evl_loop *loop, evl_io *w);
EVLOOP_API int evl_io_set(evl_loop *loop, evl_io *w, unsigned events);
EVLOOP_API void evl_io_stop(evl_loop *loop, evl_io *w);

/* ---- Timers -----------------------------------------------------------------------------------
   evl_timer_start fires the timer `after` from now (the clock is read at the call), then every
   `repeat` if repeat is not 0; it restarts an active timer and cannot fail.  A timer never fires
   early.  Timers due in the same iteration fire in deadline order, equal deadlines in the order they
   were started.  after == 0 fires in the next iteration.  A repeating timer keeps its phase (next
   deadline = previous deadline + repeat); if the loop fell more than a period behind, it fires once
   and re-phases from now.
   evl_timer_start_at is the same with an absolute deadline on the loop's clock (evl_now).
   Reading the clock is what makes "never early" hold even when the loop time is stale (a long
   callback ran since the loop woke); it costs about 20 ns.  Code that restarts many timers from one
   callback and accepts timeouts relative to the loop time, as libev and libuv define them, can use
   evl_timer_start_at(loop, t, evl_now(loop) + after, repeat), which reads no clock.
   evl_timer_again restarts from now with the timer's repeat, or stops it if repeat is 0.
   evl_timer_remaining is the time left until the deadline (0 if inactive or due). */
EVLOOP_API void evl_timer_init(evl_timer *t, evl_timer_cb cb);
EVLOOP_API void evl_timer_start(evl_loop *loop, evl_timer *t, evl_time after, evl_time repeat);
EVLOOP_API void evl_timer_start_at(evl_loop *loop, evl_timer *t, evl_time deadline, evl_time repeat);
EVLOOP_API void evl_timer_again(evl_loop *loop, evl_timer *t);
EVLOOP_API void evl_timer_stop(evl_loop *loop, evl_timer *t);
EVLOOP_API evl_time evl_timer_remaining(const evl_loop *loop, const evl_timer *t);
EVLOOP_API int evl_timer_active(const evl_timer *t);

/* ---- Signals ----------------------------------------------------------------------------------
   The callback runs in loop context.  Deliveries that arrive before it runs may coalesce into one
   call, but a signal that arrives after evl_signal_start returned is never lost, whatever the
   signal masks of the program's other threads (the signal is unblocked in the thread that starts
   the first watcher).  Several watchers in one or several loops may watch one signal: each is
   called.  When the last watcher of a signal stops, its previous disposition is restored, and it is
   blocked again in the calling thread if it was blocked before.  -EINVAL for SIGKILL, SIGSTOP, the
   fault signals and numbers out of range; -EALREADY if the watcher is active. */
EVLOOP_API void evl_signal_init(evl_signal *s, evl_signal_cb cb, int signum);
EVLOOP_API int evl_signal_start(evl_loop *loop, evl_signal *s);
EVLOOP_API void evl_signal_stop(evl_loop *loop, evl_signal *s);

/* ---- Child processes --------------------------------------------------------------------------
   The callback gets the status as from waitpid() once the process has exited, and the watcher is
   already stopped when it runs (so the callback may free or restart it).  Only the watched process
   is reaped; other children are left to the program.  If someone else reaped the process first,
   status is -1.  evl_child_start returns -EINVAL for pid <= 0 and -ECHILD if pid is not a child of
   this process. */
EVLOOP_API void evl_child_init(evl_child *c, evl_child_cb cb, evl_pid pid);
EVLOOP_API int evl_child_start(evl_loop *loop, evl_child *c);
EVLOOP_API void evl_child_stop(evl_loop *loop, evl_child *c);

/* ---- Cross-thread wake-ups --------------------------------------------------------------------
   evl_async_send may be called from any thread or a signal handler.  Sends coalesce until the
   callback runs; a send that happens after the callback started is not lost: it causes another
   call.  Sends to an inactive async are ignored.  Stop an async only once no thread sends to it. */
EVLOOP_API void evl_async_init(evl_async *a, evl_async_cb cb);
EVLOOP_API int evl_async_start(evl_loop *loop, evl_async *a);
EVLOOP_API void evl_async_stop(evl_loop *loop, evl_async *a);
EVLOOP_API void evl_async_send(evl_async *a);

/* ---- Hooks (for embedding other libraries) ----------------------------------------------------
   EVL_PREPARE hooks run before the loop waits for events, EVL_CHECK hooks after it woke up and
   dispatched them.  Hooks run in the order they were started. */
EVLOOP_API void evl_hook_init(evl_hook *h, evl_hook_cb cb, int phase);
EVLOOP_API void evl_hook_start(evl_loop *loop, evl_hook *h);
EVLOOP_API void evl_hook_stop(evl_loop *loop, evl_hook *h);

/* ---- Debugging --------------------------------------------------------------------------------
   One line for the loop, then one per active watcher: kind, descriptor and events, signal, pid,
   timer due-in and repeat, and whether it is unreferenced. */
EVLOOP_API void evl_dump(const evl_loop *loop, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* EVLOOP_H */

/* ============================================================================================== */
/* Implementation                                                                                 */
/* ============================================================================================== */

#if defined(EVLOOP_IMPLEMENTATION) && !defined(EVLOOP_IMPLEMENTED)
#define EVLOOP_IMPLEMENTED

#include <inttypes.h>
#include <string.h>
#ifndef _WIN32
#include <signal.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && !defined(__APPLE__)
#error "evloop: the implementation needs POSIX declarations: include evloop.h first, or define _GNU_SOURCE, or compile with -std=gnu99"
#endif
#endif

#ifndef EVLOOP_ASSERT
#include <assert.h>
#define EVLOOP_ASSERT(x) assert(x)
#endif

#define EVL__PRIVATE static
#define EVL__LOOP_MAGIC 0x65766c6fu     /* "evlo" */
#define EVL__UNREF ((uintptr_t)1)
#define EVL__CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Watcher kinds, stored in each watcher by its *_init so that a zero-filled or mistaken struct is
   recognised; the values are unlikely in leftover memory. */
enum {
    EVL__KIND_IO = 0xA1,
    EVL__KIND_SIGNAL,
    EVL__KIND_CHILD,
    EVL__KIND_ASYNC,
    EVL__KIND_HOOK
};

enum {
    EVL__IO_FILE = 1,               /* not pollable: reported ready at every iteration */
    EVL__IO_INTERNAL = 2,           /* the loop's own watcher (a pidfd): not shown by evl_dump */
    EVL__IO_BAD_EVENTS = 0x80       /* evl_io_init got bits that are not events */
};

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Compiler services: atomics and bit scans ------------------------------------------------ */

#if defined(__GNUC__) || defined(__clang__)
#define EVL__LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define EVL__LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define EVL__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define EVL__XCHG(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define EVL__FETCH_OR(p, v) __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define EVL__FETCH_AND(p, v) __atomic_fetch_and((p), (v), __ATOMIC_SEQ_CST)
#define EVL__FETCH_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define EVL__FETCH_SUB(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
EVL__PRIVATE unsigned evl__ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
EVL__PRIVATE unsigned evl__msb64(uint64_t x) { return 63u - (unsigned)__builtin_clzll(x); }
#else
#error "evloop: this compiler needs atomics and bit-scan helpers (GCC and Clang are supported)"
#endif

/* ---- Internal interface ----------------------------------------------------------------------
   What each backend header implements, in this order, and nothing else: */
EVL__PRIVATE int evl__backend_init(evl_loop *loop);                  /* acquire; 0 or -errno */
EVL__PRIVATE void evl__backend_deinit(evl_loop *loop);               /* release; no shared kernel state touched */
EVL__PRIVATE int evl__backend_io_start(evl_loop *loop, evl_io *w);   /* -EPERM: not pollable */
EVL__PRIVATE int evl__backend_io_modify(evl_loop *loop, evl_io *w, unsigned events);
EVL__PRIVATE void evl__backend_io_stop(evl_loop *loop, evl_io *w);
EVL__PRIVATE int evl__backend_wait(evl_loop *loop, evl_time timeout); /* fills loop->ready; count or -errno */
EVL__PRIVATE void evl__backend_wake(evl_loop *loop);                 /* any thread, async-signal-safe */
EVL__PRIVATE int evl__backend_fd(const evl_loop *loop);
EVL__PRIVATE int evl__backend_child_start(evl_loop *loop, evl_child *c); /* -ENOSYS: use SIGCHLD */
EVL__PRIVATE void evl__backend_child_stop(evl_loop *loop, evl_child *c);
EVL__PRIVATE void evl__backend_dump(const evl_loop *loop, const evl_child *c, FILE *out);
EVL__PRIVATE const char *evl__backend_name(void);

/* What the core offers the backends: */
EVL__PRIVATE void evl__wake_received(evl_loop *loop);               /* the backend saw its wake-up */
EVL__PRIVATE void evl__child_reap(evl_loop *loop, evl_child *c);     /* the process may have exited */

/* What the operating-system layer (POSIX below) provides: */
EVL__PRIVATE evl_time evl__clock_now(void);
EVL__PRIVATE int evl__os_signal_valid(int signum);
EVL__PRIVATE int evl__os_signal_catch(int signum);
EVL__PRIVATE void evl__os_signal_restore(int signum);
EVL__PRIVATE void evl__os_yield(void);
EVL__PRIVATE int evl__os_child_check(evl_pid pid);
EVL__PRIVATE int evl__os_child_wait(evl_pid pid, int *status);      /* 1 exited, 0 running, -errno */
EVL__PRIVATE int evl__os_sigchld(void);

/* ---- Small helpers --------------------------------------------------------------------------- */

EVL__PRIVATE evl_time evl__add_sat(evl_time a, evl_time b) { return a + b < a ? EVL_FOREVER : a + b; }

EVL__PRIVATE int evl__loop_ok(const evl_loop *loop) { return loop && loop->magic == EVL__LOOP_MAGIC; }

/* Stopping an active watcher needs the loop it runs in; anything else is a misuse, reported by
   EVLOOP_ASSERT and otherwise ignored, since stopping cannot fail. */
EVL__PRIVATE int evl__loop_ok_for_stop(const evl_loop *loop) {
    EVLOOP_ASSERT(evl__loop_ok(loop));
    return evl__loop_ok(loop);
}

EVL__PRIVATE int evl__stopping(const evl_loop *loop) { return EVL__LOAD_RELAXED(&loop->stop) != 0; }

/* ---- Lists ------------------------------------------------------------------------------------
   Circular, doubly linked, with the head as sentinel.  A node's next is NULL while it is on no
   list, which is what "inactive" means for every watcher. */

EVL__PRIVATE evl__node *evl__prev(const evl__node *n) { return (evl__node *)(n->prev_bits & ~EVL__UNREF); }

EVL__PRIVATE void evl__set_prev(evl__node *n, evl__node *prev) {
    n->prev_bits = (uintptr_t)prev | (n->prev_bits & EVL__UNREF);
}

EVL__PRIVATE void evl__list_init(evl__node *head) {
    head->next = head;
    head->prev_bits = (uintptr_t)head;
}

EVL__PRIVATE int evl__list_empty(const evl__node *head) { return head->next == head; }

EVL__PRIVATE int evl__linked(const evl__node *n) { return n->next != NULL; }

EVL__PRIVATE void evl__insert_before(evl__node *n, evl__node *pos) {
    evl__node *prev = evl__prev(pos);
    n->next = pos;
    evl__set_prev(n, prev);
    prev->next = n;
    evl__set_prev(pos, n);
}

EVL__PRIVATE void evl__unlink(evl__node *n) {
    evl__node *prev = evl__prev(n), *next = n->next;
    prev->next = next;
    evl__set_prev(next, prev);
    n->next = NULL;
}

/* Counting: evl_run returns the number of active watchers that are referenced. */
EVL__PRIVATE int evl__referenced(const evl__node *n) { return !(n->prev_bits & EVL__UNREF); }

EVL__PRIVATE void evl__activate(evl_loop *loop, evl__node *n, evl__node *list) {
    evl__insert_before(n, list);
    loop->refs += (unsigned)evl__referenced(n);
}

/* A walk over a list runs callbacks, and a callback may remove any node: so every removal goes
   through here and moves the walk's cursor past the node it takes away. */
EVL__PRIVATE void evl__list_remove(evl_loop *loop, evl__node *n) {
    if (n == loop->walk_next) loop->walk_next = n == loop->walk_last ? NULL : n->next;
    if (n == loop->walk_last) loop->walk_last = evl__prev(n);
    evl__unlink(n);
}

EVL__PRIVATE void evl__deactivate(evl_loop *loop, evl__node *n) {
    evl__list_remove(loop, n);
    loop->refs -= (unsigned)evl__referenced(n);
}

/* Visits every node that was on the list when the walk began, in order, unless the node was
   removed meanwhile; nodes added during the walk wait for the next one.  Returns 0 if evl_stop cut
   the walk short. */
EVL__PRIVATE int evl__walk(evl_loop *loop, evl__node *head, void (*visit)(evl_loop *, evl__node *)) {
    evl__node *n;
    if (evl__list_empty(head)) return 1;
    loop->walk_last = evl__prev(head);
    loop->walk_next = head->next;
    while ((n = loop->walk_next) != NULL) {
        loop->walk_next = n == loop->walk_last ? NULL : n->next;
        visit(loop, n);
        if (evl__stopping(loop) && loop->walk_next) {
            loop->walk_next = loop->walk_last = NULL;
            return 0;
        }
    }
    loop->walk_last = NULL;
    return 1;
}

/* Makes every watcher on a list inactive without calling anything: evl_deinit. */
EVL__PRIVATE void evl__detach_all(evl__node *head) {
    while (!evl__list_empty(head)) evl__unlink(head->next);
}

EVLOOP_API void evl__set_ref(evl_loop *loop, evl__node *link, int referenced) {
    uintptr_t want = referenced ? 0 : EVL__UNREF;
    if (!link || (link->prev_bits & EVL__UNREF) == want) return;
    if (evl__linked(link)) {
        EVLOOP_ASSERT(evl__loop_ok(loop));
        if (!evl__loop_ok(loop)) return;
        if (referenced) loop->refs++;
        else loop->refs--;
    }
    link->prev_bits = (link->prev_bits & ~EVL__UNREF) | want;
}

/* ---- Time ------------------------------------------------------------------------------------ */

EVLOOP_API evl_time evl_now(const evl_loop *loop) { return loop ? loop->now : 0; }

EVLOOP_API evl_time evl_now_update(evl_loop *loop) {
    evl_time t = evl__clock_now();
    if (!loop) return t;
    if (t > loop->now) loop->now = t;           /* never backwards, whatever the clock does */
    return loop->now;
}

/* ---- Timer wheel ------------------------------------------------------------------------------
   Invariant: every timer in a slot is at the level given by its deadline tick and the wheel's
   tick, and the wheel's tick only moves forward by collecting, which cascades slots down as it
   enters them.  So timers with equal deadlines always share one slot, appended in start order,
   and keep that order through cascades: this is what makes "equal deadlines fire in start order"
   true without a sequence number. */

EVL__PRIVATE evl_timer *evl__timer_of(evl__node *n) { return EVL__CONTAINER(n, evl_timer, link); }

EVL__PRIVATE unsigned evl__wheel_level(uint64_t tick, uint64_t current) {
    uint64_t above_first_level = (tick ^ current) >> EVL__WHEEL_BITS;
    return above_first_level ? evl__msb64(above_first_level) / EVL__WHEEL_BITS + 1 : 0;
}

/* The first tick of a slot at a level, in the wheel's current window of that level. */
EVL__PRIVATE uint64_t evl__slot_start(uint64_t current, unsigned level, unsigned slot) {
    unsigned window = (level + 1) * EVL__WHEEL_BITS;
    uint64_t base = window >= 64 ? 0 : current >> window << window;
    return base | (uint64_t)slot << (level * EVL__WHEEL_BITS);
}

EVL__PRIVATE evl_time evl__tick_time(uint64_t tick) {
    return tick >= (EVL_FOREVER >> EVL__TICK_SHIFT) ? EVL_FOREVER : tick << EVL__TICK_SHIFT;
}

/* Also lowers wh->next to when the wheel must next look at this timer: its deadline in the lowest
   level; above, the start of its slot (where it cascades down), which is its own tick with the
   bits below the level cleared, since above the level it shares its bits with the wheel's tick. */
EVL__PRIVATE void evl__wheel_insert(evl__wheel *wh, evl_timer *t) {
    uint64_t tick = t->deadline >> EVL__TICK_SHIFT;
    unsigned level, shift, slot;
    evl_time wake;
    if (tick < wh->tick) tick = wh->tick;           /* already due: the current slot */
    level = evl__wheel_level(tick, wh->tick);
    shift = level * EVL__WHEEL_BITS;
    slot = (unsigned)(tick >> shift) & (EVL__WHEEL_SLOTS - 1);
    evl__insert_before(&t->link, &wh->slot[level][slot]);
    wh->occupied[level] |= (uint64_t)1 << slot;
    wake = level == 0 ? t->deadline : tick >> shift << shift << EVL__TICK_SHIFT;
    if (wake < wh->next) wh->next = wake;
}

/* The earliest occupied slot: the first slot ahead of the wheel at the lowest level that has
   one.  Slots emptied by evl_timer_stop keep their bit until this finds them. */
EVL__PRIVATE int evl__wheel_first(evl__wheel *wh, unsigned *level_out, unsigned *slot_out) {
    unsigned level;
    for (level = 0; level < EVL__WHEEL_LEVELS; level++) {
        unsigned current = (unsigned)(wh->tick >> (level * EVL__WHEEL_BITS)) & (EVL__WHEEL_SLOTS - 1);
        /* Level 0's current slot holds timers due in this very tick; a higher level's current
           slot was cascaded when the wheel entered it. */
        uint64_t ahead = level == 0 ? ~(uint64_t)0 << current : ~(uint64_t)1 << current;
        uint64_t bits;
        while ((bits = wh->occupied[level] & ahead) != 0) {
            unsigned slot = evl__ctz64(bits);
            if (!evl__list_empty(&wh->slot[level][slot])) {
                *level_out = level;
                *slot_out = slot;
                return 1;
            }
            wh->occupied[level] &= ~((uint64_t)1 << slot);
        }
    }
    return 0;
}

/* Inserts a due timer into the due list by deadline, after those with an equal one.  Timers are
   collected in nearly ascending order, so the scan from the tail rarely moves. */
EVL__PRIVATE void evl__due_insert(evl__wheel *wh, evl_timer *t) {
    evl__node *p = evl__prev(&wh->due);
    while (p != &wh->due && evl__timer_of(p)->deadline > t->deadline) p = evl__prev(p);
    evl__insert_before(&t->link, p->next);
}

EVL__PRIVATE void evl__wheel_update_next(evl__wheel *wh) {
    unsigned level, slot;
    evl__node *head, *n;
    wh->next = EVL_FOREVER;
    if (!evl__wheel_first(wh, &level, &slot)) return;
    head = &wh->slot[level][slot];
    if (level > 0) {
        wh->next = evl__tick_time(evl__slot_start(wh->tick, level, slot));
        return;
    }
    for (n = head->next; n != head; n = n->next)
        if (evl__timer_of(n)->deadline < wh->next) wh->next = evl__timer_of(n)->deadline;
}

/* Moves every timer due at `now` to the due list, cascading slots the wheel passes through. */
EVL__PRIVATE void evl__wheel_collect(evl__wheel *wh, evl_time now) {
    uint64_t now_tick = now >> EVL__TICK_SHIFT;
    unsigned level, slot;
    if (now < wh->next) return;
    while (evl__wheel_first(wh, &level, &slot)) {
        uint64_t start = evl__slot_start(wh->tick, level, slot);
        evl__node *head = &wh->slot[level][slot], *n, *next;
        if (start > now_tick) break;
        wh->tick = start;
        if (level > 0) {
            /* Cascade: relative to the new tick every timer here belongs to a lower level. */
            while (!evl__list_empty(head)) {
                n = head->next;
                evl__unlink(n);
                evl__wheel_insert(wh, evl__timer_of(n));
            }
            continue;
        }
        for (n = head->next; n != head; n = next) {
            next = n->next;
            if (evl__timer_of(n)->deadline <= now) {
                evl__unlink(n);
                evl__due_insert(wh, evl__timer_of(n));
            }
        }
        if (start == now_tick) break;               /* what is left is due later in this tick */
    }
    if (now_tick > wh->tick) wh->tick = now_tick;
    evl__wheel_update_next(wh);
}

EVL__PRIVATE void evl__wheel_init(evl__wheel *wh, evl_time now) {
    unsigned level, slot;
    wh->tick = now >> EVL__TICK_SHIFT;
    wh->next = EVL_FOREVER;
    memset(wh->occupied, 0, sizeof wh->occupied);
    evl__list_init(&wh->due);
    for (level = 0; level < EVL__WHEEL_LEVELS; level++)
        for (slot = 0; slot < EVL__WHEEL_SLOTS; slot++) evl__list_init(&wh->slot[level][slot]);
}

/* Calls visit for every timer in the wheel and the due list. */
EVL__PRIVATE void evl__wheel_each(const evl__wheel *wh, void (*visit)(evl_timer *, void *), void *arg) {
    unsigned level, slot;
    const evl__node *head;
    evl__node *n, *next;
    for (n = wh->due.next; n != &wh->due; n = next) {
        next = n->next;
        visit(evl__timer_of(n), arg);
    }
    for (level = 0; level < EVL__WHEEL_LEVELS; level++)
        for (slot = 0; slot < EVL__WHEEL_SLOTS; slot++)
            for (head = &wh->slot[level][slot], n = head->next; n != head; n = next) {
                next = n->next;
                visit(evl__timer_of(n), arg);
            }
}

/* ---- Timers ---------------------------------------------------------------------------------- */

EVLOOP_API void evl_timer_init(evl_timer *t, evl_timer_cb cb) {
    if (!t) return;
    memset(t, 0, sizeof *t);
    t->cb = cb;
}

EVLOOP_API int evl_timer_active(const evl_timer *t) { return t && evl__linked(&t->link); }

EVLOOP_API void evl_timer_stop(evl_loop *loop, evl_timer *t) {
    if (!t || !evl__linked(&t->link) || !evl__loop_ok_for_stop(loop)) return;
    evl__unlink(&t->link);                          /* timer lists are never walked */
    loop->refs -= (unsigned)evl__referenced(&t->link);
}

EVLOOP_API void evl_timer_start_at(evl_loop *loop, evl_timer *t, evl_time deadline, evl_time repeat) {
    if (!evl__loop_ok(loop) || !t || !t->cb) {
        EVLOOP_ASSERT(evl__loop_ok(loop) && t && t->cb);   /* an uninitialised loop or timer */
        return;
    }
    if (evl__linked(&t->link)) evl__unlink(&t->link);
    else loop->refs += (unsigned)evl__referenced(&t->link);
    t->deadline = deadline;
    t->repeat = repeat;
    evl__wheel_insert(&loop->wheel, t);
}

EVLOOP_API void evl_timer_start(evl_loop *loop, evl_timer *t, evl_time after, evl_time repeat) {
    evl_time now = evl__loop_ok(loop) ? evl_now_update(loop) : 0;
    evl_timer_start_at(loop, t, evl__add_sat(now, after), repeat);   /* which reports a bad loop */
}

EVLOOP_API void evl_timer_again(evl_loop *loop, evl_timer *t) {
    if (t && t->repeat) evl_timer_start(loop, t, t->repeat, t->repeat);
    else evl_timer_stop(loop, t);
}

EVLOOP_API evl_time evl_timer_remaining(const evl_loop *loop, const evl_timer *t) {
    if (!loop || !t || !evl__linked(&t->link) || t->deadline <= loop->now) return 0;
    return t->deadline - loop->now;
}

EVL__PRIVATE void evl__run_due_timers(evl_loop *loop) {
    evl__wheel *wh = &loop->wheel;
    evl__wheel_collect(wh, loop->now);
    while (!evl__list_empty(&wh->due)) {
        evl_timer *t = evl__timer_of(wh->due.next);
        evl__unlink(&t->link);
        if (t->repeat) {
            /* Re-armed before the callback, so that it may stop, restart or free the timer. */
            t->deadline = evl__add_sat(t->deadline, t->repeat);
            if (t->deadline < loop->now) t->deadline = evl__add_sat(loop->now, t->repeat);
            evl__wheel_insert(wh, t);
        } else {
            loop->refs -= (unsigned)evl__referenced(&t->link);
        }
        t->cb(loop, t);
        if (evl__stopping(loop)) return;
    }
}

/* ---- Wake-ups -------------------------------------------------------------------------------
   evl_stop, evl_async_send and the signal handler all make a blocked evl_run return the same way:
   they set their flag, then wake.  wake_pending keeps that to one backend write per wake-up.  The
   backend must drain its wake-up first and call evl__wake_received after: cleared the other way
   round, a write landing between the two would be drained while the flag stayed set, and every
   later wake-up would be skipped.  The loop looks at the flags only after the flag is cleared, so
   a sender either finds it clear and writes again, or set it early enough to be seen. */

EVL__PRIVATE void evl__wake(evl_loop *loop) {
    if (!EVL__XCHG(&loop->wake_pending, 1)) evl__backend_wake(loop);
}

EVL__PRIVATE void evl__wake_received(evl_loop *loop) {
    EVL__STORE(&loop->wake_pending, 0);
    loop->woken = 1;
}

/* ---- Loop ------------------------------------------------------------------------------------ */

EVLOOP_API const char *evl_backend_name(void) { return evl__backend_name(); }

EVLOOP_API int evl_backend_fd(const evl_loop *loop) { return evl__loop_ok(loop) ? evl__backend_fd(loop) : -1; }

EVLOOP_API int evl_init(evl_loop *loop) {
    int rc;
    if (!loop) return -EINVAL;
    memset(loop, 0, sizeof *loop);
    evl__list_init(&loop->ios);
    evl__list_init(&loop->files);
    evl__list_init(&loop->prepares);
    evl__list_init(&loop->checks);
    evl__list_init(&loop->asyncs);
    evl__list_init(&loop->signals);
    evl__list_init(&loop->children);
    loop->now = evl__clock_now();
    evl__wheel_init(&loop->wheel, loop->now);
    rc = evl__backend_init(loop);
    if (rc < 0) return rc;
    loop->magic = EVL__LOOP_MAGIC;
    return 0;
}

EVL__PRIVATE void evl__detach_timer(evl_timer *t, void *unused) {
    (void)unused;
    evl__unlink(&t->link);
}

EVL__PRIVATE void evl__signal_release(evl_loop *loop, int signum);

EVLOOP_API void evl_deinit(evl_loop *loop) {
    evl__node *n;
    if (!evl__loop_ok(loop)) return;
    EVLOOP_ASSERT(!loop->running);
    if (loop->running) return;
    /* Signals first: their handler may write to the wake-up descriptor until they are released. */
    for (n = loop->signals.next; n != &loop->signals; n = n->next)
        evl__signal_release(loop, EVL__CONTAINER(n, evl_signal, link)->signum);
    evl__detach_all(&loop->signals);
    if (loop->child_watchers_by_signal) evl__signal_release(loop, evl__os_sigchld());
    /* The backend closes its descriptors without changing kernel state that a forked parent may
       share (no EPOLL_CTL_DEL); the watchers' own resources go after it, on the same rule. */
    evl__backend_deinit(loop);
    for (n = loop->children.next; n != &loop->children; n = n->next)
        evl__backend_child_stop(loop, EVL__CONTAINER(n, evl_child, link));
    evl__detach_all(&loop->children);
    for (n = loop->asyncs.next; n != &loop->asyncs; n = n->next)
        EVL__STORE(&EVL__CONTAINER(n, evl_async, link)->loop, (evl_loop *)NULL);
    evl__detach_all(&loop->asyncs);
    evl__detach_all(&loop->ios);
    evl__detach_all(&loop->files);
    evl__detach_all(&loop->prepares);
    evl__detach_all(&loop->checks);
    evl__wheel_each(&loop->wheel, evl__detach_timer, NULL);
    loop->refs = 0;
    loop->magic = 0;
}

EVLOOP_API void evl_stop(evl_loop *loop) {
    if (!evl__loop_ok(loop)) return;
    EVL__STORE(&loop->stop, 1);
    evl__wake(loop);
}

/* ---- Dispatch -------------------------------------------------------------------------------- */

EVL__PRIVATE void evl__dispatch_ready(evl_loop *loop) {
    int i;
    for (i = 0; i < loop->ready_count; i++) {
        evl_io *w = loop->ready[i].w;
        unsigned revents;
        if (!w) continue;                           /* stopped by an earlier callback */
        /* Mask with the interest now: an earlier callback may have narrowed it. */
        revents = loop->ready[i].revents & ((unsigned)w->events | EVL_ERROR | EVL_HUP);
        if (revents) w->cb(loop, w, revents);
        if (evl__stopping(loop)) break;
    }
    loop->ready_count = 0;
}

/* A stopped watcher's events still waiting in the batch must not be delivered. */
EVL__PRIVATE void evl__forget_ready(evl_loop *loop, const evl_io *w) {
    int i;
    for (i = 0; i < loop->ready_count; i++)
        if (loop->ready[i].w == w) loop->ready[i].w = NULL;
}

EVL__PRIVATE void evl__visit_file(evl_loop *loop, evl__node *n) {
    evl_io *w = EVL__CONTAINER(n, evl_io, link);
    unsigned revents = (unsigned)w->events & (EVL_READ | EVL_WRITE);
    if (revents) w->cb(loop, w, revents);
}

EVL__PRIVATE void evl__visit_hook(evl_loop *loop, evl__node *n) {
    evl_hook *h = EVL__CONTAINER(n, evl_hook, link);
    h->cb(loop, h);
}

EVL__PRIVATE void evl__visit_signal(evl_loop *loop, evl__node *n) {
    evl_signal *s = EVL__CONTAINER(n, evl_signal, link);
    if (!s->pending) return;
    s->pending = 0;
    s->cb(loop, s, s->signum);
}

EVL__PRIVATE void evl__visit_child(evl_loop *loop, evl__node *n) {
    evl_child *c = EVL__CONTAINER(n, evl_child, link);
    if (c->by_signal) evl__child_reap(loop, c);
}

EVL__PRIVATE void evl__visit_async(evl_loop *loop, evl__node *n) {
    evl_async *a = EVL__CONTAINER(n, evl_async, link);
    if (EVL__XCHG(&a->sent, 0)) a->cb(loop, a);
}

EVL__PRIVATE int evl__signal_bit_set(const uint32_t *mask, int signum) {
    return (mask[(signum - 1) / 32] >> ((unsigned)(signum - 1) % 32u)) & 1u;
}

/* Turns the signals the handler caught into pending flags on this loop's watchers. */
EVL__PRIVATE void evl__take_caught_signals(evl_loop *loop) {
    uint32_t caught[2];
    evl__node *n;
    caught[0] = EVL__XCHG(&loop->sig_pending[0], 0u);
    caught[1] = EVL__XCHG(&loop->sig_pending[1], 0u);
    if (!(caught[0] | caught[1])) return;
    for (n = loop->signals.next; n != &loop->signals; n = n->next) {
        evl_signal *s = EVL__CONTAINER(n, evl_signal, link);
        if (evl__signal_bit_set(caught, s->signum)) s->pending = loop->signals_due = 1;
    }
    if (loop->child_watchers_by_signal && evl__signal_bit_set(caught, evl__os_sigchld()))
        loop->children_due = 1;
}

/* Work announced through the wake-up: signals, children watched through SIGCHLD, asyncs.  Each
   flag is cleared only once its walk completed, so work cut short by evl_stop is resumed. */
EVL__PRIVATE void evl__run_woken(evl_loop *loop) {
    if (loop->woken) {
        loop->woken = 0;
        evl__take_caught_signals(loop);
        if (EVL__XCHG(&loop->async_sent, 0)) loop->asyncs_due = 1;
    }
    if (loop->signals_due) {
        if (!evl__walk(loop, &loop->signals, evl__visit_signal)) return;
        loop->signals_due = 0;
    }
    if (loop->children_due) {
        if (!evl__walk(loop, &loop->children, evl__visit_child)) return;
        loop->children_due = 0;
    }
    if (loop->asyncs_due) {
        if (!evl__walk(loop, &loop->asyncs, evl__visit_async)) return;
        loop->asyncs_due = 0;
    }
}

EVL__PRIVATE int evl__has_pending_work(const evl_loop *loop) {
    return loop->woken || loop->signals_due || loop->children_due || loop->asyncs_due ||
           !evl__list_empty(&loop->files) || !evl__list_empty(&loop->wheel.due);
}

/* How long the backend may block: until the next timer, the end of the run, or not at all. */
EVL__PRIVATE evl_time evl__poll_timeout(evl_loop *loop) {
    evl_time until = loop->wheel.next < loop->run_end ? loop->wheel.next : loop->run_end;
    if (until <= loop->now || loop->refs == 0 || evl__stopping(loop) || evl__has_pending_work(loop)) return 0;
    if (until == EVL_FOREVER) return EVL_FOREVER;
    /* Callbacks since the last clock read took time: measure it, or timers would fire late. */
    evl_now_update(loop);
    return until > loop->now ? until - loop->now : 0;
}

EVLOOP_API evl_time evl_backend_timeout(evl_loop *loop) {
    evl_time next;
    if (!evl__loop_ok(loop)) return EVL_FOREVER;
    if (evl__has_pending_work(loop)) return 0;
    next = loop->wheel.next;
    if (next == EVL_FOREVER) return EVL_FOREVER;
    evl_now_update(loop);
    return next > loop->now ? next - loop->now : 0;
}

EVLOOP_API int evl_run(evl_loop *loop, evl_time duration) {
    int result = 0;
    if (!evl__loop_ok(loop)) return -EINVAL;
    if (loop->running) return -EBUSY;
    loop->running = 1;
    /* A finite run needs the clock now; a single pass or an endless run read it after the wait. */
    if (duration == 0 || duration == EVL_FOREVER) loop->run_end = duration;
    else loop->run_end = evl__add_sat(evl_now_update(loop), duration);
    /* Each phase returns early once evl_stop is called; the loop then leaves after it. */
    for (;;) {
        int count;
        evl__walk(loop, &loop->prepares, evl__visit_hook);
        if (evl__stopping(loop)) break;
        count = evl__backend_wait(loop, evl__poll_timeout(loop));
        if (count < 0) {
            result = count;
            break;
        }
        evl_now_update(loop);
        /* Timers first, so that a wait that overslept still fires what came due during it; the
           io batch is already recorded, so a timer callback that stops a watcher drops its event. */
        loop->ready_count = count;
        evl__run_due_timers(loop);
        if (evl__stopping(loop)) break;
        evl__dispatch_ready(loop);
        if (evl__stopping(loop)) break;
        evl__walk(loop, &loop->files, evl__visit_file);
        if (evl__stopping(loop)) break;
        evl__run_woken(loop);
        if (evl__stopping(loop)) break;
        evl__walk(loop, &loop->checks, evl__visit_hook);
        if (evl__stopping(loop) || loop->refs == 0 || loop->now >= loop->run_end) break;
    }
    loop->ready_count = 0;                      /* what is left of an interrupted batch comes again */
    loop->running = 0;
    EVL__STORE(&loop->stop, 0);
    return result < 0 ? result : (int)loop->refs;
}

/* ---- File descriptors ------------------------------------------------------------------------ */

#define EVL__IO_INTEREST (EVL_READ | EVL_WRITE | EVL_PRI)

/* The interest as stored: EVL_ERROR and EVL_HUP are always reported, so asking for them is
   harmless; any other bit is a mistake that start and set report. */
EVL__PRIVATE unsigned char evl__io_interest(unsigned events) {
    events &= ~(unsigned)(EVL_ERROR | EVL_HUP);
    return (unsigned char)(events & ~(unsigned)EVL__IO_INTEREST ? (unsigned)EVL__IO_BAD_EVENTS : events);
}

EVLOOP_API void evl_io_init(evl_io *w, evl_io_cb cb, int fd, unsigned events) {
    if (!w) return;
    memset(w, 0, sizeof *w);
    w->cb = cb;
    w->fd = fd;
    w->events = evl__io_interest(events);
    w->kind = EVL__KIND_IO;
}

EVL__PRIVATE int evl__file_watched(const evl_loop *loop, int fd) {
    const evl__node *n;
    for (n = loop->files.next; n != &loop->files; n = n->next)
        if (EVL__CONTAINER(n, evl_io, link)->fd == fd) return 1;
    return 0;
}

EVLOOP_API int evl_io_start(evl_loop *loop, evl_io *w) {
    int rc;
    if (!evl__loop_ok(loop) || !w || w->kind != EVL__KIND_IO || !w->cb) return -EINVAL;
    if (evl__linked(&w->link)) return -EALREADY;
    if (w->events & EVL__IO_BAD_EVENTS) return -EINVAL;
    if (w->fd < 0) return -EBADF;
    rc = evl__backend_io_start(loop, w);
    if (rc == -EPERM) {
        /* A regular file or a directory: the kernel cannot poll it, and poll() would call it
           always ready, so that is what the loop does. */
        if (evl__file_watched(loop, w->fd)) return -EEXIST;
        w->flags |= EVL__IO_FILE;
        evl__activate(loop, &w->link, &loop->files);
        return 0;
    }
    if (rc < 0) return rc;
    w->flags &= (unsigned char)~EVL__IO_FILE;
    evl__activate(loop, &w->link, &loop->ios);
    return 0;
}

EVLOOP_API int evl_io_set(evl_loop *loop, evl_io *w, unsigned events) {
    unsigned char interest = evl__io_interest(events);
    if (!w || w->kind != EVL__KIND_IO || (interest & EVL__IO_BAD_EVENTS)) return -EINVAL;
    if (evl__linked(&w->link) && !(w->flags & EVL__IO_FILE)) {
        int rc;
        if (!evl__loop_ok(loop)) return -EINVAL;
        rc = evl__backend_io_modify(loop, w, interest);
        if (rc < 0) return rc;
    }
    w->events = interest;
    return 0;
}

EVLOOP_API void evl_io_stop(evl_loop *loop, evl_io *w) {
    if (!w || !evl__linked(&w->link) || !evl__loop_ok_for_stop(loop)) return;
    if (!(w->flags & EVL__IO_FILE)) evl__backend_io_stop(loop, w);
    evl__forget_ready(loop, w);
    evl__deactivate(loop, &w->link);
}

/* ---- Hooks ----------------------------------------------------------------------------------- */

EVLOOP_API void evl_hook_init(evl_hook *h, evl_hook_cb cb, int phase) {
    if (!h) return;
    memset(h, 0, sizeof *h);
    h->cb = cb;
    h->phase = phase;
    h->kind = EVL__KIND_HOOK;
}

EVLOOP_API void evl_hook_start(evl_loop *loop, evl_hook *h) {
    int ok = evl__loop_ok(loop) && h && h->kind == EVL__KIND_HOOK && h->cb &&
             (h->phase == EVL_PREPARE || h->phase == EVL_CHECK);
    EVLOOP_ASSERT(ok);
    if (!ok || evl__linked(&h->link)) return;
    evl__activate(loop, &h->link, h->phase == EVL_PREPARE ? &loop->prepares : &loop->checks);
}

EVLOOP_API void evl_hook_stop(evl_loop *loop, evl_hook *h) {
    if (!h || !evl__linked(&h->link) || !evl__loop_ok_for_stop(loop)) return;
    evl__deactivate(loop, &h->link);
}

/* ---- Cross-thread wake-ups ------------------------------------------------------------------- */

EVLOOP_API void evl_async_init(evl_async *a, evl_async_cb cb) {
    if (!a) return;
    memset(a, 0, sizeof *a);
    a->cb = cb;
    a->kind = EVL__KIND_ASYNC;
}

EVLOOP_API int evl_async_start(evl_loop *loop, evl_async *a) {
    if (!evl__loop_ok(loop) || !a || a->kind != EVL__KIND_ASYNC || !a->cb) return -EINVAL;
    if (evl__linked(&a->link)) return -EALREADY;
    EVL__STORE(&a->sent, 0);
    evl__activate(loop, &a->link, &loop->asyncs);
    EVL__STORE(&a->loop, loop);
    return 0;
}

EVLOOP_API void evl_async_stop(evl_loop *loop, evl_async *a) {
    if (!a || !evl__linked(&a->link) || !evl__loop_ok_for_stop(loop)) return;
    EVL__STORE(&a->loop, (evl_loop *)NULL);
    evl__deactivate(loop, &a->link);
}

EVLOOP_API void evl_async_send(evl_async *a) {
    evl_loop *loop;
    if (!a || !(loop = EVL__LOAD(&a->loop))) return;
    if (!EVL__XCHG(&a->sent, 1)) {
        EVL__STORE(&loop->async_sent, 1);
        evl__wake(loop);
    }
}

/* ---- Signals --------------------------------------------------------------------------------
   One handler serves every loop: it marks the signal pending in each loop that watches it and
   wakes that loop.  The list of those loops is changed under a lock the handler never takes; the
   handler walks it with atomic loads, and a loop leaving the list waits until no handler that
   might still see it is running. */

static struct {
    int lock;
    int handlers_running;
    evl_loop *loops;
    unsigned users[EVL__MAX_SIGNAL + 1];    /* watchers of each signal, all loops together */
} evl__signals;

EVL__PRIVATE void evl__signals_lock(void) {
    while (EVL__XCHG(&evl__signals.lock, 1)) evl__os_yield();
}

EVL__PRIVATE void evl__signals_unlock(void) { EVL__STORE(&evl__signals.lock, 0); }

EVL__PRIVATE void evl__signal_caught(int signum) {
    uint32_t bit = (uint32_t)1 << ((unsigned)(signum - 1) % 32u);
    int word = (signum - 1) / 32;
    evl_loop *loop;
    EVL__FETCH_ADD(&evl__signals.handlers_running, 1);
    for (loop = EVL__LOAD(&evl__signals.loops); loop; loop = EVL__LOAD(&loop->sig_next)) {
        if (EVL__LOAD(&loop->sig_watched[word]) & bit) {
            EVL__FETCH_OR(&loop->sig_pending[word], bit);
            evl__wake(loop);
        }
    }
    EVL__FETCH_SUB(&evl__signals.handlers_running, 1);
}

EVL__PRIVATE void evl__signals_unlist(evl_loop *loop) {
    evl_loop **p = &evl__signals.loops;
    while (*p != loop) p = &(*p)->sig_next;
    EVL__STORE(p, loop->sig_next);
    loop->sig_listed = 0;
    while (EVL__LOAD(&evl__signals.handlers_running)) evl__os_yield();
}

EVL__PRIVATE int evl__signal_acquire(evl_loop *loop, int signum) {
    uint32_t bit = (uint32_t)1 << ((unsigned)(signum - 1) % 32u);
    int word = (signum - 1) / 32, rc = 0;
    evl__signals_lock();
    if (loop->sig_users[signum]++ == 0) {
        EVL__FETCH_OR(&loop->sig_watched[word], bit);
        if (!loop->sig_listed) {
            loop->sig_next = evl__signals.loops;
            EVL__STORE(&evl__signals.loops, loop);
            loop->sig_listed = 1;
        }
    }
    /* Install the handler after the loop is listed, so no signal caught after this returns is lost. */
    if (evl__signals.users[signum]++ == 0 && (rc = evl__os_signal_catch(signum)) < 0) {
        evl__signals.users[signum]--;
        if (--loop->sig_users[signum] == 0) {
            EVL__FETCH_AND(&loop->sig_watched[word], ~bit);
            if (!(EVL__LOAD(&loop->sig_watched[0]) | EVL__LOAD(&loop->sig_watched[1]))) evl__signals_unlist(loop);
        }
    }
    evl__signals_unlock();
    return rc;
}

EVL__PRIVATE void evl__signal_release(evl_loop *loop, int signum) {
    uint32_t bit = (uint32_t)1 << ((unsigned)(signum - 1) % 32u);
    int word = (signum - 1) / 32;
    evl__signals_lock();
    if (--loop->sig_users[signum] == 0) {
        EVL__FETCH_AND(&loop->sig_watched[word], ~bit);
        if (!(EVL__LOAD(&loop->sig_watched[0]) | EVL__LOAD(&loop->sig_watched[1]))) evl__signals_unlist(loop);
    }
    if (--evl__signals.users[signum] == 0) evl__os_signal_restore(signum);
    evl__signals_unlock();
}

EVLOOP_API void evl_signal_init(evl_signal *s, evl_signal_cb cb, int signum) {
    if (!s) return;
    memset(s, 0, sizeof *s);
    s->cb = cb;
    s->signum = signum;
    s->kind = EVL__KIND_SIGNAL;
}

EVLOOP_API int evl_signal_start(evl_loop *loop, evl_signal *s) {
    int rc;
    if (!evl__loop_ok(loop) || !s || s->kind != EVL__KIND_SIGNAL || !s->cb) return -EINVAL;
    if (evl__linked(&s->link)) return -EALREADY;
    if (s->signum < 1 || s->signum > EVL__MAX_SIGNAL || !evl__os_signal_valid(s->signum)) return -EINVAL;
    rc = evl__signal_acquire(loop, s->signum);
    if (rc < 0) return rc;
    s->pending = 0;
    evl__activate(loop, &s->link, &loop->signals);
    return 0;
}

EVLOOP_API void evl_signal_stop(evl_loop *loop, evl_signal *s) {
    if (!s || !evl__linked(&s->link) || !evl__loop_ok_for_stop(loop)) return;
    evl__deactivate(loop, &s->link);
    evl__signal_release(loop, s->signum);
}

/* ---- Child processes ------------------------------------------------------------------------- */

EVLOOP_API void evl_child_init(evl_child *c, evl_child_cb cb, evl_pid pid) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->cb = cb;
    c->pid = pid;
    c->kind = EVL__KIND_CHILD;
}

EVLOOP_API int evl_child_start(evl_loop *loop, evl_child *c) {
    int rc;
    if (!evl__loop_ok(loop) || !c || c->kind != EVL__KIND_CHILD || !c->cb) return -EINVAL;
    if (evl__linked(&c->link)) return -EALREADY;
    rc = evl__os_child_check(c->pid);
    if (rc < 0) return rc;
    rc = evl__backend_child_start(loop, c);
    c->by_signal = rc == -ENOSYS;
    if (c->by_signal) {
        if (loop->child_watchers_by_signal == 0 && (rc = evl__signal_acquire(loop, evl__os_sigchld())) < 0)
            return rc;
        loop->child_watchers_by_signal++;
        /* The process may have exited before SIGCHLD was caught: look once. */
        loop->children_due = 1;
    } else if (rc < 0) {
        return rc;
    }
    evl__activate(loop, &c->link, &loop->children);
    return 0;
}

EVLOOP_API void evl_child_stop(evl_loop *loop, evl_child *c) {
    if (!c || !evl__linked(&c->link) || !evl__loop_ok_for_stop(loop)) return;
    evl__deactivate(loop, &c->link);
    if (c->by_signal) {
        if (--loop->child_watchers_by_signal == 0) evl__signal_release(loop, evl__os_sigchld());
    } else {
        evl__backend_child_stop(loop, c);
    }
}

EVL__PRIVATE void evl__child_reap(evl_loop *loop, evl_child *c) {
    int status = -1;
    int rc = evl__os_child_wait(c->pid, &status);
    if (rc == 0) return;
    if (rc < 0) status = -1;                        /* reaped by someone else */
    evl_child_stop(loop, c);
    c->cb(loop, c, status);
}

/* ---- Debugging ------------------------------------------------------------------------------- */

EVL__PRIVATE const char *evl__ref_note(const evl__node *n) { return evl__referenced(n) ? "" : "  unref"; }

EVL__PRIVATE void evl__dump_events(FILE *out, unsigned events) {
    fprintf(out, "%s%s%s%s", events & EVL_READ ? " READ" : "", events & EVL_WRITE ? " WRITE" : "",
            events & EVL_PRI ? " PRI" : "", events ? "" : " none");
}

EVL__PRIVATE void evl__dump_io(const evl_loop *loop, const evl__node *n, FILE *out) {
    const evl_io *w = EVL__CONTAINER(n, evl_io, link);
    (void)loop;
    if (w->flags & EVL__IO_INTERNAL) return;
    fprintf(out, "  io      %p  fd %d  events", (const void *)w, w->fd);
    evl__dump_events(out, w->events);
    fprintf(out, "%s%s\n", w->flags & EVL__IO_FILE ? "  (not pollable: always ready)" : "", evl__ref_note(n));
}

EVL__PRIVATE void evl__dump_signal(const evl_loop *loop, const evl__node *n, FILE *out) {
    const evl_signal *s = EVL__CONTAINER(n, evl_signal, link);
    (void)loop;
    fprintf(out, "  signal  %p  signal %d%s%s\n", (const void *)s, s->signum, s->pending ? "  pending" : "",
            evl__ref_note(n));
}

EVL__PRIVATE void evl__dump_child(const evl_loop *loop, const evl__node *n, FILE *out) {
    const evl_child *c = EVL__CONTAINER(n, evl_child, link);
    fprintf(out, "  child   %p  pid %ld  ", (const void *)c, (long)c->pid);
    if (c->by_signal) fprintf(out, "by SIGCHLD");
    else evl__backend_dump(loop, c, out);
    fprintf(out, "%s\n", evl__ref_note(n));
}

EVL__PRIVATE void evl__dump_async(const evl_loop *loop, const evl__node *n, FILE *out) {
    evl_async *a = EVL__CONTAINER(n, evl_async, link);
    (void)loop;
    fprintf(out, "  async   %p%s%s\n", (const void *)a, EVL__LOAD(&a->sent) ? "  sent" : "", evl__ref_note(n));
}

EVL__PRIVATE void evl__dump_hook(const evl_loop *loop, const evl__node *n, FILE *out) {
    const evl_hook *h = EVL__CONTAINER(n, evl_hook, link);
    (void)loop;
    fprintf(out, "  %s %p%s\n", h->phase == EVL_PREPARE ? "prepare" : "check  ", (const void *)h, evl__ref_note(n));
}

EVL__PRIVATE void evl__dump_list(const evl_loop *loop, const evl__node *head, FILE *out,
                                 void (*print)(const evl_loop *, const evl__node *, FILE *)) {
    const evl__node *n;
    for (n = head->next; n != head; n = n->next) print(loop, n, out);
}

typedef struct evl__dump_ctx {
    const evl_loop *loop;
    FILE *out;
} evl__dump_ctx;

EVL__PRIVATE void evl__dump_timer(evl_timer *t, void *arg) {
    const evl__dump_ctx *ctx = (const evl__dump_ctx *)arg;
    evl_time left = evl_timer_remaining(ctx->loop, t);
    fprintf(ctx->out, "  timer   %p  due in %.6f s", (const void *)t, (double)left / 1e9);
    if (t->repeat) fprintf(ctx->out, "  repeat %.6f s", (double)t->repeat / 1e9);
    fprintf(ctx->out, "%s\n", evl__ref_note(&t->link));
}

EVLOOP_API void evl_dump(const evl_loop *loop, FILE *out) {
    evl__dump_ctx ctx;
    if (!out) return;
    if (!evl__loop_ok(loop)) {
        fprintf(out, "evl loop %p: not initialised\n", (const void *)loop);
        return;
    }
    fprintf(out, "evl loop %p: backend %s, fd %d, now %.6f s, %u referenced watcher%s%s\n", (const void *)loop,
            evl__backend_name(), evl__backend_fd(loop), (double)loop->now / 1e9, loop->refs, loop->refs == 1 ? "" : "s",
            loop->running ? ", running" : "");
    evl__dump_list(loop, &loop->ios, out, evl__dump_io);
    evl__dump_list(loop, &loop->files, out, evl__dump_io);
    ctx.loop = loop;
    ctx.out = out;
    evl__wheel_each(&loop->wheel, evl__dump_timer, &ctx);
    evl__dump_list(loop, &loop->signals, out, evl__dump_signal);
    evl__dump_list(loop, &loop->children, out, evl__dump_child);
    evl__dump_list(loop, &loop->asyncs, out, evl__dump_async);
    evl__dump_list(loop, &loop->prepares, out, evl__dump_hook);
    evl__dump_list(loop, &loop->checks, out, evl__dump_hook);
}

/* ============================================================================================== */
/* POSIX services: clock, signal dispositions, reaping (every backend except IOCP)                */
/* ============================================================================================== */

#ifndef _WIN32

EVL__PRIVATE evl_time evl__clock_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (evl_time)ts.tv_sec * 1000000000u + (evl_time)ts.tv_nsec;
}

EVL__PRIVATE void evl__os_yield(void) { sched_yield(); }

EVL__PRIVATE int evl__os_sigchld(void) { return SIGCHLD; }

/* A handler for a fault signal would return to the faulting instruction forever. */
EVL__PRIVATE int evl__os_signal_valid(int signum) {
    return signum < NSIG && signum != SIGKILL && signum != SIGSTOP && signum != SIGSEGV && signum != SIGBUS &&
           signum != SIGFPE && signum != SIGILL;
}

static struct sigaction evl__saved_action[EVL__MAX_SIGNAL + 1];
static unsigned char evl__was_blocked[EVL__MAX_SIGNAL + 1];

EVL__PRIVATE void evl__posix_handler(int signum) {
    int saved_errno = errno;                        /* the handler runs between any two lines */
    evl__signal_caught(signum);
    errno = saved_errno;
}

EVL__PRIVATE int evl__os_signal_catch(int signum) {
    struct sigaction sa;
    sigset_t set, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = evl__posix_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(signum, &sa, &evl__saved_action[signum]) < 0) return -errno;
    /* If every thread blocked the signal it would stay pending forever.  On Linux and the BSDs
       sigprocmask sets the calling thread's mask, like pthread_sigmask, without needing libpthread
       on older C libraries. */
    sigemptyset(&set);
    sigaddset(&set, signum);
    sigprocmask(SIG_UNBLOCK, &set, &old);
    evl__was_blocked[signum] = (unsigned char)(sigismember(&old, signum) == 1);
    return 0;
}

EVL__PRIVATE void evl__os_signal_restore(int signum) {
    sigaction(signum, &evl__saved_action[signum], NULL);
    if (evl__was_blocked[signum]) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, signum);
        sigprocmask(SIG_BLOCK, &set, NULL);
    }
}

/* A child of ours, exited or not?  WNOWAIT leaves an exited one for the watcher to reap. */
EVL__PRIVATE int evl__os_child_check(evl_pid pid) {
    siginfo_t info;
    if (pid <= 0) return -EINVAL;
    memset(&info, 0, sizeof info);
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        if (errno != EINTR) return -errno;
    return 0;
}

EVL__PRIVATE int evl__os_child_wait(evl_pid pid, int *status) {
    pid_t r;
    do r = waitpid(pid, status, WNOHANG);
    while (r < 0 && errno == EINTR);
    return r > 0 ? 1 : r == 0 ? 0 : -errno;
}

#endif /* !_WIN32 */

#ifdef __cplusplus
}
#endif

/* ============================================================================================== */
/* Backend                                                                                        */
/* ============================================================================================== */

#define EVL__BACKEND_IMPLEMENTATION
#if defined(EVLOOP_BACKEND_EPOLL)
#include "evloop_epoll.h"
#endif

#endif /* EVLOOP_IMPLEMENTATION */

/*
   LICENSE
   =======
   MIT License

   Copyright (c) 2026 the evloop authors

   Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
   associated documentation files (the "Software"), to deal in the Software without restriction,
   including without limitation the rights to use, copy, modify, merge, publish, distribute,
   sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
   furnished to do so, subject to the following conditions:

   The above copyright notice and this permission notice shall be included in all copies or
   substantial portions of the Software.

   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
   NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
   NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
   OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
   CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
*/
