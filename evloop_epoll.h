/* evloop_epoll.h - the Linux backend of evloop.h.  MIT license (see evloop.h).

   Include evloop.h, not this file: it includes this one twice, once for the types (inside the
   declarations) and once for the implementation.

   What it uses, and what it falls back to on older kernels:
     epoll_pwait2 (Linux 5.11)   nanosecond timeouts; without it, a timerfd armed at the next
                                 deadline wakes epoll_pwait, so timers are not rounded to milliseconds
     pidfd_open (Linux 5.3) and  one descriptor per child watcher, reaped through the descriptor, so
     waitid(P_PIDFD) (5.4)       a reused pid can never be mistaken for it; without them, SIGCHLD and
                                 waitpid() on each watched pid (never on other children)
     eventfd, epoll_pwait        wake-ups from evl_stop, evl_async_send and signal handlers; waits
                                 with the loop's signals unblocked
   A call that fails with ENOSYS (an old kernel) or EPERM (a container's seccomp profile) is not
   tried again by any loop of the process, also when it starts failing after it worked.
*/

/* ---- Types (first inclusion) ----------------------------------------------------------------- */
#ifndef EVLOOP_EPOLL_H
#define EVLOOP_EPOLL_H

#include <sys/epoll.h>

typedef struct evl__backend {
    int epfd;
    int wakefd;                     /* eventfd */
    int timerfd;                    /* only without epoll_pwait2, else -1 */
    evl_time timer_armed;           /* absolute deadline the timerfd is set to, 0: none */
    struct epoll_event events[EVLOOP_MAX_EVENTS];
} evl__backend;

typedef struct evl__child_backend {
    evl_io pidfd;                   /* active while the child is watched through a pidfd */
} evl__child_backend;
#define EVL__CHILD_STATE evl__child_backend

#endif /* EVLOOP_EPOLL_H */

/* ---- Implementation (second inclusion, from the end of evloop.h) ----------------------------- */
#if defined(EVL__BACKEND_IMPLEMENTATION) && !defined(EVLOOP_EPOLL_IMPLEMENTED)
#define EVLOOP_EPOLL_IMPLEMENTED

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* Since Linux 5.1 a new system call has one number on every architecture, offset on those whose
   numbering starts elsewhere (MIPS by ABI, ia64), so headers older than the calls can still make
   them.  Alpha numbers them apart: there only the C library's own names serve. */
#if defined(__mips__) && defined(_MIPS_SIM) && defined(_ABIO32) && _MIPS_SIM == _ABIO32
#define EVL__SYSCALL_BASE 4000
#elif defined(__mips__) && defined(_MIPS_SIM) && defined(_ABI64) && _MIPS_SIM == _ABI64
#define EVL__SYSCALL_BASE 5000
#elif defined(__mips__) && defined(_MIPS_SIM) && defined(_ABIN32) && _MIPS_SIM == _ABIN32
#define EVL__SYSCALL_BASE 6000
#elif defined(__ia64__)
#define EVL__SYSCALL_BASE 1024
#else
#define EVL__SYSCALL_BASE 0
#endif
#if !defined(SYS_epoll_pwait2) && !defined(__alpha__)
#define SYS_epoll_pwait2 (EVL__SYSCALL_BASE + 441)
#endif
#if !defined(SYS_pidfd_open) && !defined(__alpha__)
#define SYS_pidfd_open (EVL__SYSCALL_BASE + 434)
#endif

#ifdef __cplusplus
extern "C" {
#endif

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The kernel's sigset_t, which epoll_pwait2 wants the size of: 64 signals, 128 on MIPS. */
#define EVL__EPOLL_SIGSET_BYTES ((NSIG - 1 + 7) / 8)

/* What the kernel turned out to support, shared by all loops: 0 unknown, 1 yes, -1 no. */
static int evl__epoll_has_pwait2;
static int evl__epoll_has_pidfd;

/* ENOSYS on an old kernel, EPERM from a sandbox that refuses calls it does not know. */
EVL__PRIVATE int evl__epoll_refused(int err) { return err == ENOSYS || err == EPERM; }

EVL__PRIVATE uint32_t evl__epoll_interest(unsigned events) {
    return (events & EVL_READ ? (uint32_t)EPOLLIN : 0u) | (events & EVL_WRITE ? (uint32_t)EPOLLOUT : 0u) |
           (events & EVL_PRI ? (uint32_t)EPOLLPRI : 0u);
}

/* EPOLLIN, EPOLLERR and EPOLLHUP have the values of EVL_READ, EVL_ERROR and EVL_HUP; EPOLLOUT and
   EPOLLPRI are EVL_PRI and EVL_WRITE swapped.  The mapping runs once per event, so it is done with
   shifts; the asserts in evl__backend_init keep it honest. */
EVL__PRIVATE unsigned evl__epoll_revents(uint32_t e) {
    return (unsigned)((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) | (e & EPOLLOUT) >> 1 | (e & EPOLLPRI) << 1);
}

EVL__PRIVATE int evl__epoll_ctl(evl_loop *loop, int op, int fd, uint32_t events, void *ptr) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.ptr = ptr;
    return epoll_ctl(loop->backend.epfd, op, fd, &ev) < 0 ? -errno : 0;
}

EVL__PRIVATE void evl__epoll_drain(int fd) {
    uint64_t count;
    while (read(fd, &count, sizeof count) < 0 && errno == EINTR) {
    }
}

/* The kernel's struct __kernel_timespec: epoll_pwait2 takes 64-bit seconds on every architecture,
   also where the C library's struct timespec has a 32-bit time_t (i386, 32-bit ARM). */
typedef struct evl__kernel_timespec {
    int64_t tv_sec;
    long long tv_nsec;
} evl__kernel_timespec;

EVL__PRIVATE int evl__epoll_probe_pwait2(int epfd) {
    struct epoll_event ev;
    evl__kernel_timespec zero = {0, 0};
    int state = EVL__LOAD_RELAXED(&evl__epoll_has_pwait2);
    if (state == 0) {
        state = syscall(SYS_epoll_pwait2, epfd, &ev, 1, &zero, NULL, 0) < 0 && evl__epoll_refused(errno) ? -1 : 1;
        EVL__STORE(&evl__epoll_has_pwait2, state);
    }
    return state > 0;
}

/* Whether pidfd_open and waitid(P_PIDFD) both work, asked once per process (and before any fork,
   so children inherit the answer).  Waiting through our own pidfd must say ECHILD (we are not our
   own child), not EINVAL (P_PIDFD unknown, Linux 5.3). */
EVL__PRIVATE void evl__epoll_probe_pidfd(void) {
    siginfo_t info;
    int fd, state = -1;
    if (EVL__LOAD_RELAXED(&evl__epoll_has_pidfd) != 0) return;
    fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (fd >= 0) {
        memset(&info, 0, sizeof info);
        if (waitid((idtype_t)P_PIDFD, (id_t)fd, &info, WEXITED | WNOHANG) < 0 && errno == ECHILD) state = 1;
        close(fd);
    } else if (!evl__epoll_refused(errno)) {
        return;                                     /* out of descriptors, say: ask again later */
    }
    EVL__STORE(&evl__epoll_has_pidfd, state);
}

EVL__PRIVATE int evl__epoll_add_timerfd(evl_loop *loop) {
    evl__backend *b = &loop->backend;
    int rc;
    b->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (b->timerfd < 0) return -errno;
    if ((rc = evl__epoll_ctl(loop, EPOLL_CTL_ADD, b->timerfd, EPOLLIN, &b->timerfd)) < 0) {
        close(b->timerfd);
        b->timerfd = -1;
    }
    b->timer_armed = 0;
    return rc;
}

EVL__PRIVATE EVL__COLD int evl__backend_init(evl_loop *loop) {
    evl__backend *b = &loop->backend;
    int rc;
    EVLOOP_ASSERT(evl__epoll_revents(EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLERR | EPOLLHUP) ==
                  (unsigned)(EVL_READ | EVL_WRITE | EVL_PRI | EVL_ERROR | EVL_HUP));
    EVLOOP_ASSERT(evl__epoll_revents(EPOLLOUT) == EVL_WRITE && evl__epoll_revents(EPOLLPRI) == EVL_PRI);
    b->wakefd = b->timerfd = -1;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) return -errno;
    b->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->wakefd < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = evl__epoll_ctl(loop, EPOLL_CTL_ADD, b->wakefd, EPOLLIN, &b->wakefd)) < 0) goto fail;
    evl__epoll_probe_pidfd();
    if (!evl__epoll_probe_pwait2(b->epfd) && (rc = evl__epoll_add_timerfd(loop)) < 0) goto fail;
    return 0;
fail:
    evl__backend_deinit(loop);
    return rc;
}

/* Only closes: after fork() the parent shares the epoll set, so it must not be edited. */
EVL__PRIVATE void evl__backend_deinit(evl_loop *loop) {
    evl__backend *b = &loop->backend;
    if (b->timerfd >= 0) close(b->timerfd);
    if (b->wakefd >= 0) close(b->wakefd);
    if (b->epfd >= 0) close(b->epfd);
    b->epfd = b->wakefd = b->timerfd = -1;
}

EVL__PRIVATE int evl__backend_io_start(evl_loop *loop, evl_io *w) {
    int rc = evl__epoll_ctl(loop, EPOLL_CTL_ADD, w->fd, evl__epoll_interest(w->events), w);
    return rc == -EPERM ? EVL__NOT_POLLABLE : rc;   /* epoll refuses regular files and directories */
}

/* ENOENT: the descriptor was closed while watched, which took it out of the set, and its number
   now names another file: register that one. */
EVL__PRIVATE int evl__backend_io_modify(evl_loop *loop, evl_io *w, unsigned events) {
    int rc = evl__epoll_ctl(loop, EPOLL_CTL_MOD, w->fd, evl__epoll_interest(events), w);
    return rc == -ENOENT ? evl__epoll_ctl(loop, EPOLL_CTL_ADD, w->fd, evl__epoll_interest(events), w) : rc;
}

/* Errors are ignored: a descriptor closed before its watcher stopped has already left the set. */
EVL__PRIVATE void evl__backend_io_stop(evl_loop *loop, evl_io *w) {
    if (loop->backend.epfd >= 0) (void)evl__epoll_ctl(loop, EPOLL_CTL_DEL, w->fd, 0, w);
}

/* A finite timeout without epoll_pwait2, which only takes milliseconds: rather than round a deadline
   (late by up to a millisecond) the timerfd is armed at it and the wait has no timeout of its own.
   Should the timerfd be missing (epoll_pwait2 was refused only after this loop was made, and no
   descriptor was left to make one), the milliseconds are rounded up: late, never early. */
EVL__PRIVATE EVL__COLD int evl__epoll_wait_ms(evl_loop *loop, evl_time timeout, const sigset_t *mask) {
    evl__backend *b = &loop->backend;
    evl_time deadline = evl__add_sat(loop->now, timeout);
    if (b->timerfd < 0 && evl__epoll_add_timerfd(loop) < 0) {
        evl_time ms = timeout / 1000000u + (timeout % 1000000u != 0);
        return epoll_pwait(b->epfd, b->events, EVLOOP_MAX_EVENTS, ms > INT_MAX ? INT_MAX : (int)ms, mask);
    }
    if (deadline != b->timer_armed) {
        struct itimerspec its;
        memset(&its, 0, sizeof its);
        its.it_value.tv_sec = (time_t)(deadline / 1000000000u);
        its.it_value.tv_nsec = (long)(deadline % 1000000000u);
        if (timerfd_settime(b->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) return -1;
        b->timer_armed = deadline;
    }
    return epoll_pwait(b->epfd, b->events, EVLOOP_MAX_EVENTS, -1, mask);
}

/* A finite timeout, to the nanosecond. */
EVL__PRIVATE int evl__epoll_wait_ns(evl_loop *loop, evl_time timeout, const sigset_t *mask) {
    evl__backend *b = &loop->backend;
    evl__kernel_timespec ts;
    ts.tv_sec = (int64_t)(timeout / 1000000000u);
    ts.tv_nsec = (long long)(timeout % 1000000000u);
    return (int)syscall(SYS_epoll_pwait2, b->epfd, b->events, EVLOOP_MAX_EVENTS, &ts, mask,
                        mask ? (size_t)EVL__EPOLL_SIGSET_BYTES : (size_t)0);
}

EVL__PRIVATE int evl__epoll_wait(evl_loop *loop, evl_time timeout) {
    evl__backend *b = &loop->backend;
    const sigset_t *mask = evl__posix_wait_mask(loop);
    int n;
    /* epoll_wait is cheaper than epoll_pwait2 (no timespec to copy in, a direct libc call), so
       it serves whenever no sub-millisecond timeout is needed: a pass that does not block, or
       an endless wait. */
    if (timeout == 0 || timeout == EVL_FOREVER) {
        int ms = timeout == 0 ? 0 : -1;
        return mask ? epoll_pwait(b->epfd, b->events, EVLOOP_MAX_EVENTS, ms, mask)
                    : epoll_wait(b->epfd, b->events, EVLOOP_MAX_EVENTS, ms);
    }
    if (EVL__LOAD_RELAXED(&evl__epoll_has_pwait2) > 0) {
        if ((n = evl__epoll_wait_ns(loop, timeout, mask)) >= 0 || !evl__epoll_refused(errno)) return n;
        EVL__STORE(&evl__epoll_has_pwait2, -1);     /* refused after it worked: a sandbox came */
    }
    return evl__epoll_wait_ms(loop, timeout, mask);
}

EVL__PRIVATE int evl__backend_wait(evl_loop *loop, evl_time timeout, evl__ready *ready, int capacity) {
    evl__backend *b = &loop->backend;
    int n = evl__epoll_wait(loop, timeout), i, count = 0;
    (void)capacity;                                 /* epoll returns at most EVLOOP_MAX_EVENTS, its size */
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (i = 0; i < n; i++) {
        void *p = b->events[i].data.ptr;
        if (p == &b->wakefd) {
            evl__epoll_drain(b->wakefd);
            evl__wake_received(loop);               /* after draining: see evl__wake */
        } else if (p == &b->timerfd) {
            evl__epoll_drain(b->timerfd);
            b->timer_armed = 0;
        } else {
            ready[count].w = (evl_io *)p;
            ready[count].revents = evl__epoll_revents(b->events[i].events);
            count++;
        }
    }
    return count;
}

/* EAGAIN means the counter is full, so the eventfd is readable already: the wake-up is on its way. */
EVL__PRIVATE int evl__backend_wake(evl_loop *loop) {
    uint64_t one = 1;
    while (write(loop->backend.wakefd, &one, sizeof one) < 0) {
        if (errno == EAGAIN) return 0;
        if (errno != EINTR) return -errno;
    }
    return 0;
}

EVL__PRIVATE int evl__backend_fd(const evl_loop *loop) { return loop->backend.epfd; }

EVL__PRIVATE int evl__backend_signal_start(evl_loop *loop, int signum) {
    (void)loop;
    (void)signum;
    return EVL__USE_HANDLER;
}

EVL__PRIVATE void evl__backend_signal_stop(evl_loop *loop, int signum) {
    (void)loop;
    (void)signum;
}

/* The status as waitpid() gives it, from waitid()'s account; the layout WIFEXITED and friends
   decode is the same on every Linux architecture. */
EVL__PRIVATE int evl__epoll_wait_status(const siginfo_t *info) {
    switch (info->si_code) {
    case CLD_EXITED: return (info->si_status & 0xff) << 8;
    case CLD_DUMPED: return (info->si_status & 0x7f) | 0x80;
    default: return info->si_status & 0x7f;     /* CLD_KILLED */
    }
}

/* The child exited.  It is reaped through its pidfd, which names that process and no other: if the
   program reaped it first, the answer is ECHILD (status -1) even when its pid was given to a new
   child since. */
EVL__PRIVATE void evl__epoll_pidfd_ready(evl_loop *loop, evl_io *io, unsigned revents) {
    evl_child *c = EVL__CONTAINER(io, evl_child, backend.pidfd);
    siginfo_t info;
    int rc;
    (void)revents;
    memset(&info, 0, sizeof info);
    while ((rc = waitid((idtype_t)P_PIDFD, (id_t)io->fd, &info, WEXITED | WNOHANG)) < 0 && errno == EINTR) {
    }
    if (rc < 0 && errno != ECHILD) {
        evl__child_reap(loop, c);                   /* refused since the probe: by pid, then */
        return;
    }
    if (rc == 0 && info.si_pid == 0) return;        /* not yet: cannot be, once it is readable */
    evl__child_exited(loop, c, rc < 0 ? -1 : evl__epoll_wait_status(&info));
}

EVL__PRIVATE int evl__backend_child_start(evl_loop *loop, evl_child *c) {
    evl_io *io = &c->backend.pidfd;
    int fd, rc;
    if (EVL__LOAD_RELAXED(&evl__epoll_has_pidfd) < 0) return EVL__USE_SIGCHLD;
    fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    if (fd < 0) {
        if (!evl__epoll_refused(errno)) return -errno;
        EVL__STORE(&evl__epoll_has_pidfd, -1);
        return EVL__USE_SIGCHLD;
    }
    evl__io_init_internal(io, evl__epoll_pidfd_ready, fd, EVL_READ);
    if ((rc = evl_io_start(loop, io)) < 0) {
        close(fd);
        return rc;
    }
    return 0;
}

EVL__PRIVATE void evl__backend_child_stop(evl_loop *loop, evl_child *c) {
    evl_io *io = &c->backend.pidfd;
    if (!evl__linked(&io->link)) return;
    evl_io_stop(loop, io);
    close(io->fd);
    io->fd = -1;
}

EVL__PRIVATE void evl__backend_dump(const evl_loop *loop, const evl_child *c, FILE *out) {
    (void)loop;
    fprintf(out, "by pidfd %d", c->backend.pidfd.fd);
}

EVL__PRIVATE const char *evl__backend_name(void) { return "epoll"; }

#ifdef __cplusplus
}
#endif

#endif /* EVL__BACKEND_IMPLEMENTATION */
