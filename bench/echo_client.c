/* echo_client - the one load generator for every echo server (plain epoll, no event library).
 *
 *   echo_client -p PORT [-c connections] [-s message bytes] [-d duration ms] [-C cpu]
 *
 * Opens the connections to 127.0.0.1:PORT, then keeps exactly one message in flight on each: send a
 * message, wait until all of its bytes have come back, check them, record the round trip, send the
 * next. After the duration no new message is sent; the ones in flight are awaited, then every
 * connection is closed (which is what ends the server). Each message carries its connection number and
 * sequence number, and its other bytes depend on both, so an echo that is lost, duplicated, reordered
 * or crosses connections fails the check, and the program exits non-zero.
 *
 * Prints RESULT msgs, msgs_per_s, rtt_p50_us, rtt_p99_us (and bytes, for run.py's cross-check).
 */
#include "bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAX_MSG 4096

struct client_conn {
    int fd;
    uint32_t id;
    uint32_t seq;
    size_t got; /* bytes of the current echo received so far */
    uint64_t sent_at;
    int in_flight;
    unsigned char expect[MAX_MSG];
    unsigned char rbuf[MAX_MSG];
};

static size_t msg_size = 64;
static double *rtts;
static size_t rtt_n, rtt_cap;

static void fill_message(struct client_conn *c) {
    size_t i;
    memcpy(c->expect, &c->id, 4);
    memcpy(c->expect + 4, &c->seq, 4);
    for (i = 8; i < msg_size; i++) c->expect[i] = (unsigned char)(c->id * 31u + c->seq * 7u + i);
}

static void send_message(struct client_conn *c) {
    ssize_t w;
    fill_message(c);
    c->got = 0;
    c->in_flight = 1;
    c->sent_at = bench_now_ns();
    w = send(c->fd, c->expect, msg_size, MSG_NOSIGNAL);
    /* One small message on an otherwise idle socket always fits in the send buffer. */
    BENCH_CHECK(w == (ssize_t)msg_size, "short send on connection %u: %zd (%s)", c->id, w, strerror(errno));
}

static void record_rtt(uint64_t ns) {
    if (rtt_n == rtt_cap) {
        rtt_cap = rtt_cap ? rtt_cap * 2 : 1 << 16;
        rtts = realloc(rtts, rtt_cap * sizeof *rtts);
        BENCH_CHECK(rtts != NULL, "out of memory");
    }
    rtts[rtt_n++] = (double)ns / 1e3;
}

int main(int argc, char **argv) {
    int port = 0, nconn = 100, duration_ms = 2000, cpu = -1, opt, epfd, i;
    struct client_conn *conns;
    struct epoll_event ev, evs[256];
    struct sockaddr_in sa;
    uint64_t t_start, t_stop, t_last;
    long in_flight = 0;

    while ((opt = getopt(argc, argv, "p:c:s:d:C:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': nconn = atoi(optarg); break;
        case 's': msg_size = (size_t)atol(optarg); break;
        case 'd': duration_ms = atoi(optarg); break;
        case 'C': cpu = atoi(optarg); break;
        default: fprintf(stderr, "usage: %s -p port [-c conns] [-s bytes] [-d ms] [-C cpu]\n", argv[0]); return 64;
        }
    }
    BENCH_CHECK(port > 0 && nconn > 0 && msg_size >= 8 && msg_size <= MAX_MSG && duration_ms > 0, "bad parameters");
    bench_pin_cpu(cpu);
    bench_raise_nofile((rlim_t)nconn + 64);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    BENCH_CHECK(epfd >= 0, "epoll_create1: %s", strerror(errno));
    conns = bench_calloc((size_t)nconn, sizeof *conns);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    for (i = 0; i < nconn; i++) {
        int one = 1;
        struct client_conn *c = &conns[i];
        c->id = (uint32_t)i;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        BENCH_CHECK(c->fd >= 0, "socket: %s", strerror(errno));
        BENCH_CHECK(connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect #%d: %s", i, strerror(errno));
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bench_set_nonblock(c->fd);
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        BENCH_CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0, "epoll_ctl: %s", strerror(errno));
    }

    t_start = bench_now_ns();
    t_stop = t_start + (uint64_t)duration_ms * 1000000u;
    t_last = t_start;
    for (i = 0; i < nconn; i++) {
        send_message(&conns[i]);
        in_flight++;
    }
    while (in_flight > 0) {
        int n = epoll_wait(epfd, evs, 256, 5000);
        BENCH_CHECK(n > 0 || (n < 0 && errno == EINTR), "no echo for 5 s (%ld messages in flight)", in_flight);
        for (i = 0; i < n; i++) {
            struct client_conn *c = evs[i].data.ptr;
            ssize_t r = recv(c->fd, c->rbuf + c->got, msg_size - c->got, 0);
            uint64_t now;
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            BENCH_CHECK(r > 0, "connection %u: %s", c->id, r == 0 ? "closed by server" : strerror(errno));
            BENCH_CHECK(c->in_flight, "connection %u: %zd bytes nobody asked for", c->id, r);
            c->got += (size_t)r;
            if (c->got < msg_size) continue;
            now = bench_now_ns();
            BENCH_CHECK(memcmp(c->rbuf, c->expect, msg_size) == 0, "connection %u: echo of message %u is wrong", c->id,
                        c->seq);
            record_rtt(now - c->sent_at);
            c->in_flight = 0;
            in_flight--;
            t_last = now;
            if (now < t_stop) {
                c->seq++;
                send_message(c);
                in_flight++;
            }
        }
    }
    for (i = 0; i < nconn; i++) {
        unsigned char ch;
        /* The server must not have sent anything beyond the echoes. */
        BENCH_CHECK(recv(conns[i].fd, &ch, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN,
                    "connection %d: unexpected extra bytes", i);
        close(conns[i].fd);
    }

    BENCH_CHECK(rtt_n > 0, "no message completed");
    bench_result("msgs", (double)rtt_n);
    bench_result("bytes", (double)rtt_n * (double)msg_size);
    bench_result("msgs_per_s", (double)rtt_n / ((double)(t_last - t_start) / 1e9));
    bench_result("rtt_p50_us", bench_percentile(rtts, rtt_n, 50));
    bench_result("rtt_p99_us", bench_percentile(rtts, rtt_n, 99));
    return 0;
}
