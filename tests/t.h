/* t.h - the test harness: each test is a function run in its own child process, so a crash, a
   leaked signal disposition or a stuck loop cannot affect the next one.

   A test calls CHECK(...) for what must hold; the first failure ends the test.  t_skip(reason)
   ends it as skipped, for what the machine cannot do (e.g. fanotify without privilege). */
#ifndef EVL_TEST_H
#define EVL_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "../evloop.h"

/* What the few backend-dependent lines of the suite need to know about the backend under test. */
#if defined(EVLOOP_BACKEND_IOCP) || (defined(_WIN32) && !defined(EVLOOP_BACKEND_POLL))
#define T_BACKEND "iocp"
#define T_BACKEND_HAS_FD 0          /* evl_backend_fd is -1: a completion port cannot be polled */
#elif defined(EVLOOP_BACKEND_KQUEUE) || (!defined(EVLOOP_BACKEND_POLL) && !defined(EVLOOP_BACKEND_EPOLL) && \
                                         (defined(__APPLE__) || defined(__FreeBSD__)))
#define T_BACKEND "kqueue"
#define T_KQUEUE 1
#define T_HUP_WITHOUT_INTEREST 0    /* the end of a stream comes only to a read or write interest */
#if !defined(EVFILT_EXCEPT) || !defined(NOTE_OOB)
#define T_HAS_PRI 0                 /* EVL_PRI needs EVFILT_EXCEPT: -ENOSYS without it */
#endif
#if !defined(__APPLE__) && !defined(NOTE_EXITSTATUS)
/* EVFILT_SIGNAL: a delivery the kernel holds when a watcher starts is read later, by it too. */
#define T_SIGNALS_SETTLED_AT_START 0
#endif
#elif defined(EVLOOP_BACKEND_POLL)
#define T_BACKEND "poll"
#define T_BACKEND_HAS_FD 0          /* evl_backend_fd is -1: poll() has no descriptor for the loop */
#define T_BACKEND_BY_NUMBER 1       /* watches descriptor numbers: hears a number closed and reused */
#else
#define T_BACKEND "epoll"
#endif
#ifndef T_BACKEND_HAS_FD
#define T_BACKEND_HAS_FD 1
#endif
#ifndef T_BACKEND_BY_NUMBER
#define T_BACKEND_BY_NUMBER 0
#endif
#ifndef T_KQUEUE
#define T_KQUEUE 0                  /* on Linux: the emulation of tests/kqueue, over epoll */
#endif
#ifndef T_HUP_WITHOUT_INTEREST
#define T_HUP_WITHOUT_INTEREST 1    /* EVL_HUP and EVL_ERROR come also to a watcher with no interest */
#endif
#ifndef T_HAS_PRI
#define T_HAS_PRI 1                 /* EVL_PRI can be watched */
#endif
#ifndef T_SIGNALS_SETTLED_AT_START
#define T_SIGNALS_SETTLED_AT_START 1 /* a delivery caught before a start goes to the watchers before it */
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _WIN32
#include <io.h>
#include <sys/stat.h>
#else
#include <sched.h>
#include <sys/socket.h>
#endif

/* T_POSIX is 1 where the POSIX-only tests build (fork, pipes, signals, directories, descriptors of
   every kind); on Windows (the IOCP backend, under wine) it is 0 and they are compiled out.  There a
   "pipe" from t_pipe is a connected pair of loopback TCP sockets, and read, write and close on
   the tests' descriptors are recv, send and closesocket (t_sock_read and friends), so the tests
   that only need a byte stream run unchanged. */
#ifdef _WIN32
#define T_POSIX 0
#else
#define T_POSIX 1
#endif

typedef struct t_case {
    const char *name;
    void (*fn)(void);
} t_case;

#define T(fn) {#fn, fn}
#define T_END {NULL, NULL}

void t_fail(const char *file, int line, const char *what, const char *detail);
void t_skip(const char *reason);
/* fn runs when the test ends, however it ends (passed, failed or skipped): the test process ends
   with _exit, which runs no atexit handler.  One per test. */
void t_at_exit(void (*fn)(void));

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) t_fail(__FILE__, __LINE__, #cond, NULL);                                      \
    } while (0)

/* Integer comparisons that print both sides when they fail. */
#define CHECK_OP(a, op, b)                                                                         \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (!(t_a_ op t_b_)) {                                                                     \
            char t_detail_[128];                                                                   \
            snprintf(t_detail_, sizeof t_detail_, "%lld %s %lld", t_a_, #op, t_b_);                \
            t_fail(__FILE__, __LINE__, #a " " #op " " #b, t_detail_);                              \
        }                                                                                          \
    } while (0)
#define CHECK_EQ(a, b) CHECK_OP(a, ==, b)

/* ---- Helpers shared by the suites ---------------------------------------------------------- */

/* The monotonic clock, independent of any loop. */
evl_time t_clock(void);

/* Runs the loop in short slices until *flag becomes non-zero or `limit` passes; returns the flag.
   This is how tests await a condition without sleeping. */
int t_run_until(evl_loop *loop, volatile int *flag, evl_time limit);

/* A close-on-exec socket, non-blocking if asked (on Windows it stays as made: evloop makes sockets
   non-blocking where it needs to).  With fcntl, not SOCK_NONBLOCK/SOCK_CLOEXEC, which macOS lacks. */
int t_socket(int domain, int type, int nonblocking);

/* A connected pair of non-blocking descriptors of each kind. */
void t_pipe(int fds[2]);
void t_socketpair(int type, int fds[2]);
void t_tcp_pair(int fds[2]);                    /* [0] accepted server side, [1] client */
void t_udp_pair(int fds[2]);
void t_set_nonblocking(int fd);

#if T_POSIX
/* A new pipe whose read end has the descriptor number `number` (closed first if open): fds[0] is
   number, fds[1] the write end.  For tests of a number closed and reused behind a watcher. */
void t_pipe_at(int number, int fds[2]);

/* A child process that sleeps until it is killed or its parent ends (so that a failed test never
   leaves it behind, holding the runner's pipe open). */
pid_t t_fork_sleeper(void);
#endif

/* A thread running fn(arg); joined by t_thread_join. */
typedef struct t_thread {
    unsigned long id;
#ifdef _WIN32
    void *handle;
    void *(*fn)(void *);
    void *arg;
#endif
} t_thread;
void t_thread_start(t_thread *t, void *(*fn)(void *), void *arg);
void t_thread_join(t_thread *t);
/* Skips the test where a signal raised by another thread corrupts the interrupted thread's
   thread pointer (an emulator defect); the tests that signal across threads call it first. */
void t_skip_unless_signals_keep_the_thread_pointer(void);

/* What an io watcher saw; point w->data at one and use t_record_io as the callback. */
typedef struct t_seen {
    int calls;
    unsigned last;                              /* revents of the last call */
    unsigned all;                               /* every revents bit seen */
} t_seen;
void t_record_io(evl_loop *loop, evl_io *w, unsigned revents);

/* Set when the suite runs under valgrind or qemu, where time-based checks get generous bounds. */
extern int t_slow;

/* Makes the newer system calls the library uses fail with err (ENOSYS: an old kernel; EPERM: a
   container sandbox) in this process and its children: 0, or -errno if it cannot (then skip).
   t_refused_errno is set when the runner did this for the whole run (--nosys). */
int t_refuse_new_syscalls(int err);
int t_refuse_waitid_pidfd(void);               /* as Linux 5.3: pidfd_open, but no waitid(P_PIDFD) */
extern int t_refused_errno;

/* A process the program may watch: this one (whose exit no test awaits). */
evl_pid t_own_pid(void);

#ifdef _WIN32
/* The misuse tests need some signal that can be watched; Windows has only the console events. */
#define SIGUSR1 SIGBREAK
/* Sockets are made without these flags there (evloop makes them non-blocking where it needs to). */
#define SOCK_NONBLOCK 0
#define SOCK_CLOEXEC 0
int t_still_mapped(void *p, size_t len);       /* whether a fiber stack is still mapped */
ssize_t t_sock_read(evl_fd fd, void *buf, size_t len);
ssize_t t_sock_write(evl_fd fd, const void *buf, size_t len);
int t_sock_close(evl_fd fd);
#ifdef T_FILE_DESCRIPTORS
/* A suite of file operations (defines this before including t.h): its descriptors are the C
   library's, and its pipes _pipe's. */
#define pipe(fds) _pipe((fds), 65536, _O_BINARY)
#else
#define read(fd, buf, len) t_sock_read((evl_fd)(fd), (buf), (len))
#define write(fd, buf, len) t_sock_write((evl_fd)(fd), (buf), (len))
#define close(fd) t_sock_close((evl_fd)(fd))
#endif
int t_sched_yield(void);
#define sched_yield() t_sched_yield()
#endif

#endif
