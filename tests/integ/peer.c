/* The peers of the integration tests: started as child processes, awaited, stopped by pid. */
#include "integ.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static int bind_loopback(int type, int port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    if (port == 0) {
        CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

/* Free for TCP and UDP alike: dnsmasq binds both, and an ephemeral port the kernel hands out for
   one type may be the local port of a connection of the other (seen: dnsmasq exiting with 2). */
int integ_free_port(int type) {
    int tries;
    for (tries = 0; tries < 100; tries++) {
        int port = bind_loopback(type, 0);
        CHECK(port > 0);
        if (bind_loopback(type == SOCK_STREAM ? SOCK_DGRAM : SOCK_STREAM, port) == port) return port;
    }
    t_fail(__FILE__, __LINE__, "a port free for TCP and UDP", NULL);
    return -1;
}

const char *integ_require(const char *program, const char *package) {
    static char found[4][512];
    static int next;
    char dirs[1024], *dir, *save = NULL, why[256];
    char *path = found[next++ % 4];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    for (dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof found[0], "%s/%s", dir, program);
        if (access(path, X_OK) == 0) return path;
    }
    snprintf(why, sizeof why, "the peer %s is not installed (apt-get install %s; .ci/run does)", program, package);
    t_fail(__FILE__, __LINE__, "peer present", why);
    return NULL;
}

pid_t integ_spawn(char *const argv[], const char *log_path) {
    pid_t parent = getpid(), pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);    /* the test died before the line above */
        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void fail_with_log(const char *what, const char *log_path) {
    char buf[400];
    ssize_t n = 0;
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    buf[n > 0 ? n : 0] = 0;
    t_fail(__FILE__, __LINE__, what, buf);
}

int integ_await_tcp(int port, pid_t pid, const char *log_path, evl_time limit) {
    evl_time end = t_clock() + limit;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        struct timespec pause = {0, 5000000};
        int status, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
        CHECK(fd >= 0);
        ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) return 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            integ_note("the peer exited (status %#x) before it listened on port %d", (unsigned)status, port);
            return -1;
        }
        if (t_clock() > end) fail_with_log("the peer did not listen in time", log_path);
        nanosleep(&pause, NULL);                /* polling a port: there is nothing to wait on */
    }
}

void integ_wait_tcp(int port, pid_t pid, const char *log_path, evl_time limit) {
    if (integ_await_tcp(port, pid, log_path, limit) < 0) fail_with_log("the peer exited before it listened", log_path);
}

int integ_stop(pid_t pid) {
    int status = 0, i;
    if (pid <= 0) return 0;
    kill(pid, SIGTERM);
    for (i = 0; i < 1000; i++) {
        struct timespec pause = {0, 5000000};
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return status;
        nanosleep(&pause, NULL);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

void integ_tmpdir(char *path, size_t size, const char *tag) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, size, "%s/evl-integ-%s-XXXXXX", base, tag);
    CHECK(mkdtemp(path) != NULL);
}

void integ_rmtree(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    char child[1024];
    struct stat st;
    if (!d) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) integ_rmtree(child);
        else unlink(child);
    }
    closedir(d);
    rmdir(path);
}

int integ_registered(const evl_loop *loop, int *fds, int max) {
    char name[64], line[256];
    int n = 0, fd;
    FILE *f;
    snprintf(name, sizeof name, "/proc/self/fdinfo/%d", evl_backend_fd(loop));
    f = fopen(name, "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "tfd: %d", &fd) == 1 && n < max) fds[n++] = fd;
    fclose(f);
    return n;
}

int integ_is_registered(const evl_loop *loop, int fd) {
    int fds[256], n = integ_registered(loop, fds, 256), i;
    for (i = 0; i < n; i++)
        if (fds[i] == fd) return 1;
    return 0;
}

void integ_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("#   ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}
