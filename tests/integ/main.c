/* The integration runner: each test in a child process of its own (in its own process group, so
   a peer it leaves behind is killed with it), one line per test, then "N passed, N failed".
   Arguments select tests by a part of their name, or suite=NAME.  EVL_TEST_TIMEOUT: seconds per
   test (default 60). */
#include "integ.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

extern const t_case mqtt_tests[], http_tests[], dns_tests[], serial_tests[], pri_tests[], inotify_tests[],
    glib_tests[];

static const struct {
    const char *name;
    const t_case *tests;
} suites[] = {{"mqtt", mqtt_tests},     {"http", http_tests}, {"dns", dns_tests},   {"serial", serial_tests},
              {"pri", pri_tests},       {"inotify", inotify_tests}, {"glib", glib_tests}};

int t_slow;
int t_refused_errno;
static int result_fd = -1;

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

static void report(const char *msg) {
    if (result_fd >= 0) (void)!write(result_fd, msg, strlen(msg));
}

void t_fail(const char *file, int line, const char *what, const char *detail) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s:%d: %s%s%s", file, line, what, detail ? ": " : "", detail ? detail : "");
    report(msg);
    fflush(stdout);
    _exit(1);
}

void t_skip(const char *reason) {
    report(reason);
    fflush(stdout);
    _exit(77);
}

/* 0 passed, 1 failed, 2 skipped. */
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
        fflush(stdout);
        _exit(0);
    }
    setpgid(pid, pid);
    close(pipefd[1]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    kill(-pid, SIGKILL);                        /* a peer the test could not stop */
    (void)fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    len = read(pipefd[0], msg, sizeof msg - 1);
    close(pipefd[0]);
    msg[len > 0 ? len : 0] = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok    %-56s %6.2f s\n", tc->name, (double)(t_clock() - start) / 1e9);
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        printf("skip  %-56s (%s)\n", tc->name, msg);
        return 2;
    }
    if (WIFSIGNALED(status))
        printf("FAIL  %-56s killed by signal %d%s %s\n", tc->name, WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? " (timed out)" : "", msg);
    else
        printf("FAIL  %-56s %s (exit %d)\n", tc->name, msg, WEXITSTATUS(status));
    return 1;
}

static int matches(const char *suite, const char *name, int argc, char **argv) {
    int i, any = 0;
    for (i = 1; i < argc; i++) {
        any = 1;
        if (!strncmp(argv[i], "suite=", 6) ? !strcmp(argv[i] + 6, suite) : strstr(name, argv[i]) != NULL) return 1;
    }
    return !any;
}

int main(int argc, char **argv) {
    int i, passed = 0, failed = 0, skipped = 0;
    int timeout = getenv("EVL_TEST_TIMEOUT") ? atoi(getenv("EVL_TEST_TIMEOUT")) : 60;
    const t_case *tc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < (int)(sizeof suites / sizeof suites[0]); i++)
        for (tc = suites[i].tests; tc->name; tc++) {
            if (!matches(suites[i].name, tc->name, argc, argv)) continue;
            switch (run_one(tc, timeout)) {
            case 0: passed++; break;
            case 1: failed++; break;
            default: skipped++;
            }
        }
    if (skipped) printf("# %d skipped (reasons above)\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
