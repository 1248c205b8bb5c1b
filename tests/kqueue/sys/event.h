/* sys/event.h - kqueue(2) as a BSD program sees it, emulated on Linux for the evloop tests.

   Compile with -Itests/kqueue and link tests/kqueue/kqueue.c (built with the same flavour macros):
   `#include <sys/event.h>` then gives this file, and kqueue()/kevent() behave as the FreeBSD and
   macOS manual pages say, well enough to test a kqueue backend on Linux.  See kqueue.c for the
   design and for what is not exact.

   FLAVOURS (the same macros for this header and for kqueue.c)
     (default)           FreeBSD 12+: EVFILT_USER -11, 64-bit `data` and ext[4] in struct kevent,
                         NOTE_FILE_POLL; plus EVFILT_EXCEPT/NOTE_OOB with macOS's values, which
                         FreeBSD does not have
     KQEMU_NO_EXCEPT     leave EVFILT_EXCEPT and NOTE_OOB out, as on FreeBSD
     KQEMU_MACOS         macOS: EVFILT_USER -10, EVFILT_EXCEPT -15, intptr_t `data`, no ext[],
                         NOTE_EXITSTATUS (exit status in `data` only when asked for), and the
                         macOS rules for signals sent to one thread and for exited processes

   WRAPPERS
   BSD drops a descriptor's knotes when it is closed, and records signals that the program ignores.
   Linux can do neither by itself, so this header routes four calls through the emulation with
   function-like macros (they do not touch `struct sigaction` or other uses of the names):
     close(fd)                     drops the knotes of fd in every kqueue, then closes
     sigaction(s, act, old)        while a kqueue watches s: keeps the program's action aside,
     signal(s, handler)              reports it back, and lets the emulation record deliveries
     getsockopt(fd, l, n, v, len)  SO_ERROR also returns an error the emulation had to take
                                   from the socket to put it in `fflags`
   Define KQEMU_NO_WRAPPERS to leave the macros out; `(close)(fd)` calls the real function. */
#ifndef KQEMU_SYS_EVENT_H
#define KQEMU_SYS_EVENT_H

#include <stdint.h>
#include <signal.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Filters ------------------------------------------------------------------------------- */
#define EVFILT_READ    (-1)
#define EVFILT_WRITE   (-2)
#define EVFILT_AIO     (-3)         /* not emulated: EINVAL */
#define EVFILT_VNODE   (-4)         /* not emulated: EINVAL */
#define EVFILT_PROC    (-5)
#define EVFILT_SIGNAL  (-6)
#define EVFILT_TIMER   (-7)         /* not emulated: EINVAL */
#if defined(KQEMU_MACOS)
#define EVFILT_USER    (-10)
#define EVFILT_EXCEPT  (-15)
#else
#define EVFILT_USER    (-11)
#if !defined(KQEMU_NO_EXCEPT)
#define EVFILT_EXCEPT  (-15)        /* macOS's number; FreeBSD has no such filter */
#endif
#endif

/* ---- Flags: actions, then behaviour, then what comes back ------------------------------------ */
#define EV_ADD      0x0001
#define EV_DELETE   0x0002
#define EV_ENABLE   0x0004
#define EV_DISABLE  0x0008
#define EV_ONESHOT  0x0010
#define EV_CLEAR    0x0020
#define EV_RECEIPT  0x0040
#define EV_DISPATCH 0x0080
#define EV_SYSFLAGS 0xF000          /* cleared from every change */
#define EV_FLAG1    0x2000
#define EV_ERROR    0x4000
#define EV_EOF      0x8000

/* ---- Filter flags ---------------------------------------------------------------------------- */
/* EVFILT_READ, EVFILT_WRITE */
#define NOTE_LOWAT      0x00000001  /* `data` is the low-water mark in bytes */
#if !defined(KQEMU_MACOS)
#define NOTE_FILE_POLL  0x00000002  /* regular files: always ready, as poll(2) says */
#endif
/* EVFILT_EXCEPT */
#if defined(EVFILT_EXCEPT)
#define NOTE_OOB        0x00000002
#endif
/* EVFILT_PROC (only NOTE_EXIT is emulated; the others are accepted and never fire) */
#define NOTE_EXIT       0x80000000u
#define NOTE_FORK       0x40000000u
#define NOTE_EXEC       0x20000000u
#define NOTE_PCTRLMASK  0xf0000000u
#define NOTE_PDATAMASK  0x000fffffu
#if defined(KQEMU_MACOS)
#define NOTE_EXITSTATUS 0x04000000u
#endif
/* EVFILT_USER: the top two bits of fflags say how the low 24 bits change the stored flags */
#define NOTE_FFNOP      0x00000000u
#define NOTE_FFAND      0x40000000u
#define NOTE_FFOR       0x80000000u
#define NOTE_FFCOPY     0xc0000000u
#define NOTE_FFCTRLMASK 0xc0000000u
#define NOTE_FFLAGSMASK 0x00ffffffu
#define NOTE_TRIGGER    0x01000000u

/* ---- The event ------------------------------------------------------------------------------- */
#if defined(KQEMU_MACOS)
struct kevent {
    uintptr_t ident;                /* identifier: descriptor, signal, pid, user id */
    int16_t filter;
    uint16_t flags;
    uint32_t fflags;
    intptr_t data;
    void *udata;
};
#define KQEMU_EV_SET_EXT(kev)
#else
struct kevent {
    uintptr_t ident;
    short filter;
    unsigned short flags;
    unsigned int fflags;
    int64_t data;
    void *udata;
    uint64_t ext[4];
};
#define KQEMU_EV_SET_EXT(kev) (kev)->ext[0] = (kev)->ext[1] = (kev)->ext[2] = (kev)->ext[3] = 0
#endif

/* No casts, like the real macro: a conversion the backend makes is its own to spell out. */
#define EV_SET(kevp, a, b, c, d, e, f)                                                             \
    do {                                                                                           \
        struct kevent *kqemu_kev_ = (kevp);                                                        \
        kqemu_kev_->ident = (a);                                                                   \
        kqemu_kev_->filter = (b);                                                                  \
        kqemu_kev_->flags = (c);                                                                   \
        kqemu_kev_->fflags = (d);                                                                  \
        kqemu_kev_->data = (e);                                                                    \
        kqemu_kev_->udata = (f);                                                                   \
        KQEMU_EV_SET_EXT(kqemu_kev_);                                                              \
    } while (0)

struct timespec;
struct sigaction;

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist, int nevents,
           const struct timespec *timeout);

/* ---- Wrappers (see WRAPPERS above) ------------------------------------------------------------ */
int kqemu_close(int fd);
int kqemu_sigaction(int signum, const struct sigaction *act, struct sigaction *oldact);
void (*kqemu_signal(int signum, void (*handler)(int)))(int);
int kqemu_getsockopt(int fd, int level, int name, void *value, socklen_t *len);

#if !defined(KQEMU_NO_WRAPPERS)
#define close(fd) kqemu_close(fd)
#define sigaction(signum, act, oldact) kqemu_sigaction(signum, act, oldact)
#define signal(signum, handler) kqemu_signal(signum, handler)
#define getsockopt(fd, level, name, value, len) kqemu_getsockopt(fd, level, name, value, len)
#endif

#ifdef __cplusplus
}
#endif

#endif /* KQEMU_SYS_EVENT_H */
