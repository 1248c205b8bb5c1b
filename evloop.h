/* evloop.h - v0.1.0 - a small, portable event loop in one header.  MIT license (end of file).

   Do this:
       #define EVLOOP_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Copy evloop.h and the backend header of your platform (evloop_epoll.h on Linux, evloop_kqueue.h
   on macOS and the BSDs, evloop_iocp.h on Windows, evloop_poll.h elsewhere) next to it.

   SOURCE MAP (search for a title to jump to it)
   ==========
     OVERVIEW, EXAMPLE, CONFIGURATION, BACKENDS, FIBERS, GUARANTEES, LIMITS, MISUSE    this comment
     Configuration                  macros, backend choice, which fiber switch
     Types                          every struct the user owns, the loop last
     API                            by topic: time, loop, descriptors, timers, signals, children,
                                    wake-ups, hooks, file operations, debugging, fibers
     Implementation                 under EVLOOP_IMPLEMENTATION:
       Internal interface             what a backend, the OS layer and the fiber switch provide
       Lists, Timer wheel, Timers, Wake-ups, File descriptors, Hooks, Cross-thread wake-ups,
       Signals, Child processes, Operations (worker threads; submitting, completing, cancelling),
       Dispatch, Loop, Fibers: scheduling/waiting/I/O, Channels,
       Debugging                      the portable core, in that order
       >>os posix                     clock, signal dispositions, reaping, threads and blocking
                                      file operations, stacks, descriptors
       >>backend                      includes evloop_<backend>.h a second time, for its code
       Fibers: the context switch     shared part, then one section per CPU: >>cpu x86_64,
                                      >>cpu i386, >>cpu AArch64, >>cpu ARM, >>cpu RISC-V 64,
                                      >>cpu MIPS32 (o32), >>cpu MIPS64 (n64),
                                      >>cpu PowerPC 32-bit, >>cpu PowerPC 64-bit, >>cpu s390x,
                                      >>cpu x86_64 Windows, >>cpu any other (ucontext)
     LICENSE                        at the end

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
     - files without blocking the loop: completion operations through io_uring, or worker threads
       you start, with the same callbacks and fiber calls (see File operations in the API)
     - descriptors, signals and child processes are acquired when a watcher starts, so failure shows
       up there as a negative errno; stopping never fails
     - fibers: straight-line code (n = evl_read(fd, buf, len, timeout)) next to callbacks in the
       same loop, with a hand-written context switch for each common CPU (see FIBERS)

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
     EVLOOP_BACKEND_KQUEUE
     EVLOOP_BACKEND_IOCP
     EVLOOP_BACKEND_POLL
     EVLOOP_NO_FIBERS         leave fibers out (evloop.h defines EVLOOP_HAS_FIBERS: 1 when fibers
                              are in, 0 without them; see FIBERS for when they are left out)
     EVLOOP_FIBER_UCONTEXT    switch fibers with makecontext/swapcontext even where there is
                              assembly for the CPU (slower: a system call per switch)
     EVLOOP_NO_VALGRIND       leave out the valgrind client requests that register fiber stacks
                              and mark what io_uring read as defined (they are used when
                              <valgrind/valgrind.h> is found)
     EVLOOP_ASSERT(x)         assertion used for API misuse by functions that cannot return an error
                              (default: assert(x); misuse is then ignored when NDEBUG is set)
     EVLOOP_MAX_EVENTS        events fetched from the kernel per poll (default 64)
     EVLOOP_POLL_MAX          poll backend: descriptors one loop can watch (default 64);
                              evl_io_start returns -ENOSPC beyond it
     EVLOOP_POLL_POSIX_ONLY   poll backend: plain poll() and a pipe even where ppoll and eventfd
                              exist (whole-millisecond timeouts, rounded up)
     EVLOOP_KQUEUE_PIPE_WAKEUP  kqueue: wake-ups through a pipe even where EVFILT_USER exists (the
                              path of systems without it, so that it is tested)
     EVLOOP_NO_FILE_OPS       leave file operations out (evl_op_*, evl_workers_*, evl_pread and
                              evl_pwrite; evloop.h defines EVLOOP_HAS_FILE_OPS to 1 or 0): about
                              6.3 KiB of code (at -Os) and 376 bytes of evl_loop on x86_64
     EVLOOP_NO_IO_URING       epoll: file operations never use io_uring (workers or inline)
     EVLOOP_IO_URING_ENTRIES  epoll: submission entries of a loop's ring (default 64; the kernel
                              gives twice as many completion entries)
     EVLOOP_IOCP_MAX_SOCKETS  IOCP: sockets one loop watches at once (default 256; -ENOSPC beyond)
     EVLOOP_IOCP_NO_HIGH_RESOLUTION_TIMER   IOCP: time waits in milliseconds (rounded up) even where
                              a high-resolution waitable timer exists

   The implementation needs POSIX and, on Linux, GNU declarations.  It defines _GNU_SOURCE itself,
   which works when evloop.h is the first header of the implementation file; otherwise define
   _GNU_SOURCE yourself (-D_GNU_SOURCE).  A system header before it stops the build with an #error
   that says so.

   BACKENDS
   ========
     backend  platform       status in this version
     epoll    Linux          complete: epoll, eventfd wake-ups, epoll_pwait2 sub-ms timers with a
                             timerfd fallback, pidfd child watchers with a SIGCHLD fallback,
                             file operations through io_uring with a worker/inline fallback
     kqueue   BSD, macOS     reduced where kqueue must be (see evloop_kqueue.h): EVFILT_READ/WRITE
                             with per-change errors, EVL_PRI through EVFILT_EXCEPT where it exists
                             (macOS; else -ENOSYS), EVFILT_SIGNAL on the BSDs (the handler on
                             macOS), EVFILT_PROC children, EVFILT_USER wake-ups (else a pipe),
                             nanosecond timeouts; no EVL_HUP/EVL_ERROR for a watcher without a read
                             or write interest; O(watchers) evl_io_start.  Tested on a kqueue
                             emulation for Linux and linked against the macOS SDK; not run on a
                             real kqueue here
     iocp     Windows        reduced (see evloop_iocp.h): sockets only, polled through AFD on an I/O
                             completion port (-ENOTSOCK for other handles); high-resolution
                             waitable timer, else ms timeouts rounded up; console events as
                             SIGINT/SIGBREAK/SIGHUP only; children as process HANDLEs (status: the
                             exit code); evl_backend_fd is -1; file operations on worker threads
                             or inline (openat with AT_FDCWD only, no statx).  Built with
                             mingw-w64, tested under wine; link with -lws2_32
     poll     other POSIX    complete, reduced where poll() must be: ppoll (Linux, FreeBSD,
                             OpenBSD) or poll, eventfd or pipe wake-ups, SIGCHLD child watchers;
                             at most EVLOOP_POLL_MAX descriptors, evl_backend_fd is -1 (see
                             evloop_poll.h)

   FIBERS
   ======
   A fiber is a function running on its own stack inside the loop.  The blocking-style calls
   (evl_read, evl_write, evl_accept, evl_connect, evl_wait, evl_sleep, channels, evl_fiber_join)
   suspend it and let the loop run everything else until what it waits for happens; callbacks and
   fibers mix freely.  Switching is done by hand-written assembly that saves exactly what each ABI
   says a callee must preserve, and makes no system call:

     CPU                                  saved across a switch
     x86_64 (System V)                    rbx rbp r12-r15, MXCSR control bits, x87 control word
     x86_64 (Windows, for the IOCP        rbx rbp rdi rsi r12-r15, xmm6-xmm15, MXCSR, x87 control
       backend)                           word, the TIB stack fields
     i386                                 ebx esi edi ebp, x87 control word, MXCSR (with SSE)
     AArch64                              x19-x30, d8-d15
     ARM 32-bit, ARM or Thumb-2           r4-r11, lr, and d8-d15 with VFP
     RISC-V 64                            ra, s0-s11, and fs0-fs11 with the F or D extension
     MIPS32 o32, either byte order        $s0-$s7 $fp $ra, and $f20-$f31 with an FPU (FR=0, FPXX and
                                          FR=1 alike)
     MIPS64 n64, either byte order        $s0-$s7 $gp $fp $ra, and $f24-$f31 with an FPU
     PowerPC 32-bit (SysV)                r14-r31, CR2-CR4, lr, f14-f31 with an FPU, v20-v31 and
                                          VRSAVE with AltiVec
     PowerPC 64-bit, ELFv2 (either byte   r14-r31, r2 (TOC), CR2-CR4, lr, f14-f31 with an FPU,
       order) and ELFv1 (big-endian)      v20-v31 with AltiVec/VSX (and VRSAVE under ELFv1)
     s390x                                r6-r14, f8-f15
     anything else                        makecontext/swapcontext where the C library has them
                                          (glibc, uClibc with them, FreeBSD, NetBSD, DragonFly,
                                          Solaris; always with EVLOOP_FIBER_UCONTEXT), else no fibers

   Where there is neither an assembly switch for the CPU nor makecontext in the C library (musl,
   bionic or newlib on 32-bit RISC-V, MIPS n32, m68k, SuperH...), fibers are left out by themselves,
   as EVLOOP_NO_FIBERS leaves them out: the rest of the library is the same, so a program that does
   not use fibers builds and links on every target in the default configuration.  evloop.h defines
   EVLOOP_HAS_FIBERS to 1 when fibers are in and to 0 when they are not; a program that needs them
   can test it (#if !EVLOOP_HAS_FIBERS / #error), or define EVLOOP_FIBER_UCONTEXT and link a
   ucontext library of its own (libucontext, say).

   The floating-point rounding mode follows the ABI: per fiber on x86 (the control bits are
   callee-saved there), per thread elsewhere.  Stacks are yours, or mapped by the library with a
   guard page below them.  Fiber switches are announced to AddressSanitizer, ThreadSanitizer and
   valgrind, so fiber code runs clean under all three.  Fibers live in one thread: a fiber stays on
   the thread of the loop that started it.

   GUARANTEES
   ==========
     - evloop never calls malloc, calloc, realloc or free.
     - *_init never fails and touches no loop.  *_stop never fails, is idempotent, and may be called
       on a watcher that was only initialised; after it returns the library no longer touches the
       watcher's memory, so it can be freed or reused at once, even from inside a callback.
     - An event that is pending for a watcher which a callback stops in the same batch is dropped.
     - Callbacks run on the thread that calls evl_run, never inside a signal handler.
     - evl_stop and evl_async_send may be called from any thread and from signal handlers; a
       wake-up whose write failed is written again by the next one.
     - evloop never changes a thread's signal mask.  While evl_run waits, the signals its loop
       watches are unblocked for that wait only, atomically with it (as pselect does), so a
       watched signal arrives even if every thread of the program blocks it.  (Plain poll() and
       macOS's kqueue cannot wait with a mask: the signals are unblocked around the wait, and one
       arriving in between ends it through the handler's wake-up.)
     - Child watchers reap only their own process; through a pidfd (Linux 5.4) even a program
       that reaps the child itself and sees its pid reused cannot make them take another.
     - Newer system calls fall back at run time when they fail with ENOSYS (an old kernel) or
       EPERM (a container's seccomp profile), also when they start failing after they worked.
     - A child made by fork() may evl_deinit any loop it inherited, even one that was running
       (in the forking callback, or on another thread of the parent), whatever the parent's other
       threads were doing inside evloop at that instant; the parent's loop is not disturbed.
     - Stopping a watcher with another loop than the one it started on is reported through
       EVLOOP_ASSERT and ignored (timers excepted: they have no room to remember their loop);
       evl_init on a live loop that watches signals returns -EBUSY.
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
     - In a child created by fork(), the only thing to do with an inherited loop is evl_deinit;
       do not return into its evl_run afterwards.
     - An embedded loop (its evl_backend_fd waited on by another loop) unblocks its signals only
       during its own evl_run passes.  On the SIGCHLD fallback (no pidfds: Linux before 5.4, or a
       sandbox) children are reaped by pid: stop a watcher before reaping its child yourself, or a
       new child given the same pid could be taken for it.
     - File operations: none on Windows; a worker thread's running operation is not interrupted
       by evl_op_cancel; on 32-bit systems build with -D_FILE_OFFSET_BITS=64 for offsets past
       2 GiB on the worker and inline engines (-EOVERFLOW otherwise).
     - Fibers: x86 CET shadow stacks, i386 -mregparm builds and -masm=intel are not supported by
       the assembly; MIPS n32, MIPS I, MIPS -msingle-float and PowerPC e500 (SPE) take ucontext;
       a C++ exception must not leave a fiber's function.

   MISUSE
   ======
   What evloop does when it is used wrongly.  Refused: the call returns the error and changes
   nothing.  Reported: EVLOOP_ASSERT fires (assert: an abort, unless NDEBUG), then the call changes
   nothing.  Undefined: not detected; what follows is said where it matters.
     - A NULL or never-initialised (zero-filled) watcher: refused by starts (-EINVAL; a timer or a
       hook: reported); stops do nothing.
     - A loop that is not initialised, or after evl_deinit: refused (-EINVAL; evl_timer_start and
       evl_hook_start: reported).  evl_deinit and evl_stop do nothing.
     - Starting a watcher that is active: -EALREADY, on its own loop or another (a hook: nothing;
       a timer on its own loop restarts, as documented).  A timer active on another loop is
       undefined: it moves to the new loop and the old loop still counts it.
     - Stopping a watcher with another loop than its own: reported and ignored.  For a timer
       undefined: it is stopped, and the wrong loop's count drops.
     - *_init on an active watcher: its next start is refused (-EALREADY, reported) when it was
       first or last on its loop's list; in the middle of the list, or for a timer, undefined: the
       list is damaged and callbacks of the watchers around it may be lost or repeated.
     - Freeing or moving the memory of an active watcher (stop it first; a callback may stop and
       free any watcher), evl_fiber_start on a fiber that has not finished: undefined.
     - evl_deinit from one of the loop's own callbacks: reported and ignored.  evl_init on a live
       loop: -EBUSY if it watches signals; otherwise undefined (its descriptors leak and its
       watchers still point into it).
     - evl_run nested in the same loop: -EBUSY; on two threads at once: undefined.
   Whatever the damage, evl_dump and evl_deinit end and do not crash: they walk each list a
   bounded number of steps, stop at a NULL link or at a node they have already seen (reported),
   and evl_deinit unlinks each watcher as it reaches it, so none is released twice.
*/
#ifndef EVLOOP_H
#define EVLOOP_H

/* The implementation needs POSIX and GNU declarations; asking for them here only works when this
   is the first header of the translation unit (see CONFIGURATION). */
#if defined(EVLOOP_IMPLEMENTATION) && defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>                  /* FILE, for evl_dump */
#ifdef _WIN32
#include <winsock2.h>               /* SOCKET, struct sockaddr: before <windows.h> */
#include <ws2tcpip.h>               /* socklen_t */
#else
#include <signal.h>                 /* sigset_t */
#include <sys/types.h>              /* pid_t */
#include <sys/socket.h>             /* struct sockaddr, socklen_t */
#ifndef EVLOOP_NO_FILE_OPS
#include <sys/stat.h>               /* struct stat (and struct statx), for file operations */
#include <sys/uio.h>                /* struct iovec */
#include <pthread.h>                /* the worker threads of file operations */
#endif
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


/* Fibers: which context switch this build uses.  Hand-written assembly for the CPUs below (see
   ">>cpu" near the end of the file); makecontext/swapcontext for any other CPU whose C library has
   them, or when EVLOOP_FIBER_UCONTEXT asks for it, so that path is tested too; otherwise no fibers.
   EVLOOP_HAS_FIBERS tells the program whether fibers are in this build.
   The C libraries with makecontext: glibc; uClibc(-ng), which also defines __GLIBC__, only when
   built with them; FreeBSD, NetBSD, DragonFly and Solaris.  musl, bionic, newlib and OpenBSD have
   none, so a program that does not use fibers still builds there, without them.  <stdio.h>,
   included above, has defined the C library's macros by now. */
#if defined(__UCLIBC__)
#if defined(__UCLIBC_HAS_CONTEXT_FUNCS__)
#define EVL__LIBC_HAS_UCONTEXT 1
#endif
#elif defined(__GLIBC__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__DragonFly__) || defined(__sun)
#define EVL__LIBC_HAS_UCONTEXT 1
#endif

#if defined(EVLOOP_NO_FIBERS)
#define EVLOOP_HAS_FIBERS 0
#elif defined(EVLOOP_FIBER_UCONTEXT)
#if defined(_WIN32)
#error "evloop: EVLOOP_FIBER_UCONTEXT is not available on Windows"
#endif
#define EVL__CTX_UCONTEXT 1
#elif defined(_MSC_VER) && !defined(__clang__)
#error "evloop: fibers need GCC or clang (GNU asm); define EVLOOP_NO_FIBERS"
#elif defined(__x86_64__) && defined(_WIN32)
#define EVL__CTX_WIN64 1
#elif defined(__x86_64__) && !defined(__ILP32__)
#define EVL__CTX_X86_64 1                       /* x32 (ILP32) takes ucontext */
#elif defined(__i386__) && !defined(_WIN32)
#define EVL__CTX_I386 1
#elif defined(__aarch64__) && !defined(__ILP32__) && !defined(_WIN32)
#define EVL__CTX_AARCH64 1
#elif defined(__arm__) && !defined(_WIN32) && defined(__ARM_ARCH) && __ARM_ARCH >= 5 && \
    (!defined(__thumb__) || defined(__thumb2__))
#define EVL__CTX_ARM 1                          /* Thumb-1-only cores take ucontext */
#elif defined(__riscv) && defined(__riscv_xlen) && __riscv_xlen == 64
#define EVL__CTX_RISCV64 1
#elif defined(__mips__) && defined(_ABIO32) && _MIPS_SIM == _ABIO32 && __mips >= 2 && !defined(__mips_single_float)
#define EVL__CTX_MIPS32 1                       /* o32; MIPS I (no ldc1/sdc1) takes ucontext */
#elif defined(__mips__) && defined(_ABI64) && _MIPS_SIM == _ABI64 && !defined(__mips_single_float)
#define EVL__CTX_MIPS64 1                       /* n64; n32 takes ucontext */
#elif defined(__powerpc__) && !defined(__powerpc64__) && !defined(__SPE__) && !defined(_AIX) && !defined(__APPLE__)
#define EVL__CTX_PPC32 1                        /* SysV; e500's SPE keeps doubles in GPRs: ucontext */
#elif defined(__powerpc64__) && defined(_CALL_ELF) && !defined(_AIX)
#define EVL__CTX_PPC64 1                        /* ELFv1 (_CALL_ELF 1) and ELFv2 (_CALL_ELF 2) */
#elif defined(__s390x__)
#define EVL__CTX_S390X 1
#elif defined(_WIN32)
#error "evloop: no fiber context switch for this Windows CPU; define EVLOOP_NO_FIBERS"
#elif defined(EVL__LIBC_HAS_UCONTEXT)
#define EVL__CTX_UCONTEXT 1
#else
#define EVLOOP_HAS_FIBERS 0                     /* neither assembly nor makecontext: no fibers */
#endif
#ifndef EVLOOP_HAS_FIBERS
#define EVLOOP_HAS_FIBERS 1
#endif

#if defined(EVL__CTX_UCONTEXT)
#include <ucontext.h>
#endif

/* File operations (evl_op_*) are there on every system unless EVLOOP_NO_FILE_OPS leaves them out:
   worker threads and blocking calls are all they need (Windows' come from evloop_iocp.h).
   evl_op_statx is there where the C library declares struct statx (glibc 2.28, musl 1.2.5, with
   _GNU_SOURCE). */
#ifdef EVLOOP_NO_FILE_OPS
#define EVLOOP_HAS_FILE_OPS 0
#else
#define EVLOOP_HAS_FILE_OPS 1
#if defined(__linux__) && defined(STATX_TYPE)
#define EVLOOP_HAS_STATX 1
#endif
#endif
#ifndef EVLOOP_HAS_STATX
#define EVLOOP_HAS_STATX 0
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

/* A descriptor the loop can watch.  A Windows SOCKET is as wide as a pointer, so descriptors have
   a type of their own: int on POSIX, where code written with int is unchanged, and SOCKET on
   Windows.  evl_fd_result is what evl_accept returns: a descriptor (>= 0) or a negative errno. */
#ifdef _WIN32
typedef SOCKET evl_fd;
typedef intptr_t evl_fd_result;
#else
typedef int evl_fd;
typedef int evl_fd_result;
#endif
#define EVL_INVALID_FD ((evl_fd)-1)             /* -1 on POSIX, INVALID_SOCKET on Windows */

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
    evl_fd fd;                  /* read-only: the descriptor given to evl_io_init */
    unsigned char events;       /* read-only: the interest, EVL_READ | EVL_WRITE | EVL_PRI */
    unsigned char kind;
    unsigned char flags;
    unsigned char loop_tag;     /* which loop it was started on (see evl__stop_applies) */
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
    unsigned char loop_tag;
};

struct evl_async {
    evl__node link;
    void *data;                 /* yours */
    evl_async_cb cb;
    evl_loop *loop;
    int sent;
    unsigned char kind;
    unsigned char loop_tag;
};

struct evl_hook {
    evl__node link;
    void *data;                 /* yours */
    evl_hook_cb cb;
    int phase;                  /* read-only: EVL_PREPARE or EVL_CHECK */
    unsigned char kind;
    unsigned char loop_tag;
};

/* The backend header defines evl__backend, its part of the loop.  A backend that keeps something
   per child watcher also defines EVL__CHILD_STATE as the type of that part.  On Windows it also
   defines evl__os_loop, the operating-system layer's part. */
#if defined(EVLOOP_BACKEND_EPOLL)
#include "evloop_epoll.h"
#elif defined(EVLOOP_BACKEND_KQUEUE)
#include "evloop_kqueue.h"
#elif defined(EVLOOP_BACKEND_POLL)
#include "evloop_poll.h"
#elif defined(EVLOOP_BACKEND_IOCP)
#include "evloop_iocp.h"
#endif

struct evl_child {
    evl__node link;
    void *data;                 /* yours */
    evl_child_cb cb;
    evl_pid pid;                /* read-only */
    unsigned char kind;
    unsigned char by_signal;    /* watched through SIGCHLD because the backend could not */
    unsigned char loop_tag;
#ifdef EVL__CHILD_STATE
    EVL__CHILD_STATE backend;
#endif
};

/* The operating-system layer's part of a loop (>>os posix below; evloop_iocp.h on Windows). */
#ifndef _WIN32
typedef struct evl__os_loop {
    sigset_t wait_mask;         /* the waiting thread's mask, with the loop's signals taken out */
    unsigned char wait_masked;  /* whether it differs from the thread's own mask */
} evl__os_loop;
#if EVLOOP_HAS_FILE_OPS
typedef pthread_t evl__os_thread;
typedef pthread_mutex_t evl__os_mutex;
typedef pthread_cond_t evl__os_cond;
typedef struct iovec evl_iovec;     /* a buffer of a vectored file operation (Windows has its own) */
#endif
#endif

#if EVLOOP_HAS_FILE_OPS
typedef struct evl_op evl_op;
typedef struct evl_worker evl_worker;
/* result: bytes (0 at end of file), 0, a new descriptor, what a work function returned, or -errno. */
typedef void (*evl_op_cb)(evl_loop *loop, evl_op *op, ssize_t result);
typedef ssize_t (*evl_work_fn)(evl_op *op, void *arg);

/* One file operation or piece of offloaded work, from its start until its callback. */
struct evl_op {
    evl__node link;             /* on the loop's list of active operations */
    void *data;                 /* yours */
    evl_op_cb cb;
    evl__node queue;            /* waiting for an engine, for a worker, or for its callback */
    void *addr;                 /* the buffer, the iovec array, the path, or the work's argument */
    void *out;                  /* struct stat or struct statx to fill */
    evl_work_fn fn;
    size_t len;                 /* bytes, or iovec count */
    int64_t offset;
    ssize_t result;
    int fd;                     /* the descriptor, or openat's and statx's dirfd */
    int flags;                  /* openat's or statx's flags */
    unsigned mode;              /* openat's mode, statx's mask */
    unsigned char kind;
    unsigned char code;         /* which operation */
    unsigned char state;        /* where it is: see Operations in the implementation */
    unsigned char loop_tag;
};

/* One worker thread (evl_workers_start): yours, kept until evl_workers_stop returns. */
struct evl_worker {
    evl__os_thread thread;
    evl_loop *loop;
    unsigned char started;
};

/* The loop's side of the worker threads: the queue they take operations from, and the list they
   put finished ones on, under one lock. */
typedef struct evl__workers {
    evl__os_mutex lock;
    evl__os_cond work;          /* signalled when an operation is queued or the workers stop */
    evl__node queue, finished;
    evl_worker *threads;
    unsigned count;
    int stopping;
    int finished_sent;          /* atomic: some operation finished since the loop last looked */
} evl__workers;
#endif

#if EVLOOP_HAS_FIBERS
/* A suspended execution: its saved stack pointer (the registers are on its stack) and what the
   sanitizers and valgrind need to follow a switch.  The tool fields are there in every build, so
   that files compiled with and without a sanitizer agree on the layout. */
typedef struct evl__ctx {
#if defined(EVL__CTX_UCONTEXT)
    ucontext_t uc;
#else
    void *sp;
#endif
    void (*entry)(void *);
    void *arg;
    void *stack_lo;                 /* [stack_lo, stack_lo + stack_size); unknown (NULL, 0) */
    size_t stack_size;              /* for the thread's own stack until ASan reports it */
    struct evl__ctx *asan_from;     /* who switched to this context last */
    void *tsan_fiber;
    unsigned valgrind_id;
    unsigned char tsan_owned, valgrind_registered;
} evl__ctx;


typedef struct evl_fiber evl_fiber;
typedef struct evl_chan evl_chan;
typedef void (*evl_fiber_fn)(void *arg);
typedef void (*evl_fiber_done_cb)(evl_loop *loop, evl_fiber *f);

struct evl_fiber {
    evl__node link;                 /* on the loop's list of fibers until it has finished */
    void *data;                     /* yours */
    evl_fiber_fn fn;
    void *arg;
    evl_loop *loop;
    evl__node queue;                /* the ready queue, or the waiters of a channel or a join */
    evl__node joiners;              /* fibers in evl_fiber_join for this one */
    evl_io io;                      /* what evl_wait waits for */
    evl_timer timer;                /* the timeout of a wait, or evl_sleep */
    int result;                     /* what the current wait returns */
    evl_fd dup_fd;                  /* evl_wait's duplicate of an already watched descriptor */
    unsigned char state, waiting, cancel, stack_mapped;
    evl_fiber_done_cb done_cb;
    evl__ctx ctx;
};

struct evl_chan {
    unsigned char *buf;
    size_t elem_size, capacity, head, count;
    int closed;
    evl__node senders, receivers;   /* fibers waiting for room, for an element */
};
#endif /* EVLOOP_HAS_FIBERS */

/* The timer wheel: 6 levels of 64 slots.  A timer sits at the level of the highest 6-bit group in
   which its deadline tick differs from the wheel's current tick, so levels cover about 65 us,
   4 ms, 268 ms, 17 s, 18 min and 19 h.  Timers in a later window of the top level (19.5 hours
   and more ahead) wait in one list, which the wheel cascades each time it enters a new window:
   three more levels of slots would cost 3 KiB in every loop for timers a program rarely has. */
#define EVL__TICK_SHIFT 10u         /* a tick is 1024 ns */
#define EVL__WHEEL_BITS 6u
#define EVL__WHEEL_SLOTS 64u
#define EVL__WHEEL_LEVELS 6u

typedef struct evl__wheel {
    uint64_t tick;                  /* every timer still in a slot is due at this tick or later */
    evl_time next;                  /* no slot needs work before this time */
    uint64_t occupied[EVL__WHEEL_LEVELS];   /* bit per slot that may hold timers */
    evl__node due;                  /* collected timers, in firing order */
    evl__node far_timers;           /* timers beyond the top level's current window */
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
    long owner;                     /* the process that made the loop: a fork()ed child differs */
    unsigned char tag;              /* tells watchers of different loops apart (evl__stop_applies) */
    int stop;                       /* atomic: evl_stop was called */
    int wake_pending;               /* atomic: a wake-up is on its way to the backend */
    int async_sent;                 /* atomic: some evl_async_send since the last look */
    unsigned char woken, signals_due, children_due, asyncs_due;
    int ready_count;
    int last_batch;                 /* events the last wait returned, kept for evl_dump */
    evl__node *walk_next, *walk_last;
    evl__node ios, files, prepares, checks, asyncs, signals, children;
    unsigned child_watchers_by_signal;
    uint32_t sig_watched[2];        /* atomic: signals 1..64 this loop has the handler catch */
    uint32_t sig_recorded[2];       /* signals the backend reports itself (kqueue) */
    uint32_t sig_pending[2];        /* atomic: signals caught, not yet handled */
    evl_loop *sig_next;             /* on the process-wide list of loops that watch signals */
    int sig_listed;
    unsigned short sig_users[EVL__MAX_SIGNAL + 1];
    evl__wheel wheel;
    evl__ready ready[EVLOOP_MAX_EVENTS];
    evl__os_loop os;
    evl__backend backend;
#if EVLOOP_HAS_FILE_OPS
    evl__node ops;                  /* every active operation */
    evl__node ops_new;              /* started, not yet handed to an engine */
    evl__node ops_done;             /* finished, their callbacks not yet called */
    unsigned char ops_engine_full;  /* the backend took no more: ops_new waits for completions */
    evl__workers workers;
#endif
#if EVLOOP_HAS_FIBERS
    evl__node fibers;               /* every fiber that has not finished */
    evl__node fibers_ready;         /* fibers to resume, in order */
    evl__node fibers_new;           /* started during this iteration: they run from the next */
    evl_fiber *fiber_finished;      /* returned; the next context to run releases its stack */
    evl__node fibers_done;          /* released, their done callbacks still to call */
    unsigned fibers_live;           /* started and not yet past their done callback */
    unsigned fiber_budget;          /* resumes left before the loop polls again */
    evl__ctx main_ctx;              /* evl_run's own stack, while a fiber runs */
#endif
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
/* evl_init acquires the backend's descriptors (0 or -errno; -EBUSY for a live loop that watches
   signals: deinit it first).  evl_deinit releases them; active
   watchers are detached (they become inactive and are never called) and signal dispositions are
   restored.  Calling evl_deinit from a callback of the same loop is refused (EVLOOP_ASSERT).

   evl_run runs until evl_stop is called, until no referenced watcher is active, or until duration
   has elapsed (0: one pass that does not block; EVL_FOREVER: no limit).  It returns the number of
   referenced watchers still active, -EBUSY when called from inside the same loop, -EINVAL for a
   loop that is not initialised, or another negative errno if the backend failed.

   One iteration: PREPARE hooks, wait for events, due timers, io callbacks (in the order the kernel
   reported them), always-ready descriptors, signals, child processes, async wake-ups, ready fibers
   (at most 128 resumes), CHECK hooks.

   evl_stop makes evl_run return after the callback that is running; it may be called from a
   callback, another thread or a signal handler.  A stop requested while evl_run is not running
   makes the next evl_run return after at most one pass that does not block.

   evl_backend_fd is a descriptor that becomes readable when the loop has io work (to embed the
   loop in another one; -1 on the poll backend, which has none, and on IOCP, whose completion port
   cannot be polled), and evl_backend_timeout the time after which its timers need a pass
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
   A descriptor is an evl_fd (an int on POSIX, a SOCKET on Windows: see Types).
   Level-triggered.  events is a mix of EVL_READ, EVL_WRITE and EVL_PRI; EVL_ERROR and EVL_HUP are
   reported whenever they happen.  After EVL_HUP or EVL_ERROR, read or write to learn the details
   or stop the watcher, as these conditions stay reported.  One active watcher per descriptor per
   loop (-EEXIST for a second one).  Works with any descriptor the kernel can poll; a regular file
   or directory, which epoll refuses, is accepted and reported ready at every iteration, as poll()
   would.  evl_io_start returns -EBADF for a closed or invalid descriptor, -EINVAL for unknown
   event bits, -EALREADY if the watcher is already active.  evl_io_set changes the interest of an
   active or inactive watcher; if the kernel forgot the registration (the descriptor was closed and
   its number reused while watched), it registers the descriptor again.  evl_io_active: 1 while
   the watcher is started.
   EVL_PRI is urgent data on a socket, and on sysfs, procfs and kernfs files (GPIO "value" files,
   /proc/self/mounts) the change notification: such a file reports EVL_PRI | EVL_ERROR once right
   after it is opened and after every change, and is always readable, so watch it for EVL_PRI
   alone, and on each call lseek to 0 and read it again (see examples/gpio_sysfs.c).
   A descriptor that a library closes and replaces by its own (a reconnect) must be followed:
   evl_io_reset(loop, w, fd, events) stops w wherever it was (also if its old descriptor is already
   closed), and starts it on fd with events; 0, or what evl_io_start returns (w is then stopped).
   Stop a watcher before you close its descriptor, or reset it to the new one right after: a
   watcher whose descriptor was closed hears nothing, even if the number comes back.  */
EVLOOP_API void evl_io_init(evl_io *w, evl_io_cb cb, evl_fd fd, unsigned events);
EVLOOP_API int evl_io_start(evl_loop *loop, evl_io *w);
EVLOOP_API int evl_io_set(evl_loop *loop, evl_io *w, unsigned events);
EVLOOP_API int evl_io_reset(evl_loop *loop, evl_io *w, evl_fd fd, unsigned events);
EVLOOP_API void evl_io_stop(evl_loop *loop, evl_io *w);
EVLOOP_API int evl_io_active(const evl_io *w);

/* ---- Timers -----------------------------------------------------------------------------------
   evl_timer_start fires the timer `after` from now (the clock is read at the call), then every
   `repeat` if repeat is not 0; it restarts an active timer and cannot fail.  A timer never fires
   early.  Timers due in the same iteration fire in deadline order, equal deadlines in the order they
   were started.  after == 0 fires in the next iteration.  A repeating timer keeps its phase (next
   deadline = previous deadline + repeat); if the loop fell more than a period behind, it fires once
   and re-phases from now.
   evl_timer_start_at is the same with an absolute deadline on the loop's clock (evl_now).
   Reading the clock is what makes "never early" hold even when the loop time is stale (a long
   callback ran since the loop woke); it costs 20 to 35 ns.  Code that restarts many timers from one
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
   signal masks of the program's threads: while evl_run waits, the signals its loop watches are
   unblocked in its thread for that wait only.  No thread's mask is ever changed otherwise.
   Several watchers in one or several loops may watch one signal: each is called.  When the last
   watcher of a signal stops, its previous disposition is restored.  -EINVAL for SIGKILL, SIGSTOP,
   the fault signals and numbers out of range; -EALREADY if the watcher is active.
   On Windows (IOCP) the signals are the console's events: SIGINT (Ctrl-C), SIGBREAK (Ctrl-Break)
   and SIGHUP (the console closed); any other number is -EINVAL. */
EVLOOP_API void evl_signal_init(evl_signal *s, evl_signal_cb cb, int signum);
EVLOOP_API int evl_signal_start(evl_loop *loop, evl_signal *s);
EVLOOP_API void evl_signal_stop(evl_loop *loop, evl_signal *s);

/* ---- Child processes --------------------------------------------------------------------------
   The callback gets the status as from waitpid() once the process has exited, and the watcher is
   already stopped when it runs (so the callback may free or restart it).  Only the watched process
   is reaped; other children are left to the program.  If someone else reaped the process first,
   status is -1 (see LIMITS for a program that reaps watched children itself).  evl_child_start returns -EINVAL for pid <= 0 and -ECHILD if pid is not a child of
   this process.
   On Windows (IOCP) an evl_pid is a process HANDLE with SYNCHRONIZE access (from CreateProcess,
   for instance), which stays the program's to close; status is the process's exit code; -EINVAL
   for NULL, -ECHILD for a handle that is not a process. */
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

#if EVLOOP_HAS_FILE_OPS
/* ---- File operations --------------------------------------------------------------------------
   A regular file is never "not ready", so reading it in a callback blocks the whole loop while
   the disk works.  A file operation instead runs elsewhere and calls back on the loop when it has
   finished: cb(loop, op, result), result being what the system call returns (bytes, 0 at end of
   file, a new descriptor) or -errno.  The evl_op is yours, like a watcher; nothing is allocated.
   Every start returns 0, -EINVAL (a bad loop or op, no callback, a length or count out of range),
   or -EALREADY if op is active; the operation's own errors (-EBADF, -EISDIR, -EINVAL for a
   misaligned O_DIRECT transfer...) come through the callback, which is always called once per
   successful start, from the loop, never from inside the start call.  The buffer, the iovec array,
   the path and the struct to fill must stay valid until then.  An active op keeps evl_run alive
   (unless evl_unref'd).  The callback may start the same op again.
   Where an operation runs (evl_op_engine: "io_uring", "workers" or "inline", for the next op):
     io_uring  Linux 5.6 or later, epoll backend: the ring is set up at the first operation, not at
               evl_init; operations started in one iteration are submitted together by one system
               call before the loop waits.  Falls back by itself when the kernel refuses the ring
               (ENOSYS, EPERM, EACCES, /proc/sys/kernel/io_uring_disabled) or an operation.
     workers   threads you started with evl_workers_start; never a thread you did not ask for.
     inline    neither: the operation runs on the loop's thread just before it waits, and blocks
               it; the callback comes in the same iteration.
   offset is a byte offset, or EVL_OP_CURRENT for the descriptor's file position (which the
   operation advances, as read() and write() do).  evl_op_fsync and evl_op_fdatasync flush to the
   disk; evl_op_openat gives the new descriptor (add O_CLOEXEC yourself); evl_op_close 0 or -errno;
   evl_op_fstat fills *out (it never runs on the ring: the inode of an open file is in memory, so
   it is cheap anywhere); evl_op_statx fills *out (glibc, EVLOOP_HAS_STATX).
   evl_op_work runs fn(op, arg) on a worker thread and gives its return value to the callback;
   without workers it runs inline.  fn must not touch the loop.
   evl_op_cancel: 0 if the callback will get -ECANCELED, or the result when the operation finished
   first (on io_uring a transfer on a regular file, once the disk has it, finishes anyway);
   -EALREADY when it has finished already or is running on a worker thread, which is not
   interrupted: the callback gets its result; -EINVAL if op is not active.
   evl_op_active: 1 from the start until the callback is called.
   evl_workers_start(loop, workers, count) starts count threads (workers is an array of count,
   yours until evl_workers_stop); 0, -EALREADY if the loop has workers, -EINVAL, or -errno with no
   thread left running.  evl_workers_stop joins them, after each finished what it was running;
   operations still queued for them complete with -ECANCELED.  The threads block every signal
   and, on Linux, run as SCHED_BATCH (they do not preempt the loop's thread when they wake).
   evl_stop leaves operations running: their callbacks come in a later evl_run.
   evl_deinit with operations in flight: io_uring operations are cancelled and waited for, worker
   threads finish what they run and are joined, and no callback is called after it (a descriptor
   an openat opened for a callback that will not come is closed; in a child made by fork(), the
   parent's ring and threads are left alone).  Any descriptor works, but on a
   socket or a pipe an operation waits for data, holding a worker thread (or on io_uring a ring
   slot) meanwhile, and inline it would block the loop: io watchers and fibers are for those.  The
   vectored forms take evl_iovec, which is struct iovec on POSIX.  On Windows (IOCP) descriptors are
   the C library's, the engines are workers and inline, openat takes AT_FDCWD only (-ENOTSUP
   otherwise), and there is no statx: see evloop_iocp.h. */
#define EVL_OP_CURRENT ((int64_t)-1)
EVLOOP_API void evl_op_init(evl_op *op, evl_op_cb cb);
EVLOOP_API int evl_op_read(evl_loop *loop, evl_op *op, int fd, void *buf, size_t len, int64_t offset);
EVLOOP_API int evl_op_write(evl_loop *loop, evl_op *op, int fd, const void *buf, size_t len, int64_t offset);
EVLOOP_API int evl_op_readv(evl_loop *loop, evl_op *op, int fd, const evl_iovec *iov, int iovcnt, int64_t offset);
EVLOOP_API int evl_op_writev(evl_loop *loop, evl_op *op, int fd, const evl_iovec *iov, int iovcnt, int64_t offset);
EVLOOP_API int evl_op_fsync(evl_loop *loop, evl_op *op, int fd);
EVLOOP_API int evl_op_fdatasync(evl_loop *loop, evl_op *op, int fd);
EVLOOP_API int evl_op_openat(evl_loop *loop, evl_op *op, int dirfd, const char *path, int flags, unsigned mode);
EVLOOP_API int evl_op_close(evl_loop *loop, evl_op *op, int fd);
EVLOOP_API int evl_op_fstat(evl_loop *loop, evl_op *op, int fd, struct stat *out);
#if EVLOOP_HAS_STATX
EVLOOP_API int evl_op_statx(evl_loop *loop, evl_op *op, int dirfd, const char *path, int flags, unsigned mask,
                            struct statx *out);
#endif
EVLOOP_API int evl_op_work(evl_loop *loop, evl_op *op, evl_work_fn fn, void *arg);
EVLOOP_API int evl_op_cancel(evl_loop *loop, evl_op *op);
EVLOOP_API int evl_op_active(const evl_op *op);
EVLOOP_API const char *evl_op_engine(const evl_loop *loop);
EVLOOP_API int evl_workers_start(evl_loop *loop, evl_worker *workers, unsigned count);
EVLOOP_API void evl_workers_stop(evl_loop *loop);
#endif /* EVLOOP_HAS_FILE_OPS */

/* ---- Debugging --------------------------------------------------------------------------------
   One line for the loop, then one per active watcher: kind, descriptor and events, signal, pid,
   timer due-in and repeat, and whether it is unreferenced; then fibers, file operations (which
   operation, its descriptor, where it is) and the number of worker threads. */
EVLOOP_API void evl_dump(const evl_loop *loop, FILE *out);

#if EVLOOP_HAS_FIBERS
/* ---- Fibers -----------------------------------------------------------------------------------
   Straight-line code with non-blocking I/O: a fiber runs on its own stack inside the loop, and
   the blocking-style calls below suspend it until its descriptor is ready, its timer expires, or
   a channel moves, while the loop goes on with other fibers and callbacks.

   evl_fiber_start runs fn(arg) in a new fiber, first in the next iteration of evl_run.  stack is
   stack_size bytes of your memory (at least 4 KiB; 16 KiB or more if the fiber calls printf),
   or NULL: the library then maps stack_size bytes (0: 64 KiB) with an inaccessible guard page
   below, so an overflow crashes at once instead of overwriting memory, and unmaps it when the
   fiber returns.  A fiber that returns is finished: the library no longer touches it, so it can be
   freed or started again.  It keeps evl_run alive until then (unless evl_unref'd).  Returns 0,
   -EINVAL, or -ENOMEM (-errno) if the stack cannot be mapped.  f must not be a live fiber.
   evl_fiber_self: the running fiber, or NULL in a callback or outside the loop.
   evl_fiber_loop: the loop f runs in (NULL if f was never started), for evl_now and deadlines.
   evl_fiber_done: 1 once f has returned (or was abandoned by evl_deinit), else 0.
   evl_fiber_cancel: the wait f is in returns -ECANCELED now; if f is not waiting, its next wait
   does.  Once: the wait after that is a normal one.  No-op for a finished fiber.
   evl_fiber_join: from a fiber, wait until f has returned: 0, -ETIMEDOUT, -ECANCELED, -EDEADLK
   (f is the caller).  A finished or abandoned f returns 0 at once.
   evl_fiber_on_done: once f has returned, the loop calls cb(loop, f) from its own stack, when the
   library no longer touches f: the callback may free f (and the memory around it) or start it
   again.  Set it after evl_fiber_start.  This is how a fiber that owns its own memory (one per
   connection, say) gets freed: not from inside its function, where f is still in use.

   The calls that may wait work only inside a fiber; outside one they return -EPERM.  timeout is
   a duration or EVL_FOREVER, for the whole call; 0 checks without waiting.  Descriptors should be
   non-blocking; a blocking one still never blocks the loop, as the calls wait for readiness first.
   evl_wait: revents (> 0), -ETIMEDOUT, -ECANCELED, or an error of evl_io_start.  Waiting on a
     descriptor that already has an io watcher in this loop watches a duplicate of it.  A
     descriptor that is ready when the timeout expires is reported ready.
   evl_sleep: 0 or -ECANCELED.  evl_yield: lets the other ready fibers and the loop run; 0 or
     -ECANCELED.
   evl_read: bytes read (> 0), 0 at end of file, or -errno.
   evl_write: writes all len bytes, across partial writes: len or -errno (on an error or a timeout
     part of the data may have been written).
   evl_write_all: the same, returning 0 or -errno, and the number of bytes that went out in
     *written in both cases (a framed protocol needs it after -ETIMEDOUT); written may be NULL.
   evl_deadline(timeout): the clock now plus timeout (EVL_FOREVER stays EVL_FOREVER), on the
     clock of evl_now.  evl_until(deadline): the time left from now until deadline, 0 once it has
     passed, EVL_FOREVER for EVL_FOREVER: the timeout of each call in a sequence that must end by
     one deadline (a reply read in several pieces):
       evl_time deadline = evl_deadline(EVL_MS(100));
       while (...) n = evl_read(fd, buf, len, evl_until(deadline));
   evl_accept: the new descriptor, non-blocking and close-on-exec, or -errno.
   evl_connect: 0 once connected, or -errno (a blocking socket is made non-blocking for the
     duration of the call).  After -ETIMEDOUT or -ECANCELED the socket's state is unspecified.
   evl_pread, evl_pwrite: one file operation (see File operations) at offset or EVL_OP_CURRENT,
     the fiber waiting for it: bytes (one transfer: a write may be short), or -errno.  On a
     timeout or evl_fiber_cancel the operation is cancelled and waited for (the buffer is yours
     again when the call returns): -ETIMEDOUT or -ECANCELED, or its result if it finished anyway.
     evl_read and evl_write on a regular file or a block device go the same way (at the file
     position), so they no longer block the loop.

   A channel is a bounded queue between fibers in one thread, over your buffer of capacity (>= 1)
   elements of elem_size bytes.  evl_chan_send copies an element in, evl_chan_recv one out, in
   order; each waits while the channel is full or empty: 0, -ETIMEDOUT, -ECANCELED, -EPIPE once the
   channel is closed (receivers first get what is left), -EINVAL for a bad channel.  Outside a
   fiber they work when they need not wait, and return -EPERM when they would have to.
   evl_chan_close: no more sends; wakes every waiter. */
EVLOOP_API int evl_fiber_start(evl_loop *loop, evl_fiber *f, void *stack, size_t stack_size, evl_fiber_fn fn,
                               void *arg);
EVLOOP_API evl_fiber *evl_fiber_self(void);
EVLOOP_API evl_loop *evl_fiber_loop(const evl_fiber *f);
EVLOOP_API int evl_fiber_done(const evl_fiber *f);
EVLOOP_API void evl_fiber_cancel(evl_fiber *f);
EVLOOP_API int evl_fiber_join(evl_fiber *f, evl_time timeout);
EVLOOP_API void evl_fiber_on_done(evl_fiber *f, evl_fiber_done_cb cb);

EVLOOP_API int evl_wait(evl_fd fd, unsigned events, evl_time timeout);
EVLOOP_API int evl_sleep(evl_time duration);
EVLOOP_API int evl_yield(void);
EVLOOP_API ssize_t evl_read(evl_fd fd, void *buf, size_t len, evl_time timeout);
EVLOOP_API ssize_t evl_write(evl_fd fd, const void *buf, size_t len, evl_time timeout);
EVLOOP_API int evl_write_all(evl_fd fd, const void *buf, size_t len, evl_time timeout, size_t *written);
EVLOOP_API evl_time evl_deadline(evl_time timeout);
EVLOOP_API evl_time evl_until(evl_time deadline);
EVLOOP_API evl_fd_result evl_accept(evl_fd fd, struct sockaddr *addr, socklen_t *addrlen, evl_time timeout);
EVLOOP_API int evl_connect(evl_fd fd, const struct sockaddr *addr, socklen_t addrlen, evl_time timeout);
#if EVLOOP_HAS_FILE_OPS
EVLOOP_API ssize_t evl_pread(int fd, void *buf, size_t len, int64_t offset, evl_time timeout);
EVLOOP_API ssize_t evl_pwrite(int fd, const void *buf, size_t len, int64_t offset, evl_time timeout);
#endif

EVLOOP_API void evl_chan_init(evl_chan *c, void *buf, size_t elem_size, size_t capacity);
EVLOOP_API int evl_chan_send(evl_chan *c, const void *elem, evl_time timeout);
EVLOOP_API int evl_chan_recv(evl_chan *c, void *elem, evl_time timeout);
EVLOOP_API void evl_chan_close(evl_chan *c);
#endif /* EVLOOP_HAS_FIBERS */

#ifdef __cplusplus
}
#endif

#endif /* EVLOOP_H */

/* ============================================================================================== */
/* Implementation                                                                                 */
/* ============================================================================================== */

#if defined(EVLOOP_IMPLEMENTATION) && !defined(EVLOOP_IMPLEMENTED)
#define EVLOOP_IMPLEMENTED
#ifndef EVL__CONTEXT_ONLY  /* see "Fibers: the context switch" */

#include <inttypes.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
/* evloop.h asks for _GNU_SOURCE itself, which glibc only hears before its first header. */
#if defined(__GLIBC__) && !defined(__USE_GNU)
#error "evloop: a system header came before evloop.h in the file that defines EVLOOP_IMPLEMENTATION: include evloop.h first there, or define _GNU_SOURCE before any include"
#endif
#if !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) && \
    !defined(_BSD_SOURCE) && !defined(__APPLE__)
#error "evloop: the implementation needs POSIX declarations: include evloop.h first, or define _GNU_SOURCE"
#endif
#endif

#ifndef EVLOOP_ASSERT
#include <assert.h>
#define EVLOOP_ASSERT(x) assert(x)
#endif

#define EVL__PRIVATE static
/* Functions that run once per loop or per watcher's life (init, deinit, dump, installing a signal
   handler, starting a fiber) are optimised for size; calls on the hot paths are never these.
   EVL__NOINLINE keeps one copy of code that many callers share off their fast paths. */
#if defined(__GNUC__) || defined(__clang__)
#define EVL__COLD __attribute__((cold))
#define EVL__NOINLINE __attribute__((noinline))
#define EVL__UNUSED __attribute__((unused))     /* offered to backends, not every one needs it */
#else
#define EVL__COLD
#define EVL__NOINLINE
#define EVL__UNUSED
#endif
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
    EVL__KIND_HOOK,
    EVL__KIND_OP
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
#define EVL__CAS(p, expected, v) __atomic_compare_exchange_n((p), (expected), (v), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
EVL__PRIVATE unsigned evl__ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
EVL__PRIVATE unsigned evl__msb64(uint64_t x) { return 63u - (unsigned)__builtin_clzll(x); }
#else
#error "evloop: this compiler needs atomics and bit-scan helpers (GCC and Clang are supported)"
#endif

/* ---- Internal interface ----------------------------------------------------------------------
   The core below is portable C that knows no operating system.  Three layers fill it in: the
   backend header (evloop_<backend>.h), the operating-system layer (>>os posix below; Windows keeps
   its own in evloop_iocp.h), and the fiber context switch (the >>cpu sections at the end).

   What each backend header implements, in this order, and nothing else.  A backend reads and
   writes its own part of the loop (loop->backend); it may read loop->now (the time a wait's
   timeout counts from) and the fd and events of an io watcher, keep an io watcher's address as
   its kernel cookie, and start and stop the internal watchers it makes with
   evl__io_init_internal through the public API.  Everything else reaches it as arguments, or
   goes back through the core functions listed after it. */
EVL__PRIVATE int evl__backend_init(evl_loop *loop);                  /* acquire: 0, or -errno with nothing held */
EVL__PRIVATE void evl__backend_deinit(evl_loop *loop);               /* release, changing no kernel state that a
                                                                        fork()ed process may share */
EVL__PRIVATE int evl__backend_io_start(evl_loop *loop, evl_io *w);   /* 0, EVL__NOT_POLLABLE, or -errno */
EVL__PRIVATE int evl__backend_io_modify(evl_loop *loop, evl_io *w, unsigned events);   /* 0 or -errno */
EVL__PRIVATE void evl__backend_io_stop(evl_loop *loop, evl_io *w);
/* Waits at most timeout (0: not at all; EVL_FOREVER: no limit) and stores up to capacity io events
   in ready: their count, 0 when interrupted by a signal, or -errno. */
EVL__PRIVATE int evl__backend_wait(evl_loop *loop, evl_time timeout, evl__ready *ready, int capacity);
EVL__PRIVATE int evl__backend_wake(evl_loop *loop);  /* any thread, async-signal-safe: 0, or -errno if not sent */
EVL__PRIVATE int evl__backend_fd(const evl_loop *loop);
EVL__PRIVATE int evl__backend_signal_start(evl_loop *loop, int signum); /* 0: the backend reports it
                                                     (evl__signal_raised), EVL__USE_HANDLER, or -errno */
EVL__PRIVATE void evl__backend_signal_stop(evl_loop *loop, int signum); /* only after a 0 from start */
EVL__PRIVATE int evl__backend_child_start(evl_loop *loop, evl_child *c); /* 0, EVL__USE_SIGCHLD, or -errno */
EVL__PRIVATE void evl__backend_child_stop(evl_loop *loop, evl_child *c); /* only after a 0 from start */
EVL__PRIVATE void evl__backend_dump(const evl_loop *loop, const evl_child *c, FILE *out);
EVL__PRIVATE const char *evl__backend_name(void);

/* What a backend's start may answer instead of doing the work itself: */
enum {
    EVL__NOT_POLLABLE = 1,          /* io_start: the kernel cannot poll this (a regular file) */
    EVL__USE_HANDLER = 1,           /* signal_start: the OS layer's process-wide handler catches it */
    EVL__USE_SIGCHLD = 1            /* child_start: watch the child through SIGCHLD and waitpid */
};

/* What the core offers the backends: */
EVL__PRIVATE void evl__wake_received(evl_loop *loop);               /* the backend saw its wake-up */
EVL__PRIVATE EVL__UNUSED void evl__signal_raised(evl_loop *loop, int signum);    /* a signal the backend reports */
EVL__PRIVATE void evl__child_reap(evl_loop *loop, evl_child *c);     /* the process may have exited */
EVL__PRIVATE void evl__child_exited(evl_loop *loop, evl_child *c, int status);  /* it did, and was reaped */
/* Whether an active io watcher of loop uses fd, for a backend whose kernel does not refuse a second
   registration by itself (kqueue adds to or edits one per descriptor and filter).  It walks the
   loop's io watchers: O(n), so epoll, which hears EEXIST from the kernel, does not ask. */
EVL__PRIVATE EVL__UNUSED int evl__io_fd_watched(const evl_loop *loop, evl_fd fd);
/* A watcher the library keeps for itself: evl_run does not count it, evl_dump does not show it. */
EVL__PRIVATE void evl__io_init_internal(evl_io *w, evl_io_cb cb, evl_fd fd, unsigned events);
/* Drops w's events still waiting in the current batch.  A backend may put an internal watcher it
   never started in the batch (kqueue, for a child's exit, so that the child's callback runs in the
   dispatch phase and not inside the wait); when what it stands for stops, this takes it out. */
EVL__PRIVATE void evl__forget_ready(evl_loop *loop, const evl_io *w);

/* What the fiber scheduler (Fibers, below) offers the loop; without fibers, stubs that do nothing: */
#if EVLOOP_HAS_FIBERS
EVL__PRIVATE void evl__fibers_init(evl_loop *loop);
EVL__PRIVATE void evl__admit_new_fibers(evl_loop *loop);   /* at the start of an iteration */
static inline int evl__has_fibers(const evl_loop *loop);   /* any fiber business at all */
EVL__PRIVATE int evl__fibers_pending(const evl_loop *loop);
EVL__PRIVATE void evl__run_fibers(evl_loop *loop);         /* the iteration's fiber phase */
EVL__PRIVATE void evl__abandon_fibers(evl_loop *loop);     /* evl_deinit */
EVL__PRIVATE void evl__dump_fibers(const evl_loop *loop, FILE *out);
static inline int evl__is_fiber_timer(const evl_timer *t);        /* a wait's timeout */
#else
static inline void evl__fibers_init(evl_loop *loop) { (void)loop; }
static inline void evl__admit_new_fibers(evl_loop *loop) { (void)loop; }
static inline int evl__has_fibers(const evl_loop *loop) { (void)loop; return 0; }
static inline int evl__fibers_pending(const evl_loop *loop) { (void)loop; return 0; }
static inline void evl__run_fibers(evl_loop *loop) { (void)loop; }
static inline void evl__abandon_fibers(evl_loop *loop) { (void)loop; }
static inline void evl__dump_fibers(const evl_loop *loop, FILE *out) { (void)loop; (void)out; }
static inline int evl__is_fiber_timer(const evl_timer *t) { (void)t; return 0; }
#endif

#if EVLOOP_HAS_FILE_OPS
/* File operations (Operations, below).  The operation an evl_op holds: */
enum {
    EVL__DO_READ = 1, EVL__DO_WRITE, EVL__DO_READV, EVL__DO_WRITEV, EVL__DO_FSYNC, EVL__DO_FDATASYNC,
    EVL__DO_OPENAT, EVL__DO_CLOSE, EVL__DO_FSTAT, EVL__DO_STATX, EVL__DO_WORK
};
/* A backend that runs file operations itself (io_uring) defines EVL__BACKEND_HAS_OPS and
   implements these; without it, operations run on the worker threads or inline.  The backend
   reads an operation's fields, keeps its address as the kernel's cookie, and reports each
   operation it took exactly once through evl__op_finished, from its own internal watcher. */
#if defined(EVL__BACKEND_HAS_OPS)
EVL__PRIVATE int evl__backend_op_submit(evl_loop *loop, evl_op *op);  /* 0 taken, EVL__OP_ELSEWHERE,
                                                                         EVL__OP_FULL (no room now) */
EVL__PRIVATE void evl__backend_op_flush(evl_loop *loop);    /* hand what it took to the kernel, at once */
EVL__PRIVATE int evl__backend_op_unsubmitted(const evl_loop *loop);  /* it took some the kernel did
                                                                        not (yet): do not block */
EVL__PRIVATE void evl__backend_op_cancel(evl_loop *loop, evl_op *op);   /* its report still comes */
EVL__PRIVATE void evl__backend_ops_drain(evl_loop *loop);   /* evl_deinit, after cancelling each: wait
                                                               until none is in flight, reporting none */
EVL__PRIVATE int evl__backend_op_would_take(const evl_loop *loop);   /* the next read would be taken */
EVL__PRIVATE const char *evl__backend_op_engine(void);
#endif
enum { EVL__OP_ELSEWHERE = 1, EVL__OP_FULL = 2 };
EVL__PRIVATE EVL__UNUSED void evl__op_finished(evl_loop *loop, evl_op *op, ssize_t result);   /* the core's */
/* The core's, for a result nobody will be told of (evl_deinit): a descriptor it opened is closed. */
EVL__PRIVATE EVL__UNUSED void evl__op_discard(evl_op *op, ssize_t result);
#endif

#if EVLOOP_HAS_FIBERS
/* What the context switch (Fibers: the context switch, at the end) offers the fiber scheduler: */
static void evl__ctx_init(evl__ctx *ctx, void *stack, size_t size, void (*entry)(void *), void *arg);
static void evl__ctx_init_main(evl__ctx *ctx);              /* the thread's own stack */
static void evl__ctx_switch(evl__ctx *from, evl__ctx *to);  /* returns when switched back to */
static void evl__ctx_exit(evl__ctx *from, evl__ctx *to);    /* from is finished: never returns */
static void evl__ctx_release(evl__ctx *ctx);                /* what the tools kept for it */
#endif

/* What the operating-system layer provides (>>os posix below; evloop_iocp.h on Windows): */
EVL__PRIVATE evl_time evl__clock_now(void);
EVL__PRIVATE long evl__os_process_id(void);
EVL__PRIVATE void evl__os_yield(void);
EVL__PRIVATE int evl__os_signal_valid(int signum);
/* The disposition of signum while evloop watches it: the process-wide handler, which calls
   evl__signal_caught (by_handler), or one that leaves it to the backend to report. */
EVL__PRIVATE int evl__os_signal_catch(int signum, int by_handler);
EVL__PRIVATE void evl__os_signal_restore(int signum);               /* the disposition from before */
/* The signals that loop has the handler catch changed, or evl_run starts on a thread whose mask
   may differ: while the backend waits, they must not be blocked. */
EVL__PRIVATE void evl__os_signals_changed(evl_loop *loop);
EVL__PRIVATE int evl__os_sigchld(void);
EVL__PRIVATE int evl__os_child_check(evl_pid pid);                  /* 0 if pid is our child, or -errno */
EVL__PRIVATE int evl__os_child_wait(evl_pid pid, int *status);      /* 1 exited, 0 running, -errno */
#if EVLOOP_HAS_FILE_OPS
EVL__PRIVATE ssize_t evl__os_op_run(evl_op *op);                    /* as blocking calls: result or -errno */
#if EVLOOP_HAS_FIBERS
EVL__PRIVATE int evl__os_is_file(int fd);                           /* regular file or block device */
#endif
EVL__PRIVATE int evl__os_thread_start(evl__os_thread *t, void *(*fn)(void *), void *arg);   /* 0 or -errno */
EVL__PRIVATE void evl__os_thread_join(evl__os_thread t);
EVL__PRIVATE void evl__os_thread_setup(void);   /* first thing in a thread the library made:
                                                   signals blocked, and not ahead of the loop */
EVL__PRIVATE int evl__os_lock_init(evl__os_mutex *m, evl__os_cond *c);   /* 0 or -errno */
EVL__PRIVATE void evl__os_lock_destroy(evl__os_mutex *m, evl__os_cond *c);
EVL__PRIVATE void evl__os_lock(evl__os_mutex *m);
EVL__PRIVATE void evl__os_unlock(evl__os_mutex *m);
EVL__PRIVATE void evl__os_cond_wait(evl__os_cond *c, evl__os_mutex *m);
EVL__PRIVATE void evl__os_cond_signal(evl__os_cond *c);              /* wakes one waiter */
EVL__PRIVATE void evl__os_cond_broadcast(evl__os_cond *c);
#endif
#if EVLOOP_HAS_FIBERS
EVL__PRIVATE int evl__os_stack_map(size_t size, void **stack, size_t *usable);
EVL__PRIVATE void evl__os_stack_unmap(void *stack, size_t usable);
EVL__PRIVATE void evl__os_close(evl_fd fd);
EVL__PRIVATE evl_fd_result evl__os_dup(evl_fd fd);                  /* a new descriptor, or -errno */
EVL__PRIVATE int evl__os_nonblocking(evl_fd fd);                    /* 1, 0, or -errno */
EVL__PRIVATE int evl__os_set_nonblocking(evl_fd fd, int on);
EVL__PRIVATE int evl__os_poll(evl_fd fd, unsigned events);          /* EVL_ bits ready now */
/* One read (into in) or write (from out) that cannot block: -EAGAIN when it would have to wait.
   *kind is what the call has learned of fd (EVL__FD_*); ready says fd was just seen ready. */
EVL__PRIVATE ssize_t evl__os_transfer(evl_fd fd, void *in, const void *out, size_t len, int *kind, int ready);
EVL__PRIVATE evl_fd_result evl__os_accept(evl_fd fd, struct sockaddr *addr, socklen_t *addrlen);
EVL__PRIVATE int evl__os_connect(evl_fd fd, const struct sockaddr *addr, socklen_t addrlen);
EVL__PRIVATE int evl__os_socket_error(evl_fd fd);
#endif

#if EVLOOP_HAS_FIBERS
enum { EVL__FD_UNKNOWN, EVL__FD_SOCKET, EVL__FD_NONBLOCKING, EVL__FD_BLOCKING, EVL__FD_FILE };
#endif

/* ---- Small helpers --------------------------------------------------------------------------- */

EVL__PRIVATE evl_time evl__add_sat(evl_time a, evl_time b) { return a + b < a ? EVL_FOREVER : a + b; }

EVL__PRIVATE int evl__loop_ok(const evl_loop *loop) { return loop && loop->magic == EVL__LOOP_MAGIC; }

/* -1 as an int, INVALID_SOCKET as a SOCKET: both are negative once widened, and so is nothing else
   (a SOCKET is a handle, which fits in 32 bits). */
EVL__PRIVATE int evl__fd_invalid(evl_fd fd) { return (long long)fd < 0; }

/* What every start checks first: the loop, and a watcher of the right kind with a callback that is
   not already active.  Returns from the calling function. */
#define EVL__REFUSE_BAD_START(loop, w, kind_value)                                                 \
    do {                                                                                           \
        if (!evl__loop_ok(loop) || !(w) || (w)->kind != (kind_value) || !(w)->cb) return -EINVAL;  \
        if (evl__linked(&(w)->link)) return -EALREADY;                                             \
    } while (0)

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

/* Whether a stop has work to do: the watcher is active.  It must then be stopped with the loop it
   was started on (loop_tag, 0 when the watcher cannot tell); anything else is a misuse, reported
   by EVLOOP_ASSERT and otherwise ignored, since stopping cannot fail. */
EVL__PRIVATE int evl__stop_applies(const evl_loop *loop, const evl__node *link, unsigned char loop_tag) {
    int ok;
    if (!evl__linked(link)) return 0;
    ok = evl__loop_ok(loop) && (loop_tag == 0 || loop_tag == loop->tag);
    EVLOOP_ASSERT(ok);
    return ok;
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
EVL__PRIVATE EVL__NOINLINE int evl__walk_list(evl_loop *loop, evl__node *head,
                                               void (*visit)(evl_loop *, evl__node *)) {
    evl__node *n;
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

/* Most lists are empty at most passes: that test costs no call. */
static inline int evl__walk(evl_loop *loop, evl__node *head, void (*visit)(evl_loop *, evl__node *)) {
    return evl__list_empty(head) ? 1 : evl__walk_list(loop, head, visit);
}

/* The number of nodes a walk may visit, for the walks that must end whatever the list holds
   (evl_deinit, evl_dump): a watcher initialised again or freed while active can leave a list that
   never comes back to its head.  The count stops at a NULL link or a node seen twice (Floyd's two
   pointers: the slow one moves every other step), and the corruption is reported. */
EVL__PRIVATE EVL__COLD size_t evl__list_length_checked(const evl__node *head) {
    const evl__node *slow = head, *fast = head->next;
    size_t count = 0;
    while (fast != head) {
        int list_is_sound = fast && fast != slow;   /* else a watcher was initialised or freed while active */
        EVLOOP_ASSERT(list_is_sound);
        if (!list_is_sound) break;
        fast = fast->next;
        if (++count % 2 == 0) slow = slow->next;
    }
    return count;
}

/* Makes every watcher on a list inactive without calling it (evl_deinit), calling
   release(loop, node) for each if given.  Each node is unlinked (next = NULL) as it is reached, so
   on a damaged list the walk also ends at a node it has already seen, and never releases one twice. */
EVL__PRIVATE EVL__COLD void evl__detach_all(evl_loop *loop, evl__node *head, void (*release)(evl_loop *, evl__node *)) {
    size_t k, count = evl__list_length_checked(head);
    evl__node *n, *next;
    for (n = head->next, k = 0; k < count && n && n != head && n->next; k++, n = next) {
        next = n->next;
        n->next = NULL;
        if (release) release(loop, n);
    }
    evl__list_init(head);
}

/* A start finds its watcher already first or last on the list it would join: *_init was called on
   an active watcher, which made it look inactive.  Cheap to see, so refused; in the middle of a
   list it cannot be seen (evl_deinit and evl_dump then stop at the damage). */
EVL__PRIVATE int evl__initialised_while_active(const evl__node *list, const evl__node *n) {
    int seen = list->next == n || evl__prev(list) == n;
    EVLOOP_ASSERT(!seen);
    return seen;
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
   tick (or in the far list, one level above the top), and the wheel's tick only moves forward by
   collecting, which cascades slots down as it enters them.  So timers with equal deadlines always
   share one slot, appended in start order, and keep that order through cascades: this is what
   makes "equal deadlines fire in start order" true without a sequence number.  The far list is
   the slot of that extra level: entered at the start of the top level's next window. */

EVL__PRIVATE evl_timer *evl__timer_of(evl__node *n) { return EVL__CONTAINER(n, evl_timer, link); }

/* The level for the highest bit in which a tick differs from the wheel's, above the first level's
   six: bits 0-5 level 1 ... 24-29 level 5, and 30 up the far list (a table costs fewer
   instructions than the division and the far test it replaces). */
#define EVL__LEVEL6(l) l, l, l, l, l, l
static const unsigned char evl__wheel_level_of_bit[64] = {
    EVL__LEVEL6(1), EVL__LEVEL6(2), EVL__LEVEL6(3), EVL__LEVEL6(4), EVL__LEVEL6(5), EVL__LEVEL6(6),
    EVL__LEVEL6(6), EVL__LEVEL6(6), EVL__LEVEL6(6), EVL__LEVEL6(6), 6, 6, 6, 6};
#undef EVL__LEVEL6

EVL__PRIVATE unsigned evl__wheel_level(uint64_t tick, uint64_t current) {
    uint64_t above_first_level = (tick ^ current) >> EVL__WHEEL_BITS;
    return above_first_level ? evl__wheel_level_of_bit[evl__msb64(above_first_level)] : 0;
}

/* The first tick of a slot at a level, in the wheel's current window of that level; for the far
   list (level EVL__WHEEL_LEVELS), the first tick of the top level's next window. */
EVL__PRIVATE uint64_t evl__slot_start(uint64_t current, unsigned level, unsigned slot) {
    unsigned window = (level + 1) * EVL__WHEEL_BITS;
    if (level == EVL__WHEEL_LEVELS) return ((current >> (level * EVL__WHEEL_BITS)) + 1) << (level * EVL__WHEEL_BITS);
    return current >> window << window | (uint64_t)slot << (level * EVL__WHEEL_BITS);
}

EVL__PRIVATE evl__node *evl__slot(evl__wheel *wh, unsigned level, unsigned slot) {
    return level == EVL__WHEEL_LEVELS ? &wh->far_timers : &wh->slot[level][slot];
}

EVL__PRIVATE evl_time evl__tick_time(uint64_t tick) {
    return tick >= (EVL_FOREVER >> EVL__TICK_SHIFT) ? EVL_FOREVER : tick << EVL__TICK_SHIFT;
}

/* Also lowers wh->next to when the wheel must next look at this timer: its deadline in the lowest
   level; above, the start of its slot (where it cascades down), which is its own tick with the
   bits below the level cleared, since above the level it shares its bits with the wheel's tick. */
/* A timer beyond the top level's window: off the fast path, so that it costs the others nothing. */
EVL__PRIVATE EVL__NOINLINE EVL__COLD void evl__wheel_insert_far_timer(evl__wheel *wh, evl_timer *t) {
    evl_time wake = evl__tick_time(evl__slot_start(wh->tick, EVL__WHEEL_LEVELS, 0));
    evl__insert_before(&t->link, &wh->far_timers);
    if (wake < wh->next) wh->next = wake;
}

EVL__PRIVATE void evl__wheel_insert(evl__wheel *wh, evl_timer *t) {
    uint64_t tick = t->deadline >> EVL__TICK_SHIFT;
    unsigned level, shift, slot;
    evl_time wake;
    if (tick < wh->tick) tick = wh->tick;           /* already due: the current slot */
    level = evl__wheel_level(tick, wh->tick);
    if (level >= EVL__WHEEL_LEVELS) {
        evl__wheel_insert_far_timer(wh, t);
        return;
    }
    shift = level * EVL__WHEEL_BITS;
    slot = (unsigned)(tick >> shift) & (EVL__WHEEL_SLOTS - 1);
    evl__insert_before(&t->link, &wh->slot[level][slot]);
    wh->occupied[level] |= (uint64_t)1 << slot;
    wake = level == 0 ? t->deadline : tick >> shift << shift << EVL__TICK_SHIFT;
    if (wake < wh->next) wh->next = wake;
}

/* The earliest occupied slot: the first slot ahead of the wheel at the lowest level that has
   one.  Slots emptied by evl_timer_stop keep their bit until this finds them. */
EVL__PRIVATE EVL__NOINLINE int evl__wheel_first(evl__wheel *wh, unsigned *level_out, unsigned *slot_out) {
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
    *level_out = EVL__WHEEL_LEVELS;                 /* after every slot: the far list */
    *slot_out = 0;
    return !evl__list_empty(&wh->far_timers);
}

/* Inserts a due timer into the due list by deadline, after those with an equal one.  Timers are
   collected in nearly ascending order, so the scan from the tail rarely moves. */
EVL__PRIVATE void evl__due_insert(evl__wheel *wh, evl_timer *t) {
    evl__node *p = evl__prev(&wh->due);
    while (p != &wh->due && evl__timer_of(p)->deadline > t->deadline) p = evl__prev(p);
    evl__insert_before(&t->link, p->next);
}

EVL__PRIVATE EVL__NOINLINE void evl__wheel_update_next(evl__wheel *wh) {
    unsigned level, slot;
    evl__node *head, *n;
    wh->next = EVL_FOREVER;
    if (!evl__wheel_first(wh, &level, &slot)) return;
    head = evl__slot(wh, level, slot);
    if (level > 0) {
        wh->next = evl__tick_time(evl__slot_start(wh->tick, level, slot));
        return;
    }
    for (n = head->next; n != head; n = n->next)
        if (evl__timer_of(n)->deadline < wh->next) wh->next = evl__timer_of(n)->deadline;
}

/* Moves every timer due at `now` to the due list, cascading slots the wheel passes through. */
EVL__PRIVATE EVL__NOINLINE void evl__wheel_advance(evl__wheel *wh, evl_time now) {
    uint64_t now_tick = now >> EVL__TICK_SHIFT;
    unsigned level, slot;
    while (evl__wheel_first(wh, &level, &slot)) {
        uint64_t start = evl__slot_start(wh->tick, level, slot);
        evl__node *head = evl__slot(wh, level, slot), *n, *next, *last;
        if (start > now_tick) break;
        wh->tick = start;
        if (level > 0) {
            /* Cascade: relative to the new tick every timer here belongs to a lower level, but
               for those of the far list still beyond the new window, which go back to its end. */
            last = evl__prev(head);
            do {
                n = head->next;
                evl__unlink(n);
                evl__wheel_insert(wh, evl__timer_of(n));
            } while (n != last);
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

/* Most passes have nothing due: that test costs no call. */
static inline void evl__wheel_collect(evl__wheel *wh, evl_time now) {
    if (now >= wh->next) evl__wheel_advance(wh, now);
}

EVL__PRIVATE void evl__wheel_init(evl__wheel *wh, evl_time now) {
    unsigned level, slot;
    wh->tick = now >> EVL__TICK_SHIFT;
    wh->next = EVL_FOREVER;
    memset(wh->occupied, 0, sizeof wh->occupied);
    evl__list_init(&wh->due);
    evl__list_init(&wh->far_timers);
    for (level = 0; level < EVL__WHEEL_LEVELS; level++)
        for (slot = 0; slot < EVL__WHEEL_SLOTS; slot++) evl__list_init(&wh->slot[level][slot]);
}

/* evl_deinit: every timer inactive, the wheel's lists empty. */
EVL__PRIVATE EVL__COLD void evl__wheel_detach_all(evl_loop *loop) {
    unsigned level, slot;
    evl__detach_all(loop, &loop->wheel.due, NULL);
    evl__detach_all(loop, &loop->wheel.far_timers, NULL);
    for (level = 0; level < EVL__WHEEL_LEVELS; level++)
        for (slot = 0; slot < EVL__WHEEL_SLOTS; slot++) evl__detach_all(loop, &loop->wheel.slot[level][slot], NULL);
}

/* Calls visit for every timer in a list of the wheel (evl_dump); visit must not change the list. */
EVL__PRIVATE EVL__COLD void evl__timers_each(const evl__node *head, void (*visit)(evl_timer *, void *), void *arg) {
    size_t k, count = evl__list_length_checked(head);
    evl__node *n, *next;
    for (n = head->next, k = 0; k < count; k++, n = next) {
        next = n->next;
        visit(evl__timer_of(n), arg);
    }
}

/* Calls visit for every timer in the wheel and the due list. */
EVL__PRIVATE EVL__COLD void evl__wheel_each(const evl__wheel *wh, void (*visit)(evl_timer *, void *), void *arg) {
    unsigned level, slot;
    evl__timers_each(&wh->due, visit, arg);
    evl__timers_each(&wh->far_timers, visit, arg);
    for (level = 0; level < EVL__WHEEL_LEVELS; level++)
        for (slot = 0; slot < EVL__WHEEL_SLOTS; slot++) evl__timers_each(&wh->slot[level][slot], visit, arg);
}

/* ---- Timers ---------------------------------------------------------------------------------- */

EVLOOP_API void evl_timer_init(evl_timer *t, evl_timer_cb cb) {
    if (!t) return;
    memset(t, 0, sizeof *t);
    t->cb = cb;
}

EVLOOP_API int evl_timer_active(const evl_timer *t) { return t && evl__linked(&t->link); }

EVLOOP_API void evl_timer_stop(evl_loop *loop, evl_timer *t) {
    /* A timer has no room to remember its loop: stopping it with another is not detected. */
    if (!t || !evl__stop_applies(loop, &t->link, 0)) return;
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
    /* A write that failed delivered nothing: the next wake-up must try again. */
    if (!EVL__XCHG(&loop->wake_pending, 1) && evl__backend_wake(loop) < 0) EVL__STORE(&loop->wake_pending, 0);
}

EVL__PRIVATE void evl__wake_received(evl_loop *loop) {
    EVL__STORE(&loop->wake_pending, 0);
    loop->woken = 1;
}

/* ---- File descriptors ------------------------------------------------------------------------ */

#define EVL__IO_INTEREST (EVL_READ | EVL_WRITE | EVL_PRI)

/* The interest as stored: EVL_ERROR and EVL_HUP are always reported, so asking for them is
   harmless; any other bit is a mistake that start and set report. */
EVL__PRIVATE unsigned char evl__io_interest(unsigned events) {
    events &= ~(unsigned)(EVL_ERROR | EVL_HUP);
    return (unsigned char)(events & ~(unsigned)EVL__IO_INTEREST ? (unsigned)EVL__IO_BAD_EVENTS : events);
}

EVLOOP_API void evl_io_init(evl_io *w, evl_io_cb cb, evl_fd fd, unsigned events) {
    if (!w) return;
    memset(w, 0, sizeof *w);
    w->cb = cb;
    w->fd = fd;
    w->events = evl__io_interest(events);
    w->kind = EVL__KIND_IO;
}

EVL__PRIVATE int evl__fd_on_list(const evl__node *head, evl_fd fd) {
    const evl__node *n;
    for (n = head->next; n != head; n = n->next)
        if (EVL__CONTAINER(n, evl_io, link)->fd == fd) return 1;
    return 0;
}

EVL__PRIVATE int evl__file_watched(const evl_loop *loop, evl_fd fd) { return evl__fd_on_list(&loop->files, fd); }

EVL__PRIVATE int evl__io_fd_watched(const evl_loop *loop, evl_fd fd) {
    return evl__fd_on_list(&loop->ios, fd) || evl__fd_on_list(&loop->files, fd);
}

EVL__PRIVATE void evl__io_init_internal(evl_io *w, evl_io_cb cb, evl_fd fd, unsigned events) {
    evl_io_init(w, cb, fd, events);
    w->flags = EVL__IO_INTERNAL;
    w->link.prev_bits = EVL__UNREF;             /* what it works for is what counts */
}

EVLOOP_API int evl_io_start(evl_loop *loop, evl_io *w) {
    int rc;
    EVL__REFUSE_BAD_START(loop, w, EVL__KIND_IO);
    if (evl__initialised_while_active(&loop->ios, &w->link) || evl__initialised_while_active(&loop->files, &w->link))
        return -EALREADY;
    if (w->events & EVL__IO_BAD_EVENTS) return -EINVAL;
    if (evl__fd_invalid(w->fd)) return -EBADF;
    rc = evl__backend_io_start(loop, w);
    if (rc < 0) return rc;
    w->loop_tag = loop->tag;
    if (rc == EVL__NOT_POLLABLE) {
        /* A regular file or a directory: the kernel cannot poll it, and poll() would call it
           always ready, so that is what the loop does. */
        if (evl__file_watched(loop, w->fd)) return -EEXIST;
        w->flags |= EVL__IO_FILE;
        evl__activate(loop, &w->link, &loop->files);
        return 0;
    }
    w->flags &= (unsigned char)~EVL__IO_FILE;
    evl__activate(loop, &w->link, &loop->ios);
    return 0;
}

EVLOOP_API int evl_io_set(evl_loop *loop, evl_io *w, unsigned events) {
    unsigned char interest = evl__io_interest(events);
    if (!w || w->kind != EVL__KIND_IO || (interest & EVL__IO_BAD_EVENTS)) return -EINVAL;
    if (evl__linked(&w->link) && !(w->flags & EVL__IO_FILE)) {
        int rc;
        if (!evl__loop_ok(loop) || w->loop_tag != loop->tag) return -EINVAL;
        rc = evl__backend_io_modify(loop, w, interest);
        if (rc < 0) return rc;
    }
    w->events = interest;
    return 0;
}

EVLOOP_API int evl_io_active(const evl_io *w) { return w && evl__linked(&w->link); }

EVLOOP_API int evl_io_reset(evl_loop *loop, evl_io *w, evl_fd fd, unsigned events) {
    if (!w || w->kind != EVL__KIND_IO) return -EINVAL;
    evl_io_stop(loop, w);
    w->fd = fd;
    w->events = evl__io_interest(events);
    return evl_io_start(loop, w);
}

/* A stopped watcher's events still waiting in the batch must not be delivered. */
EVL__PRIVATE void evl__forget_ready(evl_loop *loop, const evl_io *w) {
    int i;
    for (i = 0; i < loop->ready_count; i++)
        if (loop->ready[i].w == w) loop->ready[i].w = NULL;
}

EVLOOP_API void evl_io_stop(evl_loop *loop, evl_io *w) {
    if (!w || !evl__stop_applies(loop, &w->link, w->loop_tag)) return;
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
    if (evl__initialised_while_active(&loop->prepares, &h->link) || evl__initialised_while_active(&loop->checks, &h->link))
        return;
    h->loop_tag = loop->tag;
    evl__activate(loop, &h->link, h->phase == EVL_PREPARE ? &loop->prepares : &loop->checks);
}

EVLOOP_API void evl_hook_stop(evl_loop *loop, evl_hook *h) {
    if (!h || !evl__stop_applies(loop, &h->link, h->loop_tag)) return;
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
    EVL__REFUSE_BAD_START(loop, a, EVL__KIND_ASYNC);
    if (evl__initialised_while_active(&loop->asyncs, &a->link)) return -EALREADY;
    EVL__STORE(&a->sent, 0);
    a->loop_tag = loop->tag;
    evl__activate(loop, &a->link, &loop->asyncs);
    EVL__STORE(&a->loop, loop);
    return 0;
}

EVLOOP_API void evl_async_stop(evl_loop *loop, evl_async *a) {
    if (!a || !evl__stop_applies(loop, &a->link, a->loop_tag)) return;
    EVL__STORE(&a->loop, (evl_loop *)NULL);
    evl__deactivate(loop, &a->link);
}

EVLOOP_API void evl_async_send(evl_async *a) {
    evl_loop *loop;
    if (!a || !(loop = EVL__LOAD(&a->loop))) return;
    if (!EVL__XCHG(&a->sent, 1)) {
        EVL__STORE(&loop->async_sent, 1);
        evl__wake(loop);
    } else if (EVL__LOAD(&loop->async_sent)) {
        evl__wake(loop);    /* the loop has not seen the earlier send: it may still need waking */
    }
}

/* ---- Signals --------------------------------------------------------------------------------
   One handler serves every loop: it marks the signal pending in each loop that watches it and
   wakes that loop.  The list of those loops is changed under a lock the handler never takes; the
   handler walks it with atomic loads, and a loop leaving the list waits until no handler that
   might still see it is running.  A backend that learns of signals itself (kqueue) takes that
   loop off this path: it reports them with evl__signal_raised.  evloop never changes a thread's
   signal mask: the OS layer unblocks a loop's signals only while its backend waits. */

static struct {
    int lock;
    int handlers_running;
    long owner;                             /* the process these fields describe; see below */
    evl_loop *loops;
    unsigned users[EVL__MAX_SIGNAL + 1];    /* watchers of each signal, all loops together */
} evl__signals;

/* Signals 1..64 as two 32-bit words (64-bit atomics cost a library call on some 32-bit CPUs). */
EVL__PRIVATE int evl__signal_word(int signum) { return (signum - 1) / 32; }
EVL__PRIVATE uint32_t evl__signal_bit(int signum) { return (uint32_t)1 << ((unsigned)(signum - 1) % 32u); }
EVL__PRIVATE int evl__signal_in(const uint32_t *set, int signum) {
    return (set[evl__signal_word(signum)] & evl__signal_bit(signum)) != 0;
}

/* fork() copies this state as the parent's threads left it at that instant: the lock may be held
   and handlers counted by threads that do not exist in the child.  So the first call in a new
   process starts from a clean state, marking the owner with its negated id while it resets (a
   handler interrupting the reset runs to completion first, so the count it leaves is right). */
EVL__PRIVATE void evl__signals_lock(void) {
    long self = evl__os_process_id(), owner;
    while ((owner = EVL__LOAD(&evl__signals.owner)) != self) {
        if (owner != -self && EVL__CAS(&evl__signals.owner, &owner, -self)) {
            EVL__STORE(&evl__signals.handlers_running, 0);
            EVL__STORE(&evl__signals.lock, 0);
            EVL__STORE(&evl__signals.owner, self);
        } else {
            evl__os_yield();                        /* another thread of this process resets it */
        }
    }
    while (EVL__XCHG(&evl__signals.lock, 1)) evl__os_yield();
}

EVL__PRIVATE void evl__signals_unlock(void) { EVL__STORE(&evl__signals.lock, 0); }

/* The OS layer's handler, on any thread. */
EVL__PRIVATE void evl__signal_caught(int signum) {
    uint32_t bit = evl__signal_bit(signum);
    int word = evl__signal_word(signum);
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

/* A signal the backend learned of itself, on the loop's thread, while it waited. */
EVL__PRIVATE void evl__signal_raised(evl_loop *loop, int signum) {
    EVL__FETCH_OR(&loop->sig_pending[evl__signal_word(signum)], evl__signal_bit(signum));
    loop->woken = 1;
}

EVL__PRIVATE void evl__signals_unlist(evl_loop *loop) {
    evl_loop **p = &evl__signals.loops;
    while (*p != loop) p = &(*p)->sig_next;
    EVL__STORE(p, loop->sig_next);
    loop->sig_listed = 0;
    while (EVL__LOAD(&evl__signals.handlers_running)) evl__os_yield();
}

EVL__PRIVATE EVL__COLD int evl__signals_listed(const evl_loop *loop) {
    const evl_loop *l;
    evl__signals_lock();
    for (l = evl__signals.loops; l && l != loop; l = l->sig_next) {
    }
    evl__signals_unlock();
    return l != NULL;
}

/* The loop's side of watching signum, under the lock: the backend reports it, or the handler
   catches it for this loop.  Returns whether the handler does (1), or -errno.  A loop that watches
   any signal is on the list, also when its backend reports them all (the handler then finds no
   bit of its own there): that is what lets evl_init refuse such a loop while it is live. */
EVL__PRIVATE EVL__COLD int evl__signal_loop_add(evl_loop *loop, int signum) {
    int rc;
    if (loop->sig_users[signum]++ > 0) return !evl__signal_in(loop->sig_recorded, signum);
    /* A delivery caught before the last watcher stopped, and not handled then, belongs to no one:
       a watcher starting now must not be called for it. */
    EVL__FETCH_AND(&loop->sig_pending[evl__signal_word(signum)], ~evl__signal_bit(signum));
    rc = evl__backend_signal_start(loop, signum);
    if (rc < 0) {
        loop->sig_users[signum]--;
        return rc;
    }
    if (rc != EVL__USE_HANDLER) loop->sig_recorded[evl__signal_word(signum)] |= evl__signal_bit(signum);
    else EVL__FETCH_OR(&loop->sig_watched[evl__signal_word(signum)], evl__signal_bit(signum));
    if (!loop->sig_listed) {
        loop->sig_next = evl__signals.loops;
        EVL__STORE(&evl__signals.loops, loop);
        loop->sig_listed = 1;
    }
    return rc != EVL__USE_HANDLER ? 0 : 1;
}

EVL__PRIVATE EVL__COLD void evl__signal_loop_remove(evl_loop *loop, int signum) {
    if (--loop->sig_users[signum] > 0) return;
    if (evl__signal_in(loop->sig_recorded, signum)) {
        loop->sig_recorded[evl__signal_word(signum)] &= ~evl__signal_bit(signum);
        evl__backend_signal_stop(loop, signum);
    } else {
        EVL__FETCH_AND(&loop->sig_watched[evl__signal_word(signum)], ~evl__signal_bit(signum));
    }
    if (!(EVL__LOAD(&loop->sig_watched[0]) | EVL__LOAD(&loop->sig_watched[1]) | loop->sig_recorded[0] |
          loop->sig_recorded[1]))
        evl__signals_unlist(loop);
}

EVL__PRIVATE EVL__COLD int evl__signal_acquire(evl_loop *loop, int signum) {
    int rc;
    evl__signals_lock();
    rc = evl__signal_loop_add(loop, signum);
    /* The disposition changes after the loop is listed, so no signal caught after this returns is
       lost. */
    if (rc >= 0 && evl__signals.users[signum]++ == 0 && (rc = evl__os_signal_catch(signum, rc)) < 0) {
        evl__signals.users[signum]--;
        evl__signal_loop_remove(loop, signum);
    }
    evl__signals_unlock();
    evl__os_signals_changed(loop);
    return rc < 0 ? rc : 0;
}

EVL__PRIVATE EVL__COLD void evl__signal_release(evl_loop *loop, int signum) {
    evl__signals_lock();
    evl__signal_loop_remove(loop, signum);
    if (--evl__signals.users[signum] == 0) evl__os_signal_restore(signum);
    evl__signals_unlock();
    evl__os_signals_changed(loop);
}

EVLOOP_API void evl_signal_init(evl_signal *s, evl_signal_cb cb, int signum) {
    if (!s) return;
    memset(s, 0, sizeof *s);
    s->cb = cb;
    s->signum = signum;
    s->kind = EVL__KIND_SIGNAL;
}

/* What was caught of signum before a new watcher starts is owed to the watchers already active:
   they get it, the new one does not. */
EVL__PRIVATE EVL__COLD void evl__settle_caught_signal(evl_loop *loop, int signum) {
    uint32_t bit = evl__signal_bit(signum);
    evl__node *n;
    if (!(EVL__FETCH_AND(&loop->sig_pending[evl__signal_word(signum)], ~bit) & bit)) return;
    for (n = loop->signals.next; n != &loop->signals; n = n->next)
        if (EVL__CONTAINER(n, evl_signal, link)->signum == signum) EVL__CONTAINER(n, evl_signal, link)->pending = 1;
    loop->signals_due = 1;
    if (loop->child_watchers_by_signal && signum == evl__os_sigchld()) loop->children_due = 1;
}

EVLOOP_API EVL__COLD int evl_signal_start(evl_loop *loop, evl_signal *s) {
    int rc;
    EVL__REFUSE_BAD_START(loop, s, EVL__KIND_SIGNAL);
    if (evl__initialised_while_active(&loop->signals, &s->link)) return -EALREADY;
    if (s->signum < 1 || s->signum > EVL__MAX_SIGNAL || !evl__os_signal_valid(s->signum)) return -EINVAL;
    evl__settle_caught_signal(loop, s->signum);
    rc = evl__signal_acquire(loop, s->signum);
    if (rc < 0) return rc;
    s->pending = 0;
    s->loop_tag = loop->tag;
    evl__activate(loop, &s->link, &loop->signals);
    return 0;
}

EVLOOP_API void evl_signal_stop(evl_loop *loop, evl_signal *s) {
    if (!s || !evl__stop_applies(loop, &s->link, s->loop_tag)) return;
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

EVLOOP_API EVL__COLD int evl_child_start(evl_loop *loop, evl_child *c) {
    int rc;
    EVL__REFUSE_BAD_START(loop, c, EVL__KIND_CHILD);
    if (evl__initialised_while_active(&loop->children, &c->link)) return -EALREADY;
    rc = evl__os_child_check(c->pid);
    if (rc < 0) return rc;
    rc = evl__backend_child_start(loop, c);
    if (rc < 0) return rc;
    c->by_signal = rc == EVL__USE_SIGCHLD;
    if (c->by_signal) {
        if (loop->child_watchers_by_signal == 0 && (rc = evl__signal_acquire(loop, evl__os_sigchld())) < 0)
            return rc;
        loop->child_watchers_by_signal++;
        /* The process may have exited before SIGCHLD was caught: look once. */
        loop->children_due = 1;
    }
    c->loop_tag = loop->tag;
    evl__activate(loop, &c->link, &loop->children);
    return 0;
}

EVLOOP_API void evl_child_stop(evl_loop *loop, evl_child *c) {
    if (!c || !evl__stop_applies(loop, &c->link, c->loop_tag)) return;
    evl__deactivate(loop, &c->link);
    if (c->by_signal) {
        if (--loop->child_watchers_by_signal == 0) evl__signal_release(loop, evl__os_sigchld());
    } else {
        evl__backend_child_stop(loop, c);
    }
}

/* The watcher is stopped before its callback, so that the callback may free or restart it. */
EVL__PRIVATE void evl__child_exited(evl_loop *loop, evl_child *c, int status) {
    evl_child_stop(loop, c);
    c->cb(loop, c, status);
}

/* Through SIGCHLD: only this pid is waited for, never another child of the program. */
EVL__PRIVATE void evl__child_reap(evl_loop *loop, evl_child *c) {
    int status = -1;
    int rc = evl__os_child_wait(c->pid, &status);
    if (rc == 0) return;
    evl__child_exited(loop, c, rc < 0 ? -1 : status);   /* -1: reaped by someone else */
}

#if EVLOOP_HAS_FILE_OPS
/* ---- Operations ---------------------------------------------------------------------------------
   An operation is new from its start until the loop's next submission (just before it waits), so
   that one iteration's operations reach the kernel together.  It then goes to the backend
   (io_uring), or to the workers' queue, or runs inline; once finished it waits on ops_done for the
   iteration's callback phase.  It is on the loop's list of operations (link) the whole time: that
   is what evl_run counts and what evl_deinit walks.  state is written by the loop's thread only; a
   worker touches an operation only between taking it off the queue and putting it on the finished
   list, both under the workers' lock. */

enum { EVL__OP_IDLE, EVL__OP_NEW, EVL__OP_IN_BACKEND, EVL__OP_QUEUED, EVL__OP_DONE };

#ifndef IOV_MAX
#define IOV_MAX 1024                        /* POSIX's minimum is 16; every kernel here takes 1024 */
#endif

EVL__PRIVATE evl_op *evl__op_of(evl__node *queue) { return EVL__CONTAINER(queue, evl_op, queue); }

EVLOOP_API void evl_op_init(evl_op *op, evl_op_cb cb) {
    if (!op) return;
    memset(op, 0, sizeof *op);
    op->cb = cb;
    op->fd = -1;
    op->kind = EVL__KIND_OP;
}

EVLOOP_API int evl_op_active(const evl_op *op) { return op && evl__linked(&op->link); }

/* What every start checks before it writes into op. */
EVL__PRIVATE int evl__op_refused(evl_loop *loop, evl_op *op) {
    EVL__REFUSE_BAD_START(loop, op, EVL__KIND_OP);
    return evl__initialised_while_active(&loop->ops, &op->link) ? -EALREADY : 0;
}

EVL__PRIVATE int evl__op_queue(evl_loop *loop, evl_op *op, unsigned char code) {
    op->code = code;
    op->result = 0;
    op->state = EVL__OP_NEW;
    op->loop_tag = loop->tag;
    evl__activate(loop, &op->link, &loop->ops);
    evl__insert_before(&op->queue, &loop->ops_new);
    return 0;
}

EVL__PRIVATE void evl__op_done(evl_loop *loop, evl_op *op, ssize_t result) {
    op->result = result;
    op->state = EVL__OP_DONE;
    evl__insert_before(&op->queue, &loop->ops_done);
}

EVL__PRIVATE void evl__op_finished(evl_loop *loop, evl_op *op, ssize_t result) {
    loop->ops_engine_full = 0;                  /* room again for what waits on ops_new */
    evl__op_done(loop, op, result);
}

EVL__PRIVATE int evl__op_target(evl_loop *loop, evl_op *op, int fd, void *addr, size_t len, int64_t offset) {
    int rc = evl__op_refused(loop, op);
    if (rc < 0) return rc;
    if (len > (size_t)SSIZE_MAX || offset < EVL_OP_CURRENT) return -EINVAL;
    op->fd = fd;
    op->addr = addr;
    op->len = len;
    op->offset = offset;
    op->out = NULL;
    return 0;
}

EVLOOP_API int evl_op_read(evl_loop *loop, evl_op *op, int fd, void *buf, size_t len, int64_t offset) {
    int rc = evl__op_target(loop, op, fd, buf, len, offset);
    return rc < 0 ? rc : evl__op_queue(loop, op, EVL__DO_READ);
}

EVLOOP_API int evl_op_write(evl_loop *loop, evl_op *op, int fd, const void *buf, size_t len, int64_t offset) {
    int rc = evl__op_target(loop, op, fd, (void *)(uintptr_t)buf, len, offset);
    return rc < 0 ? rc : evl__op_queue(loop, op, EVL__DO_WRITE);
}

EVL__PRIVATE int evl__op_vector(evl_loop *loop, evl_op *op, int fd, const evl_iovec *iov, int iovcnt,
                                int64_t offset, unsigned char code) {
    int rc = evl__op_target(loop, op, fd, (void *)(uintptr_t)iov, (size_t)(iovcnt < 0 ? 0 : iovcnt), offset);
    if (rc < 0) return rc;
    if (iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt > 0)) return -EINVAL;
    return evl__op_queue(loop, op, code);
}

EVLOOP_API int evl_op_readv(evl_loop *loop, evl_op *op, int fd, const evl_iovec *iov, int iovcnt, int64_t offset) {
    return evl__op_vector(loop, op, fd, iov, iovcnt, offset, EVL__DO_READV);
}

EVLOOP_API int evl_op_writev(evl_loop *loop, evl_op *op, int fd, const evl_iovec *iov, int iovcnt, int64_t offset) {
    return evl__op_vector(loop, op, fd, iov, iovcnt, offset, EVL__DO_WRITEV);
}

EVLOOP_API int evl_op_fsync(evl_loop *loop, evl_op *op, int fd) {
    int rc = evl__op_target(loop, op, fd, NULL, 0, 0);
    return rc < 0 ? rc : evl__op_queue(loop, op, EVL__DO_FSYNC);
}

EVLOOP_API int evl_op_fdatasync(evl_loop *loop, evl_op *op, int fd) {
    int rc = evl__op_target(loop, op, fd, NULL, 0, 0);
    return rc < 0 ? rc : evl__op_queue(loop, op, EVL__DO_FDATASYNC);
}

EVLOOP_API int evl_op_close(evl_loop *loop, evl_op *op, int fd) {
    int rc = evl__op_target(loop, op, fd, NULL, 0, 0);
    return rc < 0 ? rc : evl__op_queue(loop, op, EVL__DO_CLOSE);
}

EVLOOP_API int evl_op_fstat(evl_loop *loop, evl_op *op, int fd, struct stat *out) {
    int rc = evl__op_target(loop, op, fd, NULL, 0, 0);
    if (rc < 0) return rc;
    if (!out) return -EINVAL;
    op->out = out;
    return evl__op_queue(loop, op, EVL__DO_FSTAT);
}

EVLOOP_API int evl_op_openat(evl_loop *loop, evl_op *op, int dirfd, const char *path, int flags, unsigned mode) {
    int rc = evl__op_target(loop, op, dirfd, (void *)(uintptr_t)path, 0, 0);
    if (rc < 0) return rc;
    if (!path) return -EINVAL;
    op->flags = flags;
    op->mode = mode;
    return evl__op_queue(loop, op, EVL__DO_OPENAT);
}

#if EVLOOP_HAS_STATX
EVLOOP_API int evl_op_statx(evl_loop *loop, evl_op *op, int dirfd, const char *path, int flags, unsigned mask,
                            struct statx *out) {
    int rc = evl__op_target(loop, op, dirfd, (void *)(uintptr_t)path, 0, 0);
    if (rc < 0) return rc;
    if (!path || !out) return -EINVAL;
    op->flags = flags;
    op->mode = mask;
    op->out = out;
    return evl__op_queue(loop, op, EVL__DO_STATX);
}
#endif

EVLOOP_API int evl_op_work(evl_loop *loop, evl_op *op, evl_work_fn fn, void *arg) {
    int rc = evl__op_target(loop, op, -1, arg, 0, 0);
    if (rc < 0) return rc;
    if (!fn) return -EINVAL;
    op->fn = fn;
    return evl__op_queue(loop, op, EVL__DO_WORK);
}

/* ---- Operations: worker threads ----------------------------------------------------------------
   The workers take operations from the queue in order and put them on the finished list, then
   wake the loop, which moves them to ops_done.  Stopping lets each finish what it runs. */

EVL__PRIVATE void *evl__worker_main(void *arg) {
    evl_worker *self = (evl_worker *)arg;
    evl_loop *loop = self->loop;
    evl__workers *ws = &loop->workers;
    evl__os_thread_setup();
    evl__os_lock(&ws->lock);
    for (;;) {
        evl_op *op;
        while (!ws->stopping && evl__list_empty(&ws->queue)) evl__os_cond_wait(&ws->work, &ws->lock);
        if (ws->stopping) break;
        op = evl__op_of(ws->queue.next);
        evl__unlink(&op->queue);
        evl__os_unlock(&ws->lock);
        op->result = evl__os_op_run(op);
        evl__os_lock(&ws->lock);
        evl__insert_before(&op->queue, &ws->finished);
        if (!EVL__XCHG(&ws->finished_sent, 1)) evl__wake(loop);
    }
    evl__os_unlock(&ws->lock);
    return NULL;
}

/* Hands op to the workers, if there are any. */
EVL__PRIVATE int evl__workers_take(evl_loop *loop, evl_op *op) {
    evl__workers *ws = &loop->workers;
    if (ws->count == 0) return 0;
    op->state = EVL__OP_QUEUED;
    evl__os_lock(&ws->lock);
    evl__insert_before(&op->queue, &ws->queue);
    evl__os_cond_signal(&ws->work);                 /* one operation, one worker */
    evl__os_unlock(&ws->lock);
    return 1;
}

/* Takes op back if no worker has taken it yet (cancellation is rare: a walk is fine). */
EVL__PRIVATE EVL__COLD int evl__workers_unqueue(evl_loop *loop, evl_op *op) {
    evl__workers *ws = &loop->workers;
    evl__node *n;
    int found = 0;
    evl__os_lock(&ws->lock);
    for (n = ws->queue.next; n != &ws->queue && !found; n = n->next) found = n == &op->queue;
    if (found) evl__unlink(&op->queue);
    evl__os_unlock(&ws->lock);
    return found;
}

/* The operations the workers finished since the last look: their callbacks are due. */
EVL__PRIVATE void evl__workers_collect(evl_loop *loop) {
    evl__workers *ws = &loop->workers;
    if (ws->count == 0 || !EVL__XCHG(&ws->finished_sent, 0)) return;
    evl__os_lock(&ws->lock);
    while (!evl__list_empty(&ws->finished)) {
        evl_op *op = evl__op_of(ws->finished.next);
        evl__unlink(&op->queue);
        evl__op_done(loop, op, op->result);
    }
    evl__os_unlock(&ws->lock);
}

EVLOOP_API EVL__COLD void evl_workers_stop(evl_loop *loop) {
    evl__workers *ws;
    unsigned i;
    if (!evl__loop_ok(loop) || loop->workers.count == 0) return;
    ws = &loop->workers;
    evl__os_lock(&ws->lock);
    ws->stopping = 1;
    evl__os_cond_broadcast(&ws->work);
    evl__os_unlock(&ws->lock);
    for (i = 0; i < ws->count; i++)
        if (ws->threads[i].started) evl__os_thread_join(ws->threads[i].thread);
    EVL__STORE(&ws->finished_sent, 1);
    evl__workers_collect(loop);
    while (!evl__list_empty(&ws->queue)) {
        evl_op *op = evl__op_of(ws->queue.next);
        evl__unlink(&op->queue);
        evl__op_done(loop, op, -ECANCELED);
    }
    evl__os_lock_destroy(&ws->lock, &ws->work);
    ws->count = 0;
    ws->threads = NULL;
}

EVLOOP_API EVL__COLD int evl_workers_start(evl_loop *loop, evl_worker *workers, unsigned count) {
    evl__workers *ws;
    unsigned i;
    int rc;
    if (!evl__loop_ok(loop) || !workers || count == 0) return -EINVAL;
    ws = &loop->workers;
    if (ws->count) return -EALREADY;
    if ((rc = evl__os_lock_init(&ws->lock, &ws->work)) < 0) return rc;
    ws->stopping = 0;
    EVL__STORE(&ws->finished_sent, 0);
    ws->threads = workers;
    ws->count = count;
    for (i = 0; i < count; i++) workers[i].started = 0;
    for (i = 0; i < count; i++) {
        workers[i].loop = loop;
        if ((rc = evl__os_thread_start(&workers[i].thread, evl__worker_main, &workers[i])) < 0) {
            evl_workers_stop(loop);
            return rc;
        }
        workers[i].started = 1;
    }
    return 0;
}

/* ---- Operations: submitting, completing, cancelling -------------------------------------------- */

/* To the backend, the workers, or inline.  Returns 0, or EVL__OP_FULL to try again later. */
EVL__PRIVATE int evl__op_hand_over(evl_loop *loop, evl_op *op) {
#if defined(EVL__BACKEND_HAS_OPS)
    int rc = evl__backend_op_submit(loop, op);
    if (rc == 0) {
        op->state = EVL__OP_IN_BACKEND;
        return 0;
    }
    if (rc == EVL__OP_FULL) return rc;
#endif
    if (!evl__workers_take(loop, op)) evl__op_done(loop, op, evl__os_op_run(op));
    return 0;
}

/* Just before the loop waits: every operation started since, in order. */
EVL__PRIVATE EVL__NOINLINE void evl__ops_submit(evl_loop *loop) {
    while (!evl__list_empty(&loop->ops_new)) {
        evl_op *op = evl__op_of(loop->ops_new.next);
        evl__unlink(&op->queue);
        if (evl__op_hand_over(loop, op) == EVL__OP_FULL) {
            evl__insert_before(&op->queue, loop->ops_new.next);
            loop->ops_engine_full = 1;
            break;
        }
    }
#if defined(EVL__BACKEND_HAS_OPS)
    evl__backend_op_flush(loop);
#endif
}

static inline void evl__ops_submit_new(evl_loop *loop) {
    if (!evl__list_empty(&loop->ops_new) && !loop->ops_engine_full) evl__ops_submit(loop);
#if defined(EVL__BACKEND_HAS_OPS)
    else evl__backend_op_flush(loop);           /* what the kernel did not take last time */
#endif
}

/* The callbacks of the operations finished when the phase began; those finishing meanwhile (a
   callback cancels one that was not yet submitted) wait for the next iteration. */
EVL__PRIVATE EVL__NOINLINE void evl__run_ops_done(evl_loop *loop) {
    evl__node *last = evl__prev(&loop->ops_done), *n;
    do {
        evl_op *op = evl__op_of(n = loop->ops_done.next);
        evl__unlink(n);
        op->state = EVL__OP_IDLE;
        evl__deactivate(loop, &op->link);
        op->cb(loop, op, op->result);
    } while (n != last && !evl__stopping(loop));
}

static inline int evl__ops_pending(const evl_loop *loop) {
    return !evl__list_empty(&loop->ops_done) || (!evl__list_empty(&loop->ops_new) && !loop->ops_engine_full)
#if defined(EVL__BACKEND_HAS_OPS)
           || evl__backend_op_unsubmitted(loop)
#endif
        ;
}

EVLOOP_API int evl_op_cancel(evl_loop *loop, evl_op *op) {
    if (!op || op->kind != EVL__KIND_OP || !evl__linked(&op->link)) return -EINVAL;
    if (!evl__loop_ok(loop) || op->loop_tag != loop->tag) return -EINVAL;
    switch (op->state) {
    case EVL__OP_NEW:
        evl__unlink(&op->queue);
        evl__op_done(loop, op, -ECANCELED);
        return 0;
#if defined(EVL__BACKEND_HAS_OPS)
    case EVL__OP_IN_BACKEND: evl__backend_op_cancel(loop, op); return 0;
#endif
    case EVL__OP_QUEUED:
        if (!evl__workers_unqueue(loop, op)) return -EALREADY;     /* a worker runs it */
        evl__op_done(loop, op, -ECANCELED);
        return 0;
    default: return -EALREADY;
    }
}

EVLOOP_API const char *evl_op_engine(const evl_loop *loop) {
    if (!evl__loop_ok(loop)) return "inline";
#if defined(EVL__BACKEND_HAS_OPS)
    if (evl__backend_op_would_take(loop)) return evl__backend_op_engine();
#endif
    return loop->workers.count ? "workers" : "inline";
}

EVL__PRIVATE void evl__ops_init(evl_loop *loop) {
    evl__list_init(&loop->ops);
    evl__list_init(&loop->ops_new);
    evl__list_init(&loop->ops_done);
    evl__list_init(&loop->workers.queue);
    evl__list_init(&loop->workers.finished);
}

EVL__PRIVATE void evl__op_discard(evl_op *op, ssize_t result) {
    if (op->code != EVL__DO_OPENAT || result < 0) return;
    op->code = EVL__DO_CLOSE;                   /* the operation is over: it may run as the close */
    op->fd = (int)result;
    (void)evl__os_op_run(op);
}

EVL__PRIVATE void evl__forget_op(evl_loop *loop, evl__node *n) {
    evl_op *op = EVL__CONTAINER(n, evl_op, link);
    (void)loop;
    if (op->state == EVL__OP_DONE) evl__op_discard(op, op->result);
    op->queue.next = NULL;
    op->state = EVL__OP_IDLE;
}

/* evl_deinit: nothing may touch an operation's memory, nor its buffer, once it returns, and no
   callback runs.  In a child made by fork() the workers and the ring's operations are the
   parent's: they are only forgotten. */
EVL__PRIVATE EVL__COLD void evl__ops_abandon(evl_loop *loop) {
    if (loop->owner == evl__os_process_id()) {
        evl__node *n;
        size_t k, count;
        evl_workers_stop(loop);
#if defined(EVL__BACKEND_HAS_OPS)
        count = evl__list_length_checked(&loop->ops);
        for (n = loop->ops.next, k = 0; k < count; k++, n = n->next)
            if (EVL__CONTAINER(n, evl_op, link)->state == EVL__OP_IN_BACKEND)
                evl__backend_op_cancel(loop, EVL__CONTAINER(n, evl_op, link));
        evl__backend_ops_drain(loop);
#else
        (void)n, (void)k, (void)count;
#endif
    }
    loop->workers.count = 0;
    evl__detach_all(loop, &loop->ops, evl__forget_op);
    evl__ops_init(loop);
}
#else
static inline void evl__ops_submit_new(evl_loop *loop) { (void)loop; }
static inline int evl__ops_pending(const evl_loop *loop) { (void)loop; return 0; }
#endif /* EVLOOP_HAS_FILE_OPS */

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
    loop->last_batch = i < loop->ready_count ? i + 1 : loop->ready_count;
    loop->ready_count = 0;
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

/* Turns the signals caught (by the handler or the backend) into pending flags on this loop's watchers. */
EVL__PRIVATE EVL__NOINLINE void evl__take_caught_signals(evl_loop *loop) {
    uint32_t caught[2];
    evl__node *n;
    caught[0] = EVL__XCHG(&loop->sig_pending[0], 0u);
    caught[1] = EVL__XCHG(&loop->sig_pending[1], 0u);
    if (!(caught[0] | caught[1])) return;
    for (n = loop->signals.next; n != &loop->signals; n = n->next) {
        evl_signal *s = EVL__CONTAINER(n, evl_signal, link);
        if (evl__signal_in(caught, s->signum)) s->pending = loop->signals_due = 1;
    }
    if (loop->child_watchers_by_signal && evl__signal_in(caught, evl__os_sigchld()))
        loop->children_due = 1;
}

/* Walks a list whose work was announced by *due.  The flag is cleared before the walk, so that
   work a callback announces during it (a start that settles caught signals, a child watcher that
   must look once) is done in the next pass, and set again if evl_stop cut the walk short, so that
   the rest is resumed.  Returns 0 when cut short. */
EVL__PRIVATE int evl__walk_due(evl_loop *loop, unsigned char *due, evl__node *head,
                               void (*visit)(evl_loop *, evl__node *)) {
    if (!*due) return 1;
    *due = 0;
    if (evl__walk(loop, head, visit)) return 1;
    *due = 1;
    return 0;
}

/* Work announced through the wake-up: signals, children watched through SIGCHLD, asyncs. */
EVL__PRIVATE void evl__run_woken(evl_loop *loop) {
    if (loop->woken) {
        loop->woken = 0;
        evl__take_caught_signals(loop);
        if (EVL__XCHG(&loop->async_sent, 0)) loop->asyncs_due = 1;
#if EVLOOP_HAS_FILE_OPS
        evl__workers_collect(loop);
#endif
    }
    if (evl__walk_due(loop, &loop->signals_due, &loop->signals, evl__visit_signal) &&
        evl__walk_due(loop, &loop->children_due, &loop->children, evl__visit_child))
        evl__walk_due(loop, &loop->asyncs_due, &loop->asyncs, evl__visit_async);
}

EVL__PRIVATE int evl__has_pending_work(const evl_loop *loop) {
    return loop->woken || loop->signals_due || loop->children_due || loop->asyncs_due ||
           !evl__list_empty(&loop->files) || !evl__list_empty(&loop->wheel.due) ||
           (evl__has_fibers(loop) && evl__fibers_pending(loop)) || evl__ops_pending(loop);
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

/* ---- Loop ------------------------------------------------------------------------------------ */

EVLOOP_API const char *evl_backend_name(void) { return evl__backend_name(); }

EVLOOP_API int evl_backend_fd(const evl_loop *loop) { return evl__loop_ok(loop) ? evl__backend_fd(loop) : -1; }

/* Tags tell the loops of a process apart, 1 to 255 and round again: a watcher stopped with another
   loop than its own is recognised unless 255 loops were made in between. */
static unsigned evl__loops_made;

EVLOOP_API EVL__COLD int evl_init(evl_loop *loop) {
    int rc;
    if (!loop) return -EINVAL;
    /* A live loop that watches signals is on the process-wide list: wiping it would corrupt the
       list.  (The struct itself cannot be read: a new loop's memory holds anything.) */
    if (evl__signals_listed(loop)) return -EBUSY;
    memset(loop, 0, sizeof *loop);
    loop->owner = evl__os_process_id();
    loop->tag = (unsigned char)(EVL__FETCH_ADD(&evl__loops_made, 1u) % 255u + 1u);
    evl__list_init(&loop->ios);
    evl__list_init(&loop->files);
    evl__list_init(&loop->prepares);
    evl__list_init(&loop->checks);
    evl__list_init(&loop->asyncs);
    evl__list_init(&loop->signals);
    evl__list_init(&loop->children);
    evl__fibers_init(loop);
#if EVLOOP_HAS_FILE_OPS
    evl__ops_init(loop);
#endif
    loop->now = evl__clock_now();
    evl__wheel_init(&loop->wheel, loop->now);
    rc = evl__backend_init(loop);
    if (rc < 0) return rc;
    loop->magic = EVL__LOOP_MAGIC;
    return 0;
}

EVL__PRIVATE void evl__release_signal_of(evl_loop *loop, evl__node *n) {
    evl__signal_release(loop, EVL__CONTAINER(n, evl_signal, link)->signum);
}

EVL__PRIVATE void evl__release_child_of(evl_loop *loop, evl__node *n) {
    evl_child *c = EVL__CONTAINER(n, evl_child, link);
    if (!c->by_signal) evl__backend_child_stop(loop, c);
}

EVL__PRIVATE void evl__release_async_of(evl_loop *loop, evl__node *n) {
    (void)loop;
    EVL__STORE(&EVL__CONTAINER(n, evl_async, link)->loop, (evl_loop *)NULL);
}

EVLOOP_API EVL__COLD void evl_deinit(evl_loop *loop) {
    if (!evl__loop_ok(loop)) return;
    /* In a child made by fork(), a loop that was running (in the forking callback, or on another
       of the parent's threads) is not running here: the child may deinit it. */
    if (loop->running && loop->owner == evl__os_process_id()) {
        EVLOOP_ASSERT(!loop->running);
        return;
    }
    /* Signals first: their handler may write to the wake-up descriptor until they are released. */
    evl__detach_all(loop, &loop->signals, evl__release_signal_of);
    if (loop->child_watchers_by_signal) evl__signal_release(loop, evl__os_sigchld());
    /* The backend closes its descriptors without changing kernel state that a forked parent may
       share (no EPOLL_CTL_DEL); the watchers' own resources go after it, on the same rule.
       Operations before it, since the ring's must be waited for, and before the fibers, whose
       stacks may hold some. */
#if EVLOOP_HAS_FILE_OPS
    evl__ops_abandon(loop);
#endif
    evl__backend_deinit(loop);
    evl__abandon_fibers(loop);
    evl__detach_all(loop, &loop->children, evl__release_child_of);
    evl__detach_all(loop, &loop->asyncs, evl__release_async_of);
    evl__detach_all(loop, &loop->ios, NULL);
    evl__detach_all(loop, &loop->files, NULL);
    evl__detach_all(loop, &loop->prepares, NULL);
    evl__detach_all(loop, &loop->checks, NULL);
    evl__wheel_detach_all(loop);
    loop->refs = 0;
    loop->magic = 0;
}

EVLOOP_API void evl_stop(evl_loop *loop) {
    if (!evl__loop_ok(loop)) return;
    EVL__STORE(&loop->stop, 1);
    evl__wake(loop);
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
    if (loop->sig_listed) evl__os_signals_changed(loop);    /* this thread's mask may differ */
    /* A finite run needs the clock now; a single pass or an endless run read it after the wait. */
    if (duration == 0 || duration == EVL_FOREVER) loop->run_end = duration;
    else loop->run_end = evl__add_sat(evl_now_update(loop), duration);
    /* Each phase returns early once evl_stop is called; the loop then leaves after it. */
    for (;;) {
        int count;
        if (evl__has_fibers(loop)) evl__admit_new_fibers(loop);
        evl__walk(loop, &loop->prepares, evl__visit_hook);
        if (evl__stopping(loop)) break;
        evl__ops_submit_new(loop);
        count = evl__backend_wait(loop, evl__poll_timeout(loop), loop->ready, EVLOOP_MAX_EVENTS);
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
#if EVLOOP_HAS_FILE_OPS
        if (!evl__list_empty(&loop->ops_done)) {
            evl__run_ops_done(loop);
            if (evl__stopping(loop)) break;
        }
#endif
        if (evl__has_fibers(loop)) {
            evl__run_fibers(loop);
            if (evl__stopping(loop)) break;
        }
        evl__walk(loop, &loop->checks, evl__visit_hook);
        if (evl__stopping(loop) || loop->refs == 0 || loop->now >= loop->run_end) break;
    }
    loop->ready_count = 0;                      /* what is left of an interrupted batch comes again */
    loop->running = 0;
    EVL__STORE(&loop->stop, 0);
    return result < 0 ? result : (int)loop->refs;
}

#if EVLOOP_HAS_FIBERS
/* ---- Fibers: scheduling -----------------------------------------------------------------------
   A fiber runs until it waits.  Then the next ready fiber runs, switched to directly, until the
   iteration's budget of resumes is spent or none is ready; only then does evl_run's own stack
   resume and the loop poll again.  So a yield costs one context switch and no system call, and
   io and timers wait at most EVL__FIBER_BATCH resumes.  Every context that resumes first
   releases the fiber that finished just before it, if any: a finished fiber cannot unmap the
   stack it is still running on. */

#define EVL__FIBER_BATCH 128u
#define EVL__FIBER_DEFAULT_STACK ((size_t)64 * 1024)
#define EVL__FIBER_MIN_STACK ((size_t)4096)

#if defined(__cplusplus) && __cplusplus >= 201103L
#define EVL__THREAD_LOCAL thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define EVL__THREAD_LOCAL _Thread_local
#else
#define EVL__THREAD_LOCAL __thread
#endif

enum { EVL__FIBER_NEW = 1, EVL__FIBER_READY, EVL__FIBER_RUNNING, EVL__FIBER_WAITING, EVL__FIBER_DONE };
enum { EVL__WAIT_NONE, EVL__WAIT_IO, EVL__WAIT_SLEEP, EVL__WAIT_CHAN, EVL__WAIT_JOIN, EVL__WAIT_OP };

static EVL__THREAD_LOCAL evl_fiber *evl__fiber_current;

EVL__PRIVATE evl_fiber *evl__fiber_of(evl__node *queue) { return EVL__CONTAINER(queue, evl_fiber, queue); }

/* Undoes whatever the fiber was waiting on: its io watcher (and descriptor duplicate), its timer,
   its place in a queue. */
EVL__PRIVATE EVL__NOINLINE void evl__fiber_end_wait(evl_fiber *f) {
    if (evl__linked(&f->io.link)) evl_io_stop(f->loop, &f->io);
    if (!evl__fd_invalid(f->dup_fd)) {
        evl__os_close(f->dup_fd);
        f->dup_fd = EVL_INVALID_FD;
    }
    evl_timer_stop(f->loop, &f->timer);
    if (evl__linked(&f->queue)) evl__unlink(&f->queue);
    f->waiting = EVL__WAIT_NONE;
}

/* Makes a waiting fiber ready to run; the wait it is in returns result. */
EVL__PRIVATE EVL__NOINLINE void evl__fiber_wake(evl_fiber *f, int result) {
    if (f->state != EVL__FIBER_WAITING) return;
    evl__fiber_end_wait(f);
    f->result = result;
    f->state = EVL__FIBER_READY;
    evl__insert_before(&f->queue, &f->loop->fibers_ready);
}

/* Wakes every fiber waiting in a queue (a channel's side, a fiber's joiners) with result. */
EVL__PRIVATE void evl__fiber_wake_all(evl__node *waiters, int result) {
    while (!evl__list_empty(waiters)) evl__fiber_wake(evl__fiber_of(waiters->next), result);
}

EVL__PRIVATE void evl__fiber_io_ready(evl_loop *loop, evl_io *io, unsigned revents) {
    (void)loop;
    evl__fiber_wake(EVL__CONTAINER(io, evl_fiber, io), (int)revents);
}

/* A wait's timeout.  Timers run before the io events of a pass, so a short timeout can expire
   before the loop has looked at a descriptor that was ready all along: one look tells, and a
   ready descriptor is reported ready rather than timed out. */
EVL__PRIVATE void evl__fiber_timer_fired(evl_loop *loop, evl_timer *t) {
    evl_fiber *f = EVL__CONTAINER(t, evl_fiber, timer);
    int ready = f->waiting == EVL__WAIT_IO ? evl__os_poll(f->io.fd, f->io.events) : 0;
    (void)loop;
    if (ready > 0) evl__fiber_wake(f, ready);
    else evl__fiber_wake(f, f->waiting == EVL__WAIT_SLEEP ? 0 : -ETIMEDOUT);
}

static inline int evl__is_fiber_timer(const evl_timer *t) { return t->cb == evl__fiber_timer_fired; }

/* Frees what a fiber holds once nothing will run on its stack again. */
EVL__PRIVATE void evl__fiber_release(evl_fiber *f) {
    evl__ctx_release(&f->ctx);
    if (f->stack_mapped) evl__os_stack_unmap(f->ctx.stack_lo, f->ctx.stack_size);
    f->stack_mapped = 0;
    f->state = EVL__FIBER_DONE;
}

EVL__PRIVATE EVL__NOINLINE void evl__fiber_reap_finished(evl_loop *loop) {
    evl_fiber *f = loop->fiber_finished;
    loop->fiber_finished = NULL;
    evl__deactivate(loop, &f->link);
    evl__fiber_release(f);
    /* Its done callback runs later on the loop's stack: this may be another fiber's. */
    if (f->done_cb) evl__insert_before(&f->link, &loop->fibers_done);
    else loop->fibers_live--;
}

/* Runs after every resume, so the test is inline and the work is not. */
static inline void evl__fiber_reap(evl_loop *loop) {
    if (loop->fiber_finished) evl__fiber_reap_finished(loop);
}

/* The done callbacks of fibers released in this iteration; evl_stop leaves the rest for the next. */
EVL__PRIVATE void evl__call_fiber_done(evl_loop *loop) {
    while (!evl__list_empty(&loop->fibers_done) && !evl__stopping(loop)) {
        evl_fiber *f = EVL__CONTAINER(loop->fibers_done.next, evl_fiber, link);
        evl__unlink(&f->link);
        loop->fibers_live--;
        f->done_cb(loop, f);
    }
}

/* The next fiber to resume in this iteration, or NULL to return to the loop. */
EVL__PRIVATE evl_fiber *evl__fiber_next(evl_loop *loop) {
    evl__node *n = loop->fibers_ready.next;
    if (n == &loop->fibers_ready || loop->fiber_budget == 0 || evl__stopping(loop)) return NULL;
    loop->fiber_budget--;
    evl__unlink(n);
    evl__fiber_of(n)->state = EVL__FIBER_RUNNING;
    return evl__fiber_of(n);
}

/* The running fiber f stops running: for good if it finished, else until it is resumed. */
EVL__PRIVATE void evl__fiber_switch_away(evl_fiber *f, int finished) {
    evl_loop *loop = f->loop;
    evl_fiber *next = evl__fiber_next(loop);
    evl__ctx *to = next ? &next->ctx : &loop->main_ctx;
    evl__fiber_current = next;
    if (finished) {
        loop->fiber_finished = f;
        evl__ctx_exit(&f->ctx, to);
    }
    if (next == f) return;                      /* a yield with nothing else to run */
    evl__ctx_switch(&f->ctx, to);
    evl__fiber_current = f;
    evl__fiber_reap(loop);
}

EVL__PRIVATE void evl__fiber_entry(void *arg) {
    evl_fiber *f = (evl_fiber *)arg;
    evl__fiber_current = f;
    evl__fiber_reap(f->loop);
    f->fn(f->arg);
    evl__fiber_wake_all(&f->joiners, 0);
    evl__fiber_switch_away(f, 1);
}

/* The iteration's fiber phase: fibers started before it become ready, then they run. */
EVL__PRIVATE void evl__run_fibers(evl_loop *loop) {
    evl_fiber *first;
    loop->fiber_budget = EVL__FIBER_BATCH;
    if ((first = evl__fiber_next(loop)) != NULL) {
        evl__ctx_init_main(&loop->main_ctx);    /* evl_run may be on another thread than last time */
        evl__fiber_current = first;
        evl__ctx_switch(&loop->main_ctx, &first->ctx);
        evl__fiber_current = NULL;
        evl__fiber_reap(loop);
    }
    evl__call_fiber_done(loop);
}

/* Fibers started in one iteration first run in the next: they join the ready queue when it begins. */
EVL__PRIVATE void evl__admit_new_fibers(evl_loop *loop) {
    while (!evl__list_empty(&loop->fibers_new)) {
        evl__node *n = loop->fibers_new.next;
        evl__unlink(n);
        evl__fiber_of(n)->state = EVL__FIBER_READY;
        evl__insert_before(n, &loop->fibers_ready);
    }
}

/* Whether the loop has any fiber business at all: most loops have none, and pay one test. */
static inline int evl__has_fibers(const evl_loop *loop) { return loop->fibers_live != 0; }

EVL__PRIVATE int evl__fibers_pending(const evl_loop *loop) {
    return !evl__list_empty(&loop->fibers_ready) || !evl__list_empty(&loop->fibers_new) ||
           !evl__list_empty(&loop->fibers_done);
}

/* evl_deinit: fibers that have not finished are never resumed; what they hold is released, and
   fibers of other loops that joined them are woken with -ECANCELED. */
EVL__PRIVATE EVL__COLD void evl__abandon_fibers(evl_loop *loop) {
    evl__detach_all(loop, &loop->fibers_done, NULL);   /* finished; their callbacks are not called */
    while (!evl__list_empty(&loop->fibers)) {
        evl_fiber *f = EVL__CONTAINER(loop->fibers.next, evl_fiber, link);
        evl__fiber_end_wait(f);
        evl__fiber_wake_all(&f->joiners, -ECANCELED);
        evl__unlink(&f->link);
        evl__fiber_release(f);
    }
    loop->fibers_live = 0;
}

EVL__PRIVATE void evl__fibers_init(evl_loop *loop) {
    evl__list_init(&loop->fibers);
    evl__list_init(&loop->fibers_ready);
    evl__list_init(&loop->fibers_new);
    evl__list_init(&loop->fibers_done);
}

EVLOOP_API EVL__COLD int evl_fiber_start(evl_loop *loop, evl_fiber *f, void *stack, size_t stack_size, evl_fiber_fn fn,
                               void *arg) {
    int rc;
    if (!evl__loop_ok(loop) || !f || !fn) return -EINVAL;
    memset(f, 0, sizeof *f);
    if (stack) {
        if (stack_size < EVL__FIBER_MIN_STACK) return -EINVAL;
    } else {
        rc = evl__os_stack_map(stack_size ? stack_size : EVL__FIBER_DEFAULT_STACK, &stack, &stack_size);
        if (rc < 0) return rc;
        f->stack_mapped = 1;
    }
    f->fn = fn;
    f->arg = arg;
    f->loop = loop;
    f->dup_fd = EVL_INVALID_FD;
    evl__list_init(&f->joiners);
    evl__io_init_internal(&f->io, evl__fiber_io_ready, EVL_INVALID_FD, 0);
    evl_timer_init(&f->timer, evl__fiber_timer_fired);
    f->timer.link.prev_bits = EVL__UNREF;       /* the fiber is what counts, not its watchers */
    evl__ctx_init(&f->ctx, stack, stack_size, evl__fiber_entry, f);
    f->state = EVL__FIBER_NEW;
    evl__activate(loop, &f->link, &loop->fibers);
    evl__insert_before(&f->queue, &loop->fibers_new);
    loop->fibers_live++;
    return 0;
}

EVLOOP_API evl_fiber *evl_fiber_self(void) { return evl__fiber_current; }

EVLOOP_API evl_loop *evl_fiber_loop(const evl_fiber *f) { return f ? f->loop : NULL; }

EVLOOP_API void evl_fiber_on_done(evl_fiber *f, evl_fiber_done_cb cb) {
    if (f && f->state >= EVL__FIBER_NEW && f->state < EVL__FIBER_DONE) f->done_cb = cb;
}

EVLOOP_API int evl_fiber_done(const evl_fiber *f) { return f && f->state == EVL__FIBER_DONE; }

EVLOOP_API void evl_fiber_cancel(evl_fiber *f) {
    if (!f || f->state < EVL__FIBER_NEW || f->state >= EVL__FIBER_DONE) return;
    if (f->state == EVL__FIBER_WAITING) evl__fiber_wake(f, -ECANCELED);
    else f->cancel = 1;
}

/* ---- Fibers: waiting ------------------------------------------------------------------------- */

/* Takes a pending cancellation instead of waiting. */
EVL__PRIVATE int evl__fiber_canceled(evl_fiber *f) {
    if (!f->cancel) return 0;
    f->cancel = 0;
    return 1;
}

/* The running fiber f waits for what the caller set up (an io watcher, a queue), at most timeout. */
EVL__PRIVATE EVL__NOINLINE int evl__fiber_wait(evl_fiber *f, unsigned char what, evl_time timeout) {
    if (evl__fiber_canceled(f)) {
        evl__fiber_end_wait(f);
        return -ECANCELED;
    }
    if (timeout != EVL_FOREVER) evl_timer_start(f->loop, &f->timer, timeout, 0);
    f->waiting = what;
    f->state = EVL__FIBER_WAITING;
    evl__fiber_switch_away(f, 0);
    return f->result;
}

/* The time left of a call's timeout.  The deadline is fixed at the call's first wait (*deadline
   is 0 until then), so a call that never waits never reads the clock. */
EVL__PRIVATE EVL__NOINLINE evl_time evl__time_left(evl_time timeout, evl_time *deadline) {
    evl_time now;
    if (timeout == 0 || timeout == EVL_FOREVER) return timeout;
    now = evl__clock_now();
    if (*deadline == 0) *deadline = evl__add_sat(now, timeout);
    return *deadline > now ? *deadline - now : 0;
}

EVLOOP_API int evl_wait(evl_fd fd, unsigned events, evl_time timeout) {
    evl_fiber *f = evl__fiber_current;
    unsigned char interest = evl__io_interest(events);
    int rc;
    if (!f) return -EPERM;
    if (interest & EVL__IO_BAD_EVENTS) return -EINVAL;
    if (evl__fd_invalid(fd)) return -EBADF;
    if (evl__fiber_canceled(f)) return -ECANCELED;
    if (timeout == 0) {                         /* a look, no wait */
        rc = evl__os_poll(fd, interest);
        return rc == 0 ? -ETIMEDOUT : rc;
    }
    f->io.fd = fd;
    f->io.events = interest;
    f->io.flags = EVL__IO_INTERNAL;
    rc = evl_io_start(f->loop, &f->io);
    if (rc == -EEXIST) {
        /* One registration per descriptor per loop: a callback's watcher or another fiber has
           this one, so watch a duplicate, which the kernel registers on its own. */
        evl_fd_result copy = evl__os_dup(fd);
        if (copy < 0) return (int)copy;
        f->io.fd = f->dup_fd = (evl_fd)copy;
        rc = evl_io_start(f->loop, &f->io);
    }
    if (rc < 0) {
        evl__fiber_end_wait(f);
        return rc;
    }
    return evl__fiber_wait(f, EVL__WAIT_IO, timeout);
}

EVLOOP_API int evl_sleep(evl_time duration) {
    evl_fiber *f = evl__fiber_current;
    if (!f) return -EPERM;
    return evl__fiber_wait(f, EVL__WAIT_SLEEP, duration);
}

EVLOOP_API int evl_yield(void) {
    evl_fiber *f = evl__fiber_current;
    if (!f) return -EPERM;
    if (evl__fiber_canceled(f)) return -ECANCELED;
    f->state = EVL__FIBER_READY;
    evl__insert_before(&f->queue, &f->loop->fibers_ready);
    evl__fiber_switch_away(f, 0);
    f->state = EVL__FIBER_RUNNING;
    return 0;
}

EVLOOP_API int evl_fiber_join(evl_fiber *target, evl_time timeout) {
    evl_fiber *f = evl__fiber_current;
    if (!f) return -EPERM;
    if (!target || target->state < EVL__FIBER_NEW || target->state > EVL__FIBER_DONE) return -EINVAL;
    if (target == f) return -EDEADLK;
    if (target->state == EVL__FIBER_DONE) return 0;
    if (timeout == 0) return evl__fiber_canceled(f) ? -ECANCELED : -ETIMEDOUT;
    evl__insert_before(&f->queue, &target->joiners);
    return evl__fiber_wait(f, EVL__WAIT_JOIN, timeout);
}

/* ---- Fibers: I/O --------------------------------------------------------------------------------
   A call first tries without waiting, and waits when that would block.  A socket is tried with
   MSG_DONTWAIT, which never blocks whatever its O_NONBLOCK, so it costs no extra system call;
   another descriptor is tried only if it is non-blocking, and a blocking one is waited for first,
   so that the attempt cannot block the loop.  A regular file, which is always "ready" yet blocks
   on the disk, is read and written with file operations at its position instead. */

#if EVLOOP_HAS_FILE_OPS
/* A file operation on the caller's stack, and the fiber waiting for it. */
typedef struct evl__fiber_op {
    evl_op op;
    evl_fiber *fiber;
    int finished;
} evl__fiber_op;

EVL__PRIVATE void evl__fiber_op_done(evl_loop *loop, evl_op *op, ssize_t result) {
    evl__fiber_op *fo = EVL__CONTAINER(op, evl__fiber_op, op);
    (void)loop;
    (void)result;                               /* kept in op->result */
    fo->finished = 1;
    if (fo->fiber->waiting == EVL__WAIT_OP) evl__fiber_wake(fo->fiber, 0);
}

/* The operation's buffer is the caller's: a timeout or a cancellation cancels the operation, and
   the fiber goes on waiting until it has finished.  Its result wins unless it was cancelled. */
EVL__PRIVATE EVL__NOINLINE ssize_t evl__fiber_op_wait(evl_fiber *f, evl__fiber_op *fo, evl_time timeout) {
    int rc = evl__fiber_wait(f, EVL__WAIT_OP, timeout);
    if (!fo->finished) {
        evl_op_cancel(f->loop, &fo->op);
        while (!fo->finished) (void)evl__fiber_wait(f, EVL__WAIT_OP, EVL_FOREVER);
    }
    return rc < 0 && fo->op.result == -ECANCELED ? rc : fo->op.result;
}

EVL__PRIVATE ssize_t evl__fiber_transfer(int fd, void *in, const void *out, size_t len, int64_t offset,
                                         evl_time timeout) {
    evl_fiber *f = evl__fiber_current;
    evl__fiber_op fo;
    int rc;
    if (!f) return -EPERM;
    evl_op_init(&fo.op, evl__fiber_op_done);
    fo.fiber = f;
    fo.finished = 0;
    rc = in ? evl_op_read(f->loop, &fo.op, fd, in, len, offset) : evl_op_write(f->loop, &fo.op, fd, out, len, offset);
    return rc < 0 ? rc : evl__fiber_op_wait(f, &fo, timeout);
}

EVLOOP_API ssize_t evl_pread(int fd, void *buf, size_t len, int64_t offset, evl_time timeout) {
    static char nothing;                        /* a NULL buffer would mean "write" below */
    return evl__fiber_transfer(fd, buf ? buf : &nothing, NULL, buf ? len : 0, offset, timeout);
}

EVLOOP_API ssize_t evl_pwrite(int fd, const void *buf, size_t len, int64_t offset, evl_time timeout) {
    return evl__fiber_transfer(fd, NULL, buf, len, offset, timeout);
}
#endif

EVLOOP_API ssize_t evl_read(evl_fd fd, void *buf, size_t len, evl_time timeout) {
    evl_time deadline = 0;
    int kind = EVL__FD_UNKNOWN, ready = 0, rc;
    ssize_t n;
    if (!evl__fiber_current) return -EPERM;
    for (;;) {
        if ((n = evl__os_transfer(fd, buf, NULL, len, &kind, ready)) != -EAGAIN) return n;
#if EVLOOP_HAS_FILE_OPS
        /* only an OS layer whose evl_fd is the files' int descriptor says EVL__FD_FILE */
        if (kind == EVL__FD_FILE) return evl_pread((int)fd, buf, len, EVL_OP_CURRENT, timeout);
#endif
        if ((rc = evl_wait(fd, EVL_READ, evl__time_left(timeout, &deadline))) < 0) return rc;
        ready = 1;
    }
}

EVLOOP_API int evl_write_all(evl_fd fd, const void *buf, size_t len, evl_time timeout, size_t *written) {
    const unsigned char *p = (const unsigned char *)buf;
    evl_time deadline = 0;
    size_t done = 0;
    int kind = EVL__FD_UNKNOWN, ready = 0, rc = 0;
    ssize_t n;
    if (!evl__fiber_current) rc = -EPERM;
    while (rc == 0 && done < len) {
        n = evl__os_transfer(fd, NULL, p + done, len - done, &kind, ready);
        ready = 0;                              /* a blocking descriptor waits before each write */
#if EVLOOP_HAS_FILE_OPS
        if (kind == EVL__FD_FILE && n == -EAGAIN) {
            n = evl_pwrite((int)fd, p + done, len - done, EVL_OP_CURRENT, evl__time_left(timeout, &deadline));
            if (n == 0) n = -EIO;               /* a file that takes nothing would loop forever */
        }
#endif
        if (n >= 0) {
            done += (size_t)n;
        } else if (n != -EAGAIN) {
            rc = (int)n;
        } else if ((rc = evl_wait(fd, EVL_WRITE, evl__time_left(timeout, &deadline))) > 0) {
            rc = 0;
            ready = 1;
        }
    }
    if (written) *written = done;
    return rc;
}

EVLOOP_API ssize_t evl_write(evl_fd fd, const void *buf, size_t len, evl_time timeout) {
    int rc = evl_write_all(fd, buf, len, timeout, NULL);
    return rc < 0 ? rc : (ssize_t)len;
}

EVLOOP_API evl_time evl_deadline(evl_time timeout) { return evl__add_sat(evl__clock_now(), timeout); }

EVLOOP_API evl_time evl_until(evl_time deadline) {
    evl_time now = evl__clock_now();
    if (deadline == EVL_FOREVER) return EVL_FOREVER;
    return deadline > now ? deadline - now : 0;
}

EVLOOP_API evl_fd_result evl_accept(evl_fd fd, struct sockaddr *addr, socklen_t *addrlen, evl_time timeout) {
    evl_fiber *f = evl__fiber_current;
    evl_time deadline = 0;
    evl_fd_result s;
    int nonblocking, try_now, rc;
    if (!f) return -EPERM;
    if ((nonblocking = evl__os_nonblocking(fd)) < 0) return nonblocking;
    for (try_now = nonblocking;; try_now = 1) {
        if (try_now && (s = evl__os_accept(fd, addr, addrlen)) != -EAGAIN) return s;
        if ((rc = evl_wait(fd, EVL_READ, evl__time_left(timeout, &deadline))) < 0) return rc;
    }
}

EVLOOP_API EVL__COLD int evl_connect(evl_fd fd, const struct sockaddr *addr, socklen_t addrlen, evl_time timeout) {
    evl_fiber *f = evl__fiber_current;
    int nonblocking, rc;
    if (!f) return -EPERM;
    if ((nonblocking = evl__os_nonblocking(fd)) < 0) return nonblocking;
    if (!nonblocking && (rc = evl__os_set_nonblocking(fd, 1)) < 0) return rc;
    rc = evl__os_connect(fd, addr, addrlen);
    if (rc == -EINPROGRESS) {
        rc = evl_wait(fd, EVL_WRITE, timeout);
        if (rc >= 0) rc = evl__os_socket_error(fd);
    }
    if (!nonblocking) evl__os_set_nonblocking(fd, 0);
    return rc;
}

/* ---- Channels ----------------------------------------------------------------------------------
   A ring of elements in the user's buffer, and two queues of waiting fibers.  Whoever makes
   progress wakes the first fiber waiting on the other side; a woken fiber tries again, and waits
   again if another took the element or the room first. */

EVLOOP_API void evl_chan_init(evl_chan *c, void *buf, size_t elem_size, size_t capacity) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->buf = (unsigned char *)buf;
    c->elem_size = elem_size;
    c->capacity = capacity;
    evl__list_init(&c->senders);
    evl__list_init(&c->receivers);
}

EVL__PRIVATE int evl__chan_ok(const evl_chan *c) {
    return c && c->buf && c->elem_size && c->capacity && c->senders.next && c->receivers.next;
}

EVL__PRIVATE void evl__chan_wake_first(evl__node *waiters) {
    if (!evl__list_empty(waiters)) evl__fiber_wake(evl__fiber_of(waiters->next), 0);
}

/* Waits in a channel's queue: a fiber until woken or timed out; outside one, -EPERM. */
EVL__PRIVATE EVL__NOINLINE int evl__chan_wait(evl__node *waiters, evl_time timeout, evl_time *deadline) {
    evl_fiber *f = evl__fiber_current;
    evl_time left;
    if (!f) return -EPERM;
    if ((left = evl__time_left(timeout, deadline)) == 0) return evl__fiber_canceled(f) ? -ECANCELED : -ETIMEDOUT;
    evl__insert_before(&f->queue, waiters);
    return evl__fiber_wait(f, EVL__WAIT_CHAN, left);
}

EVLOOP_API int evl_chan_send(evl_chan *c, const void *elem, evl_time timeout) {
    evl_time deadline = 0;
    int rc;
    if (!evl__chan_ok(c) || !elem) return -EINVAL;
    for (;;) {
        if (c->closed) return -EPIPE;
        if (c->count < c->capacity) {
            memcpy(c->buf + (c->head + c->count) % c->capacity * c->elem_size, elem, c->elem_size);
            c->count++;
            evl__chan_wake_first(&c->receivers);
            return 0;
        }
        if ((rc = evl__chan_wait(&c->senders, timeout, &deadline)) < 0) return rc;
    }
}

EVLOOP_API int evl_chan_recv(evl_chan *c, void *elem, evl_time timeout) {
    evl_time deadline = 0;
    int rc;
    if (!evl__chan_ok(c) || !elem) return -EINVAL;
    for (;;) {
        if (c->count > 0) {
            memcpy(elem, c->buf + c->head * c->elem_size, c->elem_size);
            c->head = (c->head + 1) % c->capacity;
            c->count--;
            evl__chan_wake_first(&c->senders);
            return 0;
        }
        if (c->closed) return -EPIPE;
        if ((rc = evl__chan_wait(&c->receivers, timeout, &deadline)) < 0) return rc;
    }
}

EVLOOP_API EVL__COLD void evl_chan_close(evl_chan *c) {
    if (!evl__chan_ok(c) || c->closed) return;
    c->closed = 1;
    evl__fiber_wake_all(&c->senders, 0);
    evl__fiber_wake_all(&c->receivers, 0);
}

#endif /* EVLOOP_HAS_FIBERS */

/* ---- Debugging ------------------------------------------------------------------------------- */

EVL__PRIVATE const char *evl__ref_note(const evl__node *n) { return evl__referenced(n) ? "" : "  unref"; }

EVL__PRIVATE void evl__dump_events(FILE *out, unsigned events) {
    fprintf(out, "%s%s%s%s", events & EVL_READ ? " READ" : "", events & EVL_WRITE ? " WRITE" : "",
            events & EVL_PRI ? " PRI" : "", events ? "" : " none");
}

/* Whether w is an active io watcher of loop: the last batch may name watchers stopped and freed
   since, which only a pointer comparison may touch. */
EVL__PRIVATE EVL__COLD int evl__io_watched(const evl_loop *loop, const evl_io *w) {
    size_t k, count = evl__list_length_checked(&loop->ios);
    const evl__node *n;
    for (n = loop->ios.next, k = 0; k < count; k++, n = n->next)
        if (n == &w->link) return 1;
    return 0;
}

/* What the last wait reported, in the order it was delivered: a descriptor that shows up here at
   every call while the loop keeps the CPU busy is one that stays ready (level-triggered), e.g. a
   sysfs file watched for EVL_READ, or an error nobody reads. */
EVL__PRIVATE EVL__COLD void evl__dump_last_wait(const evl_loop *loop, FILE *out) {
    int i;
    if (loop->last_batch == 0) return;
    fprintf(out, "  last wait reported");
    for (i = 0; i < loop->last_batch; i++) {
        const evl_io *w = loop->ready[i].w;
        unsigned r = loop->ready[i].revents;
        if (!w || !evl__io_watched(loop, w)) continue;
        fprintf(out, "  fd %ld%s%s%s%s%s", (long)w->fd, r & EVL_READ ? " READ" : "", r & EVL_WRITE ? " WRITE" : "",
                r & EVL_PRI ? " PRI" : "", r & EVL_ERROR ? " ERROR" : "", r & EVL_HUP ? " HUP" : "");
    }
    fprintf(out, "\n");
}

EVL__PRIVATE void evl__dump_io(const evl_loop *loop, const evl__node *n, FILE *out) {
    const evl_io *w = EVL__CONTAINER(n, evl_io, link);
    (void)loop;
    if (w->flags & EVL__IO_INTERNAL) return;
    fprintf(out, "  io      %p  fd %ld  events", (const void *)w, (long)w->fd);
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
    fprintf(out, "  child   %p  pid %ld  ", (const void *)c, (long)(intptr_t)c->pid);
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

EVL__PRIVATE EVL__COLD void evl__dump_list(const evl_loop *loop, const evl__node *head, FILE *out,
                                 void (*print)(const evl_loop *, const evl__node *, FILE *)) {
    size_t k, count = evl__list_length_checked(head);
    const evl__node *n;
    for (n = head->next, k = 0; k < count; k++, n = n->next) print(loop, n, out);
}

#if EVLOOP_HAS_FIBERS
EVL__PRIVATE EVL__COLD void evl__dump_fiber(const evl_loop *loop, const evl__node *n, FILE *out) {
    const evl_fiber *f = EVL__CONTAINER(n, evl_fiber, link);
    static const char *const states[] = {"?", "new", "ready", "running", "waiting", "done"};
    fprintf(out, "  fiber   %p  %s", (const void *)f, states[f->state <= EVL__FIBER_DONE ? f->state : 0]);
    switch (f->waiting) {
    case EVL__WAIT_IO:
        fprintf(out, " for fd %ld", (long)f->io.fd);
        evl__dump_events(out, f->io.events);
        break;
    case EVL__WAIT_SLEEP: fprintf(out, " (sleeping)"); break;
    case EVL__WAIT_CHAN: fprintf(out, " on a channel"); break;
    case EVL__WAIT_JOIN: fprintf(out, " to join another fiber"); break;
    case EVL__WAIT_OP: fprintf(out, " for a file operation"); break;
    default: break;
    }
    if (evl__linked(&f->timer.link) && f->waiting != EVL__WAIT_SLEEP)
        fprintf(out, ", timeout in %.6f s", (double)evl_timer_remaining(loop, &f->timer) / 1e9);
    else if (f->waiting == EVL__WAIT_SLEEP)
        fprintf(out, " for %.6f s more", (double)evl_timer_remaining(loop, &f->timer) / 1e9);
    fprintf(out, "%s%s\n", f->stack_mapped ? "  (mapped stack)" : "", evl__ref_note(n));
}

EVL__PRIVATE EVL__COLD void evl__dump_fibers(const evl_loop *loop, FILE *out) {
    evl__dump_list(loop, &loop->fibers, out, evl__dump_fiber);
}
#endif

#if EVLOOP_HAS_FILE_OPS
EVL__PRIVATE EVL__COLD void evl__dump_op(const evl_loop *loop, const evl__node *n, FILE *out) {
    const evl_op *op = EVL__CONTAINER(n, evl_op, link);
    static const char *const names[] = {"?",      "read",  "write", "readv", "writev", "fsync",
                                        "fdatasync", "openat", "close", "fstat", "statx", "work"};
    static const char *const states[] = {"idle", "not yet submitted", "in the kernel", "with the workers", "finished"};
    (void)loop;
    fprintf(out, "  op      %p  %s", (const void *)op, names[op->code <= EVL__DO_WORK ? op->code : 0]);
    if (op->code != EVL__DO_WORK) fprintf(out, " fd %d", op->fd);
    fprintf(out, "  %s%s\n", states[op->state <= EVL__OP_DONE ? op->state : 0], evl__ref_note(n));
}
#endif

typedef struct evl__dump_ctx {
    const evl_loop *loop;
    FILE *out;
} evl__dump_ctx;

EVL__PRIVATE EVL__COLD void evl__dump_timer(evl_timer *t, void *arg) {
    const evl__dump_ctx *ctx = (const evl__dump_ctx *)arg;
    evl_time left = evl_timer_remaining(ctx->loop, t);
    if (evl__is_fiber_timer(t)) return;             /* shown with its fiber */
    fprintf(ctx->out, "  timer   %p  due in %.6f s", (const void *)t, (double)left / 1e9);
    if (t->repeat) fprintf(ctx->out, "  repeat %.6f s", (double)t->repeat / 1e9);
    fprintf(ctx->out, "%s\n", evl__ref_note(&t->link));
}

EVLOOP_API EVL__COLD void evl_dump(const evl_loop *loop, FILE *out) {
    evl__dump_ctx ctx;
    if (!out) return;
    if (!evl__loop_ok(loop)) {
        fprintf(out, "evl loop %p: not initialised\n", (const void *)loop);
        return;
    }
    fprintf(out, "evl loop %p: backend %s, fd %d, now %.6f s, %u referenced watcher%s%s\n", (const void *)loop,
            evl__backend_name(), evl__backend_fd(loop), (double)loop->now / 1e9, loop->refs, loop->refs == 1 ? "" : "s",
            loop->running ? ", running" : "");
    evl__dump_last_wait(loop, out);
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
    evl__dump_fibers(loop, out);
#if EVLOOP_HAS_FILE_OPS
    evl__dump_list(loop, &loop->ops, out, evl__dump_op);
    if (loop->workers.count) fprintf(out, "  workers %u threads\n", loop->workers.count);
#endif
}

/* ============================================================================================== */
/* >>os posix: clock, signal dispositions, reaping, stacks, descriptors (all backends but IOCP)   */
/* ============================================================================================== */

#ifndef _WIN32

EVL__PRIVATE evl_time evl__clock_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (evl_time)ts.tv_sec * 1000000000u + (evl_time)ts.tv_nsec;
}

EVL__PRIVATE void evl__os_yield(void) { sched_yield(); }

EVL__PRIVATE long evl__os_process_id(void) { return (long)getpid(); }

EVL__PRIVATE int evl__os_sigchld(void) { return SIGCHLD; }

/* A handler for a fault signal would return to the faulting instruction forever. */
EVL__PRIVATE int evl__os_signal_valid(int signum) {
    return signum < NSIG && signum != SIGKILL && signum != SIGSTOP && signum != SIGSEGV && signum != SIGBUS &&
           signum != SIGFPE && signum != SIGILL;
}

/* The disposition each watched signal had before, kept small: a struct sigaction is 152 bytes in
   glibc (its sigset_t has room for 1024 signals), and a board has 65 of them to keep. */
#define EVL__MASK_WORDS ((NSIG - 1 + 31) / 32)
typedef struct evl__saved_disposition {
    void (*handler)(int);
    void (*action)(int, siginfo_t *, void *);   /* apart from handler: some C libraries keep both */
    int flags;
    uint32_t mask[EVL__MASK_WORDS];
} evl__saved_disposition;

static evl__saved_disposition evl__saved_action[EVL__MAX_SIGNAL + 1];

EVL__PRIVATE EVL__COLD void evl__os_save_disposition(int signum, const struct sigaction *sa) {
    evl__saved_disposition *d = &evl__saved_action[signum];
    int s;
    d->handler = sa->sa_handler;
    d->action = sa->sa_sigaction;
    d->flags = sa->sa_flags;
    memset(d->mask, 0, sizeof d->mask);
    for (s = 1; s < NSIG; s++)
        if (sigismember(&sa->sa_mask, s) == 1) d->mask[(s - 1) / 32] |= (uint32_t)1 << ((unsigned)(s - 1) % 32u);
}

EVL__PRIVATE void evl__posix_handler(int signum) {
    int saved_errno = errno;                        /* the handler runs between any two lines */
    evl__signal_caught(signum);
    errno = saved_errno;
}

/* The disposition while evloop watches signum.  A signal the backend reports itself needs no
   handler, only one that neither ends the process nor throws the signal away unseen: ignored,
   except where ignoring has another effect (SIGCHLD: children would reap themselves), or the
   default already ignores it. */
EVL__PRIVATE EVL__COLD int evl__os_signal_catch(int signum, int by_handler) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (by_handler) {
        sa.sa_handler = evl__posix_handler;
        sa.sa_flags = SA_RESTART;
    } else {
        sa.sa_handler = signum == SIGCHLD || signum == SIGURG || signum == SIGWINCH ? SIG_DFL : SIG_IGN;
    }
    if (sigaction(signum, &sa, &old) < 0) return -errno;
    evl__os_save_disposition(signum, &old);
    return 0;
}

EVL__PRIVATE EVL__COLD void evl__os_signal_restore(int signum) {
    const evl__saved_disposition *d = &evl__saved_action[signum];
    struct sigaction sa;
    int s;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    for (s = 1; s < NSIG; s++)
        if (d->mask[(s - 1) / 32] >> ((unsigned)(s - 1) % 32u) & 1u) sigaddset(&sa.sa_mask, s);
    sa.sa_flags = d->flags;
    if ((unsigned)d->flags & (unsigned)SA_SIGINFO) sa.sa_sigaction = d->action;
    else sa.sa_handler = d->handler;
    sigaction(signum, &sa, NULL);
}

/* A thread's mask is the program's business: evloop never changes it.  But a signal that every
   thread blocks would stay pending forever, so while the backend waits, the signals this loop has
   the handler catch are unblocked in the waiting thread only, atomically with the wait, as pselect
   does (the backend passes wait_mask to epoll_pwait or ppoll).  The thread's mask is read at each
   evl_run, which may run on another thread than the one that started the watchers. */
EVL__PRIVATE EVL__COLD void evl__os_signals_changed(evl_loop *loop) {
    sigset_t *mask = &loop->os.wait_mask;
    int signum;
    loop->os.wait_masked = 0;
    if (!(EVL__LOAD(&loop->sig_watched[0]) | EVL__LOAD(&loop->sig_watched[1]))) return;
    if (sigprocmask(SIG_BLOCK, NULL, mask) < 0) return;   /* reads this thread's mask */
    for (signum = 1; signum <= EVL__MAX_SIGNAL; signum++) {
        if (evl__signal_in(loop->sig_watched, signum) && sigismember(mask, signum) == 1) {
            sigdelset(mask, signum);
            loop->os.wait_masked = 1;
        }
    }
}

/* For the POSIX backends: the mask to wait with, or NULL to keep the thread's own. */
static inline const sigset_t *evl__posix_wait_mask(const evl_loop *loop) {
    return loop->os.wait_masked ? &loop->os.wait_mask : NULL;
}

/* A signal the thread blocks that is already pending when epoll_pwait or ppoll begins is delivered
   only if the wait is interrupted: a wait that finds events ready returns them and puts the
   thread's mask back, the signal still pending.  A loop that always has events would never hear
   it, so after such a wait the loop's signals are unblocked for a moment if one is pending. */
EVL__PRIVATE EVL__NOINLINE EVL__UNUSED void evl__posix_deliver_pending(const evl_loop *loop) {
    sigset_t pending, own;
    int word, found = 0;
    if (sigpending(&pending) < 0) return;
    for (word = 0; word < 2 && !found; word++) {
        uint32_t bits = EVL__LOAD_RELAXED(&loop->sig_watched[word]);
        for (; bits && !found; bits &= bits - 1u)
            found = sigismember(&pending, word * 32 + (int)evl__ctz64(bits) + 1) == 1;
    }
    if (found && pthread_sigmask(SIG_SETMASK, &loop->os.wait_mask, &own) == 0) pthread_sigmask(SIG_SETMASK, &own, NULL);
}

/* For the POSIX backends, after a wait that returned without being interrupted by a signal. */
static inline void evl__posix_wait_returned(const evl_loop *loop) {
    if (loop->os.wait_masked) evl__posix_deliver_pending(loop);
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


#if EVLOOP_HAS_FILE_OPS
/* ---- Threads and blocking file operations (the worker and inline engines) ----------------------- */

EVL__PRIVATE int evl__os_thread_start(evl__os_thread *t, void *(*fn)(void *), void *arg) {
    return -pthread_create(t, NULL, fn, arg);
}

EVL__PRIVATE void evl__os_thread_join(evl__os_thread t) { pthread_join(t, NULL); }

/* Signal handlers run on the program's own threads, and a worker's system calls are never
   interrupted. */
EVL__PRIVATE void evl__os_thread_setup(void) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
#if defined(__linux__) && defined(SCHED_BATCH)
    {
        /* A worker waking from its read does not preempt the loop's thread (Linux applies this to
           the calling thread alone). */
        struct sched_param param;
        memset(&param, 0, sizeof param);
        (void)sched_setscheduler(0, SCHED_BATCH, &param);
    }
#endif
}

EVL__PRIVATE int evl__os_lock_init(evl__os_mutex *m, evl__os_cond *c) {
    int rc = pthread_mutex_init(m, NULL);
    if (rc) return -rc;
    if ((rc = pthread_cond_init(c, NULL)) != 0) pthread_mutex_destroy(m);
    return -rc;
}

EVL__PRIVATE void evl__os_lock_destroy(evl__os_mutex *m, evl__os_cond *c) {
    pthread_cond_destroy(c);
    pthread_mutex_destroy(m);
}

EVL__PRIVATE void evl__os_lock(evl__os_mutex *m) { pthread_mutex_lock(m); }
EVL__PRIVATE void evl__os_unlock(evl__os_mutex *m) { pthread_mutex_unlock(m); }
EVL__PRIVATE void evl__os_cond_wait(evl__os_cond *c, evl__os_mutex *m) { pthread_cond_wait(c, m); }
EVL__PRIVATE void evl__os_cond_signal(evl__os_cond *c) { pthread_cond_signal(c); }
EVL__PRIVATE void evl__os_cond_broadcast(evl__os_cond *c) { pthread_cond_broadcast(c); }

#if EVLOOP_HAS_FIBERS   /* only the fibers' evl_read and evl_write ask */
EVL__PRIVATE int evl__os_is_file(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}
#endif

/* Vectored transfers at an offset.  macOS declares preadv only from macOS 11 on: there the
   vector is transferred piece by piece, stopping at the first short piece. */
EVL__PRIVATE ssize_t evl__os_vectored(const evl_op *op, int writing) {
    const evl_iovec *iov = (const evl_iovec *)op->addr;
    int count = (int)op->len;
#if defined(__APPLE__)
    ssize_t total = 0, n;
    int i;
    if (op->offset == EVL_OP_CURRENT) return writing ? writev(op->fd, iov, count) : readv(op->fd, iov, count);
    for (i = 0; i < count; i++) {
        off_t at = (off_t)op->offset + (off_t)total;
        n = writing ? pwrite(op->fd, iov[i].iov_base, iov[i].iov_len, at)
                    : pread(op->fd, iov[i].iov_base, iov[i].iov_len, at);
        if (n < 0) return total > 0 ? total : n;
        total += n;
        if ((size_t)n < iov[i].iov_len) break;
    }
    return total;
#else
    if (op->offset == EVL_OP_CURRENT) return writing ? writev(op->fd, iov, count) : readv(op->fd, iov, count);
    return writing ? pwritev(op->fd, iov, count, (off_t)op->offset) : preadv(op->fd, iov, count, (off_t)op->offset);
#endif
}

/* One attempt: the system call's return, errno set when it is negative. */
EVL__PRIVATE ssize_t evl__os_op_call(const evl_op *op) {
    switch (op->code) {
    case EVL__DO_READ:
        if (op->offset == EVL_OP_CURRENT) return read(op->fd, op->addr, op->len);
        return pread(op->fd, op->addr, op->len, (off_t)op->offset);
    case EVL__DO_WRITE:
        if (op->offset == EVL_OP_CURRENT) return write(op->fd, op->addr, op->len);
        return pwrite(op->fd, op->addr, op->len, (off_t)op->offset);
    case EVL__DO_READV: return evl__os_vectored(op, 0);
    case EVL__DO_WRITEV: return evl__os_vectored(op, 1);
    case EVL__DO_FSYNC: return fsync(op->fd);
#if defined(__APPLE__)
    case EVL__DO_FDATASYNC: return fsync(op->fd);         /* no fdatasync declared there */
#else
    case EVL__DO_FDATASYNC: return fdatasync(op->fd);
#endif
    case EVL__DO_OPENAT: return openat(op->fd, (const char *)op->addr, op->flags, (mode_t)op->mode);
    case EVL__DO_CLOSE: return close(op->fd);
    case EVL__DO_FSTAT: return fstat(op->fd, (struct stat *)op->out);
#if EVLOOP_HAS_STATX
    case EVL__DO_STATX:
        return statx(op->fd, (const char *)op->addr, op->flags, op->mode, (struct statx *)op->out);
#endif
    default: errno = EINVAL; return -1;
    }
}

/* An interrupted call is made again, but close: its descriptor is gone even then. */
EVL__PRIVATE ssize_t evl__os_op_run(evl_op *op) {
    ssize_t n;
    if (op->code == EVL__DO_WORK) return op->fn(op, op->addr);
    if (op->offset != EVL_OP_CURRENT && (int64_t)(off_t)op->offset != op->offset) return -EOVERFLOW;
    while ((n = evl__os_op_call(op)) < 0 && errno == EINTR && op->code != EVL__DO_CLOSE) {
    }
    return n < 0 ? -errno : n;
}
#endif /* EVLOOP_HAS_FILE_OPS */

/* ---- Fiber stacks and descriptors --------------------------------------------------------------- */
#if EVLOOP_HAS_FIBERS

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif
/* OpenBSD refuses a stack pointer outside memory mapped with MAP_STACK; elsewhere it is a hint. */
#if defined(MAP_STACK)
#define EVL__MAP_STACK MAP_STACK
#else
#define EVL__MAP_STACK 0
#endif

EVL__PRIVATE size_t evl__os_page_size(void) {
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}

/* size rounded up to whole pages, with one more inaccessible page below it, so that running off
   the end of the stack faults instead of silently writing over whatever lies below. */
EVL__PRIVATE EVL__COLD int evl__os_stack_map(size_t size, void **stack, size_t *usable) {
    size_t page = evl__os_page_size(), rounded;
    char *base;
    void *p;
    if (size > (size_t)-1 - 2 * page) return -EINVAL;
    rounded = (size + page - 1) & ~(page - 1);
    p = mmap(NULL, rounded + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | EVL__MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return -errno;
    base = (char *)p;
    if (mprotect(base, page, PROT_NONE) != 0) {
        int err = errno;
        munmap(base, rounded + page);
        return -err;
    }
    *stack = base + page;
    *usable = rounded;
    return 0;
}

EVL__PRIVATE void evl__os_stack_unmap(void *stack, size_t usable) {
    size_t page = evl__os_page_size();
    munmap((char *)stack - page, usable + page);
}

EVL__PRIVATE void evl__os_close(evl_fd fd) { close(fd); }

EVL__PRIVATE evl_fd_result evl__os_dup(evl_fd fd) {
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return copy < 0 ? -errno : copy;
}

/* 1 if fd is non-blocking, 0 if blocking, -EBADF. */
EVL__PRIVATE int evl__os_nonblocking(evl_fd fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -errno : (flags & O_NONBLOCK) != 0;
}

EVL__PRIVATE int evl__os_set_nonblocking(evl_fd fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags) < 0 ? -errno : 0;
}

/* Readiness right now, as EVL_ bits (0: none). */
EVL__PRIVATE int evl__os_poll(evl_fd fd, unsigned events) {
    struct pollfd p;
    int n;
    p.fd = fd;
    p.events = (short)((events & EVL_READ ? POLLIN : 0) | (events & EVL_WRITE ? POLLOUT : 0) |
                       (events & EVL_PRI ? POLLPRI : 0));
    p.revents = 0;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR) {
    }
    if (n < 0) return -errno;
    if (p.revents & POLLNVAL) return -EBADF;
    return (p.revents & POLLIN ? EVL_READ : 0) | (p.revents & POLLOUT ? EVL_WRITE : 0) |
           (p.revents & POLLPRI ? EVL_PRI : 0) | (p.revents & POLLERR ? EVL_ERROR : 0) |
           (p.revents & POLLHUP ? EVL_HUP : 0);
}

/* read/write/accept/connect as -errno, with EWOULDBLOCK as -EAGAIN and EINTR retried. */
EVL__PRIVATE int evl__os_error(void) { return errno == EWOULDBLOCK ? -EAGAIN : -errno; }

/* One read (out == NULL) or write (in == NULL) that cannot block.  The first attempt tells a socket
   (MSG_DONTWAIT works on it, whatever its O_NONBLOCK) from anything else (ENOTSOCK), whose
   O_NONBLOCK then decides whether it may be tried before it was seen ready.  A blocking descriptor
   just seen writable gets at most PIPE_BUF bytes, which POSIX promises a writable pipe accepts
   without blocking. */
EVL__PRIVATE EVL__NOINLINE ssize_t evl__os_transfer(evl_fd fd, void *in, const void *out, size_t len, int *kind,
                                                   int ready) {
    ssize_t n;
    if (*kind == EVL__FD_UNKNOWN || *kind == EVL__FD_SOCKET) {
        while ((n = in ? recv(fd, in, len, MSG_DONTWAIT) : send(fd, out, len, MSG_DONTWAIT)) < 0 && errno == EINTR) {
        }
        if (n >= 0 || errno != ENOTSOCK) {
            *kind = EVL__FD_SOCKET;
            return n < 0 ? evl__os_error() : n;
        }
#if EVLOOP_HAS_FILE_OPS
        if (evl__os_is_file(fd)) {
            *kind = EVL__FD_FILE;                   /* never "not ready": a file operation instead */
            return -EAGAIN;
        }
#endif
        if ((n = evl__os_nonblocking(fd)) < 0) return n;
        *kind = n ? EVL__FD_NONBLOCKING : EVL__FD_BLOCKING;
    }
    if (*kind == EVL__FD_FILE) return -EAGAIN;
    if (*kind == EVL__FD_BLOCKING) {
        if (!ready) return -EAGAIN;
        if (out && len > PIPE_BUF) len = PIPE_BUF;
    }
    while ((n = in ? read(fd, in, len) : write(fd, out, len)) < 0 && errno == EINTR) {
    }
    return n < 0 ? evl__os_error() : n;
}

EVL__PRIVATE evl_fd_result evl__os_accept(evl_fd fd, struct sockaddr *addr, socklen_t *addrlen) {
    int s;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    while ((s = accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0 && errno == EINTR) {
    }
    return s < 0 ? evl__os_error() : s;
#else
    while ((s = accept(fd, addr, addrlen)) < 0 && errno == EINTR) {
    }
    if (s < 0) return evl__os_error();
    fcntl(s, F_SETFD, FD_CLOEXEC);
    evl__os_set_nonblocking(s, 1);
    return s;
#endif
}

/* 0 connected, -EINPROGRESS under way (also after EINTR: the attempt goes on), or -errno. */
EVL__PRIVATE int evl__os_connect(evl_fd fd, const struct sockaddr *addr, socklen_t addrlen) {
    if (connect(fd, addr, addrlen) == 0) return 0;
    return errno == EINPROGRESS || errno == EINTR ? -EINPROGRESS : evl__os_error();
}

EVL__PRIVATE int evl__os_socket_error(evl_fd fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
    return -err;
}

#endif /* EVLOOP_HAS_FIBERS */

#endif /* !_WIN32 */

#ifdef __cplusplus
}
#endif

/* ============================================================================================== */
/* >>backend: the implementation part of the backend header                                       */
/* ============================================================================================== */

#define EVL__BACKEND_IMPLEMENTATION
#if defined(EVLOOP_BACKEND_EPOLL)
#include "evloop_epoll.h"
#elif defined(EVLOOP_BACKEND_KQUEUE)
#include "evloop_kqueue.h"
#elif defined(EVLOOP_BACKEND_POLL)
#include "evloop_poll.h"
#elif defined(EVLOOP_BACKEND_IOCP)
#include "evloop_iocp.h"
#endif

#endif /* !EVL__CONTEXT_ONLY */

/* ============================================================================================== */
/* Fibers: the context switch                                                                     */
/* ============================================================================================== */
/* This part makes one stack stop and another run, and knows nothing of loops.  Each CPU's switch
   saves exactly the callee-saved registers of its ABI (and the floating-point control state the
   ABI says a callee preserves) on the current stack, stores the stack pointer, loads the other
   one and returns there.  It is a separate assembly function rather than inline asm, so that the
   compiler sees an ordinary call: it then assumes the caller-saved registers are lost, and the asm
   need not list every register of every CPU variant (AVX-512, SVE...) as clobbered.  On ELF and
   Mach-O the function is a weak, hidden symbol in its own COMDAT section, emitted under .ifndef,
   so that copies from several translation units (EVLOOP_STATIC, LTO) merge into one.  The
   sanitizers and valgrind are told about every switch, each only when it is present.
   EVLOOP_NO_VALGRIND leaves the valgrind client requests out.

   Every CPU section below (">>cpu") provides, side by side:
     swap(void **save_sp, void *load_sp)   in assembly: push the callee-saved state, *save_sp = sp,
                                           sp = load_sp, pop the state found there, return to the
                                           address found there;
     start                                 in assembly, never called: a new context's first
                                           "return" lands here, with the C entry function and its
                                           argument in two callee-saved registers; it calls
                                           entry(arg) with the stack aligned as the ABI wants, and
                                           traps if that ever returns;
     the frame's slots                     named, in the order the swap pops them, from sp up;
     evl__ctx_make(ctx)                    lays out a frame that swap will "restore" into start.
   The version suffix of the symbols changes whenever a frame's layout does.

   evloop's own tests of this layer alone (tests/ctx) define EVL__CONTEXT_ONLY, which leaves out
   the rest of the implementation, so that the switch can be tested where the loop cannot run
   (a freestanding RISC-V without an FPU, for which Debian has no C library). */

#if EVLOOP_HAS_FIBERS

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define EVL__CTX_FN static __attribute__((unused))  /* a test of this layer may not use all of it */
/* No function may begin or end between telling ThreadSanitizer about a switch and making it:
   TSan keeps a shadow call stack per fiber, and an entry or return there would land on the new
   fiber's, below the base of a fresh one.  So the steps around the switch are always inlined. */
#define EVL__CTX_INLINE static inline __attribute__((always_inline, unused))
#define EVL__CTX_NORETURN __attribute__((noreturn))
#else
#define EVL__CTX_FN static
#define EVL__CTX_INLINE static inline
#define EVL__CTX_NORETURN
#endif

#if defined(__SANITIZE_ADDRESS__)
#define EVL__CTX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EVL__CTX_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define EVL__CTX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EVL__CTX_TSAN 1
#endif
#endif
#if !defined(EVLOOP_NO_VALGRIND) && !defined(_WIN32) && defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define EVL__CTX_VALGRIND 1
#endif
#endif

#if defined(EVL__CTX_ASAN)
#include <sanitizer/asan_interface.h>
#endif
#if defined(EVL__CTX_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

/* ---- Switching: what every CPU shares ------------------------------------------------------ */

/* Called on the new side of every switch (and first thing in a new context).  ASan returns the
   bounds of the stack we came from; the thread's own stack is the one whose bounds we could not
   know, so they are recorded here. */
EVL__CTX_FN void evl__ctx_arrived(evl__ctx *self, void *fake_stack) {
#if defined(EVL__CTX_ASAN)
    const void *from_lo = NULL;
    size_t from_size = 0;
    __sanitizer_finish_switch_fiber(fake_stack, &from_lo, &from_size);
    if (self->asan_from != NULL && self->asan_from->stack_lo == NULL) {
        self->asan_from->stack_lo = (void *)(uintptr_t)from_lo;
        self->asan_from->stack_size = from_size;
    }
#else
    (void)self;
    (void)fake_stack;
#endif
}

/* Called just before every switch.  fake_stack_save is NULL when `from` will never run again,
   which lets ASan free its fake stack. */
EVL__CTX_INLINE void evl__ctx_leaving(evl__ctx *from, evl__ctx *to, void **fake_stack_save) {
#if defined(EVL__CTX_ASAN)
    to->asan_from = from;
    __sanitizer_start_switch_fiber(fake_stack_save, to->stack_lo, to->stack_size);
#else
    (void)from;
    (void)fake_stack_save;
#endif
#if defined(EVL__CTX_TSAN)
    __tsan_switch_to_fiber(to->tsan_fiber, 0); /* 0: synchronise, the fibers of a thread run in turn */
#endif
    (void)to;
}

/* The first C code on a new stack. */
EVL__CTX_FN void evl__ctx_entry(evl__ctx *ctx) {
    evl__ctx_arrived(ctx, NULL);
    ctx->entry(ctx->arg);
    __builtin_trap(); /* entry must leave with evl__ctx_exit, never return */
}

#if !defined(EVL__CTX_UCONTEXT)
/* A new context's frame: `words` zeroed slots just below the top of its stack, aligned down to
   `align` bytes.  Slots the CPU's evl__ctx_make does not fill stay zero, so that frame-pointer
   walks end there. */
EVL__CTX_FN uintptr_t *evl__ctx_new_frame(const evl__ctx *ctx, uintptr_t align, size_t words) {
    uintptr_t top = ((uintptr_t)ctx->stack_lo + ctx->stack_size) & ~(align - 1);
    uintptr_t *w = (uintptr_t *)top - words;
    size_t i;
    for (i = 0; i < words; i++) w[i] = 0;
    return w;
}
#endif

/* The symbol of an assembly routine: a weak, hidden definition in a section of its own, emitted
   once per translation unit (.ifndef) and merged across units by the linker. */
#if defined(__APPLE__)
#define EVL__ASM_BEGIN(sym)                                                                        \
    ".ifndef " sym "\n"                                                                            \
    ".pushsection __TEXT,__text,regular,pure_instructions\n"                                       \
    ".globl " sym "\n"                                                                             \
    ".private_extern " sym "\n"                                                                    \
    ".weak_definition " sym "\n"                                                                   \
    ".p2align 4\n" sym ":\n"
#define EVL__ASM_END(sym) ".popsection\n.endif\n"
#else
#if defined(EVL__CTX_ARM) && defined(__thumb__)
#define EVL__ASM_THUMB_FUNC ".thumb_func\n"
#else
#define EVL__ASM_THUMB_FUNC ""
#endif
#define EVL__ASM_BEGIN(sym)                                                                        \
    ".ifndef " sym "\n"                                                                            \
    ".pushsection .text." sym ",\"axG\",%progbits," sym ",comdat\n"                                \
    ".weak " sym "\n"                                                                              \
    ".hidden " sym "\n"                                                                            \
    ".type " sym ",%function\n"                                                                    \
    ".p2align 4\n" EVL__ASM_THUMB_FUNC sym ":\n"
#define EVL__ASM_END(sym) ".size " sym ",.-" sym "\n.popsection\n.endif\n"
#endif

/* The asm label pins the exact symbol name (no leading underscore on any platform), so the C side
   and the asm side always agree. */
#define EVL__CTX_DECLARE(swap_sym, start_sym)                                                      \
    void evl__ctx_swap_asm(void **save_sp, void *load_sp) __asm__(swap_sym)                       \
        __attribute__((visibility("hidden")));                                                     \
    void evl__ctx_start_asm(void) __asm__(start_sym) __attribute__((visibility("hidden")));

#if defined(EVL__CTX_X86_64) || defined(EVL__CTX_WIN64)
/* MXCSR in the low half, the x87 control word above: one frame slot on x86_64. */
EVL__CTX_FN uintptr_t evl__ctx_x86_fp_control(void) {
    unsigned int mxcsr;
    unsigned short fcw;
    __asm__ __volatile__("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(fcw));
    return (uintptr_t)mxcsr | (uintptr_t)fcw << 32;
}
#endif

/* ---- >>cpu x86_64 System V ------------------------------------------------------------------
   Callee-saved (psABI 3.2.1): rbx, rbp, r12-r15, rsp.  No xmm register is callee-saved.  The same
   section makes the control bits of MXCSR and the x87 control word callee-saved, so each context
   keeps its own rounding mode, exception masks and precision: they are saved here (8 bytes, one
   slot).  The status flags are caller-saved and deliberately not restored. */
#if defined(EVL__CTX_X86_64)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_x86_64_v1"
#define EVL__CTX_START_SYM "evl__ctx_start_x86_64_v1"
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 1
#define EVL__CTX_BACKEND_NAME "asm x86_64 System V"
__asm__(
    EVL__ASM_BEGIN(EVL__CTX_SWAP_SYM)
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $8, %rsp\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"         /* *save_sp = sp */
    "    movl (%rsp), %eax\n"         /* same widths as the stores, so the */
    "    movzwl 4(%rsp), %ecx\n"      /* loads are forwarded from them     */
    "    movq %rsi, %rsp\n"           /* sp = load_sp: now on the other stack */
    "    cmpl (%rsp), %eax\n"         /* loading the control registers is  */
    "    jne 1f\n"                    /* slow and they rarely differ       */
    "    cmpw 4(%rsp), %cx\n"
    "    je 2f\n"
    "1:  ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "2:  addq $8, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    EVL__ASM_END(EVL__CTX_SWAP_SYM)
    EVL__ASM_BEGIN(EVL__CTX_START_SYM)
    /* The return address is undefined here: debuggers and unwinders stop. */
    "    .cfi_startproc\n"
    "    .cfi_undefined rip\n"
    "    movq %r13, %rdi\n"
    "    andq $-16, %rsp\n"           /* 16-aligned before the call, so entry */
    "    call *%r12\n"                /* sees rsp+8 aligned, as after any call */
    "    ud2\n"
    "    .cfi_endproc\n"
    EVL__ASM_END(EVL__CTX_START_SYM));
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)

enum {
    EVL__X64_FP_CONTROL, EVL__X64_R15, EVL__X64_R14, EVL__X64_R13, EVL__X64_R12, EVL__X64_RBX, EVL__X64_RBP,
    EVL__X64_RETURN, EVL__X64_FRAME_WORDS
};

/* A new context starts with the floating-point control state of the code that created it, as a
   new thread does. */
EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 16, EVL__X64_FRAME_WORDS);
    w[EVL__X64_FP_CONTROL] = evl__ctx_x86_fp_control();
    w[EVL__X64_R12] = (uintptr_t)&evl__ctx_entry;
    w[EVL__X64_R13] = (uintptr_t)ctx;
    w[EVL__X64_RETURN] = (uintptr_t)&evl__ctx_start_asm;
    ctx->sp = w;
}
#endif /* >>cpu x86_64 System V */

/* ---- >>cpu i386 System V --------------------------------------------------------------------
   Callee-saved (i386 psABI): ebx, esi, edi, ebp, esp.  As on x86_64, the x87 control word and the
   control bits of MXCSR belong to the caller, so each context keeps its own.  MXCSR exists only
   with SSE; a build without -msse may run on a CPU without it, so it is saved only when __SSE__
   says the compiler may use SSE (and the symbol name says which variant it is).  Arguments are on
   the stack.  GCC and clang assume a 16-byte aligned stack at calls on i386 Linux today, so start
   aligns to 16, not 4. */
#if defined(EVL__CTX_I386)
#if defined(__SSE__)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_i386_sse_v1"
#else
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_i386_v1"
#endif
#define EVL__CTX_START_SYM "evl__ctx_start_i386_v1"
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 1
#define EVL__CTX_BACKEND_NAME "asm i386 System V"
__asm__(
    EVL__ASM_BEGIN(EVL__CTX_SWAP_SYM)
    "    movl 4(%esp), %eax\n"        /* save_sp */
    "    movl 8(%esp), %edx\n"        /* load_sp */
    "    pushl %ebp\n"
    "    pushl %ebx\n"
    "    pushl %esi\n"
    "    pushl %edi\n"
    "    subl $8, %esp\n"
#if defined(__SSE__)
    "    stmxcsr (%esp)\n"
#endif
    "    fnstcw 4(%esp)\n"
    "    movl %esp, (%eax)\n"
#if defined(__SSE__)
    "    movl (%esp), %eax\n"
#endif
    "    movzwl 4(%esp), %ecx\n"
    "    movl %edx, %esp\n"
#if defined(__SSE__)                  /* without SSE the slot is never written: never compared */
    "    cmpl (%esp), %eax\n"
    "    jne 1f\n"
#endif
    "    cmpw 4(%esp), %cx\n"         /* skip the slow loads when the saved */
    "    je 2f\n"                     /* values equal the current ones      */
    "1:\n"
#if defined(__SSE__)
    "    ldmxcsr (%esp)\n"
#endif
    "    fldcw 4(%esp)\n"
    "2:  addl $8, %esp\n"
    "    popl %edi\n"
    "    popl %esi\n"
    "    popl %ebx\n"
    "    popl %ebp\n"
    "    ret\n"
    EVL__ASM_END(EVL__CTX_SWAP_SYM)
    EVL__ASM_BEGIN(EVL__CTX_START_SYM)
    "    .cfi_startproc\n"
    "    .cfi_undefined eip\n"
    "    andl $-16, %esp\n"
    "    subl $12, %esp\n"            /* so that after pushing the argument */
    "    pushl %esi\n"                /* esp is 16-aligned at the call      */
    "    call *%ebx\n"
    "    ud2\n"
    "    .cfi_endproc\n"
    EVL__ASM_END(EVL__CTX_START_SYM));
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)

enum {
    EVL__I386_MXCSR, EVL__I386_X87_CONTROL, EVL__I386_EDI, EVL__I386_ESI, EVL__I386_EBX, EVL__I386_EBP,
    EVL__I386_RETURN, EVL__I386_FRAME_WORDS
};

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 16, EVL__I386_FRAME_WORDS);
    unsigned short fcw;
    __asm__ __volatile__("fnstcw %0" : "=m"(fcw));
    w[EVL__I386_X87_CONTROL] = fcw;
#if defined(__SSE__)
    {
        unsigned int mxcsr;
        __asm__ __volatile__("stmxcsr %0" : "=m"(mxcsr));
        w[EVL__I386_MXCSR] = mxcsr;
    }
#endif
    w[EVL__I386_EBX] = (uintptr_t)&evl__ctx_entry;
    w[EVL__I386_ESI] = (uintptr_t)ctx;
    w[EVL__I386_RETURN] = (uintptr_t)&evl__ctx_start_asm;
    ctx->sp = w;
}
#endif /* >>cpu i386 System V */

/* ---- >>cpu AArch64 ---------------------------------------------------------------------------
   Callee-saved (AAPCS64 6.1.1/6.1.2): x19-x28, x29 (fp), sp, and the low 64 bits of v8-v15, i.e.
   d8-d15.  x30 (lr) holds our return address, so it is saved too.  x18 is the platform register
   (reserved on Apple and Windows): not ours to touch.  FPCR is a "global register" in AAPCS64: its
   mode bits (rounding, exception enables, flush-to-zero) change only through calls meant to change
   the program's global FP state, like fesetround, so they are thread-wide, not per call, and a
   context switch must leave them alone; FPSR holds status flags that are not preserved.  Neither
   is saved.  The frame is 160 bytes, which keeps sp 16-aligned as the hardware requires. */
#if defined(EVL__CTX_AARCH64)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_aarch64_v1"
#define EVL__CTX_START_SYM "evl__ctx_start_aarch64_v1"
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 0
#define EVL__CTX_BACKEND_NAME "asm AArch64"
__asm__(
    EVL__ASM_BEGIN(EVL__CTX_SWAP_SYM)
#if defined(__ARM_FEATURE_BTI_DEFAULT)
    /* A linker veneer reaches a far function with "br x16/x17", which needs a landing pad when
       branch target identification is on. */
    "    hint #34\n"
#endif
    "    sub sp, sp, #160\n"
    "    stp x19, x20, [sp, #0]\n"
    "    stp x21, x22, [sp, #16]\n"
    "    stp x23, x24, [sp, #32]\n"
    "    stp x25, x26, [sp, #48]\n"
    "    stp x27, x28, [sp, #64]\n"
    "    stp x29, x30, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    mov x9, sp\n"
    "    str x9, [x0]\n"
    "    mov sp, x1\n"
    "    ldp x19, x20, [sp, #0]\n"
    "    ldp x21, x22, [sp, #16]\n"
    "    ldp x23, x24, [sp, #32]\n"
    "    ldp x25, x26, [sp, #48]\n"
    "    ldp x27, x28, [sp, #64]\n"
    "    ldp x29, x30, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    add sp, sp, #160\n"
    "    ret\n"
    EVL__ASM_END(EVL__CTX_SWAP_SYM)
    EVL__ASM_BEGIN(EVL__CTX_START_SYM)
    /* Reached by "ret", which branch target identification does not check. */
    "    .cfi_startproc\n"
    "    .cfi_undefined x30\n"
    "    mov x0, x20\n"
    "    blr x19\n"
    "    brk #1\n"
    "    .cfi_endproc\n"
    EVL__ASM_END(EVL__CTX_START_SYM));
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)

enum {
    EVL__A64_X19, EVL__A64_X20, EVL__A64_X21, EVL__A64_X22, EVL__A64_X23, EVL__A64_X24, EVL__A64_X25,
    EVL__A64_X26, EVL__A64_X27, EVL__A64_X28, EVL__A64_X29, EVL__A64_X30, EVL__A64_D8, EVL__A64_D15 = EVL__A64_D8 + 7,
    EVL__A64_FRAME_WORDS
};

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 16, EVL__A64_FRAME_WORDS);
    w[EVL__A64_X19] = (uintptr_t)&evl__ctx_entry;
    w[EVL__A64_X20] = (uintptr_t)ctx;
    w[EVL__A64_X30] = (uintptr_t)&evl__ctx_start_asm;
    ctx->sp = w;
}
#endif /* >>cpu AArch64 */

/* ---- >>cpu ARM 32-bit (ARM and Thumb-2) --------------------------------------------------------
   Callee-saved (AAPCS 5.1.1): r4-r11 and sp; lr holds our return address and is saved with them.
   With VFP (any build where the compiler may use VFP registers, i.e. __ARM_FP: hard-float and
   softfp alike) s16-s31 = d8-d15 are callee-saved too (5.1.2.1); d16-d31 are not.  FPSCR is a
   global register: its rounding, flush-to-zero and exception-enable bits change only through
   functions meant to change the global FP state, its flags are not preserved, and its vector
   length/stride must be zero at calls.  So it is not saved: the rounding mode is per thread, not
   per context.  A soft-float build (no __ARM_FP) saves no VFP register.  It is only correct if no
   code in the program keeps values in d8-d15, i.e. everything is soft-float; the symbol name says
   which variant it is.  The same code assembles as ARM or Thumb-2 (str/mov to and from sp need a
   plain register in Thumb, hence r2); pop into pc switches instruction sets as needed (ARMv5T and
   later).  .cantunwind gives the routines an EHABI index entry, so an unwinder looking up these
   addresses finds "stop" rather than the neighbouring function.  The frame is not a multiple of 8
   bytes, but nothing is called while it is half-built, and sp is 8-aligned again once everything
   is popped. */
#if defined(EVL__CTX_ARM)
/* The symbol names differ between ARM and Thumb builds too, so that merged copies are always
   byte-identical; either works from either state. */
#if defined(__ARM_FP) && defined(__thumb__)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_thumb_vfp_v1"
#elif defined(__ARM_FP)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_arm_vfp_v1"
#elif defined(__thumb__)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_thumb_v1"
#else
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_arm_v1"
#endif
#if defined(__thumb__)
#define EVL__CTX_START_SYM "evl__ctx_start_thumb_v1"
#define EVL__CTX_ARM_ISA ".thumb\n"
#else
#define EVL__CTX_START_SYM "evl__ctx_start_arm_v1"
#define EVL__CTX_ARM_ISA ".arm\n"
#endif
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 0
#if defined(__ARM_FP)
#define EVL__CTX_BACKEND_NAME "asm ARM (VFP d8-d15)"
#else
#define EVL__CTX_BACKEND_NAME "asm ARM (no VFP)"
#endif
/* vpush and vpop go in as numbers: clang with LTO (and so zig cc by default) assembles module-level
   asm for the target's base CPU, which refuses VFP mnemonics even in a build for a CPU with VFP,
   and an .fpu directive would change the assembler's FPU for the compiler's code after it.  The
   encodings are the same in ARM and Thumb-2 state. */
#if defined(__thumb__)
#define EVL__CTX_ARM_INST "    .inst.w "
#else
#define EVL__CTX_ARM_INST "    .inst "
#endif
__asm__(
    ".syntax unified\n"
    EVL__CTX_ARM_ISA
    EVL__ASM_BEGIN(EVL__CTX_SWAP_SYM)
    "    .fnstart\n"
    "    .cantunwind\n"
    "    push {r4-r11, lr}\n"
#if defined(__ARM_FP)
    EVL__CTX_ARM_INST "0xed2d8b10\n"  /* vpush {d8-d15} */
#endif
    "    mov r2, sp\n"
    "    str r2, [r0]\n"
    "    mov sp, r1\n"
#if defined(__ARM_FP)
    EVL__CTX_ARM_INST "0xecbd8b10\n"  /* vpop {d8-d15} */
#endif
    "    pop {r4-r11, pc}\n"
    "    .fnend\n"
    EVL__ASM_END(EVL__CTX_SWAP_SYM)
    EVL__ASM_BEGIN(EVL__CTX_START_SYM)
    "    .fnstart\n"
    "    .cantunwind\n"
    "    mov r0, r5\n"
    "    blx r4\n"
    "    udf #0\n"
    "    .fnend\n"
    EVL__ASM_END(EVL__CTX_START_SYM)
    EVL__CTX_ARM_ISA);   /* back to the instruction set the compiler is using */
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)
#undef EVL__CTX_ARM_INST

enum {
#if defined(__ARM_FP)
    EVL__ARM_D8, EVL__ARM_D15_HIGH = EVL__ARM_D8 + 15,   /* d8-d15, two words each */
#endif
    EVL__ARM_R4, EVL__ARM_R5, EVL__ARM_R6, EVL__ARM_R7, EVL__ARM_R8, EVL__ARM_R9, EVL__ARM_R10, EVL__ARM_R11,
    EVL__ARM_LR, EVL__ARM_FRAME_WORDS
};

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 8, EVL__ARM_FRAME_WORDS);   /* AAPCS: 8 bytes at calls */
    w[EVL__ARM_R4] = (uintptr_t)&evl__ctx_entry;
    w[EVL__ARM_R5] = (uintptr_t)ctx;
    w[EVL__ARM_LR] = (uintptr_t)&evl__ctx_start_asm;   /* the Thumb bit included */
    ctx->sp = w;
}
#endif /* >>cpu ARM 32-bit */

/* ---- >>cpu RISC-V 64 --------------------------------------------------------------------------
   Callee-saved (RISC-V psABI, integer calling convention): s0-s11 and sp; ra holds our return
   address and is saved with them.  gp and tp are fixed for the whole thread and are left alone.
   With the F or D extension (__riscv_flen = 32 or 64) fs0-fs11 are callee-saved up to the ABI's FP
   width; under the soft-float ABI the psABI lets callers treat them as temporaries, but saving them
   whenever they exist is always correct and costs a few stores, so the choice follows
   __riscv_flen (the hardware), not the ABI.  fcsr (rounding mode and flags) has thread storage
   duration per the psABI, as C11 says of the floating-point environment: it is shared by all
   contexts of a thread and not saved.  The frame is padded to 16 bytes. */
#if defined(EVL__CTX_RISCV64)
#if defined(__riscv_flen) && __riscv_flen >= 64
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_rv64d_v1"
#define EVL__CTX_BACKEND_NAME "asm RISC-V 64 (fs0-fs11 as D)"
#define EVL__CTX_RV_FRAME "208"
#elif defined(__riscv_flen) && __riscv_flen == 32
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_rv64f_v1"
#define EVL__CTX_BACKEND_NAME "asm RISC-V 64 (fs0-fs11 as F)"
#define EVL__CTX_RV_FRAME "160"
#else
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_rv64_v1"
#define EVL__CTX_BACKEND_NAME "asm RISC-V 64 (no FPU)"
#define EVL__CTX_RV_FRAME "112"
#endif
#define EVL__CTX_START_SYM "evl__ctx_start_rv64_v1"
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 0
__asm__(
    EVL__ASM_BEGIN(EVL__CTX_SWAP_SYM)
    "    addi sp, sp, -" EVL__CTX_RV_FRAME "\n"
    "    sd ra, 0(sp)\n"
    "    sd s0, 8(sp)\n"
    "    sd s1, 16(sp)\n"
    "    sd s2, 24(sp)\n"
    "    sd s3, 32(sp)\n"
    "    sd s4, 40(sp)\n"
    "    sd s5, 48(sp)\n"
    "    sd s6, 56(sp)\n"
    "    sd s7, 64(sp)\n"
    "    sd s8, 72(sp)\n"
    "    sd s9, 80(sp)\n"
    "    sd s10, 88(sp)\n"
    "    sd s11, 96(sp)\n"
#if defined(__riscv_flen) && __riscv_flen >= 64
    "    fsd fs0, 104(sp)\n"
    "    fsd fs1, 112(sp)\n"
    "    fsd fs2, 120(sp)\n"
    "    fsd fs3, 128(sp)\n"
    "    fsd fs4, 136(sp)\n"
    "    fsd fs5, 144(sp)\n"
    "    fsd fs6, 152(sp)\n"
    "    fsd fs7, 160(sp)\n"
    "    fsd fs8, 168(sp)\n"
    "    fsd fs9, 176(sp)\n"
    "    fsd fs10, 184(sp)\n"
    "    fsd fs11, 192(sp)\n"
#elif defined(__riscv_flen) && __riscv_flen == 32
    "    fsw fs0, 104(sp)\n"
    "    fsw fs1, 108(sp)\n"
    "    fsw fs2, 112(sp)\n"
    "    fsw fs3, 116(sp)\n"
    "    fsw fs4, 120(sp)\n"
    "    fsw fs5, 124(sp)\n"
    "    fsw fs6, 128(sp)\n"
    "    fsw fs7, 132(sp)\n"
    "    fsw fs8, 136(sp)\n"
    "    fsw fs9, 140(sp)\n"
    "    fsw fs10, 144(sp)\n"
    "    fsw fs11, 148(sp)\n"
#endif
    "    sd sp, 0(a0)\n"
    "    mv sp, a1\n"
    "    ld ra, 0(sp)\n"
    "    ld s0, 8(sp)\n"
    "    ld s1, 16(sp)\n"
    "    ld s2, 24(sp)\n"
    "    ld s3, 32(sp)\n"
    "    ld s4, 40(sp)\n"
    "    ld s5, 48(sp)\n"
    "    ld s6, 56(sp)\n"
    "    ld s7, 64(sp)\n"
    "    ld s8, 72(sp)\n"
    "    ld s9, 80(sp)\n"
    "    ld s10, 88(sp)\n"
    "    ld s11, 96(sp)\n"
#if defined(__riscv_flen) && __riscv_flen >= 64
    "    fld fs0, 104(sp)\n"
    "    fld fs1, 112(sp)\n"
    "    fld fs2, 120(sp)\n"
    "    fld fs3, 128(sp)\n"
    "    fld fs4, 136(sp)\n"
    "    fld fs5, 144(sp)\n"
    "    fld fs6, 152(sp)\n"
    "    fld fs7, 160(sp)\n"
    "    fld fs8, 168(sp)\n"
    "    fld fs9, 176(sp)\n"
    "    fld fs10, 184(sp)\n"
    "    fld fs11, 192(sp)\n"
#elif defined(__riscv_flen) && __riscv_flen == 32
    "    flw fs0, 104(sp)\n"
    "    flw fs1, 108(sp)\n"
    "    flw fs2, 112(sp)\n"
    "    flw fs3, 116(sp)\n"
    "    flw fs4, 120(sp)\n"
    "    flw fs5, 124(sp)\n"
    "    flw fs6, 128(sp)\n"
    "    flw fs7, 132(sp)\n"
    "    flw fs8, 136(sp)\n"
    "    flw fs9, 140(sp)\n"
    "    flw fs10, 144(sp)\n"
    "    flw fs11, 148(sp)\n"
#endif
    "    addi sp, sp, " EVL__CTX_RV_FRAME "\n"
    "    ret\n"
    EVL__ASM_END(EVL__CTX_SWAP_SYM)
    EVL__ASM_BEGIN(EVL__CTX_START_SYM)
    "    .cfi_startproc\n"
    "    .cfi_undefined ra\n"
    "    mv a0, s2\n"
    "    jalr s1\n"
    "    ebreak\n"
    "    .cfi_endproc\n"
    EVL__ASM_END(EVL__CTX_START_SYM));
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)

enum {
    EVL__RV_RA, EVL__RV_S0, EVL__RV_S1, EVL__RV_S2, EVL__RV_S3, EVL__RV_S4, EVL__RV_S5, EVL__RV_S6, EVL__RV_S7,
    EVL__RV_S8, EVL__RV_S9, EVL__RV_S10, EVL__RV_S11,
    EVL__RV_FS0,                                /* fs0-fs11 from here, as wide as the FPU's registers */
#if defined(__riscv_flen) && __riscv_flen >= 64
    EVL__RV_FRAME_WORDS = 26                    /* 208 bytes */
#elif defined(__riscv_flen) && __riscv_flen == 32
    EVL__RV_FRAME_WORDS = 20                    /* 160 bytes */
#else
    EVL__RV_FRAME_WORDS = 14                    /* 112 bytes */
#endif
};

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 16, EVL__RV_FRAME_WORDS);
    w[EVL__RV_RA] = (uintptr_t)&evl__ctx_start_asm;
    w[EVL__RV_S1] = (uintptr_t)&evl__ctx_entry;
    w[EVL__RV_S2] = (uintptr_t)ctx;
    ctx->sp = w;
}
#endif /* >>cpu RISC-V 64 */

/* ---- >>cpu MIPS32 (o32) -----------------------------------------------------------------------
   Callee-saved (SysV MIPS psABI, o32, "Function calling sequence"): $s0-$s7 ($16-$23), $s8/$fp
   ($30) and $sp; $ra holds our return address and is saved with them.  $gp is not callee-saved in
   o32: callers restore it after each call where it matters (PIC), and it is the same for all code
   of a module, so a switch leaves it alone.  With a hardware FPU (__mips_hard_float) the o32 ABI
   makes $f20-$f31 callee-saved as six even/odd pairs; the FR=1 extensions (FPXX, FP64) keep only
   the even registers $f20, $f22 ... $f30, each 64 bits wide.  sdc1/ldc1 on the even registers are
   right in every mode: with FR=0 they move the pair, with FR=1 the whole even register.  So one
   switch serves -mfp32, -mfpxx and -mfp64 alike (ldc1/sdc1 need MIPS II; MIPS I takes ucontext,
   and so does -msingle-float, whose ABI is another).  A soft-float build (__mips_soft_float)
   saves no FP register: like the ARM variant, it is only correct if no code in the program keeps
   values in $f20-$f31, and the symbol name says which variant it is.  FCSR (rounding mode, enables,
   flags) is not mentioned by the psABI; like C11's floating-point environment it belongs to the
   thread and is left alone.  A caller reserves 16 bytes at the bottom of its frame for the
   callee's arguments, so start gets such an area; the stack is 8-aligned at calls.  The routines
   assemble as standard MIPS (not MIPS16 or microMIPS) with the assembler filling delay slots. */
#if defined(EVL__CTX_MIPS32)
#if defined(__mips_hard_float)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_mips32_fpu_v1"
#define EVL__CTX_BACKEND_NAME "asm MIPS32 o32 ($f20-$f31)"
#define EVL__CTX_MIPS32_FRAME "88"
#else
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_mips32_v1"
#define EVL__CTX_BACKEND_NAME "asm MIPS32 o32 (soft-float)"
#define EVL__CTX_MIPS32_FRAME "40"
#endif
#define EVL__CTX_START_SYM "evl__ctx_start_mips32_v1"
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 0
#if defined(__mips_hard_float)
#define EVL__CTX_MIPS32_FPU(op, base) /* base: offset of the even/odd pairs, six doubles */           \
    "    " op " $f20, " base "+0($sp)\n"                                                           \
    "    " op " $f22, " base "+8($sp)\n"                                                           \
    "    " op " $f24, " base "+16($sp)\n"                                                          \
    "    " op " $f26, " base "+24($sp)\n"                                                          \
    "    " op " $f28, " base "+32($sp)\n"                                                          \
    "    " op " $f30, " base "+40($sp)\n"
#define EVL__CTX_MIPS32_GPR_BASE "48"
#else
#define EVL__CTX_MIPS32_FPU(op, base) ""
#define EVL__CTX_MIPS32_GPR_BASE "0"
#endif
#define EVL__CTX_MIPS32_GPR(op)                                                                    \
    "    " op " $s0, " EVL__CTX_MIPS32_GPR_BASE "+0($sp)\n"                                        \
    "    " op " $s1, " EVL__CTX_MIPS32_GPR_BASE "+4($sp)\n"                                        \
    "    " op " $s2, " EVL__CTX_MIPS32_GPR_BASE "+8($sp)\n"                                        \
    "    " op " $s3, " EVL__CTX_MIPS32_GPR_BASE "+12($sp)\n"                                       \
    "    " op " $s4, " EVL__CTX_MIPS32_GPR_BASE "+16($sp)\n"                                       \
    "    " op " $s5, " EVL__CTX_MIPS32_GPR_BASE "+20($sp)\n"                                       \
    "    " op " $s6, " EVL__CTX_MIPS32_GPR_BASE "+24($sp)\n"                                       \
    "    " op " $s7, " EVL__CTX_MIPS32_GPR_BASE "+28($sp)\n"                                       \
    "    " op " $fp, " EVL__CTX_MIPS32_GPR_BASE "+32($sp)\n"                                       \
    "    " op " $ra, " EVL__CTX_MIPS32_GPR_BASE "+36($sp)\n"
__asm__(
    EVL__ASM_BEGIN(EVL__CTX_SWAP_SYM)
    "    .set push\n"
    "    .set nomips16\n"
    "    .set nomicromips\n"
    "    .set reorder\n"
    "    addiu $sp, $sp, -" EVL__CTX_MIPS32_FRAME "\n"
    EVL__CTX_MIPS32_GPR("sw")
    EVL__CTX_MIPS32_FPU("sdc1", "0")
    "    sw $sp, 0($a0)\n"            /* *save_sp = sp */
    "    move $sp, $a1\n"             /* sp = load_sp: now on the other stack */
    EVL__CTX_MIPS32_GPR("lw")
    EVL__CTX_MIPS32_FPU("ldc1", "0")
    "    addiu $sp, $sp, " EVL__CTX_MIPS32_FRAME "\n"
    "    jr $ra\n"
    "    .set pop\n"
    EVL__ASM_END(EVL__CTX_SWAP_SYM)
    EVL__ASM_BEGIN(EVL__CTX_START_SYM)
    "    .set push\n"
    "    .set nomips16\n"
    "    .set nomicromips\n"
    "    .set reorder\n"
    "    .cfi_startproc\n"
    "    .cfi_undefined 31\n"
    "    move $a0, $s1\n"
    "    move $t9, $s0\n"             /* PIC code finds its $gp from $t9 */
    "    jalr $t9\n"
    "    break\n"
    "    .cfi_endproc\n"
    "    .set pop\n"
    EVL__ASM_END(EVL__CTX_START_SYM));
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)
#undef EVL__CTX_MIPS32_FPU
#undef EVL__CTX_MIPS32_GPR
#undef EVL__CTX_MIPS32_GPR_BASE

enum {
#if defined(__mips_hard_float)
    EVL__MIPS32_F20, EVL__MIPS32_F31 = EVL__MIPS32_F20 + 11,   /* $f20-$f31, a double per pair */
#endif
    EVL__MIPS32_S0, EVL__MIPS32_S1, EVL__MIPS32_S2, EVL__MIPS32_S3, EVL__MIPS32_S4, EVL__MIPS32_S5,
    EVL__MIPS32_S6, EVL__MIPS32_S7, EVL__MIPS32_FP, EVL__MIPS32_RA,
    EVL__MIPS32_ARGS, EVL__MIPS32_ARGS_END = EVL__MIPS32_ARGS + 3, /* start's callee may store $a0-$a3 */
    EVL__MIPS32_FRAME_WORDS
};

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 8, EVL__MIPS32_FRAME_WORDS);
    w[EVL__MIPS32_S0] = (uintptr_t)&evl__ctx_entry;
    w[EVL__MIPS32_S1] = (uintptr_t)ctx;
    w[EVL__MIPS32_RA] = (uintptr_t)&evl__ctx_start_asm;
    ctx->sp = w;
}
#endif /* >>cpu MIPS32 (o32) */

/* ---- >>cpu MIPS64 (n64) -----------------------------------------------------------------------
   Callee-saved (MIPSpro N32/64 ABI handbook, "Calling convention implementations"; the n64 ABI):
   $s0-$s7, $gp, $s8/$fp and $sp, all 64 bits; $ra holds our return address and is saved with
   them.  Unlike o32, n64 makes $gp callee-saved, so it travels with each context.  With a
   hardware FPU, $f24-$f31 are callee-saved, each 64 bits (FR=1 always).  A soft-float build saves
   no FP register (see MIPS32).  FCSR is per thread, as on MIPS32.  The stack is 16-aligned and a
   caller reserves no argument area. */
#if defined(EVL__CTX_MIPS64)
#if defined(__mips_hard_float)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_mips64_fpu_v1"
#define EVL__CTX_BACKEND_NAME "asm MIPS64 n64 ($f24-$f31)"
#define EVL__CTX_MIPS64_FRAME "160"
#define EVL__CTX_MIPS64_FPU(op)                                                                    \
    "    " op " $f24, 88($sp)\n"                                                                   \
    "    " op " $f25, 96($sp)\n"                                                                   \
    "    " op " $f26, 104($sp)\n"                                                                  \
    "    " op " $f27, 112($sp)\n"                                                                  \
    "    " op " $f28, 120($sp)\n"                                                                  \
    "    " op " $f29, 128($sp)\n"                                                                  \
    "    " op " $f30, 136($sp)\n"                                                                  \
    "    " op " $f31, 144($sp)\n"
#else
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_mips64_v1"
#define EVL__CTX_BACKEND_NAME "asm MIPS64 n64 (soft-float)"
#define EVL__CTX_MIPS64_FRAME "96"
#define EVL__CTX_MIPS64_FPU(op) ""
#endif
#define EVL__CTX_START_SYM "evl__ctx_start_mips64_v1"
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 0
#define EVL__CTX_MIPS64_GPR(op)                                                                    \
    "    " op " $s0, 0($sp)\n"                                                                     \
    "    " op " $s1, 8($sp)\n"                                                                     \
    "    " op " $s2, 16($sp)\n"                                                                    \
    "    " op " $s3, 24($sp)\n"                                                                    \
    "    " op " $s4, 32($sp)\n"                                                                    \
    "    " op " $s5, 40($sp)\n"                                                                    \
    "    " op " $s6, 48($sp)\n"                                                                    \
    "    " op " $s7, 56($sp)\n"                                                                    \
    "    " op " $gp, 64($sp)\n"                                                                    \
    "    " op " $fp, 72($sp)\n"                                                                    \
    "    " op " $ra, 80($sp)\n"
__asm__(
    EVL__ASM_BEGIN(EVL__CTX_SWAP_SYM)
    "    .set push\n"
    "    .set nomips16\n"
    "    .set nomicromips\n"
    "    .set reorder\n"
    "    daddiu $sp, $sp, -" EVL__CTX_MIPS64_FRAME "\n"
    EVL__CTX_MIPS64_GPR("sd")
    EVL__CTX_MIPS64_FPU("sdc1")
    "    sd $sp, 0($a0)\n"
    "    move $sp, $a1\n"
    EVL__CTX_MIPS64_GPR("ld")
    EVL__CTX_MIPS64_FPU("ldc1")
    "    daddiu $sp, $sp, " EVL__CTX_MIPS64_FRAME "\n"
    "    jr $ra\n"
    "    .set pop\n"
    EVL__ASM_END(EVL__CTX_SWAP_SYM)
    EVL__ASM_BEGIN(EVL__CTX_START_SYM)
    "    .set push\n"
    "    .set nomips16\n"
    "    .set nomicromips\n"
    "    .set reorder\n"
    "    .cfi_startproc\n"
    "    .cfi_undefined 31\n"
    "    move $a0, $s1\n"
    "    move $t9, $s0\n"
    "    jalr $t9\n"
    "    break\n"
    "    .cfi_endproc\n"
    "    .set pop\n"
    EVL__ASM_END(EVL__CTX_START_SYM));
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)
#undef EVL__CTX_MIPS64_FPU
#undef EVL__CTX_MIPS64_GPR

enum {
    EVL__MIPS64_S0, EVL__MIPS64_S1, EVL__MIPS64_S2, EVL__MIPS64_S3, EVL__MIPS64_S4, EVL__MIPS64_S5,
    EVL__MIPS64_S6, EVL__MIPS64_S7, EVL__MIPS64_GP, EVL__MIPS64_FP, EVL__MIPS64_RA,
#if defined(__mips_hard_float)
    EVL__MIPS64_F24, EVL__MIPS64_F31 = EVL__MIPS64_F24 + 7,
#endif
    EVL__MIPS64_PAD,                            /* to 16 bytes */
    EVL__MIPS64_FRAME_WORDS
};

/* A new context starts with its creator's $gp, which is what start's callee expects of a caller in
   the same module. */
EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 16, EVL__MIPS64_FRAME_WORDS);
    uintptr_t gp;
    __asm__("move %0, $gp" : "=r"(gp));
    w[EVL__MIPS64_S0] = (uintptr_t)&evl__ctx_entry;
    w[EVL__MIPS64_S1] = (uintptr_t)ctx;
    w[EVL__MIPS64_GP] = gp;
    w[EVL__MIPS64_RA] = (uintptr_t)&evl__ctx_start_asm;
    ctx->sp = w;
}
#endif /* >>cpu MIPS64 (n64) */

/* ---- >>cpu PowerPC 32-bit (SysV) --------------------------------------------------------------
   Callee-saved (System V ABI PowerPC Processor Supplement, "Registers"; the AltiVec PIM for the
   vector registers): r14-r31, f14-f31 (64 bits each) with an FPU, the condition register fields
   CR2-CR4, r1; the link register holds our return address and is saved with them.  r2 (the thread
   pointer) and r13 (the small-data anchor) are fixed for the thread and left alone.  With AltiVec
   (__ALTIVEC__: any build where the compiler may use vector registers), v20-v31 and the VRSAVE
   register are callee-saved too.  A soft-float build (_SOFT_FLOAT or __NO_FPRS__) saves no FP
   register: it is only correct if no code in the program keeps values in f14-f31, and the symbol
   name says which variant it is (e500's SPE, which keeps doubles in the upper halves of the GPRs,
   takes ucontext).  FPSCR holds the rounding mode, enables and flags; like the ELFv2 ABI's
   "limited-access" rule for it, its modes change only through calls meant to change the thread's
   FP environment (fesetround), so it is per thread and not saved.  The frame keeps the ABI's
   layout: a back chain at 0, 4 left for a callee's LR, the saved LR, CR, GPRs, FPRs, VRSAVE and
   VRs above; the stack is 16-aligned, and start gets a minimal frame (back chain 0, so stack
   walks end there) for the function it calls. */
#if defined(EVL__CTX_PPC32)
#if !defined(_SOFT_FLOAT) && !defined(__NO_FPRS__)
#define EVL__CTX_PPC32_FPU 1
#endif
#if defined(EVL__CTX_PPC32_FPU) && defined(__ALTIVEC__)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_ppc32_fpu_altivec_v1"
#define EVL__CTX_BACKEND_NAME "asm PowerPC 32 (f14-f31, v20-v31)"
#define EVL__CTX_PPC32_FRAME "432"
#define EVL__CTX_PPC32_VR "232"             /* VRSAVE; v20-v31 from 240 */
#elif defined(EVL__CTX_PPC32_FPU)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_ppc32_fpu_v1"
#define EVL__CTX_BACKEND_NAME "asm PowerPC 32 (f14-f31)"
#define EVL__CTX_PPC32_FRAME "240"
#elif defined(__ALTIVEC__)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_ppc32_altivec_v1"
#define EVL__CTX_BACKEND_NAME "asm PowerPC 32 (soft-float, v20-v31)"
#define EVL__CTX_PPC32_FRAME "288"
#define EVL__CTX_PPC32_VR "88"              /* VRSAVE; v20-v31 from 96 */
#else
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_ppc32_v1"
#define EVL__CTX_BACKEND_NAME "asm PowerPC 32 (soft-float)"
#define EVL__CTX_PPC32_FRAME "96"
#endif
#define EVL__CTX_START_SYM "evl__ctx_start_ppc32_v1"
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 0
/* op on each of r14-r31 or f14-f31 (kind "r" or "f"), size bytes apart from byte at of the
   frame: the assembler repeats the line and computes each offset */
#define EVL__CTX_PPC32_EACH(op, kind, at, size)                                                    \
    "    .irp i, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"                          \
    "    " op " %" kind "\\i, (" at "+" size "*(\\i-14))(%r1)\n"                                   \
    "    .endr\n"
#define EVL__CTX_PPC32_GPR(op) EVL__CTX_PPC32_EACH(op, "r", "16", "4")
#if defined(EVL__CTX_PPC32_FPU)
#define EVL__CTX_PPC32_FPR(op) EVL__CTX_PPC32_EACH(op, "f", "88", "8")
#else
#define EVL__CTX_PPC32_FPR(op) ""
#endif
#if defined(__ALTIVEC__)
/* VRSAVE at the given offset, then v20-v31 16 bytes apart from the next 16-byte boundary */
#define EVL__CTX_PPC32_VRS(op, spr)                                                                \
    "    " spr " %r0\n"                                                                            \
    "    .irp i, 20,21,22,23,24,25,26,27,28,29,30,31\n"                                            \
    "    li %r5, " EVL__CTX_PPC32_VR "+8+16*(\\i-20)\n"                                            \
    "    " op " %v\\i, %r1, %r5\n"                                                                 \
    "    .endr\n"
#define EVL__CTX_PPC32_SAVE_VR                                                                     \
    EVL__CTX_PPC32_VRS("stvx", "mfvrsave") "    stw %r0, " EVL__CTX_PPC32_VR "(%r1)\n"
#define EVL__CTX_PPC32_LOAD_VR                                                                     \
    "    lwz %r0, " EVL__CTX_PPC32_VR "(%r1)\n" EVL__CTX_PPC32_VRS("lvx", "mtvrsave")
#else
#define EVL__CTX_PPC32_SAVE_VR ""
#define EVL__CTX_PPC32_LOAD_VR ""
#endif
__asm__(
    EVL__ASM_BEGIN(EVL__CTX_SWAP_SYM)
    "    mflr %r0\n"
    "    stwu %r1, -" EVL__CTX_PPC32_FRAME "(%r1)\n"
    "    stw %r0, 8(%r1)\n"
    "    mfcr %r0\n"
    "    stw %r0, 12(%r1)\n"
    EVL__CTX_PPC32_GPR("stw")
    EVL__CTX_PPC32_FPR("stfd")
    EVL__CTX_PPC32_SAVE_VR
    "    stw %r1, 0(%r3)\n"           /* *save_sp = sp */
    "    mr %r1, %r4\n"               /* sp = load_sp: now on the other stack */
    "    lwz %r0, 8(%r1)\n"
    "    mtlr %r0\n"
    "    lwz %r0, 12(%r1)\n"
    "    mtcrf 0x38, %r0\n"           /* CR2-CR4 only: the other fields are the caller's to lose */
    EVL__CTX_PPC32_GPR("lwz")
    EVL__CTX_PPC32_FPR("lfd")
    EVL__CTX_PPC32_LOAD_VR
    "    addi %r1, %r1, " EVL__CTX_PPC32_FRAME "\n"
    "    blr\n"
    EVL__ASM_END(EVL__CTX_SWAP_SYM));
/* A statement of its own: C99 compilers need take no string literal longer than 4095 bytes. */
__asm__(
    EVL__ASM_BEGIN(EVL__CTX_START_SYM)
    "    .cfi_startproc\n"
    "    .cfi_undefined 65\n"         /* the link register: no caller to unwind to */
    "    mtctr %r14\n"
    "    mr %r3, %r15\n"
    "    bctrl\n"
    "    trap\n"
    "    .cfi_endproc\n"
    EVL__ASM_END(EVL__CTX_START_SYM));
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)
#undef EVL__CTX_PPC32_EACH
#undef EVL__CTX_PPC32_GPR
#undef EVL__CTX_PPC32_FPR
#undef EVL__CTX_PPC32_VRS
#undef EVL__CTX_PPC32_SAVE_VR
#undef EVL__CTX_PPC32_LOAD_VR

enum {
    EVL__PPC32_BACK_CHAIN, EVL__PPC32_CALLEE_LR, EVL__PPC32_LR, EVL__PPC32_CR,
    EVL__PPC32_R14, EVL__PPC32_R15, EVL__PPC32_R31 = EVL__PPC32_R14 + 17,
#if defined(EVL__CTX_PPC32_FPU)
    EVL__PPC32_F14, EVL__PPC32_F31_LOW = EVL__PPC32_F14 + 35,   /* f14-f31, two words each */
#endif
#if defined(__ALTIVEC__)
    EVL__PPC32_VRSAVE, EVL__PPC32_V20 = EVL__PPC32_VRSAVE + 2,     /* v20-v31 16-aligned, four words each */
    EVL__PPC32_V31_LAST = EVL__PPC32_V20 + 47,
#endif
    EVL__PPC32_SAVED_END,
    EVL__PPC32_START = (EVL__PPC32_SAVED_END + 3) / 4 * 4, /* the frame is a multiple of 16 bytes */
    EVL__PPC32_START_END = EVL__PPC32_START + 3, /* start's frame: back chain, a callee's LR, padding */
    EVL__PPC32_FRAME_WORDS
};

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 16, EVL__PPC32_FRAME_WORDS);
#if defined(__ALTIVEC__)
    uint32_t vrsave;
    __asm__ __volatile__("mfvrsave %0" : "=r"(vrsave));
    w[EVL__PPC32_VRSAVE] = vrsave;              /* the creator's, as a new thread inherits it */
#endif
    w[EVL__PPC32_LR] = (uintptr_t)&evl__ctx_start_asm;
    w[EVL__PPC32_R14] = (uintptr_t)&evl__ctx_entry;
    w[EVL__PPC32_R15] = (uintptr_t)ctx;
    ctx->sp = w;
}
#undef EVL__CTX_PPC32_FPU
#endif /* >>cpu PowerPC 32-bit */

/* ---- >>cpu PowerPC 64-bit (ELFv2 and ELFv1) ----------------------------------------------------
   Callee-saved (64-bit ELF V2 ABI Specification 2.2.1.1 "Register Roles"; 64-bit PowerPC ELF ABI
   Supplement 1.9, 3.2.1 for ELFv1): r14-r31, f14-f31 (doubleword 0 of vs14-vs31), the condition
   register fields CR2-CR4, r1; the link register holds our return address and is saved with them.
   With AltiVec or VSX (__ALTIVEC__; always on little-endian ELFv2, which requires POWER8), v20-v31
   (vs52-vs63) are callee-saved in full, and under ELFv1 also VRSAVE, which ELFv2 reserves (so it
   is left alone there).  r13 is the thread pointer, fixed.  r2, the TOC pointer, is nonvolatile
   too: a call to a function in the same module (the switch is one) does not reload it, so each
   context keeps the TOC of the code it switched from, which matters once code of several modules
   (a program and a shared library) runs on fibers.  FPSCR is "limited-access": its modes change
   only through calls meant to change them, so it is per thread and not saved.  A soft-float build
   (_SOFT_FLOAT) saves no FP register.  ELFv1 function pointers point to descriptors (entry
   address, TOC, environment): start calls entry through its descriptor, and a new frame's return
   address is the code address read from start's own descriptor, which the assembly provides in
   .opd next to the code.  ELFv2 calls through a pointer with the function's address in r12, from
   which it computes its TOC.  The stack is 16-aligned; the frame has the ABI's header (back
   chain, CR, LR, TOC slots) with the saved state above, and start gets a minimal frame with a
   zero back chain (32 bytes under ELFv2, 112 with the parameter save area under ELFv1). */
#if defined(EVL__CTX_PPC64)
#if !defined(_SOFT_FLOAT) && !defined(__NO_FPRS__)
#define EVL__CTX_PPC64_FPU 1
#endif
#if _CALL_ELF == 2
#define EVL__CTX_PPC64_ABI "elfv2"
#define EVL__CTX_PPC64_START_FRAME 4            /* words: back chain, CR, LR, TOC */
#else
#define EVL__CTX_PPC64_ABI "elfv1"
#define EVL__CTX_PPC64_START_FRAME 14           /* the same, two reserved, eight for parameters */
#endif
#if defined(EVL__CTX_PPC64_FPU) && defined(__ALTIVEC__)
#define EVL__CTX_PPC64_VARIANT "fpu_altivec"
#define EVL__CTX_BACKEND_NAME "asm PowerPC 64 " EVL__CTX_PPC64_ABI " (f14-f31, v20-v31)"
#define EVL__CTX_PPC64_FRAME "528"
#define EVL__CTX_PPC64_VR "320"             /* VRSAVE (ELFv1); v20-v31 from 336 */
#elif defined(EVL__CTX_PPC64_FPU)
#define EVL__CTX_PPC64_VARIANT "fpu"
#define EVL__CTX_BACKEND_NAME "asm PowerPC 64 " EVL__CTX_PPC64_ABI " (f14-f31)"
#define EVL__CTX_PPC64_FRAME "320"
#elif defined(__ALTIVEC__)
#define EVL__CTX_PPC64_VARIANT "altivec"
#define EVL__CTX_BACKEND_NAME "asm PowerPC 64 " EVL__CTX_PPC64_ABI " (soft-float, v20-v31)"
#define EVL__CTX_PPC64_FRAME "384"
#define EVL__CTX_PPC64_VR "176"             /* VRSAVE (ELFv1); v20-v31 from 192 */
#else
#define EVL__CTX_PPC64_VARIANT "soft"
#define EVL__CTX_BACKEND_NAME "asm PowerPC 64 " EVL__CTX_PPC64_ABI " (soft-float)"
#define EVL__CTX_PPC64_FRAME "176"
#endif
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_ppc64_" EVL__CTX_PPC64_ABI "_" EVL__CTX_PPC64_VARIANT "_v1"
#define EVL__CTX_START_SYM "evl__ctx_start_ppc64_" EVL__CTX_PPC64_ABI "_v1"
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 0
#if _CALL_ELF == 2
#define EVL__CTX_PPC64_BEGIN(sym) EVL__ASM_BEGIN(sym)
#define EVL__CTX_PPC64_END(sym) EVL__ASM_END(sym)
#else
/* ELFv1: the symbol names a descriptor in .opd, the code has a local label in the symbol's COMDAT
   group.  The descriptor stays in the one ordinary .opd section, as compilers emit it for inline
   functions: the linker maps calls to .opd symbols to code only within that section. */
#define EVL__CTX_PPC64_BEGIN(sym)                                                                  \
    ".ifndef " sym "\n"                                                                            \
    ".pushsection .opd,\"aw\",%progbits\n"                                                         \
    ".p2align 3\n"                                                                                 \
    ".weak " sym "\n"                                                                              \
    ".hidden " sym "\n"                                                                            \
    ".type " sym ",%function\n"                                                                    \
    sym ":\n"                                                                                      \
    ".quad .L." sym ",.TOC.@tocbase,0\n"                                                           \
    ".popsection\n"                                                                                \
    ".pushsection .text." sym ",\"axG\",%progbits," sym ",comdat\n"                                \
    ".p2align 4\n"                                                                                 \
    ".L." sym ":\n"
#define EVL__CTX_PPC64_END(sym) ".size " sym ",.-.L." sym "\n.popsection\n.endif\n"
#endif
/* op on each of r14-r31 or f14-f31 (kind "r" or "f"), size bytes apart from byte at of the
   frame: the assembler repeats the line and computes each offset */
#define EVL__CTX_PPC64_EACH(op, kind, at, size)                                                    \
    "    .irp i, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"                          \
    "    " op " %" kind "\\i, (" at "+" size "*(\\i-14))(%r1)\n"                                   \
    "    .endr\n"
#define EVL__CTX_PPC64_GPR(op) EVL__CTX_PPC64_EACH(op, "r", "32", "8")
#if defined(EVL__CTX_PPC64_FPU)
#define EVL__CTX_PPC64_FPR(op) EVL__CTX_PPC64_EACH(op, "f", "176", "8")
#else
#define EVL__CTX_PPC64_FPR(op) ""
#endif
#if defined(__ALTIVEC__)
#define EVL__CTX_PPC64_VRS(op)                                                                     \
    "    .irp i, 20,21,22,23,24,25,26,27,28,29,30,31\n"                                            \
    "    li %r5, " EVL__CTX_PPC64_VR "+16+16*(\\i-20)\n"                                           \
    "    " op " %v\\i, %r1, %r5\n"                                                                 \
    "    .endr\n"
#if _CALL_ELF == 2
#define EVL__CTX_PPC64_SAVE_VR EVL__CTX_PPC64_VRS("stvx")
#define EVL__CTX_PPC64_LOAD_VR EVL__CTX_PPC64_VRS("lvx")
#else
#define EVL__CTX_PPC64_SAVE_VR                                                                     \
    "    mfvrsave %r0\n    std %r0, " EVL__CTX_PPC64_VR "(%r1)\n" EVL__CTX_PPC64_VRS("stvx")
#define EVL__CTX_PPC64_LOAD_VR                                                                     \
    "    ld %r0, " EVL__CTX_PPC64_VR "(%r1)\n    mtvrsave %r0\n" EVL__CTX_PPC64_VRS("lvx")
#endif
#else
#define EVL__CTX_PPC64_SAVE_VR ""
#define EVL__CTX_PPC64_LOAD_VR ""
#endif
__asm__(
    EVL__CTX_PPC64_BEGIN(EVL__CTX_SWAP_SYM)
    "    mflr %r0\n"
    "    stdu %r1, -" EVL__CTX_PPC64_FRAME "(%r1)\n"
    "    std %r0, 16(%r1)\n"
    "    mfcr %r0\n"
    "    std %r0, 8(%r1)\n"
    "    std %r2, 24(%r1)\n"
    EVL__CTX_PPC64_GPR("std")
    EVL__CTX_PPC64_FPR("stfd")
    EVL__CTX_PPC64_SAVE_VR
    "    std %r1, 0(%r3)\n"           /* *save_sp = sp */
    "    mr %r1, %r4\n"               /* sp = load_sp: now on the other stack */
    "    ld %r0, 16(%r1)\n"
    "    mtlr %r0\n"
    "    ld %r0, 8(%r1)\n"
    "    mtcrf 0x38, %r0\n"           /* CR2-CR4 only */
    "    ld %r2, 24(%r1)\n"
    EVL__CTX_PPC64_GPR("ld")
    EVL__CTX_PPC64_FPR("lfd")
    EVL__CTX_PPC64_LOAD_VR
    "    addi %r1, %r1, " EVL__CTX_PPC64_FRAME "\n"
    "    blr\n"
    EVL__CTX_PPC64_END(EVL__CTX_SWAP_SYM));
/* A statement of its own: C99 compilers need take no string literal longer than 4095 bytes. */
__asm__(
    EVL__CTX_PPC64_BEGIN(EVL__CTX_START_SYM)
    "    .cfi_startproc\n"
    "    .cfi_undefined 65\n"         /* the link register: no caller to unwind to */
#if _CALL_ELF == 2
    "    mr %r12, %r14\n"             /* the callee's global entry computes its TOC from r12 */
    "    mtctr %r14\n"
#else
    "    ld %r0, 0(%r14)\n"           /* entry's descriptor: code, TOC, environment */
    "    ld %r2, 8(%r14)\n"
    "    ld %r11, 16(%r14)\n"
    "    mtctr %r0\n"
#endif
    "    mr %r3, %r15\n"
    "    bctrl\n"
    "    trap\n"
    "    .cfi_endproc\n"
    EVL__CTX_PPC64_END(EVL__CTX_START_SYM));
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)
#undef EVL__CTX_PPC64_BEGIN
#undef EVL__CTX_PPC64_END
#undef EVL__CTX_PPC64_EACH
#undef EVL__CTX_PPC64_GPR
#undef EVL__CTX_PPC64_FPR
#undef EVL__CTX_PPC64_VRS
#undef EVL__CTX_PPC64_SAVE_VR
#undef EVL__CTX_PPC64_LOAD_VR

enum {
    EVL__PPC64_BACK_CHAIN, EVL__PPC64_CR, EVL__PPC64_LR, EVL__PPC64_TOC,
    EVL__PPC64_R14, EVL__PPC64_R15, EVL__PPC64_R31 = EVL__PPC64_R14 + 17,
#if defined(EVL__CTX_PPC64_FPU)
    EVL__PPC64_F14, EVL__PPC64_F31 = EVL__PPC64_F14 + 17,
#endif
#if defined(__ALTIVEC__)
    EVL__PPC64_VRSAVE, EVL__PPC64_V20 = EVL__PPC64_VRSAVE + 2,     /* v20-v31 16-aligned, two words each */
    EVL__PPC64_V31_HIGH = EVL__PPC64_V20 + 23,
#endif
    EVL__PPC64_SAVED_END,
    EVL__PPC64_START = (EVL__PPC64_SAVED_END + 1) / 2 * 2, /* the frame is a multiple of 16 bytes */
    EVL__PPC64_START_END = EVL__PPC64_START + EVL__CTX_PPC64_START_FRAME - 1,
    EVL__PPC64_FRAME_WORDS
};

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 16, EVL__PPC64_FRAME_WORDS);
#if defined(__ALTIVEC__) && _CALL_ELF != 2
    uint32_t vrsave;
    __asm__ __volatile__("mfvrsave %0" : "=r"(vrsave));
    w[EVL__PPC64_VRSAVE] = vrsave;              /* the creator's, as a new thread inherits it */
#endif
#if _CALL_ELF == 2
    w[EVL__PPC64_LR] = (uintptr_t)&evl__ctx_start_asm;
#else
    w[EVL__PPC64_LR] = *(const uintptr_t *)(uintptr_t)&evl__ctx_start_asm;   /* code, from the descriptor */
#endif
    w[EVL__PPC64_R14] = (uintptr_t)&evl__ctx_entry;   /* ELFv1: its descriptor */
    w[EVL__PPC64_R15] = (uintptr_t)ctx;
    ctx->sp = w;
}
#undef EVL__CTX_PPC64_FPU
#undef EVL__CTX_PPC64_START_FRAME
#endif /* >>cpu PowerPC 64-bit */

/* ---- >>cpu s390x ------------------------------------------------------------------------------
   Callee-saved (s390x ELF ABI Supplement, "Register Preservation Rules"): r6-r13, r15 and f8-f15
   (the left halves of v8-v15; v16-v31 are volatile); r14 holds our return address and is saved
   with them.  The access registers a0/a1 (the thread pointer) are reserved.  The ABI leaves the
   floating-point control register open and points to POWER's FPSCR rule: its modes are changed only
   by calls meant to change the thread's FP environment, so it is per thread and not saved.  Every
   caller provides a 160-byte register save area at the bottom of its frame, with a standard slot
   for each of r6-r15 (from 48); the switch keeps r6-r14 there and f8-f15 in 64 bytes below, and
   start gets such an area (its back chain word 0, so stack walks end there) for the function it
   calls.  The stack is 8-aligned; new frames are 16-aligned. */
#if defined(EVL__CTX_S390X)
#define EVL__CTX_SWAP_SYM "evl__ctx_swap_s390x_v1"
#define EVL__CTX_START_SYM "evl__ctx_start_s390x_v1"
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 0
#define EVL__CTX_BACKEND_NAME "asm s390x"
#define EVL__CTX_S390X_FPR(op)                                                                     \
    "    " op " %f8, 0(%r15)\n    " op " %f9, 8(%r15)\n    " op " %f10, 16(%r15)\n"                \
    "    " op " %f11, 24(%r15)\n    " op " %f12, 32(%r15)\n    " op " %f13, 40(%r15)\n"            \
    "    " op " %f14, 48(%r15)\n    " op " %f15, 56(%r15)\n"
__asm__(
    EVL__ASM_BEGIN(EVL__CTX_SWAP_SYM)
    "    stmg %r6, %r14, 48(%r15)\n"  /* the caller's save area, standard slots */
    "    aghi %r15, -64\n"
    EVL__CTX_S390X_FPR("std")
    "    stg %r15, 0(%r2)\n"          /* *save_sp = sp */
    "    lgr %r15, %r3\n"             /* sp = load_sp: now on the other stack */
    EVL__CTX_S390X_FPR("ld")
    "    aghi %r15, 64\n"
    "    lmg %r6, %r14, 48(%r15)\n"
    "    br %r14\n"
    EVL__ASM_END(EVL__CTX_SWAP_SYM)
    EVL__ASM_BEGIN(EVL__CTX_START_SYM)
    "    .cfi_startproc\n"
    "    .cfi_undefined 14\n"         /* r14: no caller to unwind to */
    "    lgr %r2, %r7\n"
    "    basr %r14, %r6\n"
    "    .short 0\n"                  /* an invalid instruction: entry never returns */
    "    .cfi_endproc\n"
    EVL__ASM_END(EVL__CTX_START_SYM));
EVL__CTX_DECLARE(EVL__CTX_SWAP_SYM, EVL__CTX_START_SYM)
#undef EVL__CTX_S390X_FPR

enum {
    EVL__S390X_F8, EVL__S390X_F15 = EVL__S390X_F8 + 7,
    EVL__S390X_BACK_CHAIN,                      /* start's register save area from here, 160 bytes */
    EVL__S390X_R6 = EVL__S390X_BACK_CHAIN + 6, EVL__S390X_R7, EVL__S390X_R14 = EVL__S390X_R6 + 8,
    EVL__S390X_SAVE_AREA_END = EVL__S390X_BACK_CHAIN + 19,
    EVL__S390X_FRAME_WORDS
};

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 16, EVL__S390X_FRAME_WORDS);
    w[EVL__S390X_R6] = (uintptr_t)&evl__ctx_entry;
    w[EVL__S390X_R7] = (uintptr_t)ctx;
    w[EVL__S390X_R14] = (uintptr_t)&evl__ctx_start_asm;
    ctx->sp = w;
}
#endif /* >>cpu s390x */

/* ---- >>cpu x86_64 Windows ---------------------------------------------------------------------
   Hand-written asm rather than Windows' fibers: CreateFiber allocates the stack and its bookkeeping
   itself (evloop takes stacks from the user and allocates nothing), and ConvertThreadToFiber
   changes the calling thread for good, which a library should not do behind its user's back.
   Callee-saved in the Win64 ABI: rbx, rbp, rdi, rsi, r12-r15, rsp and all 128 bits of xmm6-xmm15;
   the x87 control word and the control bits of MXCSR are nonvolatile as well.  Windows also reads
   the current stack's extent from the thread information block (gs:0x08 StackBase, gs:0x10
   StackLimit, gs:0x1478 DeallocationStack) for stack probes, exception dispatch and overflow
   handling, so those three travel with each context.  The routines are naked static functions:
   the compiler adds no prologue, and noipa/noinline keep it from assuming anything about what
   they do. */
#if defined(EVL__CTX_WIN64)
#define EVL__CTX_FP_CONTROL_PER_CONTEXT 1
#define EVL__CTX_BACKEND_NAME "asm x86_64 Windows"
#if defined(__has_attribute)
#if __has_attribute(noipa)
#define EVL__CTX_NOIPA __attribute__((noipa))
#endif
#endif
#if !defined(EVL__CTX_NOIPA)
#define EVL__CTX_NOIPA
#endif
#define EVL__CTX_NAKED __attribute__((naked, noinline, unused)) EVL__CTX_NOIPA

EVL__CTX_NAKED static void evl__ctx_swap_asm(void **save_sp __attribute__((unused)),
                                             void *load_sp __attribute__((unused))) {
    /* save_sp in rcx, load_sp in rdx */
    __asm__(
        "    pushq %rbx\n"
        "    pushq %rbp\n"
        "    pushq %rdi\n"
        "    pushq %rsi\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    pushq %gs:0x1478\n"
        "    pushq %gs:0x10\n"
        "    pushq %gs:0x08\n"
        "    subq $168, %rsp\n"
        "    movups %xmm6, 0(%rsp)\n"
        "    movups %xmm7, 16(%rsp)\n"
        "    movups %xmm8, 32(%rsp)\n"
        "    movups %xmm9, 48(%rsp)\n"
        "    movups %xmm10, 64(%rsp)\n"
        "    movups %xmm11, 80(%rsp)\n"
        "    movups %xmm12, 96(%rsp)\n"
        "    movups %xmm13, 112(%rsp)\n"
        "    movups %xmm14, 128(%rsp)\n"
        "    movups %xmm15, 144(%rsp)\n"
        "    stmxcsr 160(%rsp)\n"
        "    fnstcw 164(%rsp)\n"
        "    movq %rsp, (%rcx)\n"
        "    movl 160(%rsp), %eax\n"     /* the widths of the stores: only */
        "    movzwl 164(%rsp), %ecx\n"   /* written bytes, and forwarded   */
        "    movq %rdx, %rsp\n"
        "    movups 0(%rsp), %xmm6\n"
        "    movups 16(%rsp), %xmm7\n"
        "    movups 32(%rsp), %xmm8\n"
        "    movups 48(%rsp), %xmm9\n"
        "    movups 64(%rsp), %xmm10\n"
        "    movups 80(%rsp), %xmm11\n"
        "    movups 96(%rsp), %xmm12\n"
        "    movups 112(%rsp), %xmm13\n"
        "    movups 128(%rsp), %xmm14\n"
        "    movups 144(%rsp), %xmm15\n"
        "    cmpl 160(%rsp), %eax\n"     /* skip the slow loads if unchanged */
        "    jne 1f\n"
        "    cmpw 164(%rsp), %cx\n"
        "    je 2f\n"
        "1:  ldmxcsr 160(%rsp)\n"
        "    fldcw 164(%rsp)\n"
        "2:  addq $168, %rsp\n"
        "    popq %gs:0x08\n"
        "    popq %gs:0x10\n"
        "    popq %gs:0x1478\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rsi\n"
        "    popq %rdi\n"
        "    popq %rbp\n"
        "    popq %rbx\n"
        "    ret\n");
}

EVL__CTX_NAKED static void evl__ctx_start_asm(void) {
    __asm__(
        "    movq %r13, %rcx\n"
        "    andq $-16, %rsp\n"
        "    subq $32, %rsp\n"            /* the callee's home (shadow) space */
        "    call *%r12\n"
        "    ud2\n");
}

enum {
    EVL__WIN64_XMM6, EVL__WIN64_XMM15_HIGH = EVL__WIN64_XMM6 + 19,   /* xmm6-xmm15, two words each */
    EVL__WIN64_FP_CONTROL, EVL__WIN64_STACK_BASE, EVL__WIN64_STACK_LIMIT, EVL__WIN64_DEALLOCATION_STACK,
    EVL__WIN64_R15, EVL__WIN64_R14, EVL__WIN64_R13, EVL__WIN64_R12, EVL__WIN64_RSI, EVL__WIN64_RDI,
    EVL__WIN64_RBP, EVL__WIN64_RBX, EVL__WIN64_RETURN, EVL__WIN64_FRAME_WORDS
};

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t *w = evl__ctx_new_frame(ctx, 16, EVL__WIN64_FRAME_WORDS);
    w[EVL__WIN64_FP_CONTROL] = evl__ctx_x86_fp_control();
    w[EVL__WIN64_STACK_BASE] = (uintptr_t)ctx->stack_lo + ctx->stack_size;
    w[EVL__WIN64_STACK_LIMIT] = (uintptr_t)ctx->stack_lo;
    w[EVL__WIN64_DEALLOCATION_STACK] = (uintptr_t)ctx->stack_lo;
    w[EVL__WIN64_R12] = (uintptr_t)&evl__ctx_entry;
    w[EVL__WIN64_R13] = (uintptr_t)ctx;
    w[EVL__WIN64_RETURN] = (uintptr_t)&evl__ctx_start_asm;
    ctx->sp = w;
}
#endif /* >>cpu x86_64 Windows */

/* ---- >>cpu any other: makecontext/swapcontext --------------------------------------------------
   Also with EVLOOP_FIBER_UCONTEXT.  EVL__CTX_FP_CONTROL_PER_CONTEXT stays undefined: whether
   swapcontext carries the floating-point environment is up to the C library. */
#if defined(EVL__CTX_UCONTEXT)
#define EVL__CTX_BACKEND_NAME "ucontext (makecontext/swapcontext)"

/* makecontext passes only int arguments, so a pointer travels as two 32-bit halves (the high half
   is 0 where pointers are 32 bits wide). */
EVL__CTX_FN void evl__ctx_uc_entry(int hi, int lo) {
    uintptr_t p = (((uintptr_t)(unsigned)hi << 16) << 16) | (uintptr_t)(unsigned)lo;
    evl__ctx_entry((evl__ctx *)p);
}

EVL__CTX_FN void evl__ctx_make(evl__ctx *ctx) {
    uintptr_t p = (uintptr_t)ctx;
    unsigned hi = (unsigned)((p >> 16) >> 16);
    unsigned lo = (unsigned)(p & 0xffffffffu);
    /* makecontext does not align the stack everywhere (glibc on ARM uses the end as given), so
       hand it a 16-byte aligned range. */
    uintptr_t lo16 = ((uintptr_t)ctx->stack_lo + 15) & ~(uintptr_t)15;
    uintptr_t hi16 = ((uintptr_t)ctx->stack_lo + ctx->stack_size) & ~(uintptr_t)15;
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = (void *)lo16;
    ctx->uc.uc_stack.ss_size = (size_t)(hi16 - lo16);
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))evl__ctx_uc_entry, 2, (int)hi, (int)lo);
}

EVL__CTX_INLINE void evl__ctx_swap(evl__ctx *from, evl__ctx *to) { (void)swapcontext(&from->uc, &to->uc); }
#else
EVL__CTX_INLINE void evl__ctx_swap(evl__ctx *from, evl__ctx *to) { evl__ctx_swap_asm(&from->sp, to->sp); }
#endif /* >>cpu any other */

/* ---- Switching: the layer's interface ------------------------------------------------------- */

/* The tool fields are set in every build (see evl__ctx); each tool fills in its own. */
EVL__CTX_FN void evl__ctx_clear(evl__ctx *ctx, void *stack, size_t size, void (*entry)(void *), void *arg) {
    ctx->entry = entry;
    ctx->arg = arg;
    ctx->stack_lo = stack;
    ctx->stack_size = size;
    ctx->asan_from = NULL;
    ctx->tsan_fiber = NULL;
    ctx->valgrind_id = 0;
    ctx->tsan_owned = ctx->valgrind_registered = 0;
}

EVL__CTX_FN void evl__ctx_init(evl__ctx *ctx, void *stack, size_t size, void (*entry)(void *), void *arg) {
    evl__ctx_clear(ctx, stack, size, entry, arg);
#if defined(EVL__CTX_ASAN)
    /* A reused stack still carries the poisoned redzones of frames that never returned (a finished
       fiber leaves through evl__ctx_exit, not by returning); they would show up as false reports in
       the new context. */
    __asan_unpoison_memory_region(stack, size);
#endif
#if defined(EVL__CTX_TSAN)
    ctx->tsan_fiber = __tsan_create_fiber(0);
    ctx->tsan_owned = 1;
#endif
#if defined(EVL__CTX_VALGRIND)
    ctx->valgrind_id = VALGRIND_STACK_REGISTER(stack, (char *)stack + size - 1);
    ctx->valgrind_registered = 1;
#endif
    evl__ctx_make(ctx);
}

/* The thread's own stack, to switch back to; its ucontext or sp is filled by the first switch away
   from it. */
EVL__CTX_FN void evl__ctx_init_main(evl__ctx *ctx) {
    evl__ctx_clear(ctx, NULL, 0, NULL, NULL);
#if !defined(EVL__CTX_UCONTEXT)
    ctx->sp = NULL;
#endif
#if defined(EVL__CTX_TSAN)
    ctx->tsan_fiber = __tsan_get_current_fiber();
#endif
}

EVL__CTX_FN void evl__ctx_switch(evl__ctx *from, evl__ctx *to) {
    void *fake_stack = NULL; /* lives on from's stack while it is suspended */
    evl__ctx_leaving(from, to, &fake_stack);
    evl__ctx_swap(from, to);
    evl__ctx_arrived(from, fake_stack);
}

EVL__CTX_FN EVL__CTX_NORETURN void evl__ctx_exit(evl__ctx *from, evl__ctx *to) {
    evl__ctx_leaving(from, to, NULL);
    evl__ctx_swap(from, to);
    __builtin_trap(); /* nobody may switch back to a finished context */
}

EVL__CTX_FN void evl__ctx_release(evl__ctx *ctx) {
#if defined(EVL__CTX_TSAN)
    if (ctx->tsan_owned) __tsan_destroy_fiber(ctx->tsan_fiber);
    ctx->tsan_owned = 0;
#endif
#if defined(EVL__CTX_VALGRIND)
    if (ctx->valgrind_registered) VALGRIND_STACK_DEREGISTER(ctx->valgrind_id);
    ctx->valgrind_registered = 0;
#endif
    (void)ctx;
}

#ifdef __cplusplus
}
#endif

#endif /* EVLOOP_HAS_FIBERS */

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
