/* evl_mosquitto.h - a libmosquitto client driven by an evloop loop (no mosquitto_loop_start, no
   thread).  Include evloop.h and mosquitto.h first.  See docs/mqtt.md.

   What libmosquitto expects of an outside loop, and where evloop does it:
     mosquitto_socket()          watched for EVL_READ, and for EVL_WRITE while
     mosquitto_want_write()      says so (checked by a PREPARE hook before every wait, so a
                                 mosquitto_publish from anywhere is sent without a call to us)
     mosquitto_loop_read/_write  from the io callback
     mosquitto_loop_misc         from a 1 s timer (keepalive pings, retries)
     reconnecting                after a lost connection, with a back-off doubling from
                                 backoff_min to backoff_max, reset once the broker answers

   The socket is the library's: it closes it and makes a new one on every reconnect, and the new
   one very often gets the same number.  So the number is never taken as the identity of the
   connection: after every connect the watcher is moved with evl_io_reset, whatever the number;
   when the connection breaks the watcher is stopped at once (before the library closes the
   socket), and a socket the library closed by itself (mosquitto_socket() == -1, e.g. a keepalive
   timeout in loop_misc) stops it too.  No registration is left behind.

   libmosquitto closes its socket itself inside mosquitto_loop_read when the connection breaks, so
   the watcher can only be stopped after the close.  That is harmless while this process holds
   the only reference to the socket; but the library does not set close-on-exec, and a child
   started meanwhile (system(), popen(), a peer) would keep the socket open, and with it the
   kernel's epoll registration, which then reports a stopped watcher forever (no epoll_ctl can
   remove it once the descriptor is closed here).  So every new socket is made close-on-exec; and
   a child forked before it could exec still holds the socket for that moment, so the io callback
   ignores a call for a watcher it already stopped (seen in the test: the broker restarted from
   inside a callback, while the clients' sockets broke). */
#ifndef EVL_MOSQUITTO_H
#define EVL_MOSQUITTO_H

#ifndef EVLOOP_H
#error "include evloop.h before evl_mosquitto.h"
#endif

#include <fcntl.h>

typedef struct evl_mqtt {
    evl_loop *loop;
    struct mosquitto *mosq;
    evl_io io;                  /* follows mosquitto_socket() */
    evl_timer misc;             /* mosquitto_loop_misc, every second */
    evl_timer retry;            /* the next connection attempt */
    evl_hook sync;              /* write interest before every wait */
    evl_time backoff, backoff_min, backoff_max;
    int connected;              /* 1 from a successful connect call until the connection breaks */
    int quitting;               /* evl_mqtt_disconnect was called: no more reconnecting */
    unsigned attempts;          /* connection attempts, the first included */
    unsigned losses;            /* connections that broke */
    unsigned same_number;       /* reconnects whose new socket had the old one's number */
    int last_fd;
    void *data;                 /* yours */
    void (*on_lost)(struct evl_mqtt *m);    /* optional: the connection broke (before the retry) */
} evl_mqtt;

static inline void evl_mqtt__schedule_retry(evl_mqtt *m) {
    if (m->quitting) return;
    evl_timer_start(m->loop, &m->retry, m->backoff, 0);
    m->backoff = m->backoff * 2 > m->backoff_max ? m->backoff_max : m->backoff * 2;
}

/* The connection broke: stop watching now, while the descriptor is still the library's open
   socket, and try again later. */
static inline void evl_mqtt__lost(evl_mqtt *m) {
    evl_io_stop(m->loop, &m->io);
    if (m->connected) m->losses++;
    m->connected = 0;
    evl_mqtt__schedule_retry(m);
    if (m->on_lost) m->on_lost(m);
}

static inline void evl_mqtt__interest(evl_mqtt *m) {
    int fd = mosquitto_socket(m->mosq);
    unsigned events = EVL_READ | (mosquitto_want_write(m->mosq) ? EVL_WRITE : 0u);
    if (!evl_io_active(&m->io)) return;
    if (fd < 0) {                               /* closed by the library itself */
        evl_mqtt__lost(m);
        return;
    }
    if (events != m->io.events) (void)evl_io_set(m->loop, &m->io, events);
}

/* A new socket after a connect call: follow it, even if it has the old number (the kernel forgot
   the old registration when the library closed the old socket). */
static inline void evl_mqtt__follow(evl_mqtt *m) {
    int fd = mosquitto_socket(m->mosq);
    if (fd == m->last_fd && m->attempts > 1) m->same_number++;
    m->last_fd = fd;
    if (fd >= 0) (void)fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    if (fd < 0 || evl_io_reset(m->loop, &m->io, fd, EVL_READ | EVL_WRITE) < 0) {
        evl_mqtt__lost(m);
        return;
    }
    m->connected = 1;
}

static inline void evl_mqtt__connect(evl_mqtt *m, int first, const char *host, int port, int keepalive) {
    int rc;
    m->attempts++;
    rc = first ? mosquitto_connect_async(m->mosq, host, port, keepalive) : mosquitto_reconnect_async(m->mosq);
    if (rc == MOSQ_ERR_SUCCESS) evl_mqtt__follow(m);
    else evl_mqtt__schedule_retry(m);
}

static inline void evl_mqtt__on_io(evl_loop *loop, evl_io *w, unsigned revents) {
    evl_mqtt *m = (evl_mqtt *)w->data;
    (void)loop;
    if (!evl_io_active(w)) return;              /* a registration outliving its socket: see above */
    if (revents & (EVL_READ | EVL_ERROR | EVL_HUP)) {
        if (mosquitto_loop_read(m->mosq, 1) != MOSQ_ERR_SUCCESS) {
            evl_mqtt__lost(m);
            return;
        }
        m->backoff = m->backoff_min;            /* the broker answers */
    }
    if ((revents & EVL_WRITE) && mosquitto_loop_write(m->mosq, 1) != MOSQ_ERR_SUCCESS) {
        evl_mqtt__lost(m);
        return;
    }
    evl_mqtt__interest(m);
}

static inline void evl_mqtt__on_misc(evl_loop *loop, evl_timer *t) {
    evl_mqtt *m = (evl_mqtt *)t->data;
    (void)loop;
    if (m->connected) (void)mosquitto_loop_misc(m->mosq);
    evl_mqtt__interest(m);
}

static inline void evl_mqtt__on_retry(evl_loop *loop, evl_timer *t) {
    evl_mqtt *m = (evl_mqtt *)t->data;
    (void)loop;
    evl_mqtt__connect(m, 0, NULL, 0, 0);
}

static inline void evl_mqtt__on_prepare(evl_loop *loop, evl_hook *h) {
    (void)loop;
    evl_mqtt__interest((evl_mqtt *)h->data);
}

/* Starts connecting to host:port (keepalive in seconds); connection failures, now or later, are
   retried with back-off.  mosq is yours (mosquitto_new, your callbacks: subscribe in on_connect,
   since a broker without persistence forgets subscriptions when it restarts). */
static inline void evl_mqtt_start(evl_mqtt *m, evl_loop *loop, struct mosquitto *mosq, const char *host, int port,
                           int keepalive) {
    memset(m, 0, sizeof *m);
    m->loop = loop;
    m->mosq = mosq;
    m->last_fd = -1;
    m->backoff = m->backoff_min = EVL_MS(50);
    m->backoff_max = EVL_SEC(5);
    evl_io_init(&m->io, evl_mqtt__on_io, -1, EVL_READ);
    m->io.data = m;
    evl_timer_init(&m->misc, evl_mqtt__on_misc);
    m->misc.data = m;
    evl_timer_init(&m->retry, evl_mqtt__on_retry);
    m->retry.data = m;
    evl_hook_init(&m->sync, evl_mqtt__on_prepare, EVL_PREPARE);
    m->sync.data = m;
    evl_timer_start(loop, &m->misc, EVL_SEC(1), EVL_SEC(1));
    evl_unref(loop, &m->misc);
    evl_hook_start(loop, &m->sync);
    evl_unref(loop, &m->sync);
    evl_mqtt__connect(m, 1, host, port, keepalive);
}

/* Sends DISCONNECT (if connected) and stops every watcher; mosq stays yours to destroy. */
static inline void evl_mqtt_stop(evl_mqtt *m) {
    m->quitting = 1;
    if (m->connected) (void)mosquitto_disconnect(m->mosq);
    evl_io_stop(m->loop, &m->io);
    evl_timer_stop(m->loop, &m->misc);
    evl_timer_stop(m->loop, &m->retry);
    evl_hook_stop(m->loop, &m->sync);
    m->connected = 0;
}

#endif
