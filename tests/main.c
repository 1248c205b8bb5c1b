/* The test runner: runs every test of every suite (or those whose name contains an argument) in
   its own child process and prints one line per test, then "N passed, N failed".

   Arguments select tests: a part of a test's name, or suite=NAME for a whole suite.
   Options:
     --nosys     make the newer system calls (t_new_syscalls) fail with ENOSYS, as on an old kernel
                 (a seccomp filter installed in the runner and inherited by every test), so the
                 fallbacks run; --nosys=EPERM makes them fail with EPERM, as container sandboxes do
     --list      print the test names and exit
   Environment: EVL_TEST_TIMEOUT seconds per test (default 30), EVL_TEST_SLOW=1 for valgrind/qemu. */
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/socket.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/seccomp.h>)            /* not with musl-gcc, which has no kernel headers */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#endif
#endif

extern const t_case loop_tests[], io_tests[], fdkind_tests[], timer_tests[], signal_tests[], child_tests[],
    async_tests[], safety_tests[], misuse_tests[], fork_tests[], fiber_tests[], internals_tests[], poll_tests[],
    fdlife_tests[], kqueue_tests[], files_tests[], files_responsive_tests[];

static const struct {
    const char *name;
    const t_case *tests;
} suites[] = {{"loop", loop_tests},     {"io", io_tests},         {"fdkind", fdkind_tests}, {"timer", timer_tests},
              {"signal", signal_tests}, {"child", child_tests},   {"async", async_tests},   {"safety", safety_tests},
              {"misuse", misuse_tests}, {"fork", fork_tests},     {"fiber", fiber_tests},
              {"internals", internals_tests}, {"poll", poll_tests}, {"fdlife", fdlife_tests},
              {"kqueue", kqueue_tests}, {"files", files_tests}, {"files", files_responsive_tests}};

int t_slow;
int t_refused_errno;
static int result_fd = -1;                      /* the child tells the runner why it failed */
static void (*at_exit)(void);

void t_at_exit(void (*fn)(void)) { at_exit = fn; }

static void end_test(int code) {
    if (at_exit) at_exit();
    _exit(code);
}

void t_fail(const char *file, int line, const char *what, const char *detail) {
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s:%d: CHECK(%s)%s%s", file, line, what, detail ? " -> " : "",
                     detail ? detail : "");
    if (result_fd >= 0 && n > 0) (void)!write(result_fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    end_test(1);
}

void t_skip(const char *reason) {
    if (result_fd >= 0) (void)!write(result_fd, reason, strlen(reason));
    end_test(77);
}

evl_time t_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (evl_time)ts.tv_sec * 1000000000u + (evl_time)ts.tv_nsec;
}

int t_run_until(evl_loop *loop, volatile int *flag, evl_time limit) {
    evl_time end = t_clock() + limit;
    while (!*flag && t_clock() < end) CHECK(evl_run(loop, EVL_MS(10)) >= 0);
    return *flag;
}

void t_set_nonblocking(int fd) { CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0); }

/* The flags with fcntl: macOS has no pipe2, accept4, SOCK_NONBLOCK or SOCK_CLOEXEC. */
static void t_set_cloexec(int fd) { CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0); }

static void t_set_both(int fd) {
    t_set_cloexec(fd);
    t_set_nonblocking(fd);
}

int t_socket(int domain, int type, int nonblocking) {
    int fd = socket(domain, type, 0);
    CHECK(fd >= 0);
    t_set_cloexec(fd);
    if (nonblocking) t_set_nonblocking(fd);
    return fd;
}

void t_pipe(int fds[2]) {
    CHECK(pipe(fds) == 0);
    t_set_both(fds[0]);
    t_set_both(fds[1]);
}

void t_pipe_at(int number, int fds[2]) {
    int pair[2];
    t_pipe(pair);
    if (pair[1] == number) {                    /* keep the write end out of the way */
        pair[1] = dup(number);
        CHECK(pair[1] >= 0);
    }
    if (pair[0] != number) {
        CHECK(dup2(pair[0], number) == number);
        close(pair[0]);
    }
    fds[0] = number;
    fds[1] = pair[1];
}

void t_socketpair(int type, int fds[2]) {
    CHECK(socketpair(AF_UNIX, type, 0, fds) == 0);
    t_set_both(fds[0]);
    t_set_both(fds[1]);
}

static void t_loopback(int type, int *listener_out, struct sockaddr_in *addr) {
    socklen_t len = sizeof *addr;
    int fd = t_socket(AF_INET, type, 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)addr, sizeof *addr) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)addr, &len) == 0);
    *listener_out = fd;
}

void t_tcp_pair(int fds[2]) {
    struct sockaddr_in addr;
    int listener, one = 1;
    t_loopback(SOCK_STREAM, &listener, &addr);
    CHECK(listen(listener, 1) == 0);
    fds[1] = t_socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(fds[1], (struct sockaddr *)&addr, sizeof addr) == 0);
    fds[0] = accept(listener, NULL, NULL);
    CHECK(fds[0] >= 0);
    t_set_both(fds[0]);
    t_set_nonblocking(fds[1]);
    setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(listener);
}

void t_udp_pair(int fds[2]) {
    struct sockaddr_in a, b;
    t_loopback(SOCK_DGRAM, &fds[0], &a);
    t_loopback(SOCK_DGRAM, &fds[1], &b);
    CHECK(connect(fds[0], (struct sockaddr *)&b, sizeof b) == 0);
    CHECK(connect(fds[1], (struct sockaddr *)&a, sizeof a) == 0);
    t_set_nonblocking(fds[0]);
    t_set_nonblocking(fds[1]);
}

pid_t t_fork_sleeper(void) {
    pid_t parent = getpid(), pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);      /* the parent ended before the line above */
        for (;;) pause();
#else
        while (getppid() == parent) sleep(1);   /* no death signal elsewhere: look now and then */
        _exit(0);
#endif
    }
    return pid;
}

void t_thread_start(t_thread *t, void *(*fn)(void *), void *arg) {
    pthread_t id;
    CHECK(pthread_create(&id, NULL, fn, arg) == 0);
    t->id = (unsigned long)id;
}

void t_thread_join(t_thread *t) { CHECK(pthread_join((pthread_t)t->id, NULL) == 0); }

/* qemu-i386 (7.2) hands the main thread the sending thread's thread pointer when a signal that
   thread raised interrupts it: afterwards pthread_self() names the other thread and joining it fails
   with EDEADLK.  The tests that signal across threads first check that the machine keeps the
   pointer, on a signal none of them uses, so a defect of the emulator is reported as such. */
static volatile sig_atomic_t probe_caught;

static void note_probe_signal(int sig) {
    (void)sig;
    probe_caught = 1;
}

static void *raise_probe_signal(void *arg) {
    kill(getpid(), SIGURG);                     /* blocked here (inherited): the main thread takes it */
    return arg;
}

void t_skip_unless_signals_keep_the_thread_pointer(void) {
    struct sigaction sa, old;
    sigset_t urg, mask, wait;
    pthread_t other;
    int rc;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note_probe_signal;
    CHECK(sigaction(SIGURG, &sa, &old) == 0);
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    pthread_sigmask(SIG_BLOCK, &urg, &mask);
    wait = mask;
    sigdelset(&wait, SIGURG);
    CHECK(pthread_create(&other, NULL, raise_probe_signal, NULL) == 0);
    while (!probe_caught) sigsuspend(&wait);    /* a wait the sanitizers deliver signals in */
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    rc = pthread_join(other, NULL);             /* the defect shows here, not in pthread_self(),
                                                   whose value the compiler may keep from before */
    if (rc == EDEADLK)
        t_skip("this machine loses the thread pointer when another thread's signal interrupts "
               "(a qemu-i386 defect)");
    CHECK(rc == 0);
    sigaction(SIGURG, &old, NULL);
}

evl_pid t_own_pid(void) { return getpid(); }

void t_record_io(evl_loop *loop, evl_io *w, unsigned revents) {
    t_seen *seen = (t_seen *)w->data;
    (void)loop;
    seen->calls++;
    seen->last = revents;
    seen->all |= revents;
}

/* ---- Refusing the newer system calls -----------------------------------------------------------
   A seccomp filter makes the calls below fail with a chosen errno: ENOSYS as an old kernel does, or
   EPERM as container sandboxes do.  Inherited by every child, so the whole suite runs on the
   fallbacks.  Syscall numbers from Linux 5.1 on are the same on every architecture but alpha. */

static const struct {
    long nr;
    const char *name;
} t_new_syscalls[] = {{441, "epoll_pwait2"}, {434, "pidfd_open"}, {425, "io_uring_setup"}};

int t_refuse_new_syscalls(int err) {
#if defined(__linux__) && defined(SECCOMP_MODE_FILTER) && defined(__x86_64__) && defined(AUDIT_ARCH_X86_64)
    enum { N = sizeof t_new_syscalls / sizeof t_new_syscalls[0] };
    struct sock_filter code[4 + N + 2];
    struct sock_fprog prog;
    unsigned i, k = 0;
    code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (i = 0; i < N; i++)   /* a match jumps over the rest of the list and the ALLOW to the refusal */
        code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)t_new_syscalls[i].nr,
                                                 (unsigned char)(N - i), 0);
    code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA));
    prog.len = (unsigned short)k;
    prog.filter = code;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) return -errno;
    /* Prove the filter works before trusting the results. */
    if (syscall(t_new_syscalls[1].nr, getpid(), 0) >= 0 || errno != err) return -EPERM;
    return 0;
#else
    (void)err;
    return -ENOSYS;
#endif
}

/* Linux 5.3 had pidfd_open but not waitid(P_PIDFD): this makes waitid refuse P_PIDFD with EINVAL,
   as that kernel does, and leaves every other call alone. */
int t_refuse_waitid_pidfd(void) {
#if defined(__linux__) && defined(SECCOMP_MODE_FILTER) && defined(__x86_64__) && defined(AUDIT_ARCH_X86_64) && \
    defined(SYS_waitid)
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_waitid, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3 /* P_PIDFD */, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)EINVAL & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog;
    prog.len = (unsigned short)(sizeof code / sizeof code[0]);
    prog.filter = code;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) return -errno;
    return 0;
#else
    return -ENOSYS;
#endif
}

/* ---- Running ---------------------------------------------------------------------------------- */

/* A test runs if no filter is given, or if an argument is part of its name, or names its suite
   as suite=NAME. */
static int matches(const char *suite, const char *name, int argc, char **argv) {
    int i, any = 0;
    for (i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        any = 1;
        if (!strncmp(argv[i], "suite=", 6) ? !strcmp(argv[i] + 6, suite) : strstr(name, argv[i]) != NULL) return 1;
    }
    return !any;
}

static evl_time elapsed_ms(evl_time start) { return (t_clock() - start) / 1000000u; }

/* 0 passed, 1 failed, 2 skipped.  Each test runs in a process group of its own: once the test
   process has ended, whatever it forked and left behind is killed, and the runner reads the
   message only then, without waiting, since a leftover process may hold the pipe open (a test that
   fails between forking a child and releasing it would otherwise hang the whole run). */
static int run_one(const t_case *tc, int timeout) {
    int pipefd[2], status;
    char msg[512];
    ssize_t len;
    evl_time start = t_clock();
    pid_t pid;
    fflush(stdout);
    if (pipe(pipefd) < 0) return 1;
    pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        close(pipefd[0]);
        result_fd = pipefd[1];
        alarm((unsigned)timeout);
        tc->fn();
        end_test(0);
    }
    setpgid(pid, pid);                          /* either side may get there first */
    close(pipefd[1]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    kill(-pid, SIGKILL);
    (void)fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    len = read(pipefd[0], msg, sizeof msg - 1); /* a message is short: it is all in the pipe */
    close(pipefd[0]);
    msg[len > 0 ? len : 0] = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok    %-48s %5llu ms\n", tc->name, (unsigned long long)elapsed_ms(start));
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        printf("skip  %-48s (%s)\n", tc->name, msg);
        return 2;
    }
    if (WIFSIGNALED(status))
        printf("FAIL  %-48s killed by signal %d%s%s\n", tc->name, WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? " (timed out)" : "", msg[0] ? msg : "");
    else
        printf("FAIL  %-48s %s (exit %d)\n", tc->name, msg, WEXITSTATUS(status));
    return 1;
}

int main(int argc, char **argv) {
    int i, passed = 0, failed = 0, skipped = 0, nosys = 0, list = 0;
    const char *nosys_name = "ENOSYS";
    int timeout = getenv("EVL_TEST_TIMEOUT") ? atoi(getenv("EVL_TEST_TIMEOUT")) : 30;
    const t_case *tc;
    t_slow = getenv("EVL_TEST_SLOW") && atoi(getenv("EVL_TEST_SLOW"));
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--nosys")) nosys = ENOSYS;
        if (!strcmp(argv[i], "--nosys=EPERM")) nosys = EPERM, nosys_name = "EPERM";
        if (!strcmp(argv[i], "--list")) list = 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (nosys) {
        int rc = t_refuse_new_syscalls(nosys);
        if (rc < 0) {
            printf("--nosys: cannot install the seccomp filter (%s)\n0 passed, 1 failed\n", strerror(-rc));
            return 1;
        }
        printf("#");
        for (i = 0; i < (int)(sizeof t_new_syscalls / sizeof t_new_syscalls[0]); i++) printf(" %s", t_new_syscalls[i].name);
        printf(" fail with %s in this run\n", nosys_name);
        t_refused_errno = nosys;
    }
    {
        /* Let the backend probe the kernel once here, so every test inherits the answer (valgrind
           warns about each process that tries a system call it does not know). */
        evl_loop probe;
        if (evl_init(&probe) == 0) evl_deinit(&probe);
    }
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
