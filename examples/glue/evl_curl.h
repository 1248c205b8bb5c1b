/* evl_curl.h - libcurl's multi-socket API on an evloop loop.  Include evloop.h and curl/curl.h
   first.  See docs/http.md.

   What libcurl expects, and where evloop does it:
     CURLMOPT_SOCKETFUNCTION   "watch socket s for IN/OUT/INOUT, or REMOVE it": one io watcher per
                               socket, made on first sight and kept with curl_multi_assign; its
                               interest changed with evl_io_set, stopped and freed on REMOVE
     CURLMOPT_TIMERFUNCTION    "call me in timeout_ms (-1: never)": one evl_timer
     curl_multi_socket_action  from the io callback (with CURL_CSELECT_IN/OUT/ERR) and from the
                               timer (CURL_SOCKET_TIMEOUT); finished transfers are then collected
                               with curl_multi_info_read and handed to on_done

   The sockets are libcurl's: it opens and closes them, and tells us REMOVE before it closes one,
   so the watcher is gone before the number can come back (with HTTP/1.0 servers that close every
   connection, the next socket nearly always gets the number just freed).  Should a REMOVE ever
   come after the close, evl_io_set on the next socket with that number registers it again (it
   re-adds a registration the kernel dropped).  The per-socket watchers are allocated here, in the
   application's glue: evloop itself never allocates. */
#ifndef EVL_CURL_H
#define EVL_CURL_H

#ifndef EVLOOP_H
#error "include evloop.h before evl_curl.h"
#endif

#include <stdlib.h>

typedef struct evl_curl evl_curl;
typedef void (*evl_curl_done_cb)(evl_curl *c, CURL *easy, CURLcode result);

struct evl_curl {
    evl_loop *loop;
    CURLM *multi;
    evl_timer timer;            /* libcurl's one timeout */
    evl_curl_done_cb on_done;   /* a transfer finished: remove and clean up easy here, or reuse it */
    int running;                /* transfers in progress, as libcurl counts them */
    unsigned sockets;           /* sockets watched so far (statistics) */
    unsigned watched;           /* sockets watched now */
    void *data;                 /* yours */
};

typedef struct evl_curl_socket {
    evl_io io;
    evl_curl *c;
} evl_curl_socket;

static inline void evl_curl__collect(evl_curl *c) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE) c->on_done(c, msg->easy_handle, msg->data.result);
}

static inline void evl_curl__on_io(evl_loop *loop, evl_io *w, unsigned revents) {
    evl_curl *c = ((evl_curl_socket *)w->data)->c;
    int flags = (revents & EVL_READ ? CURL_CSELECT_IN : 0) | (revents & EVL_WRITE ? CURL_CSELECT_OUT : 0) |
                (revents & (EVL_ERROR | EVL_HUP) ? CURL_CSELECT_ERR : 0);
    (void)loop;
    /* w may be freed inside (a REMOVE for this socket): nothing of it is used afterwards. */
    curl_multi_socket_action(c->multi, w->fd, flags, &c->running);
    evl_curl__collect(c);
}

static inline void evl_curl__on_timer(evl_loop *loop, evl_timer *t) {
    evl_curl *c = (evl_curl *)t->data;
    (void)loop;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    evl_curl__collect(c);
}

static inline int evl_curl__socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    evl_curl *c = (evl_curl *)userp;
    evl_curl_socket *sock = (evl_curl_socket *)socketp;
    unsigned events = (what & CURL_POLL_IN ? EVL_READ : 0u) | (what & CURL_POLL_OUT ? EVL_WRITE : 0u);
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sock) {
            evl_io_stop(c->loop, &sock->io);
            curl_multi_assign(c->multi, s, NULL);
            free(sock);
            c->watched--;
        }
        return 0;
    }
    if (sock) return evl_io_set(c->loop, &sock->io, events) < 0 ? -1 : 0;
    sock = (evl_curl_socket *)malloc(sizeof *sock);
    if (!sock) return -1;
    sock->c = c;
    evl_io_init(&sock->io, evl_curl__on_io, s, events);
    sock->io.data = sock;
    if (evl_io_start(c->loop, &sock->io) < 0) {
        free(sock);
        return -1;                              /* libcurl fails the transfer */
    }
    curl_multi_assign(c->multi, s, sock);
    c->sockets++;
    c->watched++;
    return 0;
}

static inline int evl_curl__timer(CURLM *multi, long timeout_ms, void *userp) {
    evl_curl *c = (evl_curl *)userp;
    (void)multi;
    if (timeout_ms < 0) evl_timer_stop(c->loop, &c->timer);
    else evl_timer_start(c->loop, &c->timer, EVL_MS(timeout_ms), 0);
    return 0;
}

/* Makes a multi handle driven by loop; add easy handles with curl_multi_add_handle as usual. */
static inline int evl_curl_init(evl_curl *c, evl_loop *loop, evl_curl_done_cb on_done) {
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->on_done = on_done;
    c->multi = curl_multi_init();
    if (!c->multi) return -1;
    evl_timer_init(&c->timer, evl_curl__on_timer);
    c->timer.data = c;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, evl_curl__socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, evl_curl__timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return 0;
}

/* Cleans up the multi handle (which closes its sockets, telling us REMOVE for each). */
static inline void evl_curl_deinit(evl_curl *c) {
    curl_multi_cleanup(c->multi);
    evl_timer_stop(c->loop, &c->timer);
    c->multi = NULL;
}

#endif
