/* echo server, libuv 1.x, written the libuv way: uv_tcp_t streams, uv_read_start with the
 * connection's own buffer, uv_try_write for the echo and uv_write only for a remainder (reading
 * pauses until it is flushed). See echo.h for what all servers share. */
#include "echo.h"

#include <uv.h>

struct conn {
    uv_tcp_t tcp;
    uv_write_t req;
    struct echo_buf buf;
};

static uv_loop_t loop;
static uv_tcp_t server;

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_closed(uv_handle_t *h) {
    free(h->data);
    echo_closed++;
}

static void conn_close(struct conn *c) { uv_close((uv_handle_t *)&c->tcp, on_closed); }

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->buf.data, sizeof c->buf.data);
}

static void on_written(uv_write_t *req, int status) {
    struct conn *c = req->data;
    if (status < 0) {
        echo_errors++;
        conn_close(c);
        return;
    }
    echo_bytes_out += c->buf.len - c->buf.off;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    struct conn *c = s->data;
    uv_buf_t rest;
    int w;
    if (nread == 0) return;
    if (nread < 0) {
        if (nread != UV_EOF) echo_errors++;
        conn_close(c);
        return;
    }
    echo_bytes_in += (uint64_t)nread;
    rest = uv_buf_init(buf->base, (unsigned)nread);
    w = uv_try_write(s, &rest, 1);
    if (w == UV_EAGAIN) w = 0;
    if (w < 0) {
        echo_errors++;
        conn_close(c);
        return;
    }
    echo_bytes_out += (uint64_t)w;
    if (w < nread) {
        c->buf.off = (size_t)w;
        c->buf.len = (size_t)nread;
        rest = uv_buf_init(c->buf.data + w, (unsigned)(nread - w));
        uv_read_stop(s);
        c->req.data = c;
        BENCH_CHECK(uv_write(&c->req, s, &rest, 1, on_written) == 0, "uv_write failed");
    }
}

static void on_connection(uv_stream_t *srv, int status) {
    struct conn *c;
    BENCH_CHECK(status == 0, "listen callback: %s", uv_strerror(status));
    c = bench_calloc(1, sizeof *c);
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, NULL);
        free(c); /* never accepted: not counted */
        return;
    }
    echo_accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (echo_accepted >= echo_expected) uv_close((uv_handle_t *)&server, NULL);
}

int main(int argc, char **argv) {
    struct sockaddr_in sa;
    int len = sizeof sa;
    echo_parse_args(argc, argv);
    BENCH_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init failed");
    uv_tcp_init(&loop, &server);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    BENCH_CHECK(uv_tcp_bind(&server, (const struct sockaddr *)&sa, 0) == 0, "uv_tcp_bind failed");
    BENCH_CHECK(uv_listen((uv_stream_t *)&server, 1024, on_connection) == 0, "uv_listen failed");
    BENCH_CHECK(uv_tcp_getsockname(&server, (struct sockaddr *)&sa, &len) == 0, "getsockname");
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    return echo_finish();
}
