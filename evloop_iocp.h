/* evloop_iocp.h - the Windows backend of evloop.h, and its operating-system layer.  MIT license
   (see evloop.h).

   Include evloop.h, not this file: it includes this one twice, once for the types (inside the
   declarations) and once for the implementation.  Link with -lws2_32.

   Reduced: Windows has no readiness for anything but sockets, no POSIX signals and no fork, so
   this backend does what a console program can have:
     sockets             readiness through the Ancillary Function Driver: one IOCTL_AFD_POLL per
                         watched socket (on its base handle, SIO_BASE_HANDLE), issued on a handle to
                         \Device\Afd that the loop opens, completing on the loop's I/O completion
                         port.  A poll reports once, so it is issued again before every wait while
                         the watcher is active: that is what makes it level-triggered.  At most
                         EVLOOP_IOCP_MAX_SOCKETS (default 256) sockets per loop (-ENOSPC beyond);
                         any other handle is refused with -ENOTSOCK (pipes, files, consoles).
     timers              a high-resolution waitable timer (Windows 10 1803 and later) whose APC ends
                         the wait; elsewhere the wait's millisecond timeout, rounded up.  The core
                         fires a timer only once its deadline has passed, on either path.
     wake-ups            PostQueuedCompletionStatus (evl_stop, evl_async_send, console events).
     signals             console control events: Ctrl-C is SIGINT, Ctrl-Break SIGBREAK, closing the
                         console window SIGHUP; other numbers are refused with -EINVAL.  After
                         SIGHUP, Windows ends the process when its grace period is over (5 s).
     child processes     an evl_pid is a process HANDLE (with SYNCHRONIZE access): the exit is waited
                         for by the thread pool (RegisterWaitForSingleObject), which posts to the
                         port; the status is the process's exit code.  The handle stays the
                         program's to close.
     evl_backend_fd      -1: a completion port cannot be waited on by another loop.
     fibers              the x86_64 Windows switch of evloop.h; evl_read, evl_write, evl_accept and
                         evl_connect work on sockets, which they make non-blocking (Windows cannot
                         tell whether a socket is); evl_pread and evl_pwrite on files.
     file operations     the workers and inline engines (no io_uring): CreateThread workers under an
                         SRWLOCK, completing on the loop through the port's wake-up.  Descriptors
                         are the C library's; a transfer at an offset is ReadFile/WriteFile with an
                         OVERLAPPED offset (the file position put back afterwards: unspecified
                         while several run on one descriptor at once), at EVL_OP_CURRENT _read/
                         _write; fsync and fdatasync are FlushFileBuffers; openat is _wopen of a
                         UTF-8 path, always O_BINARY, with AT_FDCWD only (-ENOTSUP otherwise);
                         fstat is the C library's; no statx; readv/writev take evl_iovec, one
                         piece at a time.
   Every loop calls WSAStartup in evl_init and WSACleanup in evl_deinit.  Waits are alertable, so
   APCs queued to the loop's thread run inside evl_run.
*/

/* ---- Types (first inclusion) ----------------------------------------------------------------- */
#ifndef EVLOOP_IOCP_H
#define EVLOOP_IOCP_H

#include <windows.h>
#include <signal.h>
#include <sys/types.h>                  /* ssize_t */
#include <sys/stat.h>                   /* struct stat, for evl_op_fstat */

/* The console events as signals, numbered as libuv numbers them where the C library has no name. */
#ifndef SIGHUP
#define SIGHUP 1
#endif
#ifndef SIGBREAK
#define SIGBREAK 21
#endif

#ifndef EVLOOP_IOCP_MAX_SOCKETS
#define EVLOOP_IOCP_MAX_SOCKETS 256
#endif

/* What IOCTL_AFD_POLL reads and writes, laid out as the driver expects (AFD_POLL_INFO with one
   AFD_POLL_HANDLE_INFO), and the IO_STATUS_BLOCK it completes: declared here, with the types of
   <windows.h>, so that the public header needs no NT headers. */
typedef struct evl__afd_poll_info {
    LARGE_INTEGER timeout;
    ULONG handle_count;
    ULONG exclusive;
    HANDLE handle;
    ULONG events;
    LONG status;
} evl__afd_poll_info;

typedef struct evl__iocp_io_status {
    union {
        LONG status;
        void *pointer;
    } u;
    ULONG_PTR information;
} evl__iocp_io_status;

/* One watched socket's poll.  The kernel owns io_status and poll while a poll is outstanding, so a
   slot is freed only by its completion, never by evl_io_stop (which only cancels it). */
typedef struct evl__iocp_socket {
    evl__iocp_io_status io_status;
    evl__afd_poll_info poll;
    evl_io *w;                      /* NULL once stopped */
    HANDLE base;                    /* the socket's base handle, which AFD polls */
    ULONG polled;                   /* the AFD events the outstanding poll asks for */
    unsigned char state;            /* EVL__IOCP_FREE, _IDLE, _POLLING, _CANCELLING */
    unsigned char queued;           /* on the list of polls to issue before the next wait */
    unsigned char closed;           /* the socket was closed under its watcher: no more polls */
} evl__iocp_socket;

typedef struct evl__backend {
    HANDLE port;
    HANDLE afd;                     /* \Device\Afd, on which the polls are issued */
    HANDLE timer;                   /* high-resolution waitable timer, or NULL */
    FARPROC nt_ioctl;               /* NtDeviceIoControlFile */
    int outstanding;                /* polls the kernel still owns */
    int children_due;               /* a child exited: look at the children */
    int wsa_started;
    unsigned queue_count;
    unsigned slots_used;            /* slots beyond this one have never been used: no search there */
    unsigned short queue[EVLOOP_IOCP_MAX_SOCKETS];
    evl__node children;             /* child watchers, for the exits the thread pool reports */
    OVERLAPPED_ENTRY entries[EVLOOP_MAX_EVENTS];
    evl__iocp_socket sockets[EVLOOP_IOCP_MAX_SOCKETS];
} evl__backend;

typedef struct evl__child_backend {
    evl_io exit;                    /* internal watcher: "readable" once the process has exited */
    evl__node link;                 /* on the backend's list of children */
    HANDLE wait;                    /* the thread pool's wait on the process */
    evl_loop *loop;
    int exited;                     /* atomic: set by the thread pool */
} evl__child_backend;
#define EVL__CHILD_STATE evl__child_backend

typedef struct evl__os_loop {
    int unused;                     /* console events need nothing per loop */
} evl__os_loop;

/* File operations: the worker threads, their lock, and what the API's declarations name. */
typedef struct evl__os_thread {
    HANDLE handle;
    void *(*fn)(void *);
    void *arg;
} evl__os_thread;
typedef SRWLOCK evl__os_mutex;
typedef CONDITION_VARIABLE evl__os_cond;

/* The C library has no struct iovec: a buffer of evl_op_readv and evl_op_writev has the same
   members as the POSIX one. */
typedef struct evl_iovec {
    void *iov_base;
    size_t iov_len;
} evl_iovec;

/* evl_op_openat takes AT_FDCWD only (relative paths from the current directory). */
#ifndef AT_FDCWD
#define AT_FDCWD (-100)
#endif

#endif /* EVLOOP_IOCP_H */

/* ---- Implementation (second inclusion, from the end of evloop.h) ----------------------------- */
#if defined(EVL__BACKEND_IMPLEMENTATION) && !defined(EVLOOP_IOCP_IMPLEMENTED)
#define EVLOOP_IOCP_IMPLEMENTED

#include <winternl.h>
#include <limits.h>
#include <io.h>                         /* _get_osfhandle, _wopen, _close */
#include <fcntl.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { EVL__IOCP_FREE, EVL__IOCP_IDLE, EVL__IOCP_POLLING, EVL__IOCP_CANCELLING };
enum { EVL__IOCP_KEY_POLL = 1, EVL__IOCP_KEY_WAKE, EVL__IOCP_KEY_CHILD };

/* The driver's interface, as documented by the projects that use it (wepoll, mio, libuv). */
#define EVL__AFD_POLL_RECEIVE 0x0001u
#define EVL__AFD_POLL_RECEIVE_EXPEDITED 0x0002u
#define EVL__AFD_POLL_SEND 0x0004u
#define EVL__AFD_POLL_DISCONNECT 0x0008u
#define EVL__AFD_POLL_ABORT 0x0010u
#define EVL__AFD_POLL_LOCAL_CLOSE 0x0020u
#define EVL__AFD_POLL_ACCEPT 0x0080u
#define EVL__AFD_POLL_CONNECT_FAIL 0x0100u
#define EVL__IOCTL_AFD_POLL 0x00012024u
#define EVL__SIO_BASE_HANDLE 0x48000022u
#define EVL__STATUS_PENDING 0x00000103L
#define EVL__STATUS_CANCELLED ((LONG)0xC0000120L)
#ifndef CREATE_WAITABLE_TIMER_HIGH_RESOLUTION
#define CREATE_WAITABLE_TIMER_HIGH_RESOLUTION 0x00000002
#endif

typedef LONG(NTAPI *evl__nt_create_file_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                                            PLARGE_INTEGER, ULONG, ULONG, ULONG, ULONG, PVOID, ULONG);
typedef LONG(NTAPI *evl__nt_ioctl_fn)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, ULONG, PVOID, ULONG, PVOID,
                                      ULONG);

/* ---- >>os windows: clock, console events, processes, stacks, sockets ------------------------- */

EVL__PRIVATE evl_time evl__clock_now(void) {
    static LONGLONG frequency;
    LARGE_INTEGER now, f;
    LONGLONG hz = EVL__LOAD_RELAXED(&frequency);
    if (hz == 0) {
        QueryPerformanceFrequency(&f);
        hz = f.QuadPart;
        EVL__STORE(&frequency, hz);
    }
    QueryPerformanceCounter(&now);
    return (evl_time)(now.QuadPart / hz) * 1000000000u + (evl_time)(now.QuadPart % hz) * 1000000000u / (evl_time)hz;
}

EVL__PRIVATE long evl__os_process_id(void) { return (long)GetCurrentProcessId(); }

EVL__PRIVATE void evl__os_yield(void) { SwitchToThread(); }

/* A Windows error as a negative errno, for the errors these calls can give. */
EVL__PRIVATE int evl__iocp_errno(DWORD err) {
    switch (err) {
    case WSAEWOULDBLOCK: return -EAGAIN;
    case WSAEINPROGRESS: case WSAEALREADY: return -EALREADY;
    case WSAENOTSOCK: return -ENOTSOCK;
    case WSAEBADF: case ERROR_INVALID_HANDLE: return -EBADF;
    case WSAECONNRESET: case WSAENETRESET: return -ECONNRESET;
    case WSAECONNABORTED: return -ECONNABORTED;
    case WSAECONNREFUSED: return -ECONNREFUSED;
    case WSAESHUTDOWN: return -EPIPE;
    case WSAENOTCONN: return -ENOTCONN;
    case WSAEISCONN: return -EISCONN;
    case WSAETIMEDOUT: return -ETIMEDOUT;
    case WSAEHOSTUNREACH: return -EHOSTUNREACH;
    case WSAENETUNREACH: case WSAENETDOWN: return -ENETUNREACH;
    case WSAEADDRINUSE: return -EADDRINUSE;
    case WSAEADDRNOTAVAIL: return -EADDRNOTAVAIL;
    case WSAEAFNOSUPPORT: return -EAFNOSUPPORT;
    case WSAEMSGSIZE: return -EMSGSIZE;
    case WSAEFAULT: case ERROR_NOACCESS: return -EFAULT;
    case WSAEINVAL: case ERROR_INVALID_PARAMETER: return -EINVAL;
    case WSAEMFILE: case WSAENOBUFS: case ERROR_NOT_ENOUGH_MEMORY: case ERROR_NO_SYSTEM_RESOURCES: return -ENOMEM;
    case ERROR_ACCESS_DENIED: return -EACCES;
    default: return -EIO;
    }
}

/* Console control events, process-wide: watched[signum] says which ones a loop watches. */
static int evl__iocp_console_watched[EVL__MAX_SIGNAL + 1];
static int evl__iocp_console_signals;

EVL__PRIVATE int evl__os_signal_valid(int signum) { return signum == SIGINT || signum == SIGBREAK || signum == SIGHUP; }

EVL__PRIVATE int evl__iocp_signal_of(DWORD event) {
    switch (event) {
    case CTRL_C_EVENT: return SIGINT;
    case CTRL_BREAK_EVENT: return SIGBREAK;
    case CTRL_CLOSE_EVENT: return SIGHUP;
    default: return 0;                      /* logoff and shutdown reach services, not consoles */
    }
}

/* Runs on a thread the system makes for the event.  An event nobody watches goes on to the next
   handler (the default one ends the process).  Windows ends the process once the handler of a
   close event returns, so that one waits here and the loop gets the grace period. */
static BOOL WINAPI evl__iocp_console_event(DWORD event) {
    int signum = evl__iocp_signal_of(event);
    if (signum == 0 || !EVL__LOAD(&evl__iocp_console_watched[signum])) return FALSE;
    evl__signal_caught(signum);
    if (event == CTRL_CLOSE_EVENT) Sleep(INFINITE);
    return TRUE;
}

/* Called under the core's signal lock, when the first watcher of signum starts. */
EVL__PRIVATE EVL__COLD int evl__os_signal_catch(int signum, int by_handler) {
    (void)by_handler;
    if (evl__iocp_console_signals == 0 && !SetConsoleCtrlHandler(evl__iocp_console_event, TRUE))
        return evl__iocp_errno(GetLastError());
    evl__iocp_console_signals++;
    EVL__STORE(&evl__iocp_console_watched[signum], 1);
    return 0;
}

EVL__PRIVATE EVL__COLD void evl__os_signal_restore(int signum) {
    EVL__STORE(&evl__iocp_console_watched[signum], 0);
    if (--evl__iocp_console_signals == 0) SetConsoleCtrlHandler(evl__iocp_console_event, FALSE);
}

EVL__PRIVATE void evl__os_signals_changed(evl_loop *loop) { (void)loop; }   /* no signal masks */

/* The backend watches every child itself: there is no SIGCHLD, and this number is never used. */
EVL__PRIVATE int evl__os_sigchld(void) { return 0; }

/* A process handle, which the program got from CreateProcess or OpenProcess.  Windows keeps no
   parent link worth checking: any process the handle may wait for is accepted. */
EVL__PRIVATE int evl__os_child_check(evl_pid pid) {
    if (pid == NULL || pid == INVALID_HANDLE_VALUE) return -EINVAL;
    return GetProcessId((HANDLE)pid) == 0 ? -ECHILD : 0;
}

/* 1 and the exit code once the process has ended, 0 while it runs. */
EVL__PRIVATE int evl__os_child_wait(evl_pid pid, int *status) {
    DWORD code = 0;
    switch (WaitForSingleObject((HANDLE)pid, 0)) {
    case WAIT_OBJECT_0:
        if (!GetExitCodeProcess((HANDLE)pid, &code)) return -ECHILD;
        *status = (int)code;
        return 1;
    case WAIT_TIMEOUT: return 0;
    default: return -ECHILD;
    }
}

#if EVLOOP_HAS_FIBERS
EVL__PRIVATE size_t evl__os_page_size(void) {
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return info.dwPageSize ? (size_t)info.dwPageSize : 4096;
}

/* As on POSIX: whole pages, and an inaccessible one below them that turns an overflow into a
   fault.  The switch tells the thread information block the stack's extent. */
EVL__PRIVATE EVL__COLD int evl__os_stack_map(size_t size, void **stack, size_t *usable) {
    size_t page = evl__os_page_size(), rounded;
    DWORD old;
    char *base;
    if (size > (size_t)-1 - 2 * page) return -EINVAL;
    rounded = (size + page - 1) & ~(page - 1);
    base = (char *)VirtualAlloc(NULL, rounded + page, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    if (!base) return -ENOMEM;
    if (!VirtualProtect(base, page, PAGE_NOACCESS, &old)) {
        VirtualFree(base, 0, MEM_RELEASE);
        return -ENOMEM;
    }
    *stack = base + page;
    *usable = rounded;
    return 0;
}

EVL__PRIVATE void evl__os_stack_unmap(void *stack, size_t usable) {
    (void)usable;
    VirtualFree((char *)stack - evl__os_page_size(), 0, MEM_RELEASE);
}

EVL__PRIVATE void evl__os_close(evl_fd fd) { closesocket(fd); }

/* A second handle to the same socket, with a base handle of its own for AFD. */
EVL__PRIVATE evl_fd_result evl__os_dup(evl_fd fd) {
    WSAPROTOCOL_INFOW info;
    SOCKET copy;
    if (WSADuplicateSocketW(fd, GetCurrentProcessId(), &info) != 0) return evl__iocp_errno((DWORD)WSAGetLastError());
    copy = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                      WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    return copy == INVALID_SOCKET ? evl__iocp_errno((DWORD)WSAGetLastError()) : (evl_fd_result)copy;
}

EVL__PRIVATE int evl__os_set_nonblocking(evl_fd fd, int on) {
    u_long mode = on ? 1u : 0u;
    return ioctlsocket(fd, (long)FIONBIO, &mode) != 0 ? evl__iocp_errno((DWORD)WSAGetLastError()) : 0;
}

/* Windows cannot tell whether a socket is non-blocking, so the fiber calls make it so: 1, or -errno
   for what is not a socket. */
EVL__PRIVATE int evl__os_nonblocking(evl_fd fd) {
    int rc = evl__os_set_nonblocking(fd, 1);
    return rc < 0 ? rc : 1;
}

EVL__PRIVATE int evl__os_poll(evl_fd fd, unsigned events) {
    WSAPOLLFD p;
    int n;
    p.fd = fd;
    p.events = (SHORT)((events & EVL_READ ? POLLRDNORM : 0) | (events & EVL_WRITE ? POLLWRNORM : 0) |
                       (events & EVL_PRI ? POLLRDBAND : 0));
    p.revents = 0;
    if ((n = WSAPoll(&p, 1, 0)) < 0) return evl__iocp_errno((DWORD)WSAGetLastError());
    if (p.revents & POLLNVAL) return -EBADF;
    return (p.revents & POLLRDNORM ? EVL_READ : 0) | (p.revents & POLLWRNORM ? EVL_WRITE : 0) |
           (p.revents & POLLRDBAND ? EVL_PRI : 0) | (p.revents & POLLERR ? EVL_ERROR : 0) |
           (p.revents & POLLHUP ? EVL_HUP : 0);
}

/* One recv or send on a socket made non-blocking at the call's first attempt. */
EVL__PRIVATE EVL__NOINLINE ssize_t evl__os_transfer(evl_fd fd, void *in, const void *out, size_t len, int *kind,
                                                   int ready) {
    int n, chunk = len > INT_MAX ? INT_MAX : (int)len;
    (void)ready;
    if (*kind == EVL__FD_UNKNOWN) {
        int rc = evl__os_set_nonblocking(fd, 1);
        if (rc < 0) return rc;
        *kind = EVL__FD_SOCKET;
    }
    n = in ? recv(fd, (char *)in, chunk, 0) : send(fd, (const char *)out, chunk, 0);
    return n == SOCKET_ERROR ? evl__iocp_errno((DWORD)WSAGetLastError()) : (ssize_t)n;
}

/* The new socket is non-blocking and not inherited by child processes (close-on-exec). */
EVL__PRIVATE evl_fd_result evl__os_accept(evl_fd fd, struct sockaddr *addr, socklen_t *addrlen) {
    SOCKET s = accept(fd, addr, addrlen);
    if (s == INVALID_SOCKET) return evl__iocp_errno((DWORD)WSAGetLastError());
    SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    evl__os_set_nonblocking(s, 1);
    return (evl_fd_result)s;
}

EVL__PRIVATE int evl__os_connect(evl_fd fd, const struct sockaddr *addr, socklen_t addrlen) {
    int err;
    if (connect(fd, addr, addrlen) == 0) return 0;
    err = WSAGetLastError();
    return err == WSAEWOULDBLOCK || err == WSAEINPROGRESS ? -EINPROGRESS : evl__iocp_errno((DWORD)err);
}

EVL__PRIVATE int evl__os_socket_error(evl_fd fd) {
    int err = 0, len = (int)sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len) != 0) return evl__iocp_errno((DWORD)WSAGetLastError());
    return err ? evl__iocp_errno((DWORD)err) : 0;
}
#endif /* EVLOOP_HAS_FIBERS */

#if EVLOOP_HAS_FILE_OPS
/* ---- >>os windows: threads and blocking file operations (the worker and inline engines) ------- */
/* A file operation's descriptor is the C library's (from _open, _wopen or evl_op_openat); the
   transfers go to its HANDLE. */

EVL__PRIVATE DWORD WINAPI evl__iocp_thread_main(LPVOID arg) {
    evl__os_thread *t = (evl__os_thread *)arg;
    t->fn(t->arg);
    return 0;
}

/* t stays where it is (the caller's evl_worker) until joined: the new thread reads fn and arg there. */
EVL__PRIVATE int evl__os_thread_start(evl__os_thread *t, void *(*fn)(void *), void *arg) {
    t->fn = fn;
    t->arg = arg;
    t->handle = CreateThread(NULL, 0, evl__iocp_thread_main, t, 0, NULL);
    return t->handle ? 0 : evl__iocp_errno(GetLastError());
}

EVL__PRIVATE void evl__os_thread_join(evl__os_thread t) {
    WaitForSingleObject(t.handle, INFINITE);
    CloseHandle(t.handle);
}

/* Console events come on a thread of their own: there is no mask to set. */
EVL__PRIVATE void evl__os_thread_setup(void) {}

EVL__PRIVATE int evl__os_lock_init(evl__os_mutex *m, evl__os_cond *c) {
    InitializeSRWLock(m);
    InitializeConditionVariable(c);
    return 0;
}

EVL__PRIVATE void evl__os_lock_destroy(evl__os_mutex *m, evl__os_cond *c) {
    (void)m;                                /* slim locks hold no resources */
    (void)c;
}

EVL__PRIVATE void evl__os_lock(evl__os_mutex *m) { AcquireSRWLockExclusive(m); }
EVL__PRIVATE void evl__os_unlock(evl__os_mutex *m) { ReleaseSRWLockExclusive(m); }
EVL__PRIVATE void evl__os_cond_wait(evl__os_cond *c, evl__os_mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
EVL__PRIVATE void evl__os_cond_signal(evl__os_cond *c) { WakeConditionVariable(c); }
EVL__PRIVATE void evl__os_cond_broadcast(evl__os_cond *c) { WakeAllConditionVariable(c); }

/* The descriptor's handle, or NULL for a number the C library has no file for (asked before the
   library is, whose checks may end the process on a bad descriptor). */
EVL__PRIVATE HANDLE evl__iocp_file_handle(int fd) {
    intptr_t h;
    if (fd < 0) return NULL;
    h = _get_osfhandle(fd);
    return h == -1 || h == -2 ? NULL : (HANDLE)h;
}

EVL__PRIVATE EVL__UNUSED int evl__os_is_file(int fd) {
    HANDLE h = evl__iocp_file_handle(fd);
    return h && GetFileType(h) == FILE_TYPE_DISK;
}

/* A file error as a negative errno.  A handle without the access a transfer needs is -EBADF, as
   POSIX says of a descriptor not open for reading or writing. */
EVL__PRIVATE int evl__iocp_file_errno(DWORD err, int transfer) {
    switch (err) {
    case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: case ERROR_INVALID_DRIVE: return -ENOENT;
    case ERROR_FILE_EXISTS: case ERROR_ALREADY_EXISTS: return -EEXIST;
    case ERROR_DISK_FULL: case ERROR_HANDLE_DISK_FULL: return -ENOSPC;
    case ERROR_WRITE_PROTECT: return -EROFS;
    case ERROR_NEGATIVE_SEEK: case ERROR_INVALID_FUNCTION: return -EINVAL;
    case ERROR_DIRECTORY: return -ENOTDIR;
    case ERROR_FILENAME_EXCED_RANGE: return -ENAMETOOLONG;
    case ERROR_SHARING_VIOLATION: case ERROR_LOCK_VIOLATION: return -EBUSY;
    case ERROR_OPERATION_ABORTED: return -ECANCELED;
    case ERROR_BROKEN_PIPE: return -EPIPE;
    case ERROR_ACCESS_DENIED: return transfer ? -EBADF : -EACCES;
    default: return evl__iocp_errno(err);
    }
}

/* One transfer at offset, or at the file position (EVL_OP_CURRENT: by the C library, which knows
   the descriptor's O_APPEND).  A synchronous handle moves its file position even when told an
   offset, so the position is put back afterwards, as pread and pwrite leave it. */
EVL__PRIVATE ssize_t evl__iocp_transfer(int fd, void *buf, size_t len, int64_t offset, int writing) {
    HANDLE h = evl__iocp_file_handle(fd);
    DWORD chunk = len > 0x7ffff000u ? 0x7ffff000u : (DWORD)len, done = 0, err;
    LARGE_INTEGER zero, position;
    OVERLAPPED at;
    BOOL ok;
    if (!h) return -EBADF;
    if (offset == EVL_OP_CURRENT) {
        int n = writing ? _write(fd, buf, (unsigned)chunk) : _read(fd, buf, (unsigned)chunk);
        return n < 0 ? -errno : (ssize_t)n;
    }
    zero.QuadPart = 0;
    if (!SetFilePointerEx(h, zero, &position, FILE_CURRENT)) return evl__iocp_file_errno(GetLastError(), 1);
    memset(&at, 0, sizeof at);
    at.Offset = (DWORD)((uint64_t)offset & 0xffffffffu);
    at.OffsetHigh = (DWORD)((uint64_t)offset >> 32);
    ok = writing ? WriteFile(h, buf, chunk, &done, &at) : ReadFile(h, buf, chunk, &done, &at);
    err = ok ? 0 : GetLastError();              /* before the position call below may change it */
    SetFilePointerEx(h, position, NULL, FILE_BEGIN);
    if (ok) return (ssize_t)done;
    if (err == ERROR_HANDLE_EOF || err == ERROR_BROKEN_PIPE) return 0;  /* end of file */
    return evl__iocp_file_errno(err, 1);
}

/* Piece by piece, stopping at the first short piece, as readv and writev end there too. */
EVL__PRIVATE ssize_t evl__iocp_vectored(const evl_op *op, int writing) {
    const evl_iovec *iov = (const evl_iovec *)op->addr;
    ssize_t total = 0, n;
    size_t i;
    for (i = 0; i < op->len; i++) {
        int64_t at = op->offset == EVL_OP_CURRENT ? EVL_OP_CURRENT : op->offset + (int64_t)total;
        n = evl__iocp_transfer(op->fd, iov[i].iov_base, iov[i].iov_len, at, writing);
        if (n < 0) return total > 0 ? total : n;
        total += n;
        if ((size_t)n < iov[i].iov_len) break;
    }
    return total;
}

/* The path is UTF-8; the descriptor is binary (no newline translation), as POSIX ones are.  Only
   AT_FDCWD: a descriptor cannot name a directory on Windows. */
EVL__PRIVATE ssize_t evl__iocp_open(const evl_op *op) {
    wchar_t path[4096];
    int fd;
    if (op->fd != AT_FDCWD) return -ENOTSUP;
    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, (const char *)op->addr, -1, path, 4096))
        return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ENAMETOOLONG : -EINVAL;
    fd = _wopen(path, op->flags | _O_BINARY, (int)(op->mode & (_S_IREAD | _S_IWRITE)));
    return fd < 0 ? -errno : fd;
}

EVL__PRIVATE ssize_t evl__os_op_run(evl_op *op) {
    HANDLE h;
    switch (op->code) {
    case EVL__DO_WORK: return op->fn(op, op->addr);
    case EVL__DO_READ: return evl__iocp_transfer(op->fd, op->addr, op->len, op->offset, 0);
    case EVL__DO_WRITE: return evl__iocp_transfer(op->fd, op->addr, op->len, op->offset, 1);
    case EVL__DO_READV: return evl__iocp_vectored(op, 0);
    case EVL__DO_WRITEV: return evl__iocp_vectored(op, 1);
    case EVL__DO_FSYNC:
    case EVL__DO_FDATASYNC:
        if (!(h = evl__iocp_file_handle(op->fd))) return -EBADF;
        return FlushFileBuffers(h) ? 0 : evl__iocp_file_errno(GetLastError(), 0);
    case EVL__DO_OPENAT: return evl__iocp_open(op);
    case EVL__DO_CLOSE:
        if (!evl__iocp_file_handle(op->fd)) return -EBADF;
        return _close(op->fd) == 0 ? 0 : -errno;
    case EVL__DO_FSTAT:
        if (!evl__iocp_file_handle(op->fd)) return -EBADF;
        return fstat(op->fd, (struct stat *)op->out) == 0 ? 0 : -errno;
    default: return -EINVAL;
    }
}
#endif /* EVLOOP_HAS_FILE_OPS */

/* ---- >>backend iocp --------------------------------------------------------------------------- */

/* The AFD events that a watcher's interest asks for; an abort, a failed connect and a local close
   are always asked for, as epoll always reports errors and hang-ups. */
EVL__PRIVATE ULONG evl__iocp_afd_events(unsigned events) {
    ULONG e = EVL__AFD_POLL_ABORT | EVL__AFD_POLL_CONNECT_FAIL | EVL__AFD_POLL_LOCAL_CLOSE;
    if (events & EVL_READ) e |= EVL__AFD_POLL_RECEIVE | EVL__AFD_POLL_ACCEPT | EVL__AFD_POLL_DISCONNECT;
    if (events & EVL_WRITE) e |= EVL__AFD_POLL_SEND;
    if (events & EVL_PRI) e |= EVL__AFD_POLL_RECEIVE_EXPEDITED;
    return e;
}

/* A peer's orderly close reads as end of file (READ) and is a hang-up; a reset is both a hang-up and
   an error; a failed connect is an error that a writer sees, as poll() reports it. */
EVL__PRIVATE unsigned evl__iocp_revents(ULONG afd) {
    unsigned r = 0;
    if (afd & (EVL__AFD_POLL_RECEIVE | EVL__AFD_POLL_ACCEPT)) r |= EVL_READ;
    if (afd & EVL__AFD_POLL_SEND) r |= EVL_WRITE;
    if (afd & EVL__AFD_POLL_RECEIVE_EXPEDITED) r |= EVL_PRI;
    if (afd & EVL__AFD_POLL_DISCONNECT) r |= EVL_READ | EVL_HUP;
    if (afd & EVL__AFD_POLL_ABORT) r |= EVL_READ | EVL_HUP | EVL_ERROR;
    if (afd & EVL__AFD_POLL_CONNECT_FAIL) r |= EVL_WRITE | EVL_ERROR;
    return r;
}

/* Opens the loop's handle to the driver, on which every poll is issued, and ties it to the port. */
EVL__PRIVATE EVL__COLD int evl__iocp_open_afd(evl__backend *b) {
    static WCHAR name[] = L"\\Device\\Afd\\Evloop";
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    evl__nt_create_file_fn create;
    UNICODE_STRING path;
    OBJECT_ATTRIBUTES attributes;
    IO_STATUS_BLOCK status;
    if (!ntdll) return -ENOSYS;
    create = (evl__nt_create_file_fn)(void (*)(void))GetProcAddress(ntdll, "NtCreateFile");
    b->nt_ioctl = GetProcAddress(ntdll, "NtDeviceIoControlFile");
    if (!create || !b->nt_ioctl) return -ENOSYS;
    path.Buffer = name;
    path.Length = (USHORT)(sizeof name - sizeof name[0]);
    path.MaximumLength = (USHORT)sizeof name;
    InitializeObjectAttributes(&attributes, &path, 0, NULL, NULL);
    if (create(&b->afd, SYNCHRONIZE, &attributes, &status, NULL, 0, FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0,
               NULL, 0) != 0) {
        b->afd = NULL;
        return -ENOSYS;
    }
    if (!CreateIoCompletionPort(b->afd, b->port, EVL__IOCP_KEY_POLL, 0)) return evl__iocp_errno(GetLastError());
    /* Completions go to the port only: no event to set on the handle. */
    SetFileCompletionNotificationModes(b->afd, FILE_SKIP_SET_EVENT_ON_HANDLE);
    return 0;
}

EVL__PRIVATE EVL__COLD int evl__backend_init(evl_loop *loop) {
    evl__backend *b = &loop->backend;
    WSADATA wsa;
    int rc;
    b->port = b->afd = b->timer = NULL;
    evl__list_init(&b->children);
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) return -ENOSYS;
    b->wsa_started = 1;
    b->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!b->port) {
        rc = evl__iocp_errno(GetLastError());
        goto fail;
    }
    if ((rc = evl__iocp_open_afd(b)) < 0) goto fail;
#ifndef EVLOOP_IOCP_NO_HIGH_RESOLUTION_TIMER
    b->timer = CreateWaitableTimerExW(NULL, NULL, CREATE_WAITABLE_TIMER_HIGH_RESOLUTION, TIMER_ALL_ACCESS);
#endif
    return 0;
fail:
    evl__backend_deinit(loop);
    return rc;
}

/* Takes the slot back from the kernel: its completion, cancelled or not, is the kernel's last word
   on the slot's memory. */
EVL__PRIVATE void evl__iocp_completed(evl__backend *b, evl__iocp_socket *s) {
    b->outstanding--;
    s->state = s->w ? (unsigned char)EVL__IOCP_IDLE : (unsigned char)EVL__IOCP_FREE;
}

/* Outstanding polls own memory inside the loop, so they are cancelled and their completions awaited
   before the handles close (a second's worth: the driver answers a cancel at once). */
EVL__PRIVATE EVL__COLD void evl__iocp_cancel_all(evl__backend *b) {
    ULONG i, n;
    int rounds = 0;
    for (i = 0; i < b->slots_used; i++) {
        b->sockets[i].w = NULL;
        if (b->sockets[i].state == EVL__IOCP_POLLING) CancelIoEx(b->afd, (LPOVERLAPPED)&b->sockets[i].io_status);
    }
    while (b->outstanding > 0 && rounds++ < 100) {
        if (!GetQueuedCompletionStatusEx(b->port, b->entries, EVLOOP_MAX_EVENTS, &n, 10, FALSE)) continue;
        for (i = 0; i < n; i++)
            if (b->entries[i].lpCompletionKey == EVL__IOCP_KEY_POLL)
                evl__iocp_completed(b, (evl__iocp_socket *)(void *)b->entries[i].lpOverlapped);
    }
}

EVL__PRIVATE EVL__COLD void evl__iocp_unregister_children(evl__backend *b) {
    evl__node *n;
    for (n = b->children.next; n != &b->children; n = n->next) {
        evl__child_backend *cb = EVL__CONTAINER(n, evl__child_backend, link);
        if (cb->wait) UnregisterWaitEx(cb->wait, INVALID_HANDLE_VALUE);
        cb->wait = NULL;
    }
}

EVL__PRIVATE void evl__backend_deinit(evl_loop *loop) {
    evl__backend *b = &loop->backend;
    evl__iocp_unregister_children(b);
    if (b->afd) {
        evl__iocp_cancel_all(b);
        CloseHandle(b->afd);
    }
    if (b->timer) CloseHandle(b->timer);
    if (b->port) CloseHandle(b->port);
    b->port = b->afd = b->timer = NULL;
    if (b->wsa_started) WSACleanup();
    b->wsa_started = 0;
}

EVL__PRIVATE void evl__iocp_queue(evl__backend *b, evl__iocp_socket *s) {
    if (s->queued) return;
    s->queued = 1;
    b->queue[b->queue_count++] = (unsigned short)(s - b->sockets);
}

/* A search, on start, set and stop only (never per event): an io watcher has no room for the
   index, and a loop watches few sockets next to what the table could hold. */
EVL__PRIVATE evl__iocp_socket *evl__iocp_slot_of(evl__backend *b, const evl_io *w) {
    unsigned i;
    for (i = 0; i < b->slots_used; i++)
        if (b->sockets[i].w == w) return &b->sockets[i];
    return NULL;
}

/* The handle AFD knows the socket by: layered providers may wrap it in one of their own.  Asking
   for the socket's type first tells a socket from any other handle, which not every Windows
   (wine, for one) refuses in the base-handle query itself. */
EVL__PRIVATE int evl__iocp_base_handle(evl_fd fd, HANDLE *base) {
    DWORD bytes = 0, flags;
    SOCKET out = INVALID_SOCKET;
    int type = 0, len = (int)sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0 &&
        WSAIoctl(fd, EVL__SIO_BASE_HANDLE, NULL, 0, &out, sizeof out, &bytes, NULL, NULL) == 0 && out != INVALID_SOCKET) {
        *base = (HANDLE)out;
        return 0;
    }
    /* Not a socket: a handle that exists is one AFD cannot poll; anything else is no handle. */
    return GetHandleInformation((HANDLE)fd, &flags) ? -ENOTSOCK : -EBADF;
}

EVL__PRIVATE void evl__iocp_child_ready(evl_loop *loop, evl_io *io, unsigned revents);

EVL__PRIVATE int evl__backend_io_start(evl_loop *loop, evl_io *w) {
    evl__backend *b = &loop->backend;
    evl__iocp_socket *slot = NULL;
    HANDLE base;
    unsigned i;
    int rc;
    if (w->cb == evl__iocp_child_ready) return 0;   /* a child's exit, which the thread pool reports */
    if ((rc = evl__iocp_base_handle(w->fd, &base)) < 0) return rc;
    for (i = 0; i < b->slots_used; i++) {
        evl__iocp_socket *s = &b->sockets[i];
        if (s->w && s->base == base) return -EEXIST;
        if (!slot && s->state == EVL__IOCP_FREE) slot = s;
    }
    if (!slot && b->slots_used == EVLOOP_IOCP_MAX_SOCKETS) return -ENOSPC;
    if (!slot) slot = &b->sockets[b->slots_used++];
    slot->w = w;
    slot->base = base;
    slot->closed = 0;
    slot->state = EVL__IOCP_IDLE;
    evl__iocp_queue(b, slot);
    return 0;
}

/* A poll under way that asks for other events is cancelled; its completion issues the new one. */
EVL__PRIVATE int evl__backend_io_modify(evl_loop *loop, evl_io *w, unsigned events) {
    evl__backend *b = &loop->backend;
    evl__iocp_socket *s = evl__iocp_slot_of(b, w);
    if (!s) return 0;
    s->closed = 0;
    if (s->state == EVL__IOCP_POLLING && s->polled != evl__iocp_afd_events(events)) {
        CancelIoEx(b->afd, (LPOVERLAPPED)&s->io_status);
        s->state = EVL__IOCP_CANCELLING;
    }
    if (s->state == EVL__IOCP_IDLE) evl__iocp_queue(b, s);
    return 0;
}

EVL__PRIVATE void evl__backend_io_stop(evl_loop *loop, evl_io *w) {
    evl__backend *b = &loop->backend;
    evl__iocp_socket *s = evl__iocp_slot_of(b, w);
    if (!s) return;
    s->w = NULL;
    if (s->state == EVL__IOCP_POLLING) {
        CancelIoEx(b->afd, (LPOVERLAPPED)&s->io_status);
        s->state = EVL__IOCP_CANCELLING;
    } else if (s->state == EVL__IOCP_IDLE) {
        s->state = EVL__IOCP_FREE;
    }
}

/* Issues the polls of the sockets whose last poll completed (or that were just started). */
EVL__PRIVATE void evl__iocp_issue_polls(evl__backend *b) {
    evl__nt_ioctl_fn ioctl = (evl__nt_ioctl_fn)(void (*)(void))b->nt_ioctl;
    unsigned i, count = b->queue_count;
    b->queue_count = 0;
    for (i = 0; i < count; i++) {
        evl__iocp_socket *s = &b->sockets[b->queue[i]];
        LONG status;
        s->queued = 0;
        if (s->state != EVL__IOCP_IDLE || !s->w || s->closed) continue;
        s->polled = evl__iocp_afd_events(s->w->events);
        s->poll.timeout.QuadPart = LLONG_MAX;
        s->poll.handle_count = 1;
        s->poll.exclusive = 0;
        s->poll.handle = s->base;
        s->poll.events = s->polled;
        s->poll.status = 0;
        s->io_status.u.status = EVL__STATUS_PENDING;
        status = ioctl(b->afd, NULL, NULL, s, (PIO_STATUS_BLOCK)(void *)&s->io_status, EVL__IOCTL_AFD_POLL, &s->poll,
                       sizeof s->poll, &s->poll, sizeof s->poll);
        if (status == EVL__STATUS_PENDING || status == 0) {
            s->state = EVL__IOCP_POLLING;
            b->outstanding++;
        } else {
            s->closed = 1;                  /* the socket is gone: its watcher hears nothing more */
        }
    }
}

/* A poll's completion: the events, if the watcher still wants them, and the poll issued again. */
EVL__PRIVATE int evl__iocp_poll_done(evl__backend *b, evl__iocp_socket *s, evl__ready *ready) {
    LONG status = s->io_status.u.status;
    unsigned revents;
    evl__iocp_completed(b, s);
    if (!s->w) return 0;
    if (status == EVL__STATUS_CANCELLED) {
        evl__iocp_queue(b, s);              /* cancelled to change its events */
        return 0;
    }
    if (status < 0 || (s->poll.handle_count == 1 && (s->poll.events & EVL__AFD_POLL_LOCAL_CLOSE))) {
        s->closed = 1;
        return 0;
    }
    evl__iocp_queue(b, s);
    revents = s->poll.handle_count == 1 ? evl__iocp_revents(s->poll.events) : 0;
    if (!(revents & ((unsigned)s->w->events | EVL_ERROR | EVL_HUP))) return 0;
    ready->w = s->w;
    ready->revents = revents;
    return 1;
}

EVL__PRIVATE void CALLBACK evl__iocp_timer_fired(LPVOID arg, DWORD low, DWORD high) {
    (void)arg;
    (void)low;
    (void)high;
}

/* The wait's timeout in milliseconds, rounded up; the high-resolution timer, when there is one,
   ends a finite wait instead (its APC interrupts the alertable wait). */
EVL__PRIVATE DWORD evl__iocp_wait_ms(evl__backend *b, evl_time timeout) {
    evl_time ms;
    if (timeout == 0) return 0;
    if (timeout == EVL_FOREVER) return INFINITE;
    if (b->timer) {
        LARGE_INTEGER due;
        evl_time units = timeout / 100u + (timeout % 100u != 0);   /* 100 ns units, rounded up */
        due.QuadPart = -(LONGLONG)(units > (evl_time)LLONG_MAX ? (evl_time)LLONG_MAX : units);
        if (SetWaitableTimer(b->timer, &due, 0, evl__iocp_timer_fired, NULL, FALSE)) return INFINITE;
    }
    ms = timeout / 1000000u + (timeout % 1000000u != 0);
    return ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;
}

/* Children whose exit the thread pool reported, as events of their internal watchers. */
EVL__PRIVATE int evl__iocp_exited_children(evl__backend *b, evl__ready *ready, int capacity) {
    evl__node *n;
    int count = 0;
    b->children_due = 0;
    for (n = b->children.next; n != &b->children; n = n->next) {
        evl__child_backend *cb = EVL__CONTAINER(n, evl__child_backend, link);
        if (!EVL__LOAD(&cb->exited)) continue;
        if (count == capacity) {
            b->children_due = 1;            /* the rest at the next wait */
            break;
        }
        EVL__STORE(&cb->exited, 0);
        ready[count].w = &cb->exit;
        ready[count].revents = EVL_READ;
        count++;
    }
    return count;
}

EVL__PRIVATE int evl__backend_wait(evl_loop *loop, evl_time timeout, evl__ready *ready, int capacity) {
    evl__backend *b = &loop->backend;
    ULONG i, n = 0, room = (ULONG)(capacity < EVLOOP_MAX_EVENTS ? capacity : EVLOOP_MAX_EVENTS);
    DWORD ms;
    int count = 0;
    BOOL ok;
    if (b->queue_count) evl__iocp_issue_polls(b);
    ms = evl__iocp_wait_ms(b, b->children_due ? 0 : timeout);
    ok = GetQueuedCompletionStatusEx(b->port, b->entries, room, &n, ms, TRUE);
    if (!ok) {
        DWORD err = GetLastError();
        return err == WAIT_TIMEOUT || err == WAIT_IO_COMPLETION ? 0 : evl__iocp_errno(err);
    }
    if (b->timer && ms == INFINITE && timeout != EVL_FOREVER) CancelWaitableTimer(b->timer);
    for (i = 0; i < n; i++) {
        OVERLAPPED_ENTRY *e = &b->entries[i];
        switch (e->lpCompletionKey) {
        case EVL__IOCP_KEY_POLL:
            count += evl__iocp_poll_done(b, (evl__iocp_socket *)(void *)e->lpOverlapped, &ready[count]);
            break;
        case EVL__IOCP_KEY_WAKE: evl__wake_received(loop); break;
        case EVL__IOCP_KEY_CHILD: b->children_due = 1; break;
        default: break;
        }
    }
    if (b->children_due) count += evl__iocp_exited_children(b, ready + count, capacity - count);
    return count;
}

/* Any thread: PostQueuedCompletionStatus is safe everywhere a console handler or another thread
   may call it. */
EVL__PRIVATE int evl__backend_wake(evl_loop *loop) {
    if (PostQueuedCompletionStatus(loop->backend.port, 0, EVL__IOCP_KEY_WAKE, NULL)) return 0;
    return evl__iocp_errno(GetLastError());
}

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

/* On a thread-pool thread, once the process has ended.  The port learns only that some child
   exited: a pointer in the packet could outlive the watcher, which may be stopped meanwhile. */
static VOID CALLBACK evl__iocp_child_signalled(PVOID arg, BOOLEAN timed_out) {
    evl__child_backend *cb = (evl__child_backend *)arg;
    (void)timed_out;
    EVL__STORE(&cb->exited, 1);
    PostQueuedCompletionStatus(cb->loop->backend.port, 0, EVL__IOCP_KEY_CHILD, NULL);
}

EVL__PRIVATE void evl__iocp_child_ready(evl_loop *loop, evl_io *io, unsigned revents) {
    evl_child *c = EVL__CONTAINER(io, evl_child, backend.exit);
    int status = -1;
    (void)revents;
    if (evl__os_child_wait(c->pid, &status) == 0) return;   /* cannot be: the wait was satisfied */
    evl__child_exited(loop, c, status);
}

EVL__PRIVATE int evl__backend_child_start(evl_loop *loop, evl_child *c) {
    evl__child_backend *cb = &c->backend;
    int rc;
    cb->loop = loop;
    cb->wait = NULL;
    EVL__STORE(&cb->exited, 0);
    evl__io_init_internal(&cb->exit, evl__iocp_child_ready, (evl_fd)(uintptr_t)c->pid, EVL_READ);
    if ((rc = evl_io_start(loop, &cb->exit)) < 0) return rc;
    if (!RegisterWaitForSingleObject(&cb->wait, (HANDLE)c->pid, evl__iocp_child_signalled, cb, INFINITE,
                                     WT_EXECUTEONLYONCE)) {
        rc = evl__iocp_errno(GetLastError());
        evl_io_stop(loop, &cb->exit);
        cb->wait = NULL;
        return rc;
    }
    evl__insert_before(&cb->link, &loop->backend.children);
    return 0;
}

/* UnregisterWaitEx with INVALID_HANDLE_VALUE returns once the callback cannot run any more. */
EVL__PRIVATE void evl__backend_child_stop(evl_loop *loop, evl_child *c) {
    evl__child_backend *cb = &c->backend;
    if (cb->wait) UnregisterWaitEx(cb->wait, INVALID_HANDLE_VALUE);
    cb->wait = NULL;
    if (evl__linked(&cb->link)) evl__unlink(&cb->link);
    if (evl__linked(&cb->exit.link)) evl_io_stop(loop, &cb->exit);
}

EVL__PRIVATE void evl__backend_dump(const evl_loop *loop, const evl_child *c, FILE *out) {
    (void)loop;
    fprintf(out, "by process handle %p", (void *)c->pid);
}

EVL__PRIVATE const char *evl__backend_name(void) { return "iocp"; }

#ifdef __cplusplus
}
#endif

#endif /* EVL__BACKEND_IMPLEMENTATION */
