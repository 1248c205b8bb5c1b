/* size program, hand-written: epoll with a timerfd, a signalfd and an eventfd standing in for the
 * timer, signal and async watchers. See size.h. */
#include "size.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static int efd;

static void *sender(void *arg) {
    uint64_t one = 1;
    (void)arg;
    BENCH_CHECK(write(efd, &one, sizeof one) == sizeof one, "eventfd write failed");
    return NULL;
}

static void watch(int epfd, int fd) {
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    BENCH_CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl: %s", strerror(errno));
}

int main(void) {
    struct itimerspec its;
    sigset_t mask;
    int epfd, tfd, sfd, active = 4;

    size_begin();
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &mask, NULL); /* before the thread exists, so it inherits the mask */
    epfd = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    BENCH_CHECK(epfd >= 0 && tfd >= 0 && sfd >= 0 && efd >= 0, "setup: %s", strerror(errno));
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 1000000;
    BENCH_CHECK(timerfd_settime(tfd, 0, &its, NULL) == 0, "timerfd_settime: %s", strerror(errno));
    watch(epfd, size_pipe[0]);
    watch(epfd, tfd);
    watch(epfd, sfd);
    watch(epfd, efd);
    size_start_thread(sender);
    BENCH_CHECK(write(size_pipe[1], "x", 1) == 1, "write failed");

    while (active > 0) {
        struct epoll_event evs[8];
        int n = epoll_wait(epfd, evs, 8, -1), i;
        BENCH_CHECK(n >= 0 || errno == EINTR, "epoll_wait: %s", strerror(errno));
        for (i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            char buf[sizeof(struct signalfd_siginfo)];
            BENCH_CHECK(read(fd, buf, sizeof buf) > 0, "read: %s", strerror(errno));
            epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
            active--;
            size_hits++;
            if (fd == tfd) raise(SIGUSR1);
        }
    }
    return size_end();
}
