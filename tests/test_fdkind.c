/* Every kind of descriptor the contract names, each made ready the way that kind becomes ready in
   real use, and read through the loop. */
#include "t.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#endif
#include <termios.h>
#include <unistd.h>

/* Starts a watcher on fd, makes it ready with make_ready(arg), and checks the loop reports `want`. */
static void expect_ready(int fd, unsigned events, unsigned want) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    memset(&seen, 0, sizeof seen);
    CHECK_EQ(evl_init(&loop), 0);
    evl_io_init(&w, t_record_io, fd, events);
    w.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(5)));
    CHECK_EQ(seen.last & want, want);
    evl_io_stop(&loop, &w);
    evl_deinit(&loop);
}

/* Checks that a watcher on fd is not called while nothing is ready. */
static void expect_quiet(int fd, unsigned events) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    memset(&seen, 0, sizeof seen);
    CHECK_EQ(evl_init(&loop), 0);
    evl_io_init(&w, t_record_io, fd, events);
    w.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);
    CHECK_EQ(seen.calls, 0);
    evl_deinit(&loop);
}

static void stream_round_trip(int fds[2]) {
    char buf[16];
    expect_quiet(fds[0], EVL_READ);
    CHECK_EQ(write(fds[1], "ping", 4), 4);
    expect_ready(fds[0], EVL_READ, EVL_READ);
    CHECK_EQ(read(fds[0], buf, sizeof buf), 4);
    expect_ready(fds[0], EVL_WRITE, EVL_WRITE);
    close(fds[1]);                              /* the peer goes away: readable at end of file */
    expect_ready(fds[0], EVL_READ, EVL_READ);
    CHECK_EQ(read(fds[0], buf, sizeof buf), 0);
    close(fds[0]);
}

static void tcp_socket(void) {
    int fds[2];
    t_tcp_pair(fds);
    stream_round_trip(fds);
}

static void tcp_listening_socket_is_readable_on_connect(void) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int listener = t_socket(AF_INET, SOCK_STREAM, 1), client;
    CHECK(listener >= 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(listener, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK_EQ(getsockname(listener, (struct sockaddr *)&addr, &len), 0);
    CHECK_EQ(listen(listener, 4), 0);
    expect_quiet(listener, EVL_READ);
    client = t_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(connect(client, (struct sockaddr *)&addr, sizeof addr), 0);
    expect_ready(listener, EVL_READ, EVL_READ);
    close(client);
    close(listener);
}

static void tcp_urgent_data_is_reported_as_pri(void) {
    int fds[2];
    char c;
    if (!T_HAS_PRI) t_skip("no EVL_PRI on this backend (kqueue without EVFILT_EXCEPT); test_kqueue checks -ENOSYS");
    t_tcp_pair(fds);
    expect_quiet(fds[0], EVL_PRI);
    CHECK_EQ(send(fds[1], "!", 1, MSG_OOB), 1);
    expect_ready(fds[0], EVL_PRI, EVL_PRI);
    CHECK_EQ(recv(fds[0], &c, 1, MSG_OOB), 1);
    CHECK_EQ(c, '!');
    close(fds[0]);
    close(fds[1]);
}

static void udp_socket(void) {
    int fds[2];
    char buf[16];
    t_udp_pair(fds);
    expect_quiet(fds[0], EVL_READ);
    CHECK_EQ(send(fds[1], "datagram", 8, 0), 8);
    expect_ready(fds[0], EVL_READ, EVL_READ);
    CHECK_EQ(recv(fds[0], buf, sizeof buf, 0), 8);
    expect_ready(fds[0], EVL_WRITE, EVL_WRITE);
    close(fds[0]);
    close(fds[1]);
}

static void unix_stream_socket(void) {
    int fds[2];
    t_socketpair(SOCK_STREAM, fds);
    stream_round_trip(fds);
}

static void unix_datagram_socket(void) {
    int fds[2];
    char buf[16];
    t_socketpair(SOCK_DGRAM, fds);
    expect_quiet(fds[0], EVL_READ);
    CHECK_EQ(send(fds[1], "dgram", 5, 0), 5);
    expect_ready(fds[0], EVL_READ, EVL_READ);
    CHECK_EQ(recv(fds[0], buf, sizeof buf, 0), 5);
    close(fds[0]);
    close(fds[1]);
}

static void unix_seqpacket_socket(void) {
    int fds[2];
    t_socketpair(SOCK_SEQPACKET, fds);
    stream_round_trip(fds);
}

static void pipe_descriptor(void) {
    int fds[2];
    char buf[8];
    t_pipe(fds);
    expect_quiet(fds[0], EVL_READ);
    expect_ready(fds[1], EVL_WRITE, EVL_WRITE);
    CHECK_EQ(write(fds[1], "abc", 3), 3);
    expect_ready(fds[0], EVL_READ, EVL_READ);
    CHECK_EQ(read(fds[0], buf, sizeof buf), 3);
    close(fds[1]);
    expect_ready(fds[0], EVL_READ, EVL_HUP);
    close(fds[0]);
}

/* A pty stands in for a serial port: raw mode, bytes in both directions, hang-up on close. */
static void pty_as_a_serial_port(void) {
    int master = posix_openpt(O_RDWR | O_NOCTTY), slave;
    struct termios tio;
    char buf[16];
    CHECK(master >= 0);
    CHECK_EQ(fcntl(master, F_SETFD, FD_CLOEXEC), 0);   /* O_CLOEXEC is not for posix_openpt on macOS */
    CHECK_EQ(grantpt(master), 0);
    CHECK_EQ(unlockpt(master), 0);
    slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    CHECK(slave >= 0);
    CHECK_EQ(tcgetattr(slave, &tio), 0);
    cfmakeraw(&tio);
    CHECK_EQ(tcsetattr(slave, TCSANOW, &tio), 0);
    t_set_nonblocking(master);
    expect_quiet(slave, EVL_READ);
    CHECK_EQ(write(master, "AT\r", 3), 3);      /* the "device" sends a command */
    expect_ready(slave, EVL_READ, EVL_READ);
    CHECK_EQ(read(slave, buf, sizeof buf), 3);
    CHECK_EQ(write(slave, "OK\r\n", 4), 4);     /* and gets an answer */
    expect_ready(master, EVL_READ, EVL_READ);
    CHECK_EQ(read(master, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "OK\r\n", 4) == 0);
    close(slave);                               /* the other side hangs up */
    expect_ready(master, EVL_READ, EVL_HUP);
    close(master);
}

#ifdef __linux__   /* descriptor kinds of Linux alone */
static void eventfd_descriptor(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t v = 3;
    CHECK(fd >= 0);
    expect_quiet(fd, EVL_READ);
    CHECK_EQ(write(fd, &v, sizeof v), 8);
    expect_ready(fd, EVL_READ, EVL_READ);
    CHECK_EQ(read(fd, &v, sizeof v), 8);
    CHECK_EQ(v, 3);
    close(fd);
}

static void timerfd_descriptor(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its;
    uint64_t expirations;
    CHECK(fd >= 0);
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 2000000;
    CHECK_EQ(timerfd_settime(fd, 0, &its, NULL), 0);
    expect_ready(fd, EVL_READ, EVL_READ);
    CHECK_EQ(read(fd, &expirations, sizeof expirations), 8);
    CHECK_EQ(expirations, 1);
    close(fd);
}

static void signalfd_descriptor(void) {
    sigset_t set;
    struct signalfd_siginfo info;
    int fd;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &set, NULL), 0);
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    CHECK(fd >= 0);
    expect_quiet(fd, EVL_READ);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    expect_ready(fd, EVL_READ, EVL_READ);
    CHECK_EQ(read(fd, &info, sizeof info), (long)sizeof info);
    CHECK_EQ(info.ssi_signo, SIGUSR1);
    close(fd);
}

static void inotify_descriptor(void) {
    char dir[] = "/tmp/evl-inotify-XXXXXX", path[64], buf[512];
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), file;
    CHECK(fd >= 0);
    CHECK(mkdtemp(dir) != NULL);
    CHECK(inotify_add_watch(fd, dir, IN_CREATE) >= 0);
    expect_quiet(fd, EVL_READ);
    snprintf(path, sizeof path, "%s/new", dir);
    file = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    CHECK(file >= 0);
    expect_ready(fd, EVL_READ, EVL_READ);
    CHECK(read(fd, buf, sizeof buf) > 0);
    close(file);
    unlink(path);
    rmdir(dir);
    close(fd);
}

static void fanotify_descriptor(void) {
    char dir[] = "/tmp/evl-fanotify-XXXXXX", path[64], buf[4096];
    int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY), file;
    if (fd < 0 && (errno == EPERM || errno == ENOSYS || errno == EINVAL))
        t_skip(errno == EPERM ? "fanotify needs CAP_SYS_ADMIN" : "fanotify not supported by this kernel");
    CHECK(fd >= 0);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/watched", dir);
    file = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    CHECK(file >= 0);
    if (fanotify_mark(fd, FAN_MARK_ADD, FAN_CLOSE_WRITE, AT_FDCWD, path) < 0) {
        unlink(path);
        rmdir(dir);
        t_skip("fanotify_mark refused here (e.g. inside a container)");
    }
    expect_quiet(fd, EVL_READ);
    CHECK_EQ(write(file, "x", 1), 1);
    close(file);
    expect_ready(fd, EVL_READ, EVL_READ);
    CHECK(read(fd, buf, sizeof buf) > 0);
    unlink(path);
    rmdir(dir);
    close(fd);
}

#endif

const t_case fdkind_tests[] = {
    T(tcp_socket),
    T(tcp_listening_socket_is_readable_on_connect),
    T(tcp_urgent_data_is_reported_as_pri),
    T(udp_socket),
    T(unix_stream_socket),
    T(unix_datagram_socket),
    T(unix_seqpacket_socket),
    T(pipe_descriptor),
    T(pty_as_a_serial_port),
#ifdef __linux__
    T(eventfd_descriptor),
    T(timerfd_descriptor),
    T(signalfd_descriptor),
    T(inotify_descriptor),
    T(fanotify_descriptor),
#endif
    T_END,
};
