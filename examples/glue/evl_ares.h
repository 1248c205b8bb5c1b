/* evl_ares.h - c-ares resolving names on an evloop loop.  Include evloop.h and ares.h first.  See
   docs/dns.md.

   What c-ares expects, and where evloop does it:
     ARES_OPT_SOCK_STATE_CB   "socket s: watch it for reading and/or writing, or (0, 0) forget it":
                              one io watcher per socket, from a fixed table (no allocation)
     ares_timeout             "call ares_process_fd(BAD, BAD) by then": one evl_timer, set again
                              by a PREPARE hook before every wait (a query started anywhere is
                              covered without a call to us)
     ares_process_fd          from the io callback with the ready descriptor, and from the timer

   The sockets are c-ares's: it tells us (0, 0) before closing one (when no query needs it any
   more), so the watcher stops while the descriptor is still open; the next socket, very often
   with the same number, starts a fresh watcher with evl_io_reset. */
#ifndef EVL_ARES_H
#define EVL_ARES_H

#ifndef EVLOOP_H
#error "include evloop.h before evl_ares.h"
#endif

#ifndef EVL_ARES_SOCKETS
#define EVL_ARES_SOCKETS 16                     /* sockets c-ares may use at once */
#endif

typedef struct evl_ares {
    evl_loop *loop;
    ares_channel channel;
    evl_timer timer;
    evl_hook rearm;
    evl_io io[EVL_ARES_SOCKETS];
    unsigned opened;            /* sockets c-ares has used so far */
    unsigned same_number;       /* of which: the number of the socket closed just before */
    int last_closed;
    int full;                   /* a socket found no free watcher (raise EVL_ARES_SOCKETS) */
} evl_ares;

static inline void evl_ares__on_io(evl_loop *loop, evl_io *w, unsigned revents) {
    evl_ares *a = (evl_ares *)w->data;
    int fd = w->fd;
    (void)loop;
    ares_process_fd(a->channel, revents & (EVL_READ | EVL_ERROR | EVL_HUP) ? fd : ARES_SOCKET_BAD,
                    revents & EVL_WRITE ? fd : ARES_SOCKET_BAD);
}

static inline void evl_ares__on_timer(evl_loop *loop, evl_timer *t) {
    (void)loop;
    ares_process_fd(((evl_ares *)t->data)->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static inline void evl_ares__on_prepare(evl_loop *loop, evl_hook *h) {
    evl_ares *a = (evl_ares *)h->data;
    struct timeval tv, *left = ares_timeout(a->channel, NULL, &tv);
    if (!left) evl_timer_stop(loop, &a->timer);
    else evl_timer_start(loop, &a->timer, EVL_SEC(left->tv_sec) + EVL_US(left->tv_usec), 0);
}

static inline void evl_ares__socket_state(void *data, ares_socket_t s, int readable, int writable) {
    evl_ares *a = (evl_ares *)data;
    unsigned events = (readable ? EVL_READ : 0u) | (writable ? EVL_WRITE : 0u);
    evl_io *free_slot = NULL;
    int i;
    for (i = 0; i < EVL_ARES_SOCKETS; i++) {
        evl_io *w = &a->io[i];
        if (evl_io_active(w) && w->fd == s) {
            if (events) {
                (void)evl_io_set(a->loop, w, events);
            } else {
                evl_io_stop(a->loop, w);        /* c-ares closes s right after this */
                a->last_closed = s;
            }
            return;
        }
        if (!free_slot && !evl_io_active(w)) free_slot = w;
    }
    if (!events) return;
    if (!free_slot) {
        a->full = 1;
        return;
    }
    a->opened++;
    if (s == a->last_closed) a->same_number++;
    (void)evl_io_reset(a->loop, free_slot, s, events);
}

/* Makes a channel driven by loop; options and optmask as for ares_init_options (the socket state
   callback is added).  0, or an ARES_E* code. */
static inline int evl_ares_init(evl_ares *a, evl_loop *loop, struct ares_options *options, int optmask) {
    int i;
    memset(a, 0, sizeof *a);
    a->loop = loop;
    a->last_closed = -1;
    for (i = 0; i < EVL_ARES_SOCKETS; i++) {
        evl_io_init(&a->io[i], evl_ares__on_io, -1, EVL_READ);
        a->io[i].data = a;
    }
    evl_timer_init(&a->timer, evl_ares__on_timer);
    a->timer.data = a;
    evl_hook_init(&a->rearm, evl_ares__on_prepare, EVL_PREPARE);
    a->rearm.data = a;
    options->sock_state_cb = evl_ares__socket_state;
    options->sock_state_cb_data = a;
    i = ares_init_options(&a->channel, options, optmask | ARES_OPT_SOCK_STATE_CB);
    if (i != ARES_SUCCESS) return i;
    evl_hook_start(loop, &a->rearm);
    evl_unref(loop, &a->rearm);
    return 0;
}

/* Destroys the channel (pending queries end with ARES_EDESTRUCTION) and stops every watcher. */
static inline void evl_ares_deinit(evl_ares *a) {
    int i;
    ares_destroy(a->channel);
    for (i = 0; i < EVL_ARES_SOCKETS; i++) evl_io_stop(a->loop, &a->io[i]);
    evl_timer_stop(a->loop, &a->timer);
    evl_hook_stop(a->loop, &a->rearm);
}

#endif
