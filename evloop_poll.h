/* evloop_poll.h - the poll() backend of evloop.h, for any POSIX system.  MIT license (see evloop.h).

   Include evloop.h, not this file: it includes this one twice, once for the types (inside the
   declarations) and once for the implementation.  evloop.h picks it on POSIX systems that are
   neither Linux nor a BSD nor macOS; define EVLOOP_BACKEND_POLL to pick it anywhere else.

   What it uses:
     poll(), or ppoll() where the     every watched descriptor in one array inside the loop
     system has it (Linux, FreeBSD,   (EVLOOP_POLL_MAX of them); ppoll() gives sub-millisecond
     OpenBSD)                         timeouts and unblocks the loop's signals atomically with the
                                      wait; plain poll() rounds timeouts up to whole milliseconds and
                                      unblocks them with pthread_sigmask around the call, which the
                                      wake-up written by the signal handler makes just as safe
     an eventfd (Linux) or a pipe     wake-ups from evl_stop, evl_async_send and the signal handler
     the core's SIGCHLD path          child watchers: waitpid() on each watched pid, never another
   EVLOOP_POLL_POSIX_ONLY takes the plain poll() and pipe path even where the others exist.

   Starting and stopping a watcher costs O(1): each descriptor's slot in the array is found through
   a small open-addressing table keyed by descriptor number, and a stopped watcher's slot is filled
   with the last one.  evl_backend_fd returns -1: poll() has no descriptor that could stand for the
   loop, so this loop cannot be embedded in another one through it (evl_backend_timeout works).
*/

/* ---- Types (first inclusion) ----------------------------------------------------------------- */
#ifndef EVLOOP_POLL_H
#define EVLOOP_POLL_H

#include <poll.h>
/* POSIX has <sys/select.h> define sigset_t, which the loop holds (evl__os_loop): <signal.h> hides
   it in a strict C mode, and unlike <sys/epoll.h>, <poll.h> does not bring it along. */
#include <sys/select.h>

#ifndef EVLOOP_POLL_MAX
#define EVLOOP_POLL_MAX 64
#endif
#if EVLOOP_POLL_MAX < 1 || EVLOOP_POLL_MAX > 32767
#error "evloop: EVLOOP_POLL_MAX must be between 1 and 32767"
#endif

/* Slots 1 to EVLOOP_POLL_MAX hold the watched descriptors; slot 0 is the wake-up. */
typedef struct evl__backend {
    int wakefd;                     /* written by a wake-up: the eventfd, or the pipe's write end */
    int wake_read;                  /* watched in slot 0: the same eventfd, or the pipe's read end */
    int count;                      /* descriptors watched: slots 1..count */
    int scan_from;                  /* the slot a batch starts from after one that filled up */
    struct pollfd fds[EVLOOP_POLL_MAX + 1];
    evl_io *watchers[EVLOOP_POLL_MAX + 1];
    unsigned short slot_of[2 * EVLOOP_POLL_MAX];   /* descriptor -> slot (0: empty), by fd modulo */
} evl__backend;

/* No per-child state: children are watched through SIGCHLD. */

#endif /* EVLOOP_POLL_H */

/* ---- Implementation (second inclusion, from the end of evloop.h) ----------------------------- */
#if defined(EVL__BACKEND_IMPLEMENTATION) && !defined(EVLOOP_POLL_IMPLEMENTED)
#define EVLOOP_POLL_IMPLEMENTED

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

/* ppoll where the C library declares it: glibc and musl with _GNU_SOURCE (which evloop.h defines),
   FreeBSD 11 and OpenBSD 5.4 by default.  The others (macOS, NetBSD before 10, Solaris...) take
   poll() with the mask set around it. */
#if !defined(EVLOOP_POLL_POSIX_ONLY) && (defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__))
#define EVL__POLL_PPOLL 1
#endif
#if !defined(EVLOOP_POLL_POSIX_ONLY) && defined(__linux__)
#include <sys/eventfd.h>
#define EVL__POLL_EVENTFD 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define EVL__POLL_HASH_SIZE (2 * EVLOOP_POLL_MAX)

/* ---- Descriptor -> slot: open addressing with linear probing ----------------------------------
   Descriptor numbers are small and dense, so the number itself (modulo a table twice the array's
   size) spreads them well; a collision only costs the next entry.  An entry holds a slot, and the
   slot's watcher holds the descriptor, so nothing is stored twice. */

EVL__PRIVATE unsigned evl__poll_home(int fd) { return (unsigned)fd % (unsigned)EVL__POLL_HASH_SIZE; }

EVL__PRIVATE unsigned evl__poll_next(unsigned at) { return at + 1u == (unsigned)EVL__POLL_HASH_SIZE ? 0u : at + 1u; }

/* The table position of fd's entry, or of the empty entry where it would go. */
EVL__PRIVATE unsigned evl__poll_find(const evl__backend *b, int fd) {
    unsigned at = evl__poll_home(fd);
    while (b->slot_of[at] && b->watchers[b->slot_of[at]]->fd != fd) at = evl__poll_next(at);
    return at;
}

/* Empties the entry at `hole`, then moves back each later entry of the run that may no longer be
   found past the hole (its home lies cyclically outside (hole, at]), so no lookup stops short. */
EVL__PRIVATE void evl__poll_unhash(evl__backend *b, unsigned hole) {
    unsigned at = hole, home;
    b->slot_of[hole] = 0;
    for (;;) {
        at = evl__poll_next(at);
        if (!b->slot_of[at]) return;
        home = evl__poll_home(b->watchers[b->slot_of[at]]->fd);
        if (hole <= at ? hole < home && home <= at : hole < home || home <= at) continue;
        b->slot_of[hole] = b->slot_of[at];
        b->slot_of[at] = 0;
        hole = at;
    }
}

/* ---- Events ------------------------------------------------------------------------------------ */

EVL__PRIVATE short evl__poll_interest(unsigned events) {
    return (short)((events & EVL_READ ? POLLIN : 0) | (events & EVL_WRITE ? POLLOUT : 0) |
                   (events & EVL_PRI ? POLLPRI : 0));
}

EVL__PRIVATE unsigned evl__poll_revents(short r) {
    return (r & POLLIN ? (unsigned)EVL_READ : 0u) | (r & POLLOUT ? (unsigned)EVL_WRITE : 0u) |
           (r & POLLPRI ? (unsigned)EVL_PRI : 0u) | (r & POLLERR ? (unsigned)EVL_ERROR : 0u) |
           (r & POLLHUP ? (unsigned)EVL_HUP : 0u);
}

/* ---- Wake-up descriptor ------------------------------------------------------------------------ */

/* Both ends non-blocking and close-on-exec, with fcntl: pipe2 is not POSIX before 2024. */
EVL__PRIVATE EVL__COLD int evl__poll_make_wake(evl__backend *b) {
#ifdef EVL__POLL_EVENTFD
    b->wakefd = b->wake_read = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return b->wakefd < 0 ? -errno : 0;
#else
    int p[2], i;
    if (pipe(p) < 0) return -errno;
    b->wake_read = p[0];
    b->wakefd = p[1];
    for (i = 0; i < 2; i++) {
        if (fcntl(p[i], F_SETFD, FD_CLOEXEC) < 0 || fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK) < 0)
            return -errno;
    }
    return 0;
#endif
}

/* Everything written so far: an eventfd's counter in one read, a pipe's bytes until it is empty. */
EVL__PRIVATE void evl__poll_drain_wake(evl__backend *b) {
#ifdef EVL__POLL_EVENTFD
    uint64_t count;
    while (read(b->wake_read, &count, sizeof count) < 0 && errno == EINTR) {
    }
#else
    char buf[64];
    ssize_t n;
    while ((n = read(b->wake_read, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    }
#endif
}

/* ---- The backend --------------------------------------------------------------------------------- */

EVL__PRIVATE EVL__COLD int evl__backend_init(evl_loop *loop) {
    evl__backend *b = &loop->backend;
    int rc;
    b->wakefd = b->wake_read = -1;
    b->count = 0;
    b->scan_from = 1;
    if ((rc = evl__poll_make_wake(b)) < 0) {
        evl__backend_deinit(loop);
        return rc;
    }
    b->fds[0].fd = b->wake_read;
    b->fds[0].events = POLLIN;
    b->fds[0].revents = 0;
    return 0;
}

EVL__PRIVATE void evl__backend_deinit(evl_loop *loop) {
    evl__backend *b = &loop->backend;
    if (b->wake_read >= 0 && b->wake_read != b->wakefd) close(b->wake_read);
    if (b->wakefd >= 0) close(b->wakefd);
    b->wakefd = b->wake_read = -1;
    b->count = 0;
    memset(b->slot_of, 0, sizeof b->slot_of);
}

/* poll() would take any descriptor, also a closed one (it answers POLLNVAL), so fcntl tells
   -EBADF now.  Regular files and directories need nothing special: poll() reports them readable
   and writable at once, which is the contract, and sysfs files keep their POLLPRI. */
EVL__PRIVATE int evl__backend_io_start(evl_loop *loop, evl_io *w) {
    evl__backend *b = &loop->backend;
    unsigned at;
    int slot;
    if (fcntl(w->fd, F_GETFD) < 0) return -errno;
    at = evl__poll_find(b, w->fd);
    if (b->slot_of[at]) return -EEXIST;
    if (b->count == EVLOOP_POLL_MAX) return -ENOSPC;
    slot = ++b->count;
    b->fds[slot].fd = w->fd;
    b->fds[slot].events = evl__poll_interest(w->events);
    b->fds[slot].revents = 0;
    b->watchers[slot] = w;
    b->slot_of[at] = (unsigned short)slot;
    return 0;
}

/* Also watches the descriptor again if a wait found it closed (see evl__backend_wait). */
EVL__PRIVATE int evl__backend_io_modify(evl_loop *loop, evl_io *w, unsigned events) {
    evl__backend *b = &loop->backend;
    int slot = b->slot_of[evl__poll_find(b, w->fd)];
    if (!slot || b->watchers[slot] != w) return -ENOENT;
    b->fds[slot].fd = w->fd;
    b->fds[slot].events = evl__poll_interest(events);
    return 0;
}

/* The last slot moves into the one set free, so slots 1..count stay contiguous. */
EVL__PRIVATE void evl__backend_io_stop(evl_loop *loop, evl_io *w) {
    evl__backend *b = &loop->backend;
    unsigned at = evl__poll_find(b, w->fd);
    int slot = b->slot_of[at], last = b->count;
    if (!slot || b->watchers[slot] != w) return;
    evl__poll_unhash(b, at);
    if (slot != last) {
        b->fds[slot] = b->fds[last];
        b->watchers[slot] = b->watchers[last];
        b->slot_of[evl__poll_find(b, b->watchers[slot]->fd)] = (unsigned short)slot;
    }
    b->count--;
}

/* One wait, with the loop's signals unblocked during it (mask; NULL: the thread's own mask). */
#ifdef EVL__POLL_PPOLL
EVL__PRIVATE int evl__poll_wait(evl__backend *b, evl_time timeout, const sigset_t *mask) {
    struct timespec ts;
    if (timeout != EVL_FOREVER) {
        ts.tv_sec = timeout / 1000000000u > (evl_time)INT_MAX ? INT_MAX : (time_t)(timeout / 1000000000u);
        ts.tv_nsec = (long)(timeout % 1000000000u);
    }
    return ppoll(b->fds, (nfds_t)b->count + 1u, timeout == EVL_FOREVER ? NULL : &ts, mask);
}
#else
/* Milliseconds rounded up, never early.  A signal that arrives between the unmasking and poll()
   runs the handler, which writes the wake-up, so poll() returns at once: nothing is lost. */
EVL__PRIVATE int evl__poll_wait(evl__backend *b, evl_time timeout, const sigset_t *mask) {
    evl_time ms = timeout / 1000000u + (timeout % 1000000u != 0);
    int n, err, wait_ms = timeout == EVL_FOREVER ? -1 : ms > (evl_time)INT_MAX ? INT_MAX : (int)ms;
    sigset_t own;
    if (!mask) return poll(b->fds, (nfds_t)b->count + 1u, wait_ms);
    if (pthread_sigmask(SIG_SETMASK, mask, &own) != 0) return poll(b->fds, (nfds_t)b->count + 1u, wait_ms);
    n = poll(b->fds, (nfds_t)b->count + 1u, wait_ms);
    err = errno;
    pthread_sigmask(SIG_SETMASK, &own, NULL);
    errno = err;
    return n;
}
#endif

/* A descriptor closed while watched is answered with POLLNVAL at every wait.  epoll forgets such a
   descriptor, and so does this backend: its slot is left out of the waits (a negative fd) until
   evl_io_set or evl_io_reset names it again. */
EVL__PRIVATE int evl__backend_wait(evl_loop *loop, evl_time timeout, evl__ready *ready, int capacity) {
    evl__backend *b = &loop->backend;
    int n = evl__poll_wait(b, timeout, evl__posix_wait_mask(loop)), count = 0, seen, slot, first;
    if (n < 0) return errno == EINTR ? 0 : -errno;
#ifdef EVL__POLL_PPOLL
    evl__posix_wait_returned(loop);                 /* poll() between pthread_sigmask calls needs not */
#endif
    if (n > 0 && b->fds[0].revents) {
        evl__poll_drain_wake(b);
        evl__wake_received(loop);                   /* after draining: see evl__wake */
        n--;
    }
    /* A batch that filled ready[] continues there next time, so the later slots are not starved. */
    first = b->scan_from <= b->count ? b->scan_from : 1;
    b->scan_from = 1;
    for (seen = 0, slot = first; seen < b->count && n > 0; seen++, slot = slot == b->count ? 1 : slot + 1) {
        struct pollfd *p = &b->fds[slot];
        if (!p->revents) continue;
        n--;
        if (p->revents & POLLNVAL) {
            p->fd = -1;
            continue;
        }
        if (count == capacity) {
            b->scan_from = slot;
            break;
        }
        ready[count].w = b->watchers[slot];
        ready[count].revents = evl__poll_revents(p->revents);
        count++;
    }
    return count;
}

/* EAGAIN: the pipe is full or the counter at its maximum, so a wake-up is waiting to be read. */
EVL__PRIVATE int evl__backend_wake(evl_loop *loop) {
#ifdef EVL__POLL_EVENTFD
    uint64_t one = 1;
#else
    char one = 1;
#endif
    while (write(loop->backend.wakefd, &one, sizeof one) < 0) {
        if (errno == EAGAIN) return 0;
        if (errno != EINTR) return -errno;
    }
    return 0;
}

/* poll() keeps no kernel object that could stand for the loop. */
EVL__PRIVATE int evl__backend_fd(const evl_loop *loop) {
    (void)loop;
    return -1;
}

EVL__PRIVATE int evl__backend_signal_start(evl_loop *loop, int signum) {
    (void)loop;
    (void)signum;
    return EVL__USE_HANDLER;
}

EVL__PRIVATE void evl__backend_signal_stop(evl_loop *loop, int signum) {
    (void)loop;
    (void)signum;
}

EVL__PRIVATE int evl__backend_child_start(evl_loop *loop, evl_child *c) {
    (void)loop;
    (void)c;
    return EVL__USE_SIGCHLD;
}

EVL__PRIVATE void evl__backend_child_stop(evl_loop *loop, evl_child *c) {
    (void)loop;
    (void)c;
}

EVL__PRIVATE void evl__backend_dump(const evl_loop *loop, const evl_child *c, FILE *out) {
    (void)loop;
    (void)c;
    fprintf(out, "by SIGCHLD");
}

EVL__PRIVATE const char *evl__backend_name(void) { return "poll"; }

#ifdef __cplusplus
}
#endif

#endif /* EVL__BACKEND_IMPLEMENTATION */
