/* evloop_kqueue.h - the kqueue backend of evloop.h, for macOS and the BSDs.  MIT license (see
   evloop.h).

   Include evloop.h, not this file: it includes this one twice, once for the types (inside the
   declarations) and once for the implementation.  evloop.h picks it on macOS, FreeBSD, NetBSD,
   OpenBSD and DragonFly; define EVLOOP_BACKEND_KQUEUE to pick it anywhere else.

   What it uses:
     EVFILT_READ, EVFILT_WRITE     one registration per descriptor and direction, level-triggered,
                                   the io watcher's address as udata.  EV_EOF is EVL_HUP, and with
                                   a socket error in fflags also EVL_ERROR.  Every change carries
                                   EV_RECEIPT, so the kernel answers each one with its own EV_ERROR
                                   entry: a start that fails half-way is undone, never left behind.
     EVFILT_EXCEPT + NOTE_OOB      EVL_PRI (urgent data), where the system has it (macOS);
                                   elsewhere an EVL_PRI interest is refused with -ENOSYS
     EVFILT_SIGNAL                 signals on the BSDs: the kernel records deliveries, the loop
                                   reports them, and the signal is ignored meanwhile (its previous
                                   disposition comes back when the last watcher stops)
     EVFILT_PROC + NOTE_EXIT       child watchers; only the watched pid is reaped (waitpid(pid))
     EVFILT_USER                   wake-ups from evl_stop, evl_async_send and signal handlers; a
                                   pipe where the system has no EVFILT_USER (older NetBSD and
                                   OpenBSD), or with EVLOOP_KQUEUE_PIPE_WAKEUP, which tests it
     the kevent timeout            a struct timespec: timers to the nanosecond, never rounded

   Reduced, because kqueue is not epoll:
     - A descriptor watched with no EVL_READ or EVL_WRITE interest hears no EVL_HUP or EVL_ERROR:
       kqueue reports the end of a stream only through a read or write registration, and one kept
       for that alone would report readiness at every wait.
     - The end of a stream reaches a writer as EVL_WRITE | EVL_HUP (epoll says EVL_ERROR for a
       pipe whose reader closed).
     - Regular files and directories are "always ready", as on every backend: they are recognised
       with fstat and never registered, since kqueue's own rule for them (readable until the end
       of the file) is not the contract's.  So is a device whose driver kqueue refuses with ENODEV,
       as poll() would call it and as the epoll backend does for the devices epoll refuses.
     - evl_io_start walks the loop's io watchers to refuse a second one on the same descriptor
       (-EEXIST): kqueue would silently take the second registration over the first.  O(n).
     - BSDs: the kernel records a signal and the loop reads it at its next wait, so one raised
       just before a second watcher of it starts may be given to that watcher too (the handler
       path can tell the two apart).
     - macOS: signals go through the process-wide handler, as on the poll backend, because macOS
       records with EVFILT_SIGNAL only signals sent to the whole process, not those sent to one
       thread (raise(), pthread_kill): the contract's "never lost" could not hold.  kevent takes
       no signal mask, so the loop's signals are unblocked around the wait, not atomically with it;
       a signal that comes in between still ends the wait, through the handler's wake-up.
     - NOTE_EXIT may come a moment before the process can be reaped: waitpid(WNOHANG) is retried a
       bounded number of times, yielding between tries.  A process of that pid still running then
       is another one (the program reaped ours and the pid was reused): status -1, as when the
       program reaped it.
     - A process that exited before its watcher started is refused by EVFILT_PROC (ESRCH); it is
       then watched through SIGCHLD, which finds it at the next iteration.
   fork(): a kqueue is not inherited, so in a child the loop's kqueue descriptor is closed already
   (its number may name another file by then); evl_deinit there closes only the wake-up pipe, and
   nothing else touches the parent's kqueue.

   How it is tested: on Linux, over the kqueue emulation of tests/kqueue (FreeBSD and macOS
   semantics, with and without EVFILT_EXCEPT, with the pipe wake-up, under ASan: make
   check-kqueue), and compiled and linked, tests and examples, against the real macOS SDK for
   x86_64 and arm64 (make check-macos).  It has not run on a real BSD or macOS kernel.
*/

/* ---- Types (first inclusion) ----------------------------------------------------------------- */
#ifndef EVLOOP_KQUEUE_H
#define EVLOOP_KQUEUE_H

#include <sys/types.h>
#include <sys/event.h>
#include <sys/select.h>                 /* sigset_t, which the loop holds, in every language mode */
#include <sys/time.h>

typedef struct evl__backend {
    int kq;
    int wakefd;                     /* the pipe's write end without EVFILT_USER, else -1 */
    int wake_read;                  /* its read end, watched for EVFILT_READ; -1 with EVFILT_USER */
    long owner;                     /* the process that made kq: a fork()ed child has no kq */
    struct kevent events[EVLOOP_MAX_EVENTS];
} evl__backend;

/* The pid is the kqueue's identifier for a child.  When NOTE_EXIT comes, this internal watcher
   (never started) goes into the batch, so the exit is reaped and reported in the dispatch phase,
   where a callback that stops another child watcher drops that one's exit from the batch. */
typedef struct evl__child_backend {
    evl_io exit_note;
} evl__child_backend;
#define EVL__CHILD_STATE evl__child_backend

#endif /* EVLOOP_KQUEUE_H */

/* ---- Implementation (second inclusion, from the end of evloop.h) ----------------------------- */
#if defined(EVL__BACKEND_IMPLEMENTATION) && !defined(EVLOOP_KQUEUE_IMPLEMENTED)
#define EVLOOP_KQUEUE_IMPLEMENTED

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* macOS is told apart by NOTE_EXITSTATUS, which only its <sys/event.h> defines (the Linux
   emulation's macOS flavour too). */
#if defined(__APPLE__) || defined(NOTE_EXITSTATUS)
#define EVL__KQ_SIGNALS_BY_HANDLER 1
#endif
#if defined(EVFILT_EXCEPT) && defined(NOTE_OOB)
#define EVL__KQ_HAS_EXCEPT 1
#endif
#if defined(EVFILT_USER) && !defined(EVLOOP_KQUEUE_PIPE_WAKEUP)
#define EVL__KQ_HAS_USER 1
#endif
/* NetBSD before 10 declares udata as intptr_t. */
#if defined(__NetBSD__) && defined(__NetBSD_Version__) && __NetBSD_Version__ < 1000000000
#define EVL__KQ_UDATA(p) ((intptr_t)(void *)(p))
#else
#define EVL__KQ_UDATA(p) ((void *)(p))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define EVL__KQ_WAKE_IDENT 0u           /* EVFILT_USER's identifier for the wake-up */
#define EVL__KQ_MAX_FILTERS 3           /* per io watcher: read, write, except */
#define EVL__KQ_REAP_TRIES 1000         /* waitpid tries after NOTE_EXIT */

EVL__PRIVATE void evl__kq_set(struct kevent *k, uintptr_t ident, int filter, unsigned flags, unsigned fflags,
                              void *udata) {
    memset(k, 0, sizeof *k);
    k->ident = ident;
    k->filter = (short)filter;
    k->flags = (unsigned short)flags;
    k->fflags = (unsigned)fflags;
    k->udata = EVL__KQ_UDATA(udata);
}

/* This process made the kqueue (a child of fork() has none: see the top of this file). */
EVL__PRIVATE int evl__kq_owned(const evl__backend *b) { return b->kq >= 0 && b->owner == evl__os_process_id(); }

/* Applies n changes, each answered on its own (EV_RECEIPT): errs[i] is 0 or the errno of change i.
   Returns 0, or -errno when the call as a whole failed (then nothing is known to have changed). */
#ifdef EV_RECEIPT
EVL__PRIVATE int evl__kq_apply(const evl__backend *b, struct kevent *changes, int n, int *errs) {
    struct kevent answers[EVL__KQ_MAX_FILTERS];
    struct timespec zero = {0, 0};
    int i, got;
    for (i = 0; i < n; i++) {
        changes[i].flags = (unsigned short)(changes[i].flags | EV_RECEIPT);
        errs[i] = 0;
    }
    while ((got = kevent(b->kq, changes, n, answers, n, &zero)) < 0 && errno == EINTR) {
    }
    if (got < 0) return -errno;
    for (i = 0; i < got; i++) {
        int k;
        if (!(answers[i].flags & EV_ERROR) || answers[i].data == 0) continue;
        for (k = 0; k < n; k++)   /* the answers come in order, but match them to be sure */
            if (changes[k].ident == answers[i].ident && changes[k].filter == answers[i].filter) errs[k] = (int)answers[i].data;
    }
    return 0;
}
#else
/* Without EV_RECEIPT (older OpenBSD), one call per change tells the errors apart just as well. */
EVL__PRIVATE int evl__kq_apply(const evl__backend *b, struct kevent *changes, int n, int *errs) {
    int i;
    for (i = 0; i < n; i++) {
        int rc;
        while ((rc = kevent(b->kq, &changes[i], 1, NULL, 0, NULL)) < 0 && errno == EINTR) {
        }
        errs[i] = rc < 0 ? errno : 0;
        if (rc < 0 && errno == EBADF) return -EBADF;
    }
    return 0;
}
#endif

/* The changes that take an io watcher from interest `from` to `to`: an add for every direction of
   `to` (adding again what is there changes nothing, and registers again what the kernel dropped
   when the descriptor was closed), a delete for every direction dropped.  Returns their count. */
EVL__PRIVATE int evl__kq_io_changes(evl_io *w, unsigned from, unsigned to, struct kevent *changes) {
    static const struct {
        unsigned event;
        int filter;
        unsigned fflags;
    } map[] = {{EVL_READ, EVFILT_READ, 0},
               {EVL_WRITE, EVFILT_WRITE, 0},
#ifdef EVL__KQ_HAS_EXCEPT
               {EVL_PRI, EVFILT_EXCEPT, NOTE_OOB}
#endif
    };
    int i, n = 0;
    for (i = 0; i < (int)(sizeof map / sizeof map[0]); i++) {
        unsigned after = to & map[i].event;
        if (!after && !(from & map[i].event)) continue;
        evl__kq_set(&changes[n++], (uintptr_t)w->fd, map[i].filter, after ? EV_ADD : EV_DELETE,
                    after ? map[i].fflags : 0u, w);
    }
    return n;
}

/* Regular files and directories are not registered: see the top of this file. */
EVL__PRIVATE int evl__kq_always_ready(evl_fd fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode);
}

/* Moves w's registration from interest `from` to `to`.  A failed add is undone with the other
   changes of the call, so a failure leaves w registered as before: the changes the other way
   round (a descriptor closed meanwhile answers them ENOENT or EBADF, which changes nothing). */
EVL__PRIVATE int evl__kq_change_interest(evl_loop *loop, evl_io *w, unsigned from, unsigned to) {
    evl__backend *b = &loop->backend;
    struct kevent changes[EVL__KQ_MAX_FILTERS];
    int errs[EVL__KQ_MAX_FILTERS], n, i, rc, failed = 0;
#ifndef EVL__KQ_HAS_EXCEPT
    if (to & EVL_PRI) return -ENOSYS;
#endif
    n = evl__kq_io_changes(w, from, to, changes);
    if (n == 0) return 0;
    if ((rc = evl__kq_apply(b, changes, n, errs)) < 0) return rc;
    for (i = 0; i < n; i++)
        if (errs[i] && (changes[i].flags & EV_ADD) && !failed) failed = errs[i];
    if (!failed) return 0;
    n = evl__kq_io_changes(w, to, from, changes);
    (void)evl__kq_apply(b, changes, n, errs);
    return -failed;
}

EVL__PRIVATE EVL__COLD int evl__kq_make_wake(evl__backend *b) {
#ifdef EVL__KQ_HAS_USER
    struct kevent change;
    evl__kq_set(&change, EVL__KQ_WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, NULL);
    return kevent(b->kq, &change, 1, NULL, 0, NULL) < 0 ? -errno : 0;
#else
    /* No pipe2 on macOS (nor in POSIX before 2024): the flags are set with fcntl. */
    struct kevent change;
    int p[2], i;
    if (pipe(p) < 0) return -errno;
    b->wake_read = p[0];
    b->wakefd = p[1];
    for (i = 0; i < 2; i++) {
        if (fcntl(p[i], F_SETFD, FD_CLOEXEC) < 0 || fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK) < 0)
            return -errno;
    }
    evl__kq_set(&change, (uintptr_t)b->wake_read, EVFILT_READ, EV_ADD, 0, &b->wake_read);
    return kevent(b->kq, &change, 1, NULL, 0, NULL) < 0 ? -errno : 0;
#endif
}

EVL__PRIVATE EVL__COLD int evl__backend_init(evl_loop *loop) {
    evl__backend *b = &loop->backend;
    int rc;
    b->wakefd = b->wake_read = -1;
    b->owner = evl__os_process_id();
    b->kq = kqueue();
    if (b->kq < 0) return -errno;
    /* kqueue() has no close-on-exec flag everywhere (kqueue1 is newer and not on macOS). */
    rc = fcntl(b->kq, F_SETFD, FD_CLOEXEC) < 0 ? -errno : evl__kq_make_wake(b);
    if (rc < 0) evl__backend_deinit(loop);
    return rc;
}

/* In a child of fork() the kqueue is gone, and its number may already name a file the child
   opened: it is left alone.  The wake-up pipe is inherited like any descriptor, so closing the
   child's copies is safe. */
EVL__PRIVATE void evl__backend_deinit(evl_loop *loop) {
    evl__backend *b = &loop->backend;
    if (evl__kq_owned(b)) close(b->kq);
    if (b->wake_read >= 0) close(b->wake_read);
    if (b->wakefd >= 0) close(b->wakefd);
    b->kq = b->wakefd = b->wake_read = -1;
}

EVL__PRIVATE int evl__backend_io_start(evl_loop *loop, evl_io *w) {
    int rc = evl__kq_always_ready(w->fd);
    if (rc < 0) return rc;
    if (rc) return EVL__NOT_POLLABLE;
    if (evl__io_fd_watched(loop, w->fd)) return -EEXIST;
    rc = evl__kq_change_interest(loop, w, 0, w->events);
    return rc == -ENODEV ? EVL__NOT_POLLABLE : rc;  /* a device without kqueue support */
}

EVL__PRIVATE int evl__backend_io_modify(evl_loop *loop, evl_io *w, unsigned events) {
    return evl__kq_change_interest(loop, w, w->events, events);
}

/* Errors are ignored: closing a descriptor has already dropped its registrations. */
EVL__PRIVATE void evl__backend_io_stop(evl_loop *loop, evl_io *w) {
    struct kevent changes[EVL__KQ_MAX_FILTERS];
    int errs[EVL__KQ_MAX_FILTERS], n;
    if (!evl__kq_owned(&loop->backend)) return;
    n = evl__kq_io_changes(w, w->events, 0, changes);
    if (n) (void)evl__kq_apply(&loop->backend, changes, n, errs);
}

/* What one kevent says about a descriptor, as EVL_ bits. */
EVL__PRIVATE unsigned evl__kq_revents(const struct kevent *e) {
    unsigned r = e->filter == EVFILT_READ ? (unsigned)EVL_READ : e->filter == EVFILT_WRITE ? (unsigned)EVL_WRITE : 0u;
#ifdef EVL__KQ_HAS_EXCEPT
    if (e->filter == EVFILT_EXCEPT) r = EVL_PRI;
#endif
    if (e->flags & EV_EOF) r |= e->fflags ? (unsigned)(EVL_HUP | EVL_ERROR) : (unsigned)EVL_HUP;
    return r;
}

/* A watcher's read and write events come as separate kevents: they are merged into one entry,
   so its callback runs once per iteration, as with the other backends. */
EVL__PRIVATE int evl__kq_add_ready(evl__ready *ready, int count, evl_io *w, unsigned revents) {
    int i;
    for (i = count - 1; i >= 0; i--) {
        if (ready[i].w == w) {
            ready[i].revents |= revents;
            return count;
        }
    }
    ready[count].w = w;
    ready[count].revents = revents;
    return count + 1;
}

/* The process exited.  NOTE_EXIT can be posted a moment before the kernel lets the parent reap
   it, so waitpid is tried a bounded number of times.  A process of that pid still running after
   them is another one: the program reaped ours (its pid was reused), which counts as "reaped by
   someone else", and waiting for it would hang on a stranger. */
EVL__PRIVATE void evl__kq_child_exited(evl_loop *loop, evl_io *note, unsigned revents) {
    evl_child *c = EVL__CONTAINER(note, evl_child, backend.exit_note);
    int status = -1, rc = 0, tries;
    (void)revents;
    for (tries = 0; tries < EVL__KQ_REAP_TRIES && (rc = evl__os_child_wait(c->pid, &status)) == 0; tries++)
        evl__os_yield();
    evl__child_exited(loop, c, rc <= 0 ? -1 : status);   /* -1: reaped by someone else */
}

/* kevent without a signal mask of its own: the loop's signals (the handler path, see the top of
   this file) are unblocked around it.  A signal arriving between the two calls runs the handler,
   whose wake-up ends the wait at once, so nothing is lost. */
EVL__PRIVATE int evl__kq_wait(evl_loop *loop, const struct timespec *ts) {
    evl__backend *b = &loop->backend;
    const sigset_t *mask = evl__posix_wait_mask(loop);
    sigset_t own;
    int n, err;
    if (!mask || pthread_sigmask(SIG_SETMASK, mask, &own) != 0)
        return kevent(b->kq, NULL, 0, b->events, EVLOOP_MAX_EVENTS, ts);
    n = kevent(b->kq, NULL, 0, b->events, EVLOOP_MAX_EVENTS, ts);
    err = errno;
    pthread_sigmask(SIG_SETMASK, &own, NULL);
    errno = err;
    return n;
}

EVL__PRIVATE void evl__kq_drain_wake(evl__backend *b) {
    char buf[64];
    ssize_t n;
    while ((n = read(b->wake_read, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    }
}

EVL__PRIVATE int evl__backend_wait(evl_loop *loop, evl_time timeout, evl__ready *ready, int capacity) {
    evl__backend *b = &loop->backend;
    struct timespec ts;
    int n, i, count = 0;
    (void)capacity;                                 /* kevent returns at most EVLOOP_MAX_EVENTS, its size */
    if (timeout != EVL_FOREVER) {
        ts.tv_sec = timeout / 1000000000u > (evl_time)INT_MAX ? INT_MAX : (time_t)(timeout / 1000000000u);
        ts.tv_nsec = (long)(timeout % 1000000000u);
    }
    n = evl__kq_wait(loop, timeout == EVL_FOREVER ? NULL : &ts);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (i = 0; i < n; i++) {
        const struct kevent *e = &b->events[i];
        void *udata = (void *)e->udata;
        if (e->flags & EV_ERROR) continue;          /* only changes answer with EV_ERROR: none here */
        switch (e->filter) {
#ifdef EVL__KQ_HAS_USER
        case EVFILT_USER: evl__wake_received(loop); break;
#endif
        case EVFILT_SIGNAL: evl__signal_raised(loop, (int)e->ident); break;
        case EVFILT_PROC: count = evl__kq_add_ready(ready, count, &((evl_child *)udata)->backend.exit_note, EVL_READ); break;
        default:
            if (udata == &b->wake_read) {
                evl__kq_drain_wake(b);
                evl__wake_received(loop);           /* after draining: see evl__wake */
            } else {
                count = evl__kq_add_ready(ready, count, (evl_io *)udata, evl__kq_revents(e));
            }
        }
    }
    return count;
}

/* Async-signal-safe: one system call.  EVFILT_USER coalesces triggers by itself; a full pipe
   (EAGAIN) already holds a wake-up. */
EVL__PRIVATE int evl__backend_wake(evl_loop *loop) {
#ifdef EVL__KQ_HAS_USER
    struct kevent change;
    evl__kq_set(&change, EVL__KQ_WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, NULL);
    while (kevent(loop->backend.kq, &change, 1, NULL, 0, NULL) < 0)
        if (errno != EINTR) return -errno;
    return 0;
#else
    char one = 1;
    while (write(loop->backend.wakefd, &one, sizeof one) < 0) {
        if (errno == EAGAIN) return 0;
        if (errno != EINTR) return -errno;
    }
    return 0;
#endif
}

EVL__PRIVATE int evl__backend_fd(const evl_loop *loop) { return loop->backend.kq; }

EVL__PRIVATE int evl__kq_signal_filter(evl_loop *loop, int signum, unsigned flags) {
    struct kevent change;
    evl__kq_set(&change, (uintptr_t)signum, EVFILT_SIGNAL, flags, 0, NULL);
    return kevent(loop->backend.kq, &change, 1, NULL, 0, NULL) < 0 ? -errno : 0;
}

EVL__PRIVATE int evl__backend_signal_start(evl_loop *loop, int signum) {
#ifdef EVL__KQ_SIGNALS_BY_HANDLER
    (void)loop;
    (void)signum;
    return EVL__USE_HANDLER;
#else
    return evl__kq_signal_filter(loop, signum, EV_ADD);
#endif
}

EVL__PRIVATE void evl__backend_signal_stop(evl_loop *loop, int signum) {
    if (evl__kq_owned(&loop->backend)) (void)evl__kq_signal_filter(loop, signum, EV_DELETE);
}

/* ESRCH: the process has exited already (a zombie is no longer a process to EVFILT_PROC on
   macOS); SIGCHLD's path looks for it at the next iteration. */
EVL__PRIVATE int evl__backend_child_start(evl_loop *loop, evl_child *c) {
    struct kevent change;
    evl__io_init_internal(&c->backend.exit_note, evl__kq_child_exited, -1, EVL_READ);
    evl__kq_set(&change, (uintptr_t)c->pid, EVFILT_PROC, EV_ADD | EV_ONESHOT, NOTE_EXIT, c);
    if (kevent(loop->backend.kq, &change, 1, NULL, 0, NULL) == 0) return 0;
    return errno == ESRCH ? EVL__USE_SIGCHLD : -errno;
}

EVL__PRIVATE void evl__backend_child_stop(evl_loop *loop, evl_child *c) {
    struct kevent change;
    evl__forget_ready(loop, &c->backend.exit_note);
    if (!evl__kq_owned(&loop->backend)) return;
    evl__kq_set(&change, (uintptr_t)c->pid, EVFILT_PROC, EV_DELETE, 0, NULL);
    (void)kevent(loop->backend.kq, &change, 1, NULL, 0, NULL);   /* ENOENT once NOTE_EXIT came */
}

EVL__PRIVATE void evl__backend_dump(const evl_loop *loop, const evl_child *c, FILE *out) {
    (void)loop;
    (void)c;
    fprintf(out, "by EVFILT_PROC");
}

EVL__PRIVATE const char *evl__backend_name(void) { return "kqueue"; }

#ifdef __cplusplus
}
#endif

#endif /* EVL__BACKEND_IMPLEMENTATION */
