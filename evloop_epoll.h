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
     io_uring (Linux 5.6)        file operations (evl_op_*), set up at a loop's first one: a ring
                                 of EVLOOP_IO_URING_ENTRIES (64) submissions and twice as many
                                 completions, mapped with mmap, its descriptor watched by epoll;
                                 without it (or with EVLOOP_NO_IO_URING), the worker threads or
                                 inline, as on the other backends
   A call that fails with ENOSYS (an old kernel) or EPERM (a container's seccomp profile) is not
   tried again by any loop of the process, also when it starts failing after it worked.
*/

/* ---- Types (first inclusion) ----------------------------------------------------------------- */
#ifndef EVLOOP_EPOLL_H
#define EVLOOP_EPOLL_H

#include <sys/epoll.h>

#if EVLOOP_HAS_FILE_OPS && !defined(EVLOOP_NO_IO_URING) && !defined(__alpha__)
#define EVL__BACKEND_HAS_OPS 1
#ifndef EVLOOP_IO_URING_ENTRIES
#define EVLOOP_IO_URING_ENTRIES 64
#endif

/* A loop's io_uring, mapped at its first file operation.  The kernel and the loop share the rings:
   the loop writes submissions at the tail of the SQ ring and reads completions from the head of
   the CQ ring, the kernel the other way round. */
typedef struct evl__ring {
    int fd;                         /* -1 until set up */
    unsigned entries, cq_entries;
    unsigned *sq_head, *sq_tail, *sq_flags, *cq_head, *cq_tail;
    unsigned sq_mask, cq_mask;
    void *sqes;                     /* struct evl__sqe[entries] */
    void *cqes;                     /* struct evl__cqe[cq_entries] */
    void *sq_map, *cq_map;          /* the same mapping where the kernel maps both rings at once */
    size_t sq_map_size, cq_map_size, sqes_size;
    unsigned unsubmitted;           /* written at the tail, not yet entered */
    unsigned in_flight;             /* submissions whose completion has not been read */
    int draining;                   /* evl_deinit: completions are read and dropped */
    evl_io watcher;                 /* the ring's descriptor: readable when completions wait */
} evl__ring;
#endif

typedef struct evl__backend {
    int epfd;
    int wakefd;                     /* eventfd */
    int timerfd;                    /* only without epoll_pwait2, else -1 */
    evl_time timer_armed;           /* absolute deadline the timerfd is set to, 0: none */
    struct epoll_event events[EVLOOP_MAX_EVENTS];
#if defined(EVL__BACKEND_HAS_OPS)
    evl__ring ring;
#endif
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
#include <sys/mman.h>
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

#if defined(EVL__BACKEND_HAS_OPS)
struct evl__ring;
EVL__PRIVATE void evl__ring_unmap(struct evl__ring *r);
#endif

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
#if defined(EVL__BACKEND_HAS_OPS)
    b->ring.fd = -1;
#endif
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
#if defined(EVL__BACKEND_HAS_OPS)
    evl__ring_unmap(&b->ring);
#endif
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
    evl__posix_wait_returned(loop);
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

/* ---- File operations through io_uring ------------------------------------------------------------
   The kernel's structures are declared here rather than taken from <linux/io_uring.h>, which not
   every toolchain ships (musl-gcc has no kernel headers); they are part of the kernel's ABI.
   A ring is set up at a loop's first file operation.  The process asks the kernel once what it
   offers (IORING_REGISTER_PROBE, Linux 5.6): refused calls (ENOSYS, EPERM, EACCES), an
   io_uring_disabled sysctl of 2, or a kernel without the probe or reads at the file position
   leave every operation to the core's other engines; an operation the probe does not list goes
   there alone. */
#if defined(EVL__BACKEND_HAS_OPS)

#if !defined(SYS_io_uring_setup)
#define SYS_io_uring_setup (EVL__SYSCALL_BASE + 425)
#endif
#if !defined(SYS_io_uring_enter)
#define SYS_io_uring_enter (EVL__SYSCALL_BASE + 426)
#endif
#if !defined(SYS_io_uring_register)
#define SYS_io_uring_register (EVL__SYSCALL_BASE + 427)
#endif

typedef struct evl__ring_offsets {  /* io_sqring_offsets and io_cqring_offsets alike */
    uint32_t head, tail, ring_mask, ring_entries, flags_or_overflow, dropped_or_cqes, array_or_flags, resv1;
    uint64_t user_addr;
} evl__ring_offsets;

typedef struct evl__ring_params {   /* io_uring_params */
    uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd, resv[3];
    evl__ring_offsets sq_off, cq_off;
} evl__ring_params;

typedef struct evl__sqe {           /* io_uring_sqe, 64 bytes */
    uint8_t opcode, flags;
    uint16_t ioprio;
    int32_t fd;
    uint64_t off;                   /* or addr2: statx's buffer */
    uint64_t addr;
    uint32_t len;
    uint32_t op_flags;              /* rw_flags, fsync_flags, open_flags, statx_flags... */
    uint64_t user_data;
    uint64_t tail[3];
} evl__sqe;

typedef struct evl__cqe {           /* io_uring_cqe */
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} evl__cqe;

typedef struct evl__ring_probe {    /* io_uring_probe with room for 64 operations */
    uint8_t last_op, ops_len;
    uint16_t resv;
    uint32_t resv2[3];
    struct {
        uint8_t op, resv;
        uint16_t flags;
        uint32_t resv2;
    } ops[64];
} evl__ring_probe;

enum {
    EVL__RING_READV = 1, EVL__RING_WRITEV = 2, EVL__RING_FSYNC = 3, EVL__RING_ASYNC_CANCEL = 14,
    EVL__RING_OPENAT = 18, EVL__RING_CLOSE = 19, EVL__RING_STATX = 21, EVL__RING_READ = 22, EVL__RING_WRITE = 23
};
#define EVL__RING_OFF_SQ 0ull
#define EVL__RING_OFF_CQ 0x8000000ull
#define EVL__RING_OFF_SQES 0x10000000ull
#define EVL__RING_FEAT_SINGLE_MMAP 1u
#define EVL__RING_FEAT_RW_CUR_POS 8u
#define EVL__RING_ENTER_GETEVENTS 1u
#define EVL__RING_REGISTER_PROBE 8u
#define EVL__RING_OP_SUPPORTED 1u
#define EVL__RING_FSYNC_DATASYNC 1u
#define EVL__RING_SQ_CQ_OVERFLOW 2u
#define EVL__RING_CANCEL_TAG 1u         /* user_data of a cancellation: odd, so never an evl_op */

/* The kernel fills read buffers behind valgrind's back: it is told, where its header is found. */
#if !defined(EVLOOP_NO_VALGRIND) && defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define EVL__RING_FILLED(addr, len) ((void)VALGRIND_MAKE_MEM_DEFINED((addr), (len)))
#endif
#endif
#ifndef EVL__RING_FILLED
#define EVL__RING_FILLED(addr, len) ((void)0)
#endif

/* What the kernel offers, asked once per process: 0 unknown, 1 yes, -1 no; and which operations. */
static int evl__ring_state;
static uint32_t evl__ring_ops;          /* bit per opcode below 32 */

EVL__PRIVATE int evl__ring_refused(int err) { return err == ENOSYS || err == EPERM || err == EACCES; }

/* io_uring_disabled: 0 allowed, 1 only for a group (the setup then fails with EPERM), 2 never. */
EVL__PRIVATE EVL__COLD int evl__ring_disabled_by_sysctl(void) {
    char c = '0';
    int fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    if (read(fd, &c, 1) != 1) c = '0';
    close(fd);
    return c == '2';
}

EVL__PRIVATE int evl__ring_enter(int fd, unsigned submit, unsigned wait, unsigned flags) {
    return (int)syscall(SYS_io_uring_enter, fd, submit, wait, flags, NULL, 0);
}

/* Learns from a new ring which operations the kernel supports; without reads at the file position
   or the probe itself (Linux before 5.6), the ring is not used at all. */
EVL__PRIVATE EVL__COLD void evl__ring_learn(int fd, const evl__ring_params *p) {
    evl__ring_probe probe;
    uint32_t ops = 0;
    unsigned i;
    memset(&probe, 0, sizeof probe);
    if (syscall(SYS_io_uring_register, fd, EVL__RING_REGISTER_PROBE, &probe, 64) < 0 ||
        !(p->features & EVL__RING_FEAT_RW_CUR_POS)) {
        EVL__STORE(&evl__ring_state, -1);
        return;
    }
    for (i = 0; i < probe.ops_len && i < 64; i++)
        if (probe.ops[i].op < 32 && (probe.ops[i].flags & EVL__RING_OP_SUPPORTED)) ops |= 1u << probe.ops[i].op;
    EVL__STORE(&evl__ring_ops, ops);
    EVL__STORE(&evl__ring_state, (ops & (1u << EVL__RING_READ)) && (ops & (1u << EVL__RING_WRITE)) &&
                                         (ops & (1u << EVL__RING_ASYNC_CANCEL)) ? 1 : -1);
}

/* A ring of entries, its descriptor or -errno; the first one also answers what the kernel offers. */
EVL__PRIVATE EVL__COLD int evl__ring_create(unsigned entries, evl__ring_params *p) {
    int fd;
    if (EVL__LOAD_RELAXED(&evl__ring_state) == 0 && evl__ring_disabled_by_sysctl()) {
        EVL__STORE(&evl__ring_state, -1);
        return -EPERM;
    }
    memset(p, 0, sizeof *p);
    fd = (int)syscall(SYS_io_uring_setup, entries, p);
    if (fd < 0) {
        int err = errno;
        if (evl__ring_refused(err)) EVL__STORE(&evl__ring_state, -1);
        return -err;
    }
    if (EVL__LOAD_RELAXED(&evl__ring_state) == 0) evl__ring_learn(fd, p);
    return fd;
}

/* Whether rings can be used at all, asking the kernel with a small ring if nobody has yet. */
EVL__PRIVATE int evl__ring_usable(void) {
    if (EVL__LOAD_RELAXED(&evl__ring_state) == 0) {
        evl__ring_params p;
        int fd = evl__ring_create(1, &p);
        if (fd >= 0) close(fd);
    }
    return EVL__LOAD_RELAXED(&evl__ring_state) > 0;
}

EVL__PRIVATE void evl__ring_unmap(evl__ring *r) {
    if (r->sqes) munmap(r->sqes, r->sqes_size);
    if (r->cq_map && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_map_size);
    if (r->sq_map) munmap(r->sq_map, r->sq_map_size);
    if (r->fd >= 0) close(r->fd);
    r->sqes = r->cq_map = r->sq_map = NULL;
    r->fd = -1;
}

EVL__PRIVATE void *evl__ring_map(int fd, size_t size, unsigned long long offset) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, (off_t)offset);
    return p == MAP_FAILED ? NULL : p;
}

#define EVL__RING_AT(base, offset) ((unsigned *)(void *)((char *)(base) + (offset)))

EVL__PRIVATE void evl__ring_ready(evl_loop *loop, evl_io *io, unsigned revents);

/* Maps the loop's ring and watches its descriptor: 0 or -errno. */
EVL__PRIVATE EVL__COLD int evl__ring_setup(evl_loop *loop) {
    evl__ring *r = &loop->backend.ring;
    evl__ring_params p;
    unsigned i, *array;
    int rc;
    if ((r->fd = evl__ring_create(EVLOOP_IO_URING_ENTRIES, &p)) < 0) {
        rc = r->fd;
        r->fd = -1;
        return rc;
    }
    rc = -ENOSYS;
    if (EVL__LOAD_RELAXED(&evl__ring_state) < 0) goto fail;     /* the first ring learned it is no use */
    r->entries = p.sq_entries;
    r->cq_entries = p.cq_entries;
    r->sq_map_size = p.sq_off.array_or_flags + p.sq_entries * sizeof(unsigned);
    r->cq_map_size = p.cq_off.dropped_or_cqes + p.cq_entries * sizeof(evl__cqe);
    if (p.features & EVL__RING_FEAT_SINGLE_MMAP) {
        if (r->cq_map_size > r->sq_map_size) r->sq_map_size = r->cq_map_size;
        r->cq_map_size = r->sq_map_size;
    }
    r->sqes_size = p.sq_entries * sizeof(evl__sqe);
    rc = -ENOMEM;
    if (!(r->sq_map = evl__ring_map(r->fd, r->sq_map_size, EVL__RING_OFF_SQ))) goto fail;
    r->cq_map = p.features & EVL__RING_FEAT_SINGLE_MMAP ? r->sq_map
                                                         : evl__ring_map(r->fd, r->cq_map_size, EVL__RING_OFF_CQ);
    if (!r->cq_map || !(r->sqes = evl__ring_map(r->fd, r->sqes_size, EVL__RING_OFF_SQES))) goto fail;
    r->sq_head = EVL__RING_AT(r->sq_map, p.sq_off.head);
    r->sq_tail = EVL__RING_AT(r->sq_map, p.sq_off.tail);
    r->sq_flags = EVL__RING_AT(r->sq_map, p.sq_off.flags_or_overflow);
    r->sq_mask = *EVL__RING_AT(r->sq_map, p.sq_off.ring_mask);
    r->cq_head = EVL__RING_AT(r->cq_map, p.cq_off.head);
    r->cq_tail = EVL__RING_AT(r->cq_map, p.cq_off.tail);
    r->cq_mask = *EVL__RING_AT(r->cq_map, p.cq_off.ring_mask);
    r->cqes = (char *)r->cq_map + p.cq_off.dropped_or_cqes;
    array = EVL__RING_AT(r->sq_map, p.sq_off.array_or_flags);
    for (i = 0; i < r->entries; i++) array[i] = i;      /* slot i of the ring is entry i, for good */
    r->unsubmitted = r->in_flight = 0;
    r->draining = 0;
    evl__io_init_internal(&r->watcher, evl__ring_ready, r->fd, EVL_READ);
    if ((rc = evl_io_start(loop, &r->watcher)) < 0) goto fail;
    return 0;
fail:
    evl__ring_unmap(r);
    return rc;
}

/* Hands what was written to the kernel; a submission that fails is consumed with its error as
   its completion, and the kernel stops there, so the rest goes in the next call. */
EVL__PRIVATE void evl__ring_submit(evl__ring *r) {
    while (r->unsubmitted > 0) {
        int n = evl__ring_enter(r->fd, r->unsubmitted, 0, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;                 /* EAGAIN, EBUSY: the next iteration tries again */
        r->unsubmitted -= (unsigned)n;
    }
}

/* The next free submission, zeroed; the ring has room (in_flight < cq_entries was checked, and a
   full submission queue is handed over first). */
EVL__PRIVATE evl__sqe *evl__ring_next(evl__ring *r) {
    unsigned tail = *r->sq_tail;
    evl__sqe *sqe;
    if (tail - EVL__LOAD(r->sq_head) >= r->entries) {
        evl__ring_submit(r);
        if (tail - EVL__LOAD(r->sq_head) >= r->entries) return NULL;
    }
    sqe = (evl__sqe *)r->sqes + (tail & r->sq_mask);
    memset(sqe, 0, sizeof *sqe);
    return sqe;
}

EVL__PRIVATE void evl__ring_push(evl__ring *r) {
    __atomic_store_n(r->sq_tail, *r->sq_tail + 1, __ATOMIC_RELEASE);
    r->unsubmitted++;
    r->in_flight++;
}

/* The ring's operation for op, or 0 if it has none (the core's other engines then run it). */
EVL__PRIVATE uint8_t evl__ring_opcode(const evl_op *op) {
    static const uint8_t opcodes[] = {0,
                                      EVL__RING_READ,
                                      EVL__RING_WRITE,
                                      EVL__RING_READV,
                                      EVL__RING_WRITEV,
                                      EVL__RING_FSYNC,
                                      EVL__RING_FSYNC,
                                      EVL__RING_OPENAT,
                                      EVL__RING_CLOSE,
                                      0 /* fstat */,
                                      EVL__RING_STATX,
                                      0 /* work */};
    uint8_t code = op->code < sizeof opcodes ? opcodes[op->code] : 0;
    return code && (EVL__LOAD_RELAXED(&evl__ring_ops) & (1u << code)) ? code : 0;
}

EVL__PRIVATE void evl__ring_describe(evl__sqe *sqe, const evl_op *op, uint8_t opcode) {
    sqe->opcode = opcode;
    sqe->fd = op->fd;
    sqe->user_data = (uint64_t)(uintptr_t)op;
    sqe->addr = (uint64_t)(uintptr_t)op->addr;
    switch (op->code) {
    case EVL__DO_READ:
    case EVL__DO_WRITE:
    case EVL__DO_READV:
    case EVL__DO_WRITEV:
        sqe->off = (uint64_t)op->offset;            /* EVL_OP_CURRENT is the kernel's -1 too */
        sqe->len = (uint32_t)(op->len > 0x7ffff000u ? 0x7ffff000u : op->len);   /* as read() caps it */
        break;
    case EVL__DO_FDATASYNC: sqe->op_flags = EVL__RING_FSYNC_DATASYNC; break;
    case EVL__DO_OPENAT:
        sqe->len = op->mode;
        sqe->op_flags = (uint32_t)op->flags;
        break;
    case EVL__DO_STATX:
        sqe->len = op->mode;
        sqe->op_flags = (uint32_t)op->flags;
        sqe->off = (uint64_t)(uintptr_t)op->out;
        break;
    default: break;
    }
}

EVL__PRIVATE int evl__backend_op_submit(evl_loop *loop, evl_op *op) {
    evl__ring *r = &loop->backend.ring;
    uint8_t opcode;
    evl__sqe *sqe;
    if (r->fd < 0 && (EVL__LOAD_RELAXED(&evl__ring_state) < 0 || evl__ring_setup(loop) < 0)) return EVL__OP_ELSEWHERE;
    if (!(opcode = evl__ring_opcode(op))) return EVL__OP_ELSEWHERE;
    if (r->in_flight >= r->cq_entries || !(sqe = evl__ring_next(r))) return EVL__OP_FULL;
    evl__ring_describe(sqe, op, opcode);
    evl__ring_push(r);
    return 0;
}

EVL__PRIVATE void evl__backend_op_flush(evl_loop *loop) {
    evl__ring *r = &loop->backend.ring;
    if (r->unsubmitted) evl__ring_submit(r);
}

EVL__PRIVATE int evl__backend_op_unsubmitted(const evl_loop *loop) { return loop->backend.ring.unsubmitted > 0; }

/* A cancellation has a completion of its own, which is dropped; the operation's own completion
   says -ECANCELED, or its result if it finished first.  It may pass the in_flight limit: the
   kernel keeps completions that do not fit (IORING_FEAT_NODROP, Linux 5.5).  Cancellations are
   rare and may come when no operation starts: each is submitted at once. */
EVL__PRIVATE void evl__backend_op_cancel(evl_loop *loop, evl_op *op) {
    evl__ring *r = &loop->backend.ring;
    evl__sqe *sqe = evl__ring_next(r);
    if (!sqe) return;                       /* the kernel holds every slot: it finishes by itself */
    sqe->opcode = EVL__RING_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = (uint64_t)(uintptr_t)op;
    sqe->user_data = EVL__RING_CANCEL_TAG;
    evl__ring_push(r);
    evl__ring_submit(r);
}

/* What a successful operation wrote into the program's memory, for valgrind. */
EVL__PRIVATE void evl__ring_mark_filled(const evl_op *op, int32_t res) {
    const struct iovec *iov = (const struct iovec *)op->addr;
    size_t left = (size_t)res, i;
    if (res < 0) return;
    switch (op->code) {
    case EVL__DO_READ: EVL__RING_FILLED(op->addr, left); break;
    case EVL__DO_READV:
        for (i = 0; i < op->len && left > 0; left -= iov[i].iov_len < left ? iov[i].iov_len : left, i++)
            EVL__RING_FILLED(iov[i].iov_base, iov[i].iov_len < left ? iov[i].iov_len : left);
        break;
#if EVLOOP_HAS_STATX
    case EVL__DO_STATX: EVL__RING_FILLED(op->out, sizeof(struct statx)); break;
#endif
    default: break;
    }
    (void)iov, (void)i;
}

/* Reads every completion waiting; completions that did not fit wait in the kernel and are moved
   into the ring by an enter. */
EVL__PRIVATE void evl__ring_reap(evl_loop *loop) {
    evl__ring *r = &loop->backend.ring;
    for (;;) {
        unsigned head = *r->cq_head, tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
        if (head == tail) {
            if (!(EVL__LOAD(r->sq_flags) & EVL__RING_SQ_CQ_OVERFLOW)) return;
            if (evl__ring_enter(r->fd, 0, 0, EVL__RING_ENTER_GETEVENTS) < 0 && errno != EINTR) return;
            continue;
        }
        for (; head != tail; head++) {
            const evl__cqe *cqe = (const evl__cqe *)r->cqes + (head & r->cq_mask);
            uint64_t user_data = cqe->user_data;
            int32_t res = cqe->res;
            r->in_flight--;
            if (user_data == EVL__RING_CANCEL_TAG) continue;
            if (r->draining) {                  /* evl_deinit: reported to nobody */
                evl__op_discard((evl_op *)(uintptr_t)user_data, (ssize_t)res);
                continue;
            }
            evl__ring_mark_filled((const evl_op *)(uintptr_t)user_data, res);
            evl__op_finished(loop, (evl_op *)(uintptr_t)user_data, (ssize_t)res);
        }
        __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
    }
}

EVL__PRIVATE void evl__ring_ready(evl_loop *loop, evl_io *io, unsigned revents) {
    (void)io;
    (void)revents;
    evl__ring_reap(loop);
}

/* evl_deinit, after each operation in flight was asked to cancel: waits for all of them, since
   the kernel would otherwise write into buffers the program may free. */
EVL__PRIVATE void evl__backend_ops_drain(evl_loop *loop) {
    evl__ring *r = &loop->backend.ring;
    if (r->fd < 0) return;
    r->draining = 1;
    while (r->in_flight > 0) {
        int n = evl__ring_enter(r->fd, r->unsubmitted, 1, EVL__RING_ENTER_GETEVENTS);
        if (n > 0) r->unsubmitted -= (unsigned)n;
        else if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) break;   /* cannot wait */
        evl__ring_reap(loop);               /* EBUSY: completions the kernel holds come in first */
    }
}

EVL__PRIVATE int evl__backend_op_would_take(const evl_loop *loop) {
    return loop->backend.ring.fd >= 0 || evl__ring_usable();
}

EVL__PRIVATE const char *evl__backend_op_engine(void) { return "io_uring"; }

#endif /* EVL__BACKEND_HAS_OPS */

#ifdef __cplusplus
}
#endif

#endif /* EVL__BACKEND_IMPLEMENTATION */
