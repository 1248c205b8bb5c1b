/* The test runner on Windows (the IOCP backend, run under wine): the suites that build there, each
   test in a process of its own as on POSIX, here by running this program again with
   --child NAME HANDLE (CreateProcess has no fork).  The child reports a failure through HANDLE, the
   write end of an inherited pipe; the last line is "N passed, N failed", as from tests/main.c.
   The suites that need POSIX (signal, child, fork, fdkind, internals) are left out; the tests of
   the others that need it are compiled out by T_POSIX (t.h); tests/win/test_iocp.c has the
   Windows forms of child watchers, signals, fiber sockets and evl_dump.

   Arguments select tests as there: a part of a test's name, or suite=NAME; --list prints them.
   Environment: EVL_TEST_TIMEOUT seconds per test (default 30). */
#include "../t.h"

#include <windows.h>

extern const t_case loop_tests[], io_tests[], timer_tests[], async_tests[], safety_tests[], misuse_tests[],
    fiber_tests[], files_tests[], files_responsive_tests[], iocp_tests[], iocp_internals_tests[];

static const struct {
    const char *name;
    const t_case *tests;
} suites[] = {{"loop", loop_tests},     {"io", io_tests},         {"timer", timer_tests},
              {"async", async_tests},   {"safety", safety_tests}, {"misuse", misuse_tests},
              {"fiber", fiber_tests},   {"files", files_tests},   {"files", files_responsive_tests},
              {"iocp", iocp_tests},     {"iocp_internals", iocp_internals_tests}};

int t_slow;
int t_refused_errno;
static HANDLE result_pipe;                      /* the child tells the runner why it failed */
static void (*at_exit)(void);

void t_at_exit(void (*fn)(void)) { at_exit = fn; }

static void end_test(int code) {
    if (at_exit) at_exit();
    _exit(code);
}

static void report(const char *msg, size_t len) {
    DWORD written;
    if (result_pipe) WriteFile(result_pipe, msg, (DWORD)len, &written, NULL);
}

void t_fail(const char *file, int line, const char *what, const char *detail) {
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s:%d: CHECK(%s)%s%s", file, line, what, detail ? " -> " : "",
                     detail ? detail : "");
    if (n > 0) report(msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    end_test(1);
}

void t_skip(const char *reason) {
    report(reason, strlen(reason));
    end_test(77);
}

evl_time t_clock(void) {
    LARGE_INTEGER now, hz;
    QueryPerformanceFrequency(&hz);
    QueryPerformanceCounter(&now);
    return (evl_time)(now.QuadPart / hz.QuadPart) * 1000000000u +
           (evl_time)(now.QuadPart % hz.QuadPart) * 1000000000u / (evl_time)hz.QuadPart;
}

int t_run_until(evl_loop *loop, volatile int *flag, evl_time limit) {
    evl_time end = t_clock() + limit;
    while (!*flag && t_clock() < end) CHECK(evl_run(loop, EVL_MS(10)) >= 0);
    return *flag;
}

/* errno as the POSIX calls would set it, for the tests that compare with EAGAIN. */
static void set_errno_from_wsa(void) {
    int err = WSAGetLastError();
    errno = err == WSAEWOULDBLOCK ? EAGAIN : err == WSAECONNRESET ? ECONNRESET : err == WSAENOTSOCK ? EBADF : EIO;
}

ssize_t t_sock_read(evl_fd fd, void *buf, size_t len) {
    int n = recv(fd, (char *)buf, (int)len, 0);
    if (n == SOCKET_ERROR) set_errno_from_wsa();
    return n == SOCKET_ERROR ? -1 : n;
}

ssize_t t_sock_write(evl_fd fd, const void *buf, size_t len) {
    int n = send(fd, (const char *)buf, (int)len, 0);
    if (n == SOCKET_ERROR) set_errno_from_wsa();
    return n == SOCKET_ERROR ? -1 : n;
}

int t_sock_close(evl_fd fd) { return closesocket(fd) == 0 ? 0 : -1; }

int t_still_mapped(void *p, size_t len) {
    MEMORY_BASIC_INFORMATION info;
    (void)len;
    return VirtualQuery(p, &info, sizeof info) == sizeof info && info.State == MEM_COMMIT;
}

int t_sched_yield(void) { return SwitchToThread() ? 0 : 0; }

void t_set_nonblocking(int fd) {
    u_long on = 1;
    CHECK(ioctlsocket((SOCKET)fd, (long)FIONBIO, &on) == 0);
}

static void loopback(int type, SOCKET *out, struct sockaddr_in *addr) {
    int len = sizeof *addr;
    SOCKET s = socket(AF_INET, type, 0);
    CHECK(s != INVALID_SOCKET);
    SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(s, (struct sockaddr *)addr, sizeof *addr) == 0);
    CHECK(getsockname(s, (struct sockaddr *)addr, &len) == 0);
    *out = s;
}

/* Socket handles are kernel handles, which fit in an int: the tests keep them in int arrays. */
void t_tcp_pair(int fds[2]) {
    struct sockaddr_in addr;
    SOCKET listener, client, server;
    int one = 1;
    loopback(SOCK_STREAM, &listener, &addr);
    CHECK(listen(listener, 1) == 0);
    client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(client != INVALID_SOCKET);
    SetHandleInformation((HANDLE)client, HANDLE_FLAG_INHERIT, 0);
    CHECK(connect(client, (struct sockaddr *)&addr, sizeof addr) == 0);
    server = accept(listener, NULL, NULL);
    CHECK(server != INVALID_SOCKET);
    SetHandleInformation((HANDLE)server, HANDLE_FLAG_INHERIT, 0);
    closesocket(listener);
    fds[0] = (int)server;
    fds[1] = (int)client;
    t_set_nonblocking(fds[0]);
    t_set_nonblocking(fds[1]);
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
}

void t_udp_pair(int fds[2]) {
    struct sockaddr_in a, b;
    SOCKET sa, sb;
    loopback(SOCK_DGRAM, &sa, &a);
    loopback(SOCK_DGRAM, &sb, &b);
    CHECK(connect(sa, (struct sockaddr *)&b, sizeof b) == 0);
    CHECK(connect(sb, (struct sockaddr *)&a, sizeof a) == 0);
    fds[0] = (int)sa;
    fds[1] = (int)sb;
    t_set_nonblocking(fds[0]);
    t_set_nonblocking(fds[1]);
}

void t_pipe(int fds[2]) { t_tcp_pair(fds); }

int t_socket(int domain, int type, int nonblocking) {
    SOCKET s = socket(domain, type, 0);
    (void)nonblocking;                          /* evloop makes sockets non-blocking where it must */
    CHECK(s != INVALID_SOCKET);
    return (int)s;
}

void t_socketpair(int type, int fds[2]) {
    if (type == SOCK_DGRAM) t_udp_pair(fds);
    else t_tcp_pair(fds);
}

static DWORD WINAPI thread_main(LPVOID arg) {
    t_thread *t = (t_thread *)arg;
    t->fn(t->arg);
    return 0;
}

void t_thread_start(t_thread *t, void *(*fn)(void *), void *arg) {
    DWORD id;
    t->fn = fn;
    t->arg = arg;
    t->handle = CreateThread(NULL, 0, thread_main, t, 0, &id);
    CHECK(t->handle != NULL);
    t->id = id;
}

void t_thread_join(t_thread *t) {
    CHECK(WaitForSingleObject(t->handle, INFINITE) == WAIT_OBJECT_0);
    CloseHandle(t->handle);
}

evl_pid t_own_pid(void) { return GetCurrentProcess(); }

void t_record_io(evl_loop *loop, evl_io *w, unsigned revents) {
    t_seen *seen = (t_seen *)w->data;
    (void)loop;
    seen->calls++;
    seen->last = revents;
    seen->all |= revents;
}

int t_refuse_new_syscalls(int err) {
    (void)err;
    return -ENOSYS;
}

int t_refuse_waitid_pidfd(void) { return -ENOSYS; }

/* ---- Running ---------------------------------------------------------------------------------- */

static int matches(const char *suite, const char *name, int argc, char **argv) {
    int i, any = 0;
    for (i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        any = 1;
        if (!strncmp(argv[i], "suite=", 6) ? !strcmp(argv[i] + 6, suite) : strstr(name, argv[i]) != NULL) return 1;
    }
    return !any;
}

static const t_case *find(const char *name) {
    size_t i;
    const t_case *tc;
    for (i = 0; i < sizeof suites / sizeof suites[0]; i++)
        for (tc = suites[i].tests; tc->name; tc++)
            if (!strcmp(tc->name, name)) return tc;
    return NULL;
}

static int run_child(const char *name, const char *handle) {
    const t_case *tc = find(name);
    WSADATA wsa;
    result_pipe = (HANDLE)(uintptr_t)strtoull(handle, NULL, 10);
    if (!tc) t_fail(__FILE__, __LINE__, "the test exists", name);
    WSAStartup(MAKEWORD(2, 2), &wsa);           /* for the tests' own sockets, apart from any loop */
    tc->fn();
    end_test(0);
    return 0;
}

/* 0 passed, 1 failed, 2 skipped. */
static int run_one(const t_case *tc, int timeout) {
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    HANDLE rd, wr;
    char cmd[1024], self[MAX_PATH], msg[512];
    DWORD code = 1, avail = 0, got = 0;
    evl_time start = t_clock();
    int timed_out = 0;
    fflush(stdout);
    CHECK(CreatePipe(&rd, &wr, &inherit, 0));
    SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    GetModuleFileNameA(NULL, self, sizeof self);
    snprintf(cmd, sizeof cmd, "\"%s\" --child %s %llu", self, tc->name, (unsigned long long)(uintptr_t)wr);
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        printf("FAIL  %-48s cannot start: error %lu\n", tc->name, (unsigned long)GetLastError());
        return 1;
    }
    CloseHandle(wr);
    CloseHandle(pi.hThread);
    if (WaitForSingleObject(pi.hProcess, (DWORD)timeout * 1000u) != WAIT_OBJECT_0) {
        TerminateProcess(pi.hProcess, 124);
        WaitForSingleObject(pi.hProcess, INFINITE);
        timed_out = 1;
    }
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    msg[0] = 0;
    if (PeekNamedPipe(rd, NULL, 0, NULL, &avail, NULL) && avail > 0 &&
        ReadFile(rd, msg, avail < sizeof msg - 1 ? avail : (DWORD)sizeof msg - 1, &got, NULL))
        msg[got] = 0;
    CloseHandle(rd);
    if (code == 0 && !timed_out) {
        printf("ok    %-48s %5llu ms\n", tc->name, (unsigned long long)((t_clock() - start) / 1000000u));
        return 0;
    }
    if (code == 77) {
        printf("skip  %-48s %s\n", tc->name, msg);
        return 2;
    }
    printf("FAIL  %-48s %s%s (exit %lu)\n", tc->name, timed_out ? "(timed out) " : "", msg, (unsigned long)code);
    return 1;
}

int main(int argc, char **argv) {
    int i, passed = 0, failed = 0, skipped = 0, list = 0;
    int timeout = getenv("EVL_TEST_TIMEOUT") ? atoi(getenv("EVL_TEST_TIMEOUT")) : 30;
    const t_case *tc;
    t_slow = getenv("EVL_TEST_SLOW") && atoi(getenv("EVL_TEST_SLOW"));   /* the tests run in the children */
    if (argc == 4 && !strcmp(argv[1], "--child")) return run_child(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "--exit")) return atoi(argv[2]);    /* a child for the child tests */
    for (i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--list")) list = 1;
    setvbuf(stdout, NULL, _IONBF, 0);
    for (i = 0; i < (int)(sizeof suites / sizeof suites[0]); i++)
        for (tc = suites[i].tests; tc->name; tc++) {
            if (!matches(suites[i].name, tc->name, argc, argv)) continue;
            if (list) {
                printf("%s\n", tc->name);
                continue;
            }
            switch (run_one(tc, timeout)) {
            case 0: passed++; break;
            case 1: failed++; break;
            default: skipped++;
            }
        }
    if (list) return 0;
    if (skipped) printf("# %d skipped (reasons above)\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
