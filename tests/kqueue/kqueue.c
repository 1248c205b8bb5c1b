/* kqueue.c - kqueue(2) and kevent(2) emulated on Linux, so that evloop's kqueue backend can be
   tested without a BSD.  Test code: MIT license (see evloop.h).

   The semantics come from the FreeBSD and macOS kqueue(2) manual pages, checked against their
   kernels where the pages are silent.  Where the two systems differ the default follows FreeBSD
   and KQEMU_MACOS follows macOS (see sys/event.h).  Needs Linux 5.3 (pidfd_open); without it, or
   without epoll_pwait2 (5.11), the fallbacks below run.  KQEMU_NOSYS=1 in the environment makes
   the emulation behave as if both were missing, to test those fallbacks.

   DESIGN
   ======
   A kqueue is an epoll descriptor (the "main" epoll), which kqueue() returns: it can be polled
   like a real kqueue.  The knotes live in a static table (KQEMU_MAX_KQUEUES kqueues of
   KQEMU_MAX_KNOTES each, no allocation) guarded by one mutex; every holder of the mutex blocks all
   signals, so a signal handler may call kevent() (as evl_async_send may) without deadlocking.

   kevent() applies the changes in order, exactly as FreeBSD's kqueue_kevent does (an EV_ERROR
   entry per failed or EV_RECEIPT change while the event list has room, else -1 and errno; any such
   entry ends the call before events are collected).  It then collects: it runs the filter of every
   enabled knote, as BSD runs the filter again when an event is retrieved, and reports those whose
   condition holds.  epoll only tells it when to look again:

     EVFILT_READ/WRITE/EXCEPT  each knote owns a small epoll holding its descriptor edge-triggered
                               with only its own interest (EPOLLIN|EPOLLRDHUP, EPOLLOUT, EPOLLPRI),
                               and that epoll sits in the main one.  Linux filters wake-ups by
                               their key, so new data wakes the read knote and freed space the
                               write knote, as BSD's two knote lists do: that is what EV_CLEAR
                               needs ("reported again only after a new event").  The condition
                               itself comes from poll(), FIONREAD and friends at collection time.
                               Regular files cannot be in an epoll: their knotes follow BSD's
                               vnode rule (readable while the offset is before the end, `data` =
                               bytes left, which may be negative) and inotify wakes the kqueue when
                               the file is written.
     EVFILT_PROC               a pidfd, one-shot in the main epoll.  The exit status is read with
                               waitid(WNOWAIT), which leaves the zombie for the program to reap.
     EVFILT_USER               a flag; a change from another thread pokes an eventfd of the kqueue.
     EVFILT_SIGNAL             a counter per signal (below).

   Level-triggered knotes that were reported stay queued on BSD, which keeps the kqueue descriptor
   readable until the next kevent(); the same eventfd is poked to keep the epoll readable.

   SIGNALS
   =======
   BSD records every attempt to deliver a signal, even one the program ignores or blocks, and
   leaves the disposition alone.  Linux discards an ignored signal, so while a knote watches a
   signal the emulation takes its disposition over:
     - sigaction() and signal() are macros (sys/event.h) that, for a watched signal, keep the
       program's action aside and report it back unchanged, while the real action is a recorder.
       The recorder counts the delivery (an atomic counter per signal, which knotes compare with
       the count they last reported, so `data` is the number of deliveries since), pokes an
       eventfd that sits, edge-triggered, in every kqueue, and then does what the program asked:
       calls its handler, or nothing for SIG_IGN and for a default action that ignores.
     - A watched signal the program ignores may also be blocked in every thread, where no handler
       runs.  A signalfd holding those signals is read by kevent(), which takes them from the
       pending set and records them: for an ignored signal that is what BSD does too (it never
       stays pending).
     - When the last knote for a signal goes, the program's action is installed again.
   A default action that ends or stops the process is left in place (nothing could report it).
   FreeBSD does not record an ignored SIGCHLD (it is not even sent): the default flavour keeps the
   real SIG_IGN there.  macOS records it: its flavour installs the recorder with SA_NOCLDWAIT, so
   children are still reaped by the kernel.  macOS only records signals sent to the process, not to
   a thread (xnu posts the knote only without PSIG_THREAD): pthread_kill, and raise() if it signals
   the calling thread, as macOS's libc does as far as I know.  Its flavour skips deliveries whose
   si_code is SI_TKILL, which is what glibc's raise() and pthread_kill() send.

   WHAT IS NOT EXACT
   =================
     - close() drops knotes only through the wrapper macro.  A descriptor closed any other way
       (another translation unit, dup2 over it, a library) is noticed lazily: a knote whose
       descriptor is gone, or now names another file (device and inode differ), is dropped when it
       is next looked at, silently, before it can report.  A descriptor number reused for the same
       file (dup of a still-open file) is not noticed.
     - Signals: a delivery is recorded when the recorder runs, not when the signal is generated:
       a signal the program handles (or leaves at a default that ends the process) and that is
       blocked in every thread is recorded only once unblocked, and standard signals generated
       while blocked coalesce to one.  A signal sent to one thread that blocks it is recorded only
       if that thread unblocks it or calls kevent().  Syscalls that do not restart (poll, nanosleep,
       epoll_wait) can see EINTR from the recorder where the program expects SIG_IGN; kevent()
       itself retries.  An action with SA_RESETHAND keeps the recorder installed.  The recorder reads
       the program's action without the lock (two copies, the new one published after it is
       written): two sigaction() calls during one delivery could show it a half-written action.  A child created
       with vfork/posix_spawn inherits the recorder, which exec turns into SIG_DFL where the program
       had SIG_IGN (fork is handled: see below).
     - `fflags` on EV_EOF carries the socket error, but Linux cannot read a socket's error without
       clearing it: the emulation keeps it aside for getsockopt(SO_ERROR) (wrapper macro), and a
       read() then returns 0 where BSD would return the error.  It is taken only when the socket
       reports both an error and end of file.
     - `data`: UDP gives the size of the next datagram (Linux FIONREAD), BSD the whole buffer; a
       listening Unix socket gives 1, not the backlog; write space is SO_SNDBUF minus the queued
       bytes (Linux doubles SO_SNDBUF); descriptors without FIONREAD give 0.  A fresh TCP socket
       that never connected polls as hung up on Linux and reports EV_EOF.  A TCP socket knows it
       can no longer send (EV_EOF on EVFILT_WRITE) after its own shutdown(SHUT_WR), a Unix socket
       does not.
     - EVFILT_PROC: only NOTE_EXIT.  The status is known for children of the caller only (other
       processes give 0, as does a child the program reaped before the emulation saw it exit).
       Without pidfd_open, children are polled with waitid every KQEMU_POLL_NS.
     - The kqueue descriptor can poll readable with nothing to report (a disabled knote's
       descriptor became ready, a watched signal arrived for another kqueue).  BSD also reads
       readable after a level-triggered event until the next kevent(); that part is emulated.
     - A regular file on a file system without inotify is polled every KQEMU_POLL_NS, and for
       EV_CLEAR a write that leaves the size unchanged goes unseen.
     - Devices epoll refuses (/dev/null) are refused with ENODEV.
     - Re-adding a knote does not change its EV_ONESHOT/EV_CLEAR/EV_DISPATCH behaviour (FreeBSD
       keeps the flags of the first EV_ADD).
     - Filters not listed above (EVFILT_AIO, VNODE, TIMER, ...) are refused with EINVAL.

   FORK
   ====
   BSD does not inherit kqueues: in a child of fork(), every kqueue descriptor is closed (kevent on
   it fails with EBADF, as on BSD), and the program's signal actions are installed again. */
#define _GNU_SOURCE 1
#define KQEMU_NO_WRAPPERS 1
#include "sys/event.h"

/* This file calls the real functions, even if the header came in earlier with its wrappers. */
#undef close
#undef sigaction
#undef signal
#undef getsockopt

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KQEMU_MAX_KQUEUES
#define KQEMU_MAX_KQUEUES 16        /* kqueues open at once in one process */
#endif
#ifndef KQEMU_MAX_KNOTES
#define KQEMU_MAX_KNOTES 512        /* knotes per kqueue (at most 65536: the index is 16 bits) */
#endif
#ifndef KQEMU_MAX_FD
#define KQEMU_MAX_FD 4096           /* descriptors whose socket error can be kept aside */
#endif
#define KQEMU_POLL_NS 1000000       /* the longest wait while something can only be polled */
#define KQEMU_WAIT_EVENTS 32

#if !defined(SYS_epoll_pwait2) && !defined(__alpha__)
#define SYS_epoll_pwait2 441
#endif
#if !defined(SYS_pidfd_open) && !defined(__alpha__)
#define SYS_pidfd_open 434
#endif

/* ============================================================================================== */
/* State                                                                                          */
/* ============================================================================================== */

enum kqemu_kind {
    KQEMU_KIND_NONE,                /* EVFILT_SIGNAL, EVFILT_USER */
    KQEMU_KIND_FILE,                /* a regular file or directory: not pollable, vnode rules */
    KQEMU_KIND_FIFO,
    KQEMU_KIND_SOCKET,
    KQEMU_KIND_TCP,
    KQEMU_KIND_OTHER,               /* any other pollable descriptor (tty, eventfd, ...) */
    KQEMU_KIND_PIDFD,
    KQEMU_KIND_WAITID               /* a process watched without pidfd: polled */
};

/* What an epoll event in a main epoll stands for: the top byte of data.u64. */
enum kqemu_tag {
    KQEMU_TAG_KNOTE,                /* a knote's own epoll or pidfd: generation and slot below */
    KQEMU_TAG_WAKE,
    KQEMU_TAG_SIGWAKE,
    KQEMU_TAG_SIGFD,
    KQEMU_TAG_INOTIFY,
    KQEMU_TAG_TIMER
};

typedef struct kqemu_knote {
    unsigned char used, enabled, kind;
    unsigned char activated;        /* an event happened since the last report (for EV_CLEAR) */
    short filter;
    unsigned short flags;           /* EV_ONESHOT, EV_CLEAR, EV_DISPATCH, EV_RECEIPT, from the EV_ADD */
    uint32_t gen;                   /* told apart from the slot's earlier knotes in epoll tags */
    uintptr_t ident;
    unsigned int sfflags;           /* filter flags given; EVFILT_USER: the stored user flags */
    int64_t sdata;                  /* data given (NOTE_LOWAT mark, EVFILT_USER data) */
    void *udata;
    int aux;                        /* own epoll (descriptors) or pidfd (processes), else -1 */
    int wd;                         /* inotify watch of a regular file, else -1 */
    dev_t dev;                      /* the file the descriptor named when the knote was made */
    ino_t ino;
    uint64_t seen;                  /* EVFILT_SIGNAL: the delivery count last reported; a file
                                       polled without inotify: its size when last looked at */
    int exited, status;             /* EVFILT_PROC */
    int triggered;                  /* EVFILT_USER */
} kqemu_knote;

typedef struct kqemu_kq {
    int used;
    int epfd;                       /* the kqueue descriptor the program holds */
    dev_t dev;
    ino_t ino;
    int wakefd;                     /* eventfd: look again (changes from other threads, level events) */
    int timerfd;                    /* timeouts when epoll_pwait2 is missing, else -1 */
    int inofd;                      /* inotify for regular files, made on demand, else -1 */
    int waiters;                    /* threads blocked in this kqueue's epoll */
    int polled;                     /* knotes that can only be polled: waits are cut short */
    unsigned next;                  /* where the next scan starts, so that reports take turns */
    unsigned top;                   /* slots in use are below this */
    kqemu_knote kn[KQEMU_MAX_KNOTES];
} kqemu_kq;

typedef struct kqemu_sig {
    int watchers;                   /* knotes on this signal in every kqueue */
    int recording;                  /* the real action is the recorder */
    int consume;                    /* in the signalfd: may be taken from the pending set */
    int shown_index;                /* which of shown[] is current (flipped for the handler) */
    struct sigaction shown[2];      /* the program's action, reported back to it */
    uint64_t count;                 /* deliveries recorded since the process started */
} kqemu_sig;

/* What a filter found when it ran. */
typedef struct kqemu_state {
    int ready, eof;
    int64_t data;
    unsigned int fflags;
} kqemu_state;

static pthread_mutex_t kqemu_lock = PTHREAD_MUTEX_INITIALIZER;
static kqemu_kq kqemu_kqs[KQEMU_MAX_KQUEUES];
static kqemu_sig kqemu_sigs[NSIG];
static int kqemu_sockerr[KQEMU_MAX_FD];     /* socket errors taken for `fflags`, kept for SO_ERROR */
static int kqemu_sigwake = -1;              /* eventfd the recorder pokes, in every kqueue (edge) */
static int kqemu_sigfd = -1;                /* signalfd of the watched signals the program ignores */
static int kqemu_started, kqemu_has_pwait2, kqemu_has_pidfd;
static sigset_t kqemu_fork_mask;

/* Per thread: deliveries the recorder took without a handler of the program to run, so that
   kevent() can tell an EINTR that BSD would not give (the program ignores the signal). */
static __thread unsigned kqemu_silent_runs, kqemu_handler_runs;

/* ============================================================================================== */
/* Small helpers                                                                                  */
/* ============================================================================================== */

/* Blocks every signal, then locks: no handler can run on a thread that holds the lock. */
static void kqemu_enter(sigset_t *old) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
    pthread_mutex_lock(&kqemu_lock);
}

static void kqemu_leave(const sigset_t *old) {
    int saved_errno = errno;
    pthread_mutex_unlock(&kqemu_lock);
    pthread_sigmask(SIG_SETMASK, old, NULL);
    errno = saved_errno;
}

static uint64_t kqemu_tag(enum kqemu_tag type, uint32_t gen, unsigned index) {
    return (uint64_t)type << 56 | (uint64_t)gen << 16 | index;
}

static int kqemu_ctl(int epfd, int op, int fd, uint32_t events, uint64_t tag) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = tag;
    return epoll_ctl(epfd, op, fd, &ev);
}

/* Async-signal-safe. */
static void kqemu_poke(int fd) {
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
    }
}

static void kqemu_drain(int fd) {
    uint64_t count;
    while (read(fd, &count, sizeof count) > 0) {
    }
}

static int64_t kqemu_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int kqemu_is_fd_filter(int filter) {
#if defined(EVFILT_EXCEPT)
    if (filter == EVFILT_EXCEPT) return 1;
#endif
    return filter == EVFILT_READ || filter == EVFILT_WRITE;
}

static int kqemu_is_known_filter(int filter) {
    return kqemu_is_fd_filter(filter) || filter == EVFILT_SIGNAL || filter == EVFILT_PROC || filter == EVFILT_USER;
}

/* The calls whose absence is emulated by KQEMU_NOSYS=1 are probed once per process. */
static void kqemu_start(void);

/* ============================================================================================== */
/* Signals                                                                                        */
/* ============================================================================================== */

static int kqemu_ignored_by_default(int signum) {
    return signum == SIGCHLD || signum == SIGCONT || signum == SIGURG || signum == SIGWINCH;
}

static const struct sigaction *kqemu_shown(const kqemu_sig *s) {
    return &s->shown[__atomic_load_n(&s->shown_index, __ATOMIC_ACQUIRE)];
}

/* Makes `act` the action shown to the program.  The recorder reads it without the lock, so the
   copy not in use is written and then published. */
static void kqemu_show(kqemu_sig *s, const struct sigaction *act) {
    int next = !s->shown_index;
    s->shown[next] = *act;
    __atomic_store_n(&s->shown_index, next, __ATOMIC_RELEASE);
}

/* Async-signal-safe. */
static void kqemu_record(int signum, int code) {
#if defined(KQEMU_MACOS)
    if (code == SI_TKILL) return;   /* macOS counts only signals sent to the whole process */
#else
    (void)code;
#endif
    __atomic_add_fetch(&kqemu_sigs[signum].count, 1, __ATOMIC_SEQ_CST);
    kqemu_poke(__atomic_load_n(&kqemu_sigwake, __ATOMIC_RELAXED));
}

/* The real action of a watched signal: record, then do what the program asked for. */
static void kqemu_on_signal(int signum, siginfo_t *info, void *context) {
    int saved_errno = errno;
    const struct sigaction *shown = kqemu_shown(&kqemu_sigs[signum]);
    kqemu_record(signum, info ? info->si_code : SI_USER);
    if (shown->sa_handler == SIG_IGN || shown->sa_handler == SIG_DFL) {
        kqemu_silent_runs++;
    } else {
        kqemu_handler_runs++;
        if (shown->sa_flags & SA_SIGINFO) shown->sa_sigaction(signum, info, context);
        else shown->sa_handler(signum);
    }
    errno = saved_errno;
}

/* Installs the real action that matches the action shown for a watched signal. */
static void kqemu_sig_install(int signum) {
    kqemu_sig *s = &kqemu_sigs[signum];
    const struct sigaction *shown = &s->shown[s->shown_index];
    int handled = shown->sa_handler != SIG_IGN && shown->sa_handler != SIG_DFL;
    struct sigaction real;
    s->recording = s->consume = 0;
    if (signum == SIGKILL || signum == SIGSTOP) return;
    if (shown->sa_handler == SIG_DFL && !kqemu_ignored_by_default(signum)) {
        sigaction(signum, shown, NULL); /* the default action ends or stops the process: keep it */
        return;
    }
#if !defined(KQEMU_MACOS)
    if (signum == SIGCHLD && shown->sa_handler == SIG_IGN) {
        sigaction(signum, shown, NULL); /* FreeBSD: an ignored SIGCHLD is not recorded */
        return;
    }
#endif
    memset(&real, 0, sizeof real);
    real.sa_sigaction = kqemu_on_signal;
    if (handled) {
        real.sa_mask = shown->sa_mask;
        real.sa_flags = shown->sa_flags & (SA_RESTART | SA_NODEFER | SA_ONSTACK | SA_NOCLDSTOP | SA_NOCLDWAIT);
    } else {
        sigemptyset(&real.sa_mask);
        real.sa_flags = SA_RESTART | (shown->sa_flags & (SA_NOCLDSTOP | SA_NOCLDWAIT));
        if (signum == SIGCHLD && shown->sa_handler == SIG_IGN) real.sa_flags |= SA_NOCLDWAIT;
    }
    real.sa_flags |= SA_SIGINFO;
    if (sigaction(signum, &real, NULL) == 0) {
        s->recording = 1;
        s->consume = !handled;
    }
}

/* The signalfd holds the watched signals that may be taken from the pending set. */
static void kqemu_sigfd_update(void) {
    sigset_t mask;
    int signum, any = 0, i;
    sigemptyset(&mask);
    for (signum = 1; signum < NSIG; signum++)
        if (kqemu_sigs[signum].watchers > 0 && kqemu_sigs[signum].consume) {
            sigaddset(&mask, signum);
            any = 1;
        }
    if (kqemu_sigfd >= 0) {
        signalfd(kqemu_sigfd, &mask, 0);
        return;
    }
    if (!any) return;
    kqemu_sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (kqemu_sigfd < 0) return;
    for (i = 0; i < KQEMU_MAX_KQUEUES; i++)
        if (kqemu_kqs[i].used)
            kqemu_ctl(kqemu_kqs[i].epfd, EPOLL_CTL_ADD, kqemu_sigfd, EPOLLIN, kqemu_tag(KQEMU_TAG_SIGFD, 0, 0));
}

/* Records the signals waiting in the signalfd (blocked, so no recorder ran for them). */
static void kqemu_sigfd_drain(void) {
    struct signalfd_siginfo info[8];
    ssize_t n;
    size_t i;
    if (kqemu_sigfd < 0) return;
    while ((n = read(kqemu_sigfd, info, sizeof info)) > 0)
        for (i = 0; i < (size_t)n / sizeof info[0]; i++) kqemu_record((int)info[i].ssi_signo, info[i].ssi_code);
}

static void kqemu_sig_watch(int signum) {
    kqemu_sig *s = &kqemu_sigs[signum];
    struct sigaction current;
    if (s->watchers++ > 0) return;
    if (sigaction(signum, NULL, &current) == 0) kqemu_show(s, &current);
    kqemu_sig_install(signum);
    kqemu_sigfd_update();
}

static void kqemu_sig_unwatch(int signum) {
    kqemu_sig *s = &kqemu_sigs[signum];
    if (--s->watchers > 0) return;
    if (s->recording) sigaction(signum, &s->shown[s->shown_index], NULL);
    s->recording = s->consume = 0;
    kqemu_sigfd_update();
}

int kqemu_sigaction(int signum, const struct sigaction *act, struct sigaction *oldact) {
    sigset_t old;
    int rc = 0;
    if (signum <= 0 || signum >= NSIG) return sigaction(signum, act, oldact);
    kqemu_enter(&old);
    if (kqemu_sigs[signum].watchers == 0 || signum == SIGKILL || signum == SIGSTOP) {
        rc = sigaction(signum, act, oldact);
    } else {
        kqemu_sig *s = &kqemu_sigs[signum];
        struct sigaction previous = s->shown[s->shown_index];
        if (act) {
            kqemu_show(s, act);
            kqemu_sig_install(signum);
            kqemu_sigfd_update();
        }
        if (oldact) *oldact = previous;
    }
    kqemu_leave(&old);
    return rc;
}

/* glibc's signal(): BSD semantics, restarting system calls. */
void (*kqemu_signal(int signum, void (*handler)(int)))(int) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART;
    memset(&old, 0, sizeof old);
    if (kqemu_sigaction(signum, &act, &old) < 0) return SIG_ERR;
    return old.sa_handler;
}

/* ============================================================================================== */
/* Knotes: attaching, dropping, running the filters                                               */
/* ============================================================================================== */

static kqemu_knote *kqemu_find(kqemu_kq *kq, uintptr_t ident, int filter) {
    unsigned i;
    for (i = 0; i < kq->top; i++)
        if (kq->kn[i].used && kq->kn[i].ident == ident && kq->kn[i].filter == filter) return &kq->kn[i];
    return NULL;
}

static void kqemu_drop(kqemu_kq *kq, kqemu_knote *kn) {
    unsigned i;
    if (kn->aux >= 0) close(kn->aux);   /* leaves the main epoll with it */
    if (kn->wd >= 0) {
        for (i = 0; i < kq->top; i++)
            if (&kq->kn[i] != kn && kq->kn[i].used && kq->kn[i].wd == kn->wd) break;
        if (i == kq->top) inotify_rm_watch(kq->inofd, kn->wd);
    }
    if (kn->filter == EVFILT_SIGNAL) kqemu_sig_unwatch((int)kn->ident);
    if (kn->kind == KQEMU_KIND_WAITID || (kn->kind == KQEMU_KIND_FILE && kn->filter == EVFILT_READ && kn->wd < 0))
        kq->polled--;
    kn->used = 0;
    kn->gen++;
}

/* Whether the descriptor of a knote was closed (or now names another file) behind its back. */
static int kqemu_stale(const kqemu_knote *kn) {
    struct stat sb;
    return fstat((int)kn->ident, &sb) < 0 || sb.st_dev != kn->dev || sb.st_ino != kn->ino;
}

static void kqemu_forget_fd(int fd) {
    if (fd >= 0 && fd < KQEMU_MAX_FD) kqemu_sockerr[fd] = 0;
}

/* A regular file cannot be in an epoll: inotify tells when it is written. */
static void kqemu_watch_file(kqemu_kq *kq, kqemu_knote *kn) {
    char path[64];
    if (kq->inofd < 0) {
        kq->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (kq->inofd >= 0 &&
            kqemu_ctl(kq->epfd, EPOLL_CTL_ADD, kq->inofd, EPOLLIN, kqemu_tag(KQEMU_TAG_INOTIFY, 0, 0)) < 0) {
            close(kq->inofd);
            kq->inofd = -1;
        }
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", (int)kn->ident);
    kn->wd = kq->inofd >= 0 ? inotify_add_watch(kq->inofd, path, IN_MODIFY) : -1;
    if (kn->wd < 0) kq->polled++;
}

static int kqemu_attach_fd(kqemu_kq *kq, kqemu_knote *kn) {
    int fd = (int)kn->ident, inner, protocol = 0, err;
    socklen_t len = sizeof protocol;
    uint32_t interest = EPOLLIN | EPOLLRDHUP;
    uint64_t tag = kqemu_tag(KQEMU_TAG_KNOTE, kn->gen, (unsigned)(kn - kq->kn));
    struct stat sb;
    if (fstat(fd, &sb) < 0) return errno;
    kn->dev = sb.st_dev;
    kn->ino = sb.st_ino;
    if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)) {
        if (kn->filter != EVFILT_READ && kn->filter != EVFILT_WRITE) return EINVAL;
        kn->kind = KQEMU_KIND_FILE;
        kn->seen = (uint64_t)sb.st_size;
        if (kn->filter == EVFILT_READ) kqemu_watch_file(kq, kn);
        return 0;
    }
    if (S_ISFIFO(sb.st_mode)) kn->kind = KQEMU_KIND_FIFO;
    else if (!S_ISSOCK(sb.st_mode)) kn->kind = KQEMU_KIND_OTHER;
    else if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 && protocol == IPPROTO_TCP)
        kn->kind = KQEMU_KIND_TCP;
    else kn->kind = KQEMU_KIND_SOCKET;
    if (kn->filter == EVFILT_WRITE) interest = EPOLLOUT;
    else if (kn->filter != EVFILT_READ) interest = EPOLLPRI | EPOLLRDHUP;
    inner = epoll_create1(EPOLL_CLOEXEC);
    if (inner < 0) return errno;
    if (kqemu_ctl(inner, EPOLL_CTL_ADD, fd, interest | EPOLLET, 0) < 0 ||
        kqemu_ctl(kq->epfd, EPOLL_CTL_ADD, inner, EPOLLIN, tag) < 0) {
        err = errno == EPERM ? ENODEV : errno;  /* EPERM: a device that cannot be polled */
        close(inner);
        return err;
    }
    kn->aux = inner;
    return 0;
}

/* The wait status, as wait() would give it, of a child that exited; 0 for other processes. */
static int kqemu_exit_status(pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid != pid) return 0;
    switch (info.si_code) {
    case CLD_EXITED: return (info.si_status & 0xff) << 8;
    case CLD_KILLED: return info.si_status & 0x7f;
    case CLD_DUMPED: return (info.si_status & 0x7f) | 0x80;
    default: return 0;
    }
}

static int kqemu_attach_proc(kqemu_kq *kq, kqemu_knote *kn) {
    pid_t pid = (pid_t)kn->ident;
    int pidfd = -1;
    if (kn->ident == 0 || kn->ident > INT_MAX) return ESRCH;
#if defined(KQEMU_MACOS)
    if ((kn->sfflags & (NOTE_EXIT | NOTE_EXITSTATUS)) == (NOTE_EXIT | NOTE_EXITSTATUS)) {
        siginfo_t info;                 /* the exit status is only for the parent to see */
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD &&
            kill(pid, 0) == 0)
            return EACCES;
    }
#endif
    if (kqemu_has_pidfd) {
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0 && errno != ENOSYS) return errno;
        if (pidfd < 0) kqemu_has_pidfd = 0;
    }
    kn->flags |= EV_CLEAR;
    if (pidfd >= 0) {
#if defined(KQEMU_MACOS)
        /* macOS cannot attach to a process that already exited (it is a zombie, not found). */
        struct pollfd p;
        p.fd = pidfd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 0) == 1) {
            close(pidfd);
            return ESRCH;
        }
#endif
        if (kqemu_ctl(kq->epfd, EPOLL_CTL_ADD, pidfd, EPOLLIN | EPOLLONESHOT,
                      kqemu_tag(KQEMU_TAG_KNOTE, kn->gen, (unsigned)(kn - kq->kn))) < 0) {
            int err = errno;
            close(pidfd);
            return err;
        }
        kn->kind = KQEMU_KIND_PIDFD;
        kn->aux = pidfd;
        return 0;
    }
    if (kill(pid, 0) < 0 && errno == ESRCH) return ESRCH;
    kn->kind = KQEMU_KIND_WAITID;
    kq->polled++;
    return 0;
}

static void kqemu_proc_check(kqemu_knote *kn) {
    pid_t pid = (pid_t)kn->ident;
    if (kn->exited) return;
    if (kn->kind == KQEMU_KIND_PIDFD) {
        struct pollfd p;
        p.fd = kn->aux;
        p.events = POLLIN;
        p.revents = 0;
        kn->exited = poll(&p, 1, 0) == 1;
    } else {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0) kn->exited = info.si_pid == pid;
        else kn->exited = errno == ECHILD && kill(pid, 0) < 0 && errno == ESRCH;
    }
    if (kn->exited) kn->status = kqemu_exit_status(pid);
}

/* EVFILT_USER: the control bits say how the low 24 bits change the stored flags. */
static void kqemu_user_touch(kqemu_knote *kn, const struct kevent *change) {
    unsigned int ff = change->fflags & NOTE_FFLAGSMASK;
    switch (change->fflags & NOTE_FFCTRLMASK) {
    case NOTE_FFAND: kn->sfflags &= ff; break;
    case NOTE_FFOR: kn->sfflags |= ff; break;
    case NOTE_FFCOPY: kn->sfflags = ff; break;
    default: break;
    }
    kn->sdata = change->data;
    if (change->fflags & NOTE_TRIGGER) kn->triggered = 1;
}

static int kqemu_attach(kqemu_kq *kq, kqemu_knote *kn, const struct kevent *change) {
    switch (kn->filter) {
    case EVFILT_SIGNAL:
        if (kn->ident == 0 || kn->ident >= NSIG) return EINVAL;
        kqemu_sig_watch((int)kn->ident);
        kn->seen = __atomic_load_n(&kqemu_sigs[kn->ident].count, __ATOMIC_SEQ_CST);
        kn->flags |= EV_CLEAR;          /* set internally, and reported, as on BSD */
        return 0;
    case EVFILT_PROC:
        return kqemu_attach_proc(kq, kn);
    case EVFILT_USER:
        kn->sfflags = 0;
        kqemu_user_touch(kn, change);
        return 0;
    default:
        return kqemu_attach_fd(kq, kn);
    }
}

/* ---- Running a filter ------------------------------------------------------------------------ */

static int kqemu_tcp_info(int fd, struct tcp_info *ti) {
    socklen_t len = sizeof *ti;
    memset(ti, 0, sizeof *ti);
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len);
}

static int64_t kqemu_readable_bytes(const kqemu_knote *kn, int fd) {
    int n = 0, listening = 0;
    socklen_t len = sizeof listening;
    if ((kn->kind == KQEMU_KIND_SOCKET || kn->kind == KQEMU_KIND_TCP) &&
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
        struct tcp_info ti;             /* BSD: the number of connections waiting to be accepted */
        if (kn->kind == KQEMU_KIND_TCP && kqemu_tcp_info(fd, &ti) == 0) return ti.tcpi_unacked;
        return 1;
    }
    return ioctl(fd, FIONREAD, &n) == 0 ? n : 0;
}

static int64_t kqemu_writable_bytes(const kqemu_knote *kn, int fd) {
    int size = 0, queued = 0;
    socklen_t len = sizeof size;
    if (kn->kind == KQEMU_KIND_SOCKET || kn->kind == KQEMU_KIND_TCP) {
        if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &len) < 0 || ioctl(fd, TIOCOUTQ, &queued) < 0) return 0;
    } else if (kn->kind == KQEMU_KIND_FIFO) {
        size = fcntl(fd, F_GETPIPE_SZ);
        if (size < 0 || ioctl(fd, FIONREAD, &queued) < 0) return 0;
    }
    return size > queued ? size - queued : 0;
}

/* After its own shutdown(SHUT_WR) a TCP socket polls writable on Linux; BSD reports EV_EOF. */
static int kqemu_tcp_cannot_send(int fd) {
    struct tcp_info ti;
    if (kqemu_tcp_info(fd, &ti) < 0) return 0;
    switch (ti.tcpi_state) {
    case TCP_FIN_WAIT1: case TCP_FIN_WAIT2: case TCP_CLOSING: case TCP_LAST_ACK: case TCP_TIME_WAIT: return 1;
    default: return 0;
    }
}

/* The socket error BSD puts in `fflags` with EV_EOF.  Reading it clears it on Linux, so it is kept
   for the program's getsockopt(SO_ERROR). */
static unsigned int kqemu_socket_error(int fd, int polled_error) {
    int err = 0;
    socklen_t len = sizeof err;
    if (fd >= KQEMU_MAX_FD) return 0;
    if (kqemu_sockerr[fd] == 0 && polled_error && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0)
        kqemu_sockerr[fd] = err;
    return (unsigned int)kqemu_sockerr[fd];
}

/* Returns -1 when the descriptor is gone: the knote must be dropped, as close() does on BSD. */
static int kqemu_run_fd_filter(kqemu_knote *kn, kqemu_state *st) {
    int fd = (int)kn->ident, lowat;
    struct stat sb;
    struct pollfd p;
    short r;
    if (fstat(fd, &sb) < 0 || sb.st_dev != kn->dev || sb.st_ino != kn->ino) return -1;
    if (kn->kind == KQEMU_KIND_FILE) {
        off_t at = lseek(fd, 0, SEEK_CUR);
        if (kn->filter == EVFILT_WRITE) {
            st->ready = 1;              /* FreeBSD: a vnode is always writable */
            return 0;
        }
        if (kn->wd < 0 && (uint64_t)sb.st_size != kn->seen) {
            kn->seen = (uint64_t)sb.st_size;
            kn->activated = 1;          /* no inotify: a new size stands for the write BSD sees */
        }
        st->data = (int64_t)sb.st_size - (at < 0 ? 0 : at);
        st->ready = st->data != 0;      /* BSD: not at the end of the file (beyond it counts too) */
#if defined(NOTE_FILE_POLL)
        if (kn->sfflags & NOTE_FILE_POLL) st->ready = 1;
#endif
        return 0;
    }
    p.fd = fd;
    p.events = POLLIN | POLLOUT | POLLPRI | POLLRDHUP;
    p.revents = 0;
    if (poll(&p, 1, 0) < 0 || (p.revents & POLLNVAL)) return -1;
    r = p.revents;
    lowat = (kn->sfflags & NOTE_LOWAT) != 0;
    if (kn->filter == EVFILT_READ) {
        st->eof = (r & (POLLHUP | POLLRDHUP)) != 0;
        st->data = kqemu_readable_bytes(kn, fd);
        st->ready = (r & (POLLIN | POLLHUP | POLLRDHUP | POLLERR)) != 0;
        if (lowat && !st->eof && !(r & POLLERR) && st->data < kn->sdata) st->ready = 0;
    } else if (kn->filter == EVFILT_WRITE) {
        st->eof = (r & POLLHUP) || (kn->kind == KQEMU_KIND_FIFO && (r & POLLERR)) ||
                  (kn->kind == KQEMU_KIND_TCP && kqemu_tcp_cannot_send(fd));
        st->data = st->eof ? 0 : kqemu_writable_bytes(kn, fd);
        st->ready = st->eof || (r & (POLLOUT | POLLERR));
        if (lowat && !st->eof && !(r & POLLERR) && st->data < kn->sdata) st->ready = 0;
    } else {
#if defined(EVFILT_EXCEPT)
        int oob = (kn->sfflags & NOTE_OOB) && (r & POLLPRI);
        st->eof = (r & (POLLHUP | POLLRDHUP)) != 0;
        st->ready = oob || st->eof;
        st->fflags = oob ? NOTE_OOB : 0;
#endif
    }
    if (st->eof && (kn->kind == KQEMU_KIND_SOCKET || kn->kind == KQEMU_KIND_TCP))
        st->fflags = kqemu_socket_error(fd, (r & POLLERR) != 0);
    return 0;
}

/* Runs the filter of a knote.  Returns -1 if the knote must be dropped without a report. */
static int kqemu_run_filter(kqemu_knote *kn, kqemu_state *st) {
    memset(st, 0, sizeof *st);
    switch (kn->filter) {
    case EVFILT_SIGNAL: {
        uint64_t count = __atomic_load_n(&kqemu_sigs[kn->ident].count, __ATOMIC_SEQ_CST);
        st->ready = count != kn->seen;
        st->data = (int64_t)(count - kn->seen);
        return 0;
    }
    case EVFILT_USER:
        st->ready = kn->triggered;
        st->data = kn->sdata;
        st->fflags = kn->sfflags & NOTE_FFLAGSMASK;
        return 0;
    case EVFILT_PROC:
        kqemu_proc_check(kn);
        if (!kn->exited) return 0;
        if (!(kn->sfflags & NOTE_EXIT)) return -1;  /* nothing asked for: dropped at exit, as on BSD */
        st->ready = st->eof = 1;
        st->fflags = NOTE_EXIT;
#if defined(KQEMU_MACOS)
        if (kn->sfflags & NOTE_EXITSTATUS) {
            st->fflags |= NOTE_EXITSTATUS;
            st->data = kn->status & (int)NOTE_PDATAMASK;
        }
#else
        st->data = kn->status;
#endif
        return 0;
    default:
        return kqemu_run_fd_filter(kn, st);
    }
}

/* ============================================================================================== */
/* Kqueues                                                                                        */
/* ============================================================================================== */

static void kqemu_kq_destroy(kqemu_kq *kq, int close_epfd) {
    unsigned i;
    for (i = 0; i < kq->top; i++)
        if (kq->kn[i].used) kqemu_drop(kq, &kq->kn[i]);
    if (kq->wakefd >= 0) close(kq->wakefd);
    if (kq->timerfd >= 0) close(kq->timerfd);
    if (kq->inofd >= 0) close(kq->inofd);
    if (close_epfd) close(kq->epfd);
    kq->used = 0;
}

/* The kqueue behind a descriptor, or NULL.  A slot whose descriptor was closed without the wrapper
   (and perhaps reused) is freed here. */
static kqemu_kq *kqemu_lookup(int fd) {
    struct stat sb;
    int i;
    for (i = 0; i < KQEMU_MAX_KQUEUES; i++) {
        kqemu_kq *kq = &kqemu_kqs[i];
        if (!kq->used || kq->epfd != fd) continue;
        if (fstat(fd, &sb) == 0 && sb.st_dev == kq->dev && sb.st_ino == kq->ino) return kq;
        kqemu_kq_destroy(kq, 0);
    }
    return NULL;
}

static void kqemu_fork_prepare(void) { kqemu_enter(&kqemu_fork_mask); }

static void kqemu_fork_parent(void) { kqemu_leave(&kqemu_fork_mask); }

/* A child does not inherit kqueues: close them, which also gives the program its signal actions
   back. */
static void kqemu_fork_child(void) {
    int i;
    for (i = 0; i < KQEMU_MAX_KQUEUES; i++)
        if (kqemu_kqs[i].used) kqemu_kq_destroy(&kqemu_kqs[i], 1);
    if (kqemu_sigfd >= 0) close(kqemu_sigfd);
    if (kqemu_sigwake >= 0) close(kqemu_sigwake);
    kqemu_sigfd = kqemu_sigwake = -1;
    kqemu_leave(&kqemu_fork_mask);
}

static void kqemu_start(void) {
    const char *nosys = getenv("KQEMU_NOSYS");
    if (kqemu_started) return;
    kqemu_started = 1;
    pthread_atfork(kqemu_fork_prepare, kqemu_fork_parent, kqemu_fork_child);
    kqemu_has_pwait2 = kqemu_has_pidfd = !(nosys && nosys[0] == '1');
    if (kqemu_has_pwait2) {
        struct {
            int64_t tv_sec;
            long long tv_nsec;
        } zero = {0, 0};
        struct epoll_event ev;
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        kqemu_has_pwait2 = !(syscall(SYS_epoll_pwait2, epfd, &ev, 1, &zero, NULL, 0) < 0 && errno == ENOSYS);
        close(epfd);
    }
}

int kqueue(void) {
    sigset_t old;
    kqemu_kq *kq = NULL;
    struct stat sb;
    int i, err = EMFILE, fd;
    kqemu_enter(&old);
    kqemu_start();
    if (kqemu_sigwake < 0) kqemu_sigwake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    for (i = 0; i < KQEMU_MAX_KQUEUES && !kq; i++)
        if (!kqemu_kqs[i].used) kq = &kqemu_kqs[i];
    if (!kq || kqemu_sigwake < 0) goto fail;
    fd = epoll_create1(0);
    if (fd < 0) goto fail_errno;
    (void)kqemu_lookup(fd);             /* frees a slot left by a close without the wrapper */
    memset(kq, 0, sizeof *kq);
    kq->epfd = fd;
    kq->wakefd = kq->timerfd = kq->inofd = -1;
    kq->used = 1;
    if (fstat(fd, &sb) < 0) goto fail_destroy;
    kq->dev = sb.st_dev;
    kq->ino = sb.st_ino;
    kq->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (kq->wakefd < 0 || kqemu_ctl(fd, EPOLL_CTL_ADD, kq->wakefd, EPOLLIN, kqemu_tag(KQEMU_TAG_WAKE, 0, 0)) < 0 ||
        kqemu_ctl(fd, EPOLL_CTL_ADD, kqemu_sigwake, EPOLLIN | EPOLLET, kqemu_tag(KQEMU_TAG_SIGWAKE, 0, 0)) < 0 ||
        (kqemu_sigfd >= 0 && kqemu_ctl(fd, EPOLL_CTL_ADD, kqemu_sigfd, EPOLLIN, kqemu_tag(KQEMU_TAG_SIGFD, 0, 0)) < 0))
        goto fail_destroy;
    if (!kqemu_has_pwait2) {
        kq->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (kq->timerfd < 0 ||
            kqemu_ctl(fd, EPOLL_CTL_ADD, kq->timerfd, EPOLLIN, kqemu_tag(KQEMU_TAG_TIMER, 0, 0)) < 0)
            goto fail_destroy;
    }
    kqemu_leave(&old);
    return fd;
fail_destroy:
    err = errno;
    kqemu_kq_destroy(kq, 1);
    goto fail;
fail_errno:
    err = errno;
fail:
    kqemu_leave(&old);
    errno = err;
    return -1;
}

/* ---- Changes --------------------------------------------------------------------------------- */

/* Applies one change; returns 0 or an errno value.  Sets *wake when the change may have made a
   knote reportable without its descriptor telling the epoll (BSD queues the knote then, and the
   kqueue descriptor polls readable). */
static int kqemu_register(kqemu_kq *kq, const struct kevent *change, int *wake) {
    kqemu_knote *kn;
    unsigned i;
    int err;
    if (!kqemu_is_known_filter(change->filter)) return EINVAL;
    if (kqemu_is_fd_filter(change->filter) && (change->ident > INT_MAX || fcntl((int)change->ident, F_GETFD) < 0))
        return EBADF;
    kn = kqemu_find(kq, change->ident, change->filter);
    if (kn && kqemu_is_fd_filter(kn->filter) && kqemu_stale(kn)) {
        kqemu_forget_fd((int)kn->ident);
        kqemu_drop(kq, kn);             /* its descriptor was closed without the wrapper */
        kn = NULL;
    }
    if (!kn) {
        if (!(change->flags & EV_ADD)) return ENOENT;
        for (i = 0; i < KQEMU_MAX_KNOTES && kq->kn[i].used; i++) {
        }
        if (i == KQEMU_MAX_KNOTES) return ENOMEM;
        kn = &kq->kn[i];
        kn->used = 1;
        kn->enabled = kn->activated = 1;
        kn->kind = KQEMU_KIND_NONE;
        kn->filter = change->filter;
        kn->flags = change->flags & (EV_ONESHOT | EV_CLEAR | EV_DISPATCH | EV_RECEIPT);
        kn->ident = change->ident;
        kn->sfflags = change->fflags;
        kn->sdata = change->data;
        kn->udata = change->udata;
        kn->aux = kn->wd = -1;
        kn->seen = 0;
        kn->exited = kn->status = kn->triggered = 0;
        if (i >= kq->top) kq->top = i + 1;
        err = kqemu_attach(kq, kn, change);
        if (err) {
            kn->used = 0;
            kn->gen++;
            return err;
        }
    } else if (!(change->flags & EV_DELETE)) {
        /* FreeBSD and macOS take udata and the filter's arguments from any change, not only from
           EV_ADD (FreeBSD 12 added EV_KEEPUDATA to avoid it). */
        kn->udata = change->udata;
        if (kn->filter == EVFILT_USER) {
            kqemu_user_touch(kn, change);
        } else {
            kn->sfflags = change->fflags;
            kn->sdata = change->data;
        }
        if (change->flags & EV_ADD) kn->activated = 1;  /* the filter runs again on a re-add */
        if (change->flags & EV_ADD) *wake = 1;
    }
    if (change->flags & EV_DELETE) {
        kqemu_drop(kq, kn);
        return 0;
    }
    if (change->flags & EV_DISABLE) kn->enabled = 0;
    if (change->flags & EV_ENABLE) kn->enabled = 1;
    if ((change->flags & EV_ENABLE) || (kn->filter == EVFILT_USER && kn->triggered && kn->enabled)) *wake = 1;
    return 0;
}

/* ---- Collecting ------------------------------------------------------------------------------ */

static void kqemu_inotify_drain(kqemu_kq *kq) {
    union {
        struct inotify_event ev;
        char bytes[4096];
    } buf;
    const struct inotify_event *ev;
    ssize_t n, at;
    unsigned i;
    while ((n = read(kq->inofd, &buf, sizeof buf)) > 0)
        for (at = 0; at < n; at += (ssize_t)(sizeof *ev + ev->len)) {
            ev = (const struct inotify_event *)(buf.bytes + at);
            for (i = 0; i < kq->top; i++)
                if (kq->kn[i].used && kq->kn[i].wd == ev->wd) kq->kn[i].activated = 1;
        }
}

/* Takes in what an event of the main epoll says happened. */
static void kqemu_process(kqemu_kq *kq, const struct epoll_event *ev) {
    uint64_t tag = ev->data.u64;
    kqemu_knote *kn;
    struct epoll_event inner;
    switch ((enum kqemu_tag)(tag >> 56)) {
    case KQEMU_TAG_WAKE: kqemu_drain(kq->wakefd); return;
    case KQEMU_TAG_SIGWAKE: return;     /* edge-triggered; the counters say the rest */
    case KQEMU_TAG_SIGFD: kqemu_sigfd_drain(); return;
    case KQEMU_TAG_INOTIFY: kqemu_inotify_drain(kq); return;
    case KQEMU_TAG_TIMER: kqemu_drain(kq->timerfd); return;
    case KQEMU_TAG_KNOTE: break;
    }
    kn = &kq->kn[tag & 0xffff];
    if (!kn->used || kn->gen != (uint32_t)(tag >> 16)) return;
    if (kn->kind == KQEMU_KIND_PIDFD) {
        kqemu_proc_check(kn);           /* the status is read as early as possible */
        kn->activated = 1;
    } else if (kn->aux >= 0 && epoll_wait(kn->aux, &inner, 1, 0) > 0) {
        kn->activated = 1;              /* a new event on the descriptor */
    }
}

/* Takes in everything that happened so far, without waiting. */
static void kqemu_harvest(kqemu_kq *kq) {
    struct epoll_event evs[KQEMU_WAIT_EVENTS];
    int n, i, rounds = 0;
    kqemu_sigfd_drain();
    do {
        n = epoll_wait(kq->epfd, evs, KQEMU_WAIT_EVENTS, 0);
        for (i = 0; i < n; i++) kqemu_process(kq, &evs[i]);
    } while (n == KQEMU_WAIT_EVENTS && ++rounds < 8);
}

/* Runs the filters and fills `out` with what is to be reported, taking turns from the slot after
   the last one reported. */
static int kqemu_collect(kqemu_kq *kq, struct kevent *out, int max) {
    unsigned i, index, last = 0, count = kq->top;
    int got = 0, level = 0;
    kqemu_state st;
    kqemu_drain(kq->wakefd);
    for (i = 0; i < count && got < max; i++) {
        kqemu_knote *kn;
        struct kevent *ev;
        int clears;
        index = (kq->next + i) % count;
        kn = &kq->kn[index];
        if (!kn->used || !kn->enabled) continue;
        if (kqemu_run_filter(kn, &st) < 0) {
            if (kqemu_is_fd_filter(kn->filter)) kqemu_forget_fd((int)kn->ident);
            kqemu_drop(kq, kn);
            continue;
        }
        if (!st.ready) {
            kn->activated = 0;          /* BSD dequeues a knote whose condition went away */
            continue;
        }
        clears = (kn->flags & EV_CLEAR) && kqemu_is_fd_filter(kn->filter);
        if (clears && !kn->activated) continue;
        ev = &out[got++];
        last = index;
        memset(ev, 0, sizeof *ev);
        ev->ident = kn->ident;
        ev->filter = kn->filter;
        ev->flags = (unsigned short)(kn->flags | (st.eof ? EV_EOF : 0) | (kn->filter == EVFILT_PROC ? EV_ONESHOT : 0));
        ev->fflags = st.fflags;
        ev->data = st.data;
        ev->udata = kn->udata;
        if ((kn->flags & EV_ONESHOT) || kn->filter == EVFILT_PROC) {
            kqemu_drop(kq, kn);
            continue;
        }
        if (kn->filter == EVFILT_SIGNAL) kn->seen += (uint64_t)st.data;
        if (kn->filter == EVFILT_USER && (kn->flags & EV_CLEAR)) kn->triggered = 0;
        if (kn->flags & EV_CLEAR) kn->activated = 0;
        else level = 1;
        if (kn->flags & EV_DISPATCH) kn->enabled = 0;
    }
    if (got > 0) kq->next = (last + 1) % count;
    /* A reported level-triggered knote stays queued on BSD: the kqueue stays readable.  So does
       one the list had no room for (perhaps: the slots not looked at are not run). */
    if (level || (got == max && i < count)) kqemu_poke(kq->wakefd);
    return got;
}

/* Waits in the main epoll, without the lock, for at most `ns` (< 0: no limit). */
static int kqemu_epoll_wait(int epfd, int timerfd, struct epoll_event *evs, int n, int64_t ns) {
    struct itimerspec its;
    if (kqemu_has_pwait2) {
        struct {
            int64_t tv_sec;
            long long tv_nsec;
        } ts;
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        return (int)syscall(SYS_epoll_pwait2, epfd, evs, n, ns < 0 ? NULL : &ts, NULL, 0);
    }
    if (ns == 0) return epoll_wait(epfd, evs, n, 0);
    memset(&its, 0, sizeof its);       /* an all-zero value disarms the timer */
    if (ns > 0) {
        its.it_value.tv_sec = ns / 1000000000;
        its.it_value.tv_nsec = ns % 1000000000;
    }
    timerfd_settime(timerfd, 0, &its, NULL);
    return epoll_wait(epfd, evs, n, -1);
}

static int kqemu_wait(int fd, kqemu_kq *kq, struct kevent *out, int max, const struct timespec *timeout,
                      const sigset_t *mask) {
    int64_t deadline = 0, left;
    unsigned silent, handlers;
    struct epoll_event evs[KQEMU_WAIT_EVENTS];
    sigset_t ignored;
    int got, n, i, err, epfd, timerfd;
    if (timeout) deadline = kqemu_now_ns() + (int64_t)timeout->tv_sec * 1000000000 + timeout->tv_nsec;
    for (;;) {
        kqemu_harvest(kq);
        got = kqemu_collect(kq, out, max);
        if (got > 0) return got;
        left = timeout ? deadline - kqemu_now_ns() : -1;
        if (timeout && left <= 0) return 0;
        if (kq->polled > 0 && (left < 0 || left > KQEMU_POLL_NS)) left = KQEMU_POLL_NS;
        epfd = kq->epfd;
        timerfd = kq->timerfd;
        kq->waiters++;
        silent = kqemu_silent_runs;
        handlers = kqemu_handler_runs;
        kqemu_leave(mask);
        n = kqemu_epoll_wait(epfd, timerfd, evs, KQEMU_WAIT_EVENTS, left);
        err = errno;
        kqemu_enter(&ignored);
        kq = kqemu_lookup(fd);
        if (!kq) {                      /* closed by another thread meanwhile */
            errno = EBADF;
            return -1;
        }
        kq->waiters--;
        if (n < 0 && err != EINTR) {
            errno = err;
            return -1;
        }
        for (i = 0; i < n; i++) kqemu_process(kq, &evs[i]);
        if (n < 0 && (kqemu_handler_runs != handlers || kqemu_silent_runs == silent)) {
            /* A signal was caught: BSD's kevent fails with EINTR, even if the handler made an
               event ready.  Only a delivery the program ignores, which the recorder took, is not
               an interruption. */
            errno = EINTR;
            return -1;
        }
    }
}

int kevent(int fd, const struct kevent *changelist, int nchanges, struct kevent *eventlist, int nevents,
           const struct timespec *timeout) {
    sigset_t old;
    kqemu_kq *kq;
    int i, nerrors = 0, err, rc, wake = 0;
    if (nchanges < 0 || nevents < 0 ||
        (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000))) {
        errno = EINVAL;
        return -1;
    }
    if ((nchanges > 0 && !changelist) || (nevents > 0 && !eventlist)) {
        errno = EFAULT;
        return -1;
    }
    kqemu_enter(&old);
    kq = kqemu_lookup(fd);
    if (!kq) {
        kqemu_leave(&old);
        errno = EBADF;
        return -1;
    }
    /* FreeBSD's kqueue_kevent, step by step: an error (or a receipt) takes a slot of the event list
       while there is one, and otherwise ends the call. */
    for (i = 0; i < nchanges; i++) {
        struct kevent change = changelist[i]; /* a copy: the lists may be one array */
        if (change.filter == 0) continue;
        change.flags &= (unsigned short)~EV_SYSFLAGS;
        err = kqemu_register(kq, &change, &wake);
        if (err || (change.flags & EV_RECEIPT)) {
            if (nevents == 0) {
                if (wake || kq->waiters > 0) kqemu_poke(kq->wakefd);
                kqemu_leave(&old);
                if (!err) return 0;
                errno = err;
                return -1;
            }
            change.flags = EV_ERROR;
            change.data = err;
            eventlist[nerrors++] = change;
            nevents--;
        }
    }
    if (wake || (nchanges > 0 && kq->waiters > 0)) kqemu_poke(kq->wakefd);   /* and waiters look again */
    if (nerrors > 0 || nevents == 0) rc = nerrors;
    else rc = kqemu_wait(fd, kq, eventlist, nevents, timeout, &old);
    kqemu_leave(&old);
    return rc;
}

/* ============================================================================================== */
/* Wrappers                                                                                       */
/* ============================================================================================== */

/* BSD removes every knote of a descriptor when it is closed. */
int kqemu_close(int fd) {
    sigset_t old;
    int i, rc;
    unsigned j;
    kqemu_enter(&old);
    for (i = 0; i < KQEMU_MAX_KQUEUES; i++) {
        kqemu_kq *kq = &kqemu_kqs[i];
        if (!kq->used) continue;
        if (kq->epfd == fd) {
            kqemu_kq_destroy(kq, 0);
            continue;
        }
        for (j = 0; j < kq->top; j++)
            if (kq->kn[j].used && kqemu_is_fd_filter(kq->kn[j].filter) && kq->kn[j].ident == (uintptr_t)fd)
                kqemu_drop(kq, &kq->kn[j]);
    }
    kqemu_forget_fd(fd);
    rc = close(fd);
    kqemu_leave(&old);
    return rc;
}

/* SO_ERROR also gives the error taken from the socket to report it in `fflags`. */
int kqemu_getsockopt(int fd, int level, int name, void *value, socklen_t *len) {
    sigset_t old;
    int rc = getsockopt(fd, level, name, value, len), err;
    if (rc < 0 || level != SOL_SOCKET || name != SO_ERROR || fd < 0 || fd >= KQEMU_MAX_FD || *len < sizeof err)
        return rc;
    kqemu_enter(&old);
    memcpy(&err, value, sizeof err);
    if (err == 0 && kqemu_sockerr[fd] != 0) memcpy(value, &kqemu_sockerr[fd], sizeof err);
    kqemu_sockerr[fd] = 0;
    kqemu_leave(&old);
    return rc;
}
