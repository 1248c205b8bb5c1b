/* What only the IOCP backend does, or does its own way: AFD polling's refusals and limits,
   cancelled polls, peers that close or reset, child processes as handles, console events as
   signals, the fiber socket calls on Windows sockets, evl_dump. */
#include "../t.h"

#include <windows.h>

static SOCKET tcp_listener(struct sockaddr_in *addr) {
    int len = sizeof *addr;
    SOCKET s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s != INVALID_SOCKET);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s, (struct sockaddr *)addr, sizeof *addr), 0);
    CHECK_EQ(getsockname(s, (struct sockaddr *)addr, &len), 0);
    CHECK_EQ(listen(s, 8), 0);
    return s;
}

static void backend_name_is_iocp_and_it_has_no_descriptor(void) {
    evl_loop loop;
    CHECK(strcmp(evl_backend_name(), "iocp") == 0);
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(evl_backend_fd(&loop), -1);
    evl_deinit(&loop);
}

static void a_handle_that_is_not_a_socket_is_refused_with_enotsock(void) {
    evl_loop loop;
    evl_io w;
    HANDLE rd, wr;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK(CreatePipe(&rd, &wr, NULL, 0));
    evl_io_init(&w, t_record_io, (evl_fd)rd, EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), -ENOTSOCK);
    CHECK(!evl_io_active(&w));
    CloseHandle(rd);
    CloseHandle(wr);
    evl_io_init(&w, t_record_io, (evl_fd)rd, EVL_READ);     /* closed now: no handle at all */
    CHECK_EQ(evl_io_start(&loop, &w), -EBADF);
    evl_io_init(&w, t_record_io, EVL_INVALID_FD, EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), -EBADF);
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_deinit(&loop);
}

static void more_sockets_than_the_table_holds_are_refused_with_enospc(void) {
    enum { N = EVLOOP_IOCP_MAX_SOCKETS + 1 };
    static evl_io w[N];
    static SOCKET s[N];
    evl_loop loop;
    int i;
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < N; i++) {
        s[i] = socket(AF_INET, SOCK_DGRAM, 0);
        CHECK(s[i] != INVALID_SOCKET);
        evl_io_init(&w[i], t_record_io, s[i], EVL_READ);
        CHECK_EQ(evl_io_start(&loop, &w[i]), i < N - 1 ? 0 : -ENOSPC);
    }
    CHECK_EQ(evl_run(&loop, 0), N - 1);         /* the polls go out */
    evl_io_stop(&loop, &w[0]);                  /* its slot is free once the cancel completes */
    CHECK_EQ(evl_run(&loop, EVL_MS(50)), N - 2);
    CHECK_EQ(evl_io_start(&loop, &w[N - 1]), 0);
    CHECK_EQ(evl_run(&loop, 0), N - 1);
    evl_deinit(&loop);
    for (i = 0; i < N; i++) closesocket(s[i]);
}

static void a_second_watcher_on_a_socket_is_refused_and_a_duplicate_is_fine(void) {
    evl_loop loop;
    evl_io a, b, c;
    t_seen sa, sb, sc;
    WSAPROTOCOL_INFOW info;
    SOCKET copy;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    memset(&sa, 0, sizeof sa);
    memset(&sb, 0, sizeof sb);
    memset(&sc, 0, sizeof sc);
    evl_io_init(&a, t_record_io, fds[0], EVL_READ);
    a.data = &sa;
    CHECK_EQ(evl_io_start(&loop, &a), 0);
    evl_io_init(&b, t_record_io, fds[0], EVL_READ);
    b.data = &sb;
    CHECK_EQ(evl_io_start(&loop, &b), -EEXIST);
    CHECK_EQ(WSADuplicateSocketW((SOCKET)fds[0], GetCurrentProcessId(), &info), 0);
    copy = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0, WSA_FLAG_OVERLAPPED);
    CHECK(copy != INVALID_SOCKET);
    evl_io_init(&c, t_record_io, copy, EVL_READ);
    c.data = &sc;
    CHECK_EQ(evl_io_start(&loop, &c), 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK(t_run_until(&loop, &sc.calls, EVL_SEC(2)));
    CHECK(sa.calls > 0);
    CHECK_EQ(sb.calls, 0);
    evl_io_stop(&loop, &a);
    CHECK_EQ(evl_io_start(&loop, &b), 0);
    evl_deinit(&loop);
    closesocket(copy);
}

static void a_closed_peer_is_read_and_hangup(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    char c;
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    memset(&seen, 0, sizeof seen);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ);
    w.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.calls, 0);
    close(fds[1]);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(seen.last, EVL_READ | EVL_HUP);
    CHECK_EQ(read(fds[0], &c, 1), 0);           /* end of file, as the events said */
    evl_deinit(&loop);
}

static void a_reset_connection_is_an_error(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    struct linger now = {1, 0};
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    memset(&seen, 0, sizeof seen);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ);
    w.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK_EQ(setsockopt((SOCKET)fds[1], SOL_SOCKET, SO_LINGER, (const char *)&now, sizeof now), 0);
    close(fds[1]);                              /* a linger of 0 resets the connection */
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK(seen.last & (EVL_HUP | EVL_ERROR));
    evl_deinit(&loop);
}

/* Urgent data is EVL_PRI (AFD_POLL_RECEIVE_EXPEDITED), and it alone does not make READ. */
static void urgent_data_is_pri(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    memset(&seen, 0, sizeof seen);
    evl_io_init(&w, t_record_io, fds[0], EVL_PRI);
    w.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.calls, 0);
    CHECK_EQ(send((SOCKET)fds[1], "!", 1, MSG_OOB), 1);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(seen.last, EVL_PRI);
    evl_deinit(&loop);
}

/* A change of interest while a poll is outstanding cancels it and issues the new one. */
static void set_while_a_poll_is_outstanding_takes_effect(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    memset(&seen, 0, sizeof seen);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ);
    w.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);    /* nothing to read: the poll stays out */
    CHECK_EQ(seen.calls, 0);
    CHECK_EQ(evl_io_set(&loop, &w, EVL_WRITE), 0);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(seen.last, EVL_WRITE);
    evl_deinit(&loop);
}

/* The kernel owns a polled slot until its cancellation completes: a watcher stopped and wiped
   meanwhile hears nothing, and deinit waits for the cancellations. */
static void a_watcher_stopped_while_polled_may_be_wiped(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    WSAPOLLFD p;
    int fds[2], i;
    char c;
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    p.fd = (SOCKET)fds[0];
    p.events = POLLRDNORM;
    for (i = 0; i < 3; i++) {
        memset(&seen, 0, sizeof seen);
        evl_io_init(&w, t_record_io, fds[0], EVL_READ);
        w.data = &seen;
        CHECK_EQ(evl_io_start(&loop, &w), 0);
        CHECK_EQ(evl_run(&loop, 0), 1);
        evl_io_stop(&loop, &w);
        memset(&w, 0xAA, sizeof w);
        CHECK_EQ(write(fds[1], "x", 1), 1);
        CHECK_EQ(evl_run(&loop, EVL_MS(20)), 0);
        CHECK_EQ(seen.calls, 0);
        CHECK_EQ(WSAPoll(&p, 1, 5000), 1);      /* take the byte back for the next round */
        CHECK_EQ(read(fds[0], &c, 1), 1);
    }
    evl_io_init(&w, t_record_io, fds[0], EVL_READ);
    w.data = &seen;
    CHECK_EQ(evl_io_start(&loop, &w), 0);      /* the socket is still watchable */
    CHECK_EQ(write(fds[1], "y", 1), 1);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(read(fds[0], &c, 1), 1);
    CHECK_EQ(evl_run(&loop, 0), 1);
    evl_deinit(&loop);                          /* with a poll outstanding */
}

/* ---- child processes ---------------------------------------------------------------------- */

static HANDLE spawn_exit(int code) {
    char self[MAX_PATH], cmd[MAX_PATH + 32];
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    GetModuleFileNameA(NULL, self, sizeof self);
    snprintf(cmd, sizeof cmd, "\"%s\" --exit %d", self, code);
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    CHECK(CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi));
    CloseHandle(pi.hThread);
    return pi.hProcess;
}

static int child_status = -100, child_calls;

static void record_child(evl_loop *loop, evl_child *c, int status) {
    (void)loop;
    (void)c;
    child_status = status;
    child_calls++;
}

static void a_child_watcher_reports_the_exit_code(void) {
    evl_loop loop;
    evl_child c;
    HANDLE h = spawn_exit(7);
    CHECK_EQ(evl_init(&loop), 0);
    evl_child_init(&c, record_child, h);
    CHECK_EQ(evl_child_start(&loop, &c), 0);
    CHECK_EQ(evl_run(&loop, EVL_SEC(20)), 0);  /* the watcher stops itself: the loop ends */
    CHECK_EQ(child_calls, 1);
    CHECK_EQ(child_status, 7);
    CloseHandle(h);
    evl_deinit(&loop);
}

static void a_child_that_already_exited_is_reported(void) {
    evl_loop loop;
    evl_child c;
    HANDLE h = spawn_exit(3);
    CHECK_EQ(WaitForSingleObject(h, 20000), WAIT_OBJECT_0);
    CHECK_EQ(evl_init(&loop), 0);
    evl_child_init(&c, record_child, h);
    CHECK_EQ(evl_child_start(&loop, &c), 0);
    CHECK_EQ(evl_run(&loop, EVL_SEC(20)), 0);
    CHECK_EQ(child_calls, 1);
    CHECK_EQ(child_status, 3);
    CloseHandle(h);
    evl_deinit(&loop);
}

static void child_frees_itself(evl_loop *loop, evl_child *c, int status) {
    (void)loop;
    child_status = status;
    child_calls++;
    memset(c, 0xAA, sizeof *c);
    free(c);
}

static void a_stopped_child_watcher_is_not_called_and_one_may_free_itself(void) {
    evl_loop loop;
    evl_child stopped, *self_freeing = (evl_child *)malloc(sizeof *self_freeing);
    HANDLE a = spawn_exit(1), b = spawn_exit(2);
    CHECK_EQ(evl_init(&loop), 0);
    evl_child_init(&stopped, record_child, a);
    CHECK_EQ(evl_child_start(&loop, &stopped), 0);
    evl_child_stop(&loop, &stopped);
    evl_child_init(self_freeing, child_frees_itself, b);
    CHECK_EQ(evl_child_start(&loop, self_freeing), 0);
    CHECK_EQ(evl_run(&loop, EVL_SEC(20)), 0);
    CHECK_EQ(child_calls, 1);
    CHECK_EQ(child_status, 2);
    CHECK_EQ(WaitForSingleObject(a, 20000), WAIT_OBJECT_0);
    CHECK_EQ(evl_run(&loop, EVL_MS(50)), 0);
    CHECK_EQ(child_calls, 1);
    CloseHandle(a);
    CloseHandle(b);
    evl_deinit(&loop);
}

static void a_handle_that_is_not_a_process_is_refused(void) {
    evl_loop loop;
    evl_child c;
    HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
    CHECK_EQ(evl_init(&loop), 0);
    evl_child_init(&c, record_child, NULL);
    CHECK_EQ(evl_child_start(&loop, &c), -EINVAL);
    evl_child_init(&c, record_child, event);
    CHECK_EQ(evl_child_start(&loop, &c), -ECHILD);
    CloseHandle(event);
    evl_deinit(&loop);
}

/* ---- console events -------------------------------------------------------------------------- */

static int signal_calls, signal_seen;

static void record_signal(evl_loop *loop, evl_signal *s, int signum) {
    (void)s;
    signal_calls++;
    signal_seen = signum;
    evl_stop(loop);
}

static void only_the_console_events_can_be_watched(void) {
    evl_loop loop;
    evl_signal s;
    CHECK_EQ(evl_init(&loop), 0);
    evl_signal_init(&s, record_signal, SIGTERM);
    CHECK_EQ(evl_signal_start(&loop, &s), -EINVAL);
    evl_signal_init(&s, record_signal, SIGSEGV);
    CHECK_EQ(evl_signal_start(&loop, &s), -EINVAL);
    evl_signal_init(&s, record_signal, SIGHUP);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    evl_signal_stop(&loop, &s);
    evl_signal_init(&s, record_signal, SIGBREAK);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    evl_deinit(&loop);
}

static void ctrl_c_is_sigint(void) {
    evl_loop loop;
    evl_signal s;
    CHECK_EQ(evl_init(&loop), 0);
    evl_signal_init(&s, record_signal, SIGINT);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    if (!GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) && !(AllocConsole() && GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)))
        t_skip("no console to send Ctrl-C to");
    CHECK(t_run_until(&loop, &signal_calls, EVL_SEC(5)));
    CHECK_EQ(signal_seen, SIGINT);
    evl_deinit(&loop);
}

/* ---- fibers on sockets ------------------------------------------------------------------------ */

#if EVLOOP_HAS_FIBERS
typedef struct tcp_case {
    SOCKET listener;
    struct sockaddr_in addr;
    int served, client_rc;
    evl_fd_result accept_rc;
    char reply[32];
} tcp_case;

static void serve_one(void *arg) {
    tcp_case *c = (tcp_case *)arg;
    char buf[32];
    ssize_t n;
    evl_fd_result fd = evl_accept(c->listener, NULL, NULL, EVL_SEC(5));
    CHECK(fd >= 0);
    while ((n = evl_read((evl_fd)fd, buf, sizeof buf, EVL_SEC(5))) > 0)
        CHECK_EQ(evl_write((evl_fd)fd, buf, (size_t)n, EVL_SEC(5)), n);
    closesocket((SOCKET)fd);
    c->served = 1;
    c->accept_rc = evl_accept(c->listener, NULL, NULL, EVL_MS(10));   /* nobody else comes */
}

static void connect_and_ask(void *arg) {
    tcp_case *c = (tcp_case *)arg;
    SOCKET fd = socket(AF_INET, SOCK_STREAM, 0);   /* blocking: evl_connect must cope */
    c->client_rc = evl_connect(fd, (struct sockaddr *)&c->addr, sizeof c->addr, EVL_SEC(5));
    CHECK_EQ(c->client_rc, 0);
    CHECK_EQ(evl_write(fd, "ping", 4, EVL_SEC(5)), 4);
    CHECK_EQ(evl_read(fd, c->reply, sizeof c->reply, EVL_SEC(5)), 4);
    closesocket(fd);
}

static void fiber_server_and_client_talk_over_tcp(void) {
    evl_loop loop;
    evl_fiber server, client;
    tcp_case c;
    memset(&c, 0, sizeof c);
    CHECK_EQ(evl_init(&loop), 0);
    c.listener = tcp_listener(&c.addr);
    CHECK_EQ(evl_fiber_start(&loop, &server, NULL, 0, serve_one, &c), 0);
    CHECK_EQ(evl_fiber_start(&loop, &client, NULL, 0, connect_and_ask, &c), 0);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(c.served, 1);
    CHECK(memcmp(c.reply, "ping", 4) == 0);
    CHECK_EQ(c.accept_rc, -ETIMEDOUT);
    closesocket(c.listener);
    evl_deinit(&loop);
}

static void connect_to_nobody(void *arg) {
    tcp_case *c = (tcp_case *)arg;
    SOCKET fd = socket(AF_INET, SOCK_STREAM, 0);
    c->client_rc = evl_connect(fd, (struct sockaddr *)&c->addr, sizeof c->addr, EVL_SEC(10));
    closesocket(fd);
}

static void connect_reports_a_refused_connection(void) {
    evl_loop loop;
    evl_fiber f;
    tcp_case c;
    int len = sizeof c.addr;
    SOCKET fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&c, 0, sizeof c);
    c.addr.sin_family = AF_INET;
    c.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)&c.addr, sizeof c.addr), 0);   /* a port nobody listens on */
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&c.addr, &len), 0);
    closesocket(fd);
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(evl_fiber_start(&loop, &f, NULL, 0, connect_to_nobody, &c), 0);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(c.client_rc, -ECONNREFUSED);
    evl_deinit(&loop);
}

typedef struct big_write {
    evl_fd fd;
    int rc;
} big_write;

static void write_a_lot(void *arg) {
    static char data[1 << 20];
    big_write *b = (big_write *)arg;
    int i;
    for (i = 0; i < 64 && b->rc >= 0; i++) b->rc = evl_write_all(b->fd, data, sizeof data, EVL_SEC(10), NULL);
}

static void write_reports_a_closed_peer(void) {
    evl_loop loop;
    evl_fiber f;
    big_write b;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    close(fds[1]);
    b.fd = (evl_fd)fds[0];
    b.rc = 0;
    CHECK_EQ(evl_fiber_start(&loop, &f, NULL, 0, write_a_lot, &b), 0);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK(b.rc == -ECONNRESET || b.rc == -ECONNABORTED || b.rc == -EPIPE);
    evl_deinit(&loop);
}
#endif

/* ---- evl_dump --------------------------------------------------------------------------------- */

static void nop_timer(evl_loop *loop, evl_timer *t) {
    (void)loop;
    (void)t;
}

static void dump_lists_every_active_watcher(void) {
    evl_loop loop;
    evl_io w;
    evl_timer t;
    evl_signal s;
    evl_child c;
    char buf[4096], want[64];
    size_t n;
    int fds[2];
    HANDLE h = spawn_exit(0);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ | EVL_PRI);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    evl_timer_init(&t, nop_timer);
    evl_timer_start(&loop, &t, EVL_SEC(3), EVL_SEC(1));
    evl_signal_init(&s, record_signal, SIGBREAK);
    CHECK_EQ(evl_signal_start(&loop, &s), 0);
    evl_child_init(&c, record_child, h);
    CHECK_EQ(evl_child_start(&loop, &c), 0);
    evl_dump(&loop, f);
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    CHECK(strstr(buf, "backend iocp, fd -1") != NULL);
    CHECK(strstr(buf, "4 referenced watchers") != NULL);
    snprintf(want, sizeof want, "fd %ld  events READ PRI", (long)fds[0]);
    CHECK(strstr(buf, want) != NULL);
    CHECK(strstr(buf, "repeat 1.0") != NULL);
    snprintf(want, sizeof want, "signal %d", SIGBREAK);
    CHECK(strstr(buf, want) != NULL);
    CHECK(strstr(buf, "by process handle") != NULL);
    evl_deinit(&loop);
    CloseHandle(h);
    fclose(f);
}

const t_case iocp_tests[] = {
    T(backend_name_is_iocp_and_it_has_no_descriptor),
    T(a_handle_that_is_not_a_socket_is_refused_with_enotsock),
    T(more_sockets_than_the_table_holds_are_refused_with_enospc),
    T(a_second_watcher_on_a_socket_is_refused_and_a_duplicate_is_fine),
    T(a_closed_peer_is_read_and_hangup),
    T(a_reset_connection_is_an_error),
    T(urgent_data_is_pri),
    T(set_while_a_poll_is_outstanding_takes_effect),
    T(a_watcher_stopped_while_polled_may_be_wiped),
    T(a_child_watcher_reports_the_exit_code),
    T(a_child_that_already_exited_is_reported),
    T(a_stopped_child_watcher_is_not_called_and_one_may_free_itself),
    T(a_handle_that_is_not_a_process_is_refused),
    T(only_the_console_events_can_be_watched),
    T(ctrl_c_is_sigint),
#if EVLOOP_HAS_FIBERS
    T(fiber_server_and_client_talk_over_tcp),
    T(connect_reports_a_refused_connection),
    T(write_reports_a_closed_peer),
#endif
    T(dump_lists_every_active_watcher),
    T_END,
};
