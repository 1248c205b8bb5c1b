/* load.c - evloop under load, and the soak that repeats the mix for a given time.

     load [--full] [--sigchld] [--seed=N] [SCENARIO...]    one run of each scenario (default: all)
     load --soak=SECONDS [--seed=N]                          the mix, round after round, on one loop

   Scenarios (CI size / --full size):
     echo      an echo server and a load client (a forked process with a loop of its own):
               2 000 / 10 000 connections held open at once, 20 / 100 pipelined messages each;
               every message comes back, in order, unaltered
     timers    100 000 / 1 000 000 timers active at once, restarted and stopped at random while
               they fire; each fires exactly once per arming, never before its deadline
     signals   10 000 / 100 000 signals from 4 threads and 4 processes while a watcher of each
               signal is started and stopped every 200 us next to one active all along, and a
               second loop on another thread watches them too; every thread blocks them, and the first loop is never
               idle; every send is followed by a call in both loops
     async     100 000 / 1 000 000 evl_async_send from 8 threads, in bursts; the last send of each
               burst is followed by a call (no lost wake-up)
     children  200 children exiting at once; each watcher gets its own child's status once.
               --sigchld: expect the SIGCHLD fallback (run under strace, which refuses pidfd_open)

   A failure prints what failed and exits 1; success prints one line of figures per scenario.
   The soak checks, after every round, that the loop holds no watcher and every message of the
   round was accounted for, and at the end that the descriptor count is the same as after the
   second round and the resident size never grew 1 MiB past it. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What every scenario accounted for, summed over the soak's rounds. */
static struct {
    uint64_t messages, timer_firings, signals, sends, children;
} totals;

static void fail(const char *file, int line, const char *what) {
    fprintf(stderr, "load: %s:%d: %s (errno %s)\n", file, line, what, strerror(errno));
    exit(1);
}
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) fail(__FILE__, __LINE__, #cond);                                              \
    } while (0)

static uint64_t rng_state;
static uint64_t rng(void) {                     /* xorshift64*: reproducible from --seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static uint64_t rng_below(uint64_t n) { return rng() % n; }

static evl_time clock_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (evl_time)ts.tv_sec * 1000000000u + (evl_time)ts.tv_nsec;
}

/* Runs the loop until *done is set, or fails after `limit`. */
static void run_until(evl_loop *loop, volatile int *done, evl_time limit, const char *what) {
    evl_time end = clock_now() + limit;
    while (!*done) {
        EXPECT(evl_run(loop, EVL_MS(50)) >= 0);
        if (clock_now() > end) {
            fprintf(stderr, "load: %s did not finish in time\n", what);
            evl_dump(loop, stderr);
            exit(1);
        }
    }
}

static double seconds_since(evl_time start) { return (double)(clock_now() - start) / 1e9; }

/* ---- echo ---------------------------------------------------------------------------------------
   Every message is 16 bytes: the connection's id, its sequence number, and a tag derived from both,
   so a byte lost, repeated, reordered or crossed between connections shows. */

enum { MSG = 16, WINDOW = 8, BUF = MSG * WINDOW * 2 };

static void message(unsigned char *out, uint32_t id, uint32_t seq) {
    uint64_t tag = ((uint64_t)id << 32 | seq) * 0x9e3779b97f4a7c15ull;
    memcpy(out, &id, 4);
    memcpy(out + 4, &seq, 4);
    memcpy(out + 8, &tag, 8);
}

typedef struct server_conn {
    evl_io io;
    unsigned char pending[BUF];                 /* read, not yet written back */
    size_t len;
    struct echo_server *server;
} server_conn;

typedef struct echo_server {
    evl_io listener;
    server_conn *conns;
    int capacity, accepted, open, max_open;
    uint64_t echoed;
} echo_server;

static void server_close(evl_loop *loop, server_conn *c) {
    evl_io_stop(loop, &c->io);
    close(c->io.fd);
    c->server->open--;
}

/* Writes back what is pending; what the socket does not take waits for EVL_WRITE. */
static void server_flush(evl_loop *loop, server_conn *c) {
    ssize_t n = write(c->io.fd, c->pending, c->len);
    if (n < 0 && errno != EAGAIN) {
        server_close(loop, c);
        return;
    }
    if (n > 0) {
        c->server->echoed += (uint64_t)n;
        memmove(c->pending, c->pending + n, c->len - (size_t)n);
        c->len -= (size_t)n;
    }
    EXPECT(evl_io_set(loop, &c->io, c->len ? EVL_WRITE : EVL_READ) == 0);
}

static void on_server_conn(evl_loop *loop, evl_io *w, unsigned revents) {
    server_conn *c = EVL__CONTAINER(w, server_conn, io);
    ssize_t n;
    (void)revents;
    if (c->len) {
        server_flush(loop, c);
        return;
    }
    n = read(w->fd, c->pending, sizeof c->pending);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        server_close(loop, c);
        return;
    }
    if (n < 0) return;
    c->len = (size_t)n;
    server_flush(loop, c);
}

static void on_accept(evl_loop *loop, evl_io *w, unsigned revents) {
    echo_server *s = (echo_server *)w->data;
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
        server_conn *c;
        if (fd < 0) {
            EXPECT(errno == EAGAIN || errno == EINTR);
            return;
        }
        EXPECT(s->accepted < s->capacity);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = &s->conns[s->accepted++];
        c->server = s;
        c->len = 0;
        evl_io_init(&c->io, on_server_conn, fd, EVL_READ);
        EXPECT(evl_io_start(loop, &c->io) == 0);
        if (++s->open > s->max_open) s->max_open = s->open;
    }
}

typedef struct client_conn {
    evl_io io;
    uint32_t id, sent, received;
    unsigned char in[BUF];
    size_t in_len;
    struct echo_client *client;
} client_conn;

typedef struct echo_client {
    client_conn *conns;
    struct sockaddr_in addr;
    int count, messages, started, connecting, connected, finished;
} echo_client;

static void client_send_window(client_conn *c) {
    unsigned char out[MSG * WINDOW];
    size_t len = 0;
    while (c->sent < (uint32_t)c->client->messages && len < sizeof out) {
        message(out + len, c->id, c->sent++);
        len += MSG;
    }
    EXPECT(write(c->io.fd, out, len) == (ssize_t)len);  /* a fresh socket takes 128 bytes */
}

/* Connects the next connections, at most 256 in flight, so the server's backlog never overflows
   (an overflow costs a second of SYN retransmission, not a failure). */
static void client_connect_more(evl_loop *loop, echo_client *cl);

static void on_client_conn(evl_loop *loop, evl_io *w, unsigned revents) {
    client_conn *c = EVL__CONTAINER(w, client_conn, io);
    echo_client *cl = c->client;
    unsigned char want[MSG];
    size_t at = 0;
    ssize_t n;
    if (w->events & EVL_WRITE) {                /* the connect finished */
        int err = 0;
        socklen_t len = sizeof err;
        EXPECT(getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0);
        EXPECT(evl_io_set(loop, w, EVL_READ) == 0);
        cl->connecting--;
        if (++cl->connected == cl->count) {     /* all open at once: now the traffic */
            int i;
            for (i = 0; i < cl->count; i++) client_send_window(&cl->conns[i]);
        }
        client_connect_more(loop, cl);
        return;
    }
    (void)revents;
    n = read(w->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (n < 0 && errno == EAGAIN) return;
    EXPECT(n > 0);
    c->in_len += (size_t)n;
    for (; c->in_len - at >= MSG; at += MSG) {
        message(want, c->id, c->received++);
        EXPECT(memcmp(c->in + at, want, MSG) == 0);
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    if (c->received < c->sent) return;
    if (c->sent < (uint32_t)cl->messages) client_send_window(c);
    else cl->finished++;
}

static void client_connect_more(evl_loop *loop, echo_client *cl) {
    while (cl->started < cl->count && cl->connecting < 256) {
        client_conn *c = &cl->conns[cl->started];
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
        EXPECT(fd >= 0);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        EXPECT(connect(fd, (struct sockaddr *)&cl->addr, sizeof cl->addr) == 0 || errno == EINPROGRESS);
        c->id = (uint32_t)cl->started++;
        c->client = cl;
        evl_io_init(&c->io, on_client_conn, fd, EVL_WRITE);
        EXPECT(evl_io_start(loop, &c->io) == 0);
        cl->connecting++;
    }
}

/* The client process: a loop of its own (the inherited one is given up, as a forked child may). */
static int echo_client_main(evl_loop *inherited, const struct sockaddr_in *addr, int count, int messages) {
    evl_loop loop;
    echo_client cl;
    int i;
    evl_deinit(inherited);
    EXPECT(evl_init(&loop) == 0);
    memset(&cl, 0, sizeof cl);
    cl.addr = *addr;
    cl.count = count;
    cl.messages = messages;
    cl.conns = calloc((size_t)count, sizeof *cl.conns);
    EXPECT(cl.conns != NULL);
    client_connect_more(&loop, &cl);
    while (cl.finished < count) EXPECT(evl_run(&loop, EVL_SEC(1)) >= 0);
    for (i = 0; i < count; i++) {
        evl_io_stop(&loop, &cl.conns[i].io);
        close(cl.conns[i].io.fd);
    }
    evl_deinit(&loop);
    free(cl.conns);
    return 0;
}

typedef struct child_wait {
    evl_child c;
    int done, status;
} child_wait;

static void on_child_exit(evl_loop *loop, evl_child *c, int status) {
    child_wait *cw = EVL__CONTAINER(c, child_wait, c);
    (void)loop;
    cw->status = status;
    cw->done = 1;
}

static void scenario_echo(evl_loop *loop, int count, int messages) {
    echo_server s;
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    child_wait client;
    int fd, one = 1;
    pid_t pid;
    evl_time start = clock_now();
    memset(&s, 0, sizeof s);
    s.capacity = count;
    s.conns = calloc((size_t)count, sizeof *s.conns);
    EXPECT(s.conns != NULL);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    EXPECT(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    EXPECT(listen(fd, 4096) == 0);
    evl_io_init(&s.listener, on_accept, fd, EVL_READ);
    s.listener.data = &s;
    EXPECT(evl_io_start(loop, &s.listener) == 0);
    fflush(NULL);
    pid = fork();
    EXPECT(pid >= 0);
    if (pid == 0) {
        close(fd);
        _exit(echo_client_main(loop, &addr, count, messages));
    }
    memset(&client, 0, sizeof client);
    evl_child_init(&client.c, on_child_exit, pid);
    EXPECT(evl_child_start(loop, &client.c) == 0);
    run_until(loop, &client.done, EVL_SEC(300), "echo");
    EXPECT(WIFEXITED(client.status) && WEXITSTATUS(client.status) == 0);
    while (s.open > 0) EXPECT(evl_run(loop, EVL_MS(50)) >= 0);    /* the client's closes arrive */
    evl_io_stop(loop, &s.listener);
    close(fd);
    EXPECT(s.accepted == count);
    EXPECT(s.max_open == count);
    EXPECT(s.echoed == (uint64_t)count * (uint64_t)messages * MSG);
    totals.messages += s.echoed / MSG;
    printf("echo: %d connections held at once, %llu messages echoed, none lost or reordered, %.1f s\n", s.max_open,
           (unsigned long long)(s.echoed / MSG), seconds_since(start));
    free(s.conns);
}

/* ---- timers ---------------------------------------------------------------------------------- */

typedef struct load_timer {
    evl_timer t;
    evl_time due;                               /* no earlier than this (read before the start) */
    int armed;
} load_timer;

typedef struct timer_load {
    load_timer *timers;
    int count, armed;
    uint64_t arms, fired, stopped, restarted;
    evl_time spread, late_max;
    int churns_left;                            /* counted, not timed: a slow machine still churns */
    evl_time armed_at;                          /* when the first armings were done: lateness counts from here */
    evl_timer churn;
} timer_load;

static timer_load *timers_now;

static void on_load_timer(evl_loop *loop, evl_timer *t) {
    load_timer *lt = EVL__CONTAINER(t, load_timer, t);
    evl_time now = evl_now(loop);
    EXPECT(lt->armed);
    EXPECT(now >= lt->due);                     /* never early */
    if (lt->due >= timers_now->armed_at && now - lt->due > timers_now->late_max) timers_now->late_max = now - lt->due;
    lt->armed = 0;
    timers_now->armed--;
    timers_now->fired++;
}

static void arm(evl_loop *loop, timer_load *tl, load_timer *lt, evl_time after) {
    if (lt->armed) tl->restarted++;
    else tl->armed++;
    lt->armed = 1;
    lt->due = clock_now() + after;
    tl->arms++;
    evl_timer_start(loop, &lt->t, after, 0);
}

/* Every millisecond, for half the spread: restart 200 timers at random (armed or not), stop 20. */
static void on_churn(evl_loop *loop, evl_timer *t) {
    timer_load *tl = (timer_load *)t->data;
    int i;
    if (tl->churns_left-- == 0) {
        evl_timer_stop(loop, t);
        return;
    }
    for (i = 0; i < 200; i++) arm(loop, tl, &tl->timers[rng_below((uint64_t)tl->count)], rng_below(tl->spread / 2));
    for (i = 0; i < 20; i++) {
        load_timer *lt = &tl->timers[rng_below((uint64_t)tl->count)];
        if (!lt->armed) continue;
        evl_timer_stop(loop, &lt->t);
        lt->armed = 0;
        tl->armed--;
        tl->stopped++;
    }
}

static void scenario_timers(evl_loop *loop, int count, evl_time spread) {
    timer_load tl;
    evl_time start = clock_now();
    int i, peak;
    memset(&tl, 0, sizeof tl);
    tl.count = count;
    tl.spread = spread;
    tl.timers = calloc((size_t)count, sizeof *tl.timers);
    EXPECT(tl.timers != NULL);
    timers_now = &tl;
    for (i = 0; i < count; i++) {
        evl_timer_init(&tl.timers[i].t, on_load_timer);
        arm(loop, &tl, &tl.timers[i], EVL_MS(1) + rng_below(spread));
    }
    peak = tl.armed;
    tl.armed_at = clock_now();
    evl_timer_init(&tl.churn, on_churn);
    tl.churn.data = &tl;
    tl.churns_left = (int)(spread / 2 / EVL_MS(1));
    evl_timer_start(loop, &tl.churn, EVL_MS(1), EVL_MS(1));
    while (tl.armed > 0 || evl_timer_active(&tl.churn)) EXPECT(evl_run(loop, EVL_MS(100)) >= 0);
    for (i = 0; i < count; i++) EXPECT(!tl.timers[i].armed && !evl_timer_active(&tl.timers[i].t));
    /* Each arming ends in exactly one firing, a restart or a stop. */
    EXPECT(tl.arms == tl.fired + tl.restarted + tl.stopped);
    totals.timer_firings += tl.fired;
    printf("timers: %d active at once, %llu armings (%llu restarts, %llu stops), %llu fired, none early, "
           "latest %.2f ms late (of those due after the first armings), %.1f s\n",
           peak, (unsigned long long)tl.arms, (unsigned long long)tl.restarted, (unsigned long long)tl.stopped,
           (unsigned long long)tl.fired, (double)tl.late_max / 1e6, seconds_since(start));
    free(tl.timers);
}

/* ---- signals ----------------------------------------------------------------------------------
   Senders and the loop share a page (MAP_SHARED, so forked senders see it).  A sender reads the
   call count of its signal, sends, and waits for the count to move: a lost signal stops it, and
   it reports that.  Sends from several senders may coalesce into one call, as documented. */

enum { SENDER_THREADS = 4, SENDER_PROCS = 4, NSIGS = 2, LOOPS = 2 };

typedef struct signal_page {
    int calls[LOOPS + 1][NSIGS];                /* the scenario's loop, a second one in a thread, and
                                                   the watcher started and stopped over and over */
    int lost;                                   /* a sender gave up waiting */
    int threads_done;
} signal_page;

static signal_page *sigpage;
static int load_signals[NSIGS];
static pid_t loop_pid;
static pthread_t loop_thread;

typedef struct sender {
    int index, sends, by_thread;
    pthread_t thread;
} sender;

/* Both loops must be called after the send. */
static int send_and_wait(int index, int k, int by_thread, int direct) {
    int which = (index + k) % NSIGS, before[LOOPS], l;
    evl_time give_up;
    for (l = 0; l < LOOPS; l++) before[l] = __atomic_load_n(&sigpage->calls[l][which], __ATOMIC_SEQ_CST);
    if (by_thread && direct) EXPECT(pthread_kill(loop_thread, load_signals[which]) == 0);
    else EXPECT(kill(loop_pid, load_signals[which]) == 0);
    give_up = clock_now() + EVL_SEC(20);
    for (l = 0; l < LOOPS; l++) {
        while (__atomic_load_n(&sigpage->calls[l][which], __ATOMIC_SEQ_CST) == before[l]) {
            if (clock_now() > give_up) {
                __atomic_store_n(&sigpage->lost, 1, __ATOMIC_SEQ_CST);
                return -1;
            }
            sched_yield();
        }
    }
    return 0;
}

static void *sender_thread(void *arg) {
    sender *s = (sender *)arg;
    int k;
    for (k = 0; k < s->sends; k++)
        if (send_and_wait(s->index, k, 1, k & 1) < 0) break;
    __atomic_fetch_add(&sigpage->threads_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

typedef struct signal_load {
    evl_signal w[NSIGS][2];                     /* per signal: one active all along, one churned */
    int churned_on[NSIGS];
    evl_timer churn;
    uint64_t churns;
} signal_load;

/* data: the loop's index times NSIGS plus the signal's. */
static void on_load_signal(evl_loop *loop, evl_signal *s, int signum) {
    int which = (int)(intptr_t)s->data % NSIGS, l = (int)(intptr_t)s->data / NSIGS;
    (void)loop;
    EXPECT(signum == load_signals[which]);
    __atomic_fetch_add(&sigpage->calls[l][which], 1, __ATOMIC_SEQ_CST);
}

/* The second loop watches both signals all along, on a thread of its own. */
typedef struct second_loop {
    evl_loop loop;
    evl_signal w[NSIGS];
    int ready, quit;
    pthread_t thread;
} second_loop;

static void *second_loop_main(void *arg) {
    second_loop *sec = (second_loop *)arg;
    int i;
    EXPECT(evl_init(&sec->loop) == 0);
    for (i = 0; i < NSIGS; i++) {
        evl_signal_init(&sec->w[i], on_load_signal, load_signals[i]);
        sec->w[i].data = (void *)(intptr_t)(NSIGS + i);
        EXPECT(evl_signal_start(&sec->loop, &sec->w[i]) == 0);
    }
    __atomic_store_n(&sec->ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&sec->quit, __ATOMIC_SEQ_CST)) EXPECT(evl_run(&sec->loop, EVL_MS(10)) >= 0);
    for (i = 0; i < NSIGS; i++) evl_signal_stop(&sec->loop, &sec->w[i]);
    evl_deinit(&sec->loop);
    return NULL;
}

/* Never read: ready at every pass.  It yields, so the senders get the CPU the loop would spin on. */
static void on_busy(evl_loop *loop, evl_io *w, unsigned revents) {
    (void)loop;
    (void)w;
    (void)revents;
    sched_yield();
}

/* Starts or stops the second watcher of each signal.  (The first stays: a delivery caught before
   a watcher starts is not that watcher's, and one pending for a watcher that stops is dropped, so
   swapping two watchers could lose a signal within the contract.) */
static void on_signal_churn(evl_loop *loop, evl_timer *t) {
    signal_load *sl = (signal_load *)t->data;
    int i;
    for (i = 0; i < NSIGS; i++) {
        if (sl->churned_on[i]) evl_signal_stop(loop, &sl->w[i][1]);
        else EXPECT(evl_signal_start(loop, &sl->w[i][1]) == 0);
        sl->churned_on[i] = !sl->churned_on[i];
    }
    sl->churns++;
}

static void scenario_signals(evl_loop *loop, int total) {
    signal_load sl;
    static second_loop sec;
    sender threads[SENDER_THREADS];
    child_wait procs[SENDER_PROCS];
    int i, each = total / (SENDER_THREADS + SENDER_PROCS), calls = 0, calls2 = 0, calls3 = 0, busy_fds[2];
    sigset_t both, old_mask;
    evl_io busy;
    evl_time start = clock_now();
    sigpage = mmap(NULL, sizeof *sigpage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT(sigpage != MAP_FAILED);
    memset(sigpage, 0, sizeof *sigpage);
    load_signals[0] = SIGUSR1;
    load_signals[1] = SIGUSR2;
    loop_pid = getpid();
    loop_thread = pthread_self();
    memset(&sl, 0, sizeof sl);
    for (i = 0; i < NSIGS; i++) {
        evl_signal_init(&sl.w[i][0], on_load_signal, load_signals[i]);
        evl_signal_init(&sl.w[i][1], on_load_signal, load_signals[i]);
        sl.w[i][0].data = (void *)(intptr_t)i;
        sl.w[i][1].data = (void *)(intptr_t)(LOOPS * NSIGS + i);
        EXPECT(evl_signal_start(loop, &sl.w[i][0]) == 0);
    }
    evl_timer_init(&sl.churn, on_signal_churn);
    sl.churn.data = &sl;
    evl_timer_start(loop, &sl.churn, EVL_US(200), EVL_US(200));
    /* The daemon pattern: every thread blocks the signals (the threads made below inherit the
       mask), and the loop is never idle: a descriptor stays readable, so its waits return events
       at once and are never interrupted by a signal. */
    sigemptyset(&both);
    for (i = 0; i < NSIGS; i++) sigaddset(&both, load_signals[i]);
    EXPECT(pthread_sigmask(SIG_BLOCK, &both, &old_mask) == 0);
    EXPECT(pipe2(busy_fds, O_CLOEXEC) == 0 && write(busy_fds[1], "x", 1) == 1);
    evl_io_init(&busy, on_busy, busy_fds[0], EVL_READ);
    EXPECT(evl_io_start(loop, &busy) == 0);
    memset(&sec, 0, sizeof sec);
    EXPECT(pthread_create(&sec.thread, NULL, second_loop_main, &sec) == 0);
    while (!__atomic_load_n(&sec.ready, __ATOMIC_SEQ_CST)) sched_yield();
    fflush(NULL);
    for (i = 0; i < SENDER_PROCS; i++) {
        pid_t pid = fork();
        EXPECT(pid >= 0);
        if (pid == 0) {
            int k;
            for (k = 0; k < each; k++)
                if (send_and_wait(SENDER_THREADS + i, k, 0, 0) < 0) _exit(1);
            _exit(0);
        }
        memset(&procs[i], 0, sizeof procs[i]);
        evl_child_init(&procs[i].c, on_child_exit, pid);
        EXPECT(evl_child_start(loop, &procs[i].c) == 0);
    }
    for (i = 0; i < SENDER_THREADS; i++) {
        threads[i].index = i;
        threads[i].sends = each;
        EXPECT(pthread_create(&threads[i].thread, NULL, sender_thread, &threads[i]) == 0);
    }
    for (i = 0; i < SENDER_PROCS; i++) run_until(loop, &procs[i].done, EVL_SEC(300), "signal senders");
    while (__atomic_load_n(&sigpage->threads_done, __ATOMIC_SEQ_CST) < SENDER_THREADS)
        EXPECT(evl_run(loop, EVL_MS(10)) >= 0);
    for (i = 0; i < SENDER_THREADS; i++) pthread_join(threads[i].thread, NULL);
    __atomic_store_n(&sec.quit, 1, __ATOMIC_SEQ_CST);
    pthread_join(sec.thread, NULL);
    EXPECT(!sigpage->lost);
    for (i = 0; i < SENDER_PROCS; i++) EXPECT(WIFEXITED(procs[i].status) && WEXITSTATUS(procs[i].status) == 0);
    evl_timer_stop(loop, &sl.churn);
    evl_io_stop(loop, &busy);
    close(busy_fds[0]);
    close(busy_fds[1]);
    for (i = 0; i < NSIGS; i++) {
        evl_signal_stop(loop, &sl.w[i][0]);
        evl_signal_stop(loop, &sl.w[i][1]);
        calls += sigpage->calls[0][i];
        calls2 += sigpage->calls[1][i];
        calls3 += sigpage->calls[2][i];
    }
    EXPECT(calls <= each * (SENDER_THREADS + SENDER_PROCS) && calls2 <= each * (SENDER_THREADS + SENDER_PROCS));
    totals.signals += (uint64_t)each * (SENDER_THREADS + SENDER_PROCS);
    printf("signals: %d sent by %d threads and %d processes, %d calls in the first loop, %d in a second loop "
           "(the rest coalesced), none lost; a third watcher started and stopped %llu times, %d calls; %.1f s\n",
           each * (SENDER_THREADS + SENDER_PROCS), SENDER_THREADS, SENDER_PROCS, calls, calls2,
           (unsigned long long)sl.churns, calls3, seconds_since(start));
    EXPECT(pthread_sigmask(SIG_SETMASK, &old_mask, NULL) == 0);
    munmap(sigpage, sizeof *sigpage);
}

/* ---- async ------------------------------------------------------------------------------------
   Each thread sends bursts of 1 to 64 to its own async or the shared one.  The callback counts
   its calls when it starts; a sender reads that count before the last send of a burst and waits
   for it to move, which the contract promises (a send after a call started causes another). */

enum { ASYNC_THREADS = 8 };

typedef struct async_load {
    evl_async own[ASYNC_THREADS], shared;
    int started[ASYNC_THREADS + 1];
    int lost, sends_each;
    uint64_t sent;
} async_load;

typedef struct async_sender {
    async_load *al;
    int index;
    uint64_t seed;
    pthread_t thread;
} async_sender;

static void on_load_async(evl_loop *loop, evl_async *a) {
    int *started = (int *)a->data;
    (void)loop;
    __atomic_fetch_add(started, 1, __ATOMIC_SEQ_CST);
}

static void *async_sender_main(void *arg) {
    async_sender *s = (async_sender *)arg;
    async_load *al = s->al;
    uint64_t x = s->seed | 1;
    int left = al->sends_each;
    while (left > 0) {
        int shared, burst, before, *started;
        evl_async *a;
        evl_time give_up;
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        shared = (int)(x >> 40) & 1;
        burst = 1 + (int)((x >> 20) % 64);
        if (burst > left) burst = left;
        a = shared ? &al->shared : &al->own[s->index];
        started = shared ? &al->started[ASYNC_THREADS] : &al->started[s->index];
        left -= burst;
        while (--burst > 0) evl_async_send(a);
        before = __atomic_load_n(started, __ATOMIC_SEQ_CST);
        evl_async_send(a);
        give_up = clock_now() + EVL_SEC(20);
        while (__atomic_load_n(started, __ATOMIC_SEQ_CST) == before) {
            if (clock_now() > give_up) {
                __atomic_store_n(&al->lost, 1, __ATOMIC_SEQ_CST);
                return NULL;
            }
            sched_yield();
        }
    }
    return NULL;
}

static void scenario_async(evl_loop *loop, int total) {
    static async_load al;
    async_sender senders[ASYNC_THREADS];
    int i, calls = 0, done = 0, joined[ASYNC_THREADS] = {0};
    evl_time start = clock_now();
    memset(&al, 0, sizeof al);
    al.sends_each = total / ASYNC_THREADS;
    for (i = 0; i <= ASYNC_THREADS; i++) {
        evl_async *a = i < ASYNC_THREADS ? &al.own[i] : &al.shared;
        evl_async_init(a, on_load_async);
        a->data = &al.started[i];
        EXPECT(evl_async_start(loop, a) == 0);
    }
    for (i = 0; i < ASYNC_THREADS; i++) {
        senders[i].al = &al;
        senders[i].index = i;
        senders[i].seed = rng();
        EXPECT(pthread_create(&senders[i].thread, NULL, async_sender_main, &senders[i]) == 0);
    }
    /* The loop runs until every sender has finished: a thread that waits in vain ends by itself. */
    while (!done) {
        EXPECT(evl_run(loop, EVL_MS(10)) >= 0);
        for (done = 1, i = 0; i < ASYNC_THREADS; i++) {
            if (!joined[i]) joined[i] = pthread_tryjoin_np(senders[i].thread, NULL) == 0;
            done &= joined[i];
        }
    }
    EXPECT(!al.lost);
    for (i = 0; i <= ASYNC_THREADS; i++) {
        evl_async_stop(loop, i < ASYNC_THREADS ? &al.own[i] : &al.shared);
        calls += al.started[i];
    }
    totals.sends += (uint64_t)al.sends_each * ASYNC_THREADS;
    printf("async: %d sends from %d threads, %d calls, no lost wake-up, %.1f s\n", al.sends_each * ASYNC_THREADS,
           ASYNC_THREADS, calls, seconds_since(start));
}

/* ---- children -------------------------------------------------------------------------------- */

static void scenario_children(evl_loop *loop, int count, int expect_by_signal) {
    child_wait *kids = calloc((size_t)count, sizeof *kids);
    int go[2], i, done = 0;
    evl_time start = clock_now();
    EXPECT(kids != NULL);
    EXPECT(pipe2(go, O_CLOEXEC) == 0);
    fflush(NULL);
    for (i = 0; i < count; i++) {
        pid_t pid = fork();
        char c;
        EXPECT(pid >= 0);
        if (pid == 0) {                         /* waits for the pipe to close, then exits at once */
            close(go[1]);
            while (read(go[0], &c, 1) < 0 && errno == EINTR) {
            }
            _exit(i % 100);
        }
        evl_child_init(&kids[i].c, on_child_exit, pid);
        EXPECT(evl_child_start(loop, &kids[i].c) == 0);
        EXPECT(kids[i].c.by_signal == expect_by_signal);
    }
    close(go[1]);                               /* every child exits now */
    close(go[0]);
    while (done < count) {
        EXPECT(evl_run(loop, EVL_MS(100)) >= 0);
        for (done = 0, i = 0; i < count; i++) done += kids[i].done;
        EXPECT(clock_now() - start < EVL_SEC(60));
    }
    for (i = 0; i < count; i++) {
        EXPECT(kids[i].done == 1);
        EXPECT(WIFEXITED(kids[i].status) && WEXITSTATUS(kids[i].status) == i % 100);
    }
    totals.children += (uint64_t)count;
    printf("children: %d exited at once, each reaped once with its own status, through %s, %.1f s\n", count,
           expect_by_signal ? "SIGCHLD" : "pidfds", seconds_since(start));
    free(kids);
}

/* ---- main ------------------------------------------------------------------------------------- */

typedef struct sizes {
    int connections, messages, timers, signals, sends, children;
    evl_time timer_spread;
} sizes;

static const sizes ci_sizes = {2000, 20, 100000, 10000, 100000, 200, EVL_SEC(1)};
static const sizes full_sizes = {10000, 100, 1000000, 100000, 1000000, 200, EVL_SEC(3)};
static const sizes soak_sizes = {300, 20, 20000, 2000, 20000, 50, EVL_MS(300)};

static int by_signal;

static void run_scenario(evl_loop *loop, const char *name, const sizes *z) {
    if (!strcmp(name, "echo")) scenario_echo(loop, z->connections, z->messages);
    else if (!strcmp(name, "timers")) scenario_timers(loop, z->timers, z->timer_spread);
    else if (!strcmp(name, "signals")) scenario_signals(loop, z->signals);
    else if (!strcmp(name, "async")) scenario_async(loop, z->sends);
    else if (!strcmp(name, "children")) scenario_children(loop, z->children, by_signal);
    else {
        fprintf(stderr, "load: unknown scenario %s\n", name);
        exit(2);
    }
    EXPECT(evl_run(loop, 0) == 0);              /* the scenario left nothing active */
    fflush(stdout);
}

static const char *const all_scenarios[] = {"echo", "timers", "signals", "async", "children"};
enum { SCENARIOS = sizeof all_scenarios / sizeof *all_scenarios };

static long open_descriptors(void) {
    DIR *d = opendir("/proc/self/fd");
    long n = -1;                                /* the directory's own descriptor */
    EXPECT(d != NULL);
    while (readdir(d)) n++;
    closedir(d);
    return n - 2;                               /* . and .. */
}

static long resident_kib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    EXPECT(f != NULL);
    EXPECT(fscanf(f, "%ld %ld", &pages, &resident) == 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The first two rounds fill the C library's caches (thread stacks, heap arenas): the figures
   count from the end of the second. */
static void soak(evl_loop *loop, double duration) {
    evl_time start = clock_now(), end = start + (evl_time)(duration * 1e9);
    long fds0 = 0, rss0 = 0, fds, rss, rss_max = 0;
    int round = 0;
    unsigned i;
    do {
        for (i = 0; i < SCENARIOS; i++) run_scenario(loop, all_scenarios[i], &soak_sizes);
        rss = resident_kib();
        if (rss > rss_max) rss_max = rss;
        if (++round == 2) {
            fds0 = open_descriptors();
            rss0 = rss_max = rss;
        }
    } while (clock_now() < end || round < 3);
    fds = open_descriptors();
    printf("soak: %.0f s, %d rounds; descriptors %ld after round 2, %ld at the end; resident %ld KiB after "
           "round 2, %ld KiB at the end, %ld KiB at most; accounted for: %llu echoed messages, %llu timer "
           "firings, %llu signals, %llu async sends, %llu children\n",
           seconds_since(start), round, fds0, fds, rss0, rss, rss_max, (unsigned long long)totals.messages,
           (unsigned long long)totals.timer_firings, (unsigned long long)totals.signals,
           (unsigned long long)totals.sends, (unsigned long long)totals.children);
    EXPECT(fds == fds0);
    EXPECT(rss_max - rss0 < 1024);
}

int main(int argc, char **argv) {
    evl_loop loop;
    const sizes *z = &ci_sizes;
    double soak_seconds = 0;
    struct rlimit lim;
    int i, named = 0;
    uint64_t seed = (uint64_t)time(NULL);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full")) z = &full_sizes;
        else if (!strcmp(argv[i], "--sigchld")) by_signal = 1;
        else if (!strncmp(argv[i], "--seed=", 7)) seed = strtoull(argv[i] + 7, NULL, 0);
        else if (!strncmp(argv[i], "--soak=", 7)) soak_seconds = atof(argv[i] + 7);
        else named++;
    }
    rng_state = seed ? seed : 1;
    printf("load: seed %llu\n", (unsigned long long)seed);
    /* 10 000 connections are 10 000 descriptors in each process: the soft limit goes to the hard. */
    EXPECT(getrlimit(RLIMIT_NOFILE, &lim) == 0);
    lim.rlim_cur = lim.rlim_max;
    EXPECT(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    EXPECT(z->connections + 64 <= (long)lim.rlim_cur);
    signal(SIGPIPE, SIG_IGN);
    EXPECT(evl_init(&loop) == 0);
    if (soak_seconds > 0) soak(&loop, soak_seconds);
    else if (!named)
        for (i = 0; i < SCENARIOS; i++) run_scenario(&loop, all_scenarios[i], z);
    else
        for (i = 1; i < argc; i++)
            if (argv[i][0] != '-') run_scenario(&loop, argv[i], z);
    evl_deinit(&loop);
    return 0;
}
