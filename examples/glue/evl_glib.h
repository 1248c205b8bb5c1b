/* evl_glib.h - evloop and GLib in one thread, either way round.  Include evloop.h and glib.h
   first.  See docs/glib.md.

   1. evloop inside a GMainLoop (GLib owns the thread: a GTK or GStreamer program): evloop's
      backend descriptor becomes a GSource's fd; the source's prepare gives GLib
      evl_backend_timeout as its timeout, check says whether either is due, and dispatch runs one
      non-blocking pass, evl_run(loop, 0).
   2. a GLib main context inside evloop (evloop owns the thread): a PREPARE hook runs
      g_main_context_prepare and _query, watches the descriptors GLib asks for with io watchers
      and its timeout with a timer; a CHECK hook hands what the watchers saw to
      g_main_context_check and dispatches.  GLib hands over its descriptors anew before every
      wait, and one may have been closed and replaced by another with the same number since the
      last: each watcher is given its interest again with evl_io_set, which registers a
      descriptor the kernel forgot (one epoll_ctl per GLib descriptor per iteration - what GLib's
      own poll() pays too). */
#ifndef EVL_GLIB_H
#define EVL_GLIB_H

#ifndef EVLOOP_H
#error "include evloop.h before evl_glib.h"
#endif

/* ---- 1. evloop as a GSource ------------------------------------------------------------------ */

typedef struct evl_gsource {
    GSource source;
    evl_loop *loop;
    gpointer tag;               /* evl_backend_fd, from g_source_add_unix_fd */
} evl_gsource;

static inline gint evl_glib__ms(evl_time t) {
    evl_time ms = t / 1000000u + (t % 1000000u != 0);   /* rounded up: never early */
    return ms > G_MAXINT ? G_MAXINT : (gint)ms;
}

static inline gboolean evl_gsource__prepare(GSource *source, gint *timeout) {
    evl_time t = evl_backend_timeout(((evl_gsource *)source)->loop);
    *timeout = t == EVL_FOREVER ? -1 : evl_glib__ms(t);
    return t == 0;
}

static inline gboolean evl_gsource__check(GSource *source) {
    evl_gsource *s = (evl_gsource *)source;
    return (g_source_query_unix_fd(source, s->tag) & G_IO_IN) || evl_backend_timeout(s->loop) == 0;
}

static inline gboolean evl_gsource__dispatch(GSource *source, GSourceFunc cb, gpointer data) {
    (void)cb, (void)data;
    evl_run(((evl_gsource *)source)->loop, 0);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs evl_gsource_funcs = {evl_gsource__prepare, evl_gsource__check, evl_gsource__dispatch, NULL,
                                         NULL, NULL};

/* A source that runs loop inside ctx (NULL: the default context); g_source_destroy and
   g_source_unref it when done. */
static inline GSource *evl_gsource_new(evl_loop *loop, GMainContext *ctx) {
    evl_gsource *s = (evl_gsource *)g_source_new(&evl_gsource_funcs, sizeof *s);
    s->loop = loop;
    s->tag = g_source_add_unix_fd(&s->source, evl_backend_fd(loop), G_IO_IN);
    g_source_set_name(&s->source, "evloop");
    g_source_attach(&s->source, ctx);
    return &s->source;
}

/* ---- 2. a GLib context driven by evloop's hooks ---------------------------------------------- */

#ifndef EVL_GMAIN_FDS
#define EVL_GMAIN_FDS 32                        /* descriptors GLib may ask to be watched at once */
#endif

typedef struct evl_gmain {
    evl_loop *loop;
    GMainContext *ctx;
    evl_hook prepare, check;
    evl_timer timer;            /* GLib's timeout */
    evl_io io[EVL_GMAIN_FDS];   /* io[i] watches fds[i] */
    GPollFD fds[EVL_GMAIN_FDS];
    gint nfds, max_priority;
    int truncated;              /* GLib asked for more than EVL_GMAIN_FDS descriptors */
} evl_gmain;

static inline void evl_gmain__on_io(evl_loop *loop, evl_io *w, unsigned revents) {
    GPollFD *p = (GPollFD *)w->data;
    (void)loop;
    p->revents = (gushort)((revents & EVL_READ ? G_IO_IN : 0) | (revents & EVL_WRITE ? G_IO_OUT : 0) |
                           (revents & EVL_PRI ? G_IO_PRI : 0) | (revents & EVL_ERROR ? G_IO_ERR : 0) |
                           (revents & EVL_HUP ? G_IO_HUP : 0));
}

static inline void evl_gmain__on_timer(evl_loop *loop, evl_timer *t) { (void)loop, (void)t; }

static inline void evl_gmain__on_prepare(evl_loop *loop, evl_hook *h) {
    evl_gmain *g = (evl_gmain *)h->data;
    gint timeout, i, n;
    gboolean ready = g_main_context_prepare(g->ctx, &g->max_priority);
    n = g_main_context_query(g->ctx, g->max_priority, &timeout, g->fds, EVL_GMAIN_FDS);
    g->truncated = n > EVL_GMAIN_FDS;
    g->nfds = n > EVL_GMAIN_FDS ? EVL_GMAIN_FDS : n;
    for (i = 0; i < EVL_GMAIN_FDS; i++) {
        evl_io *w = &g->io[i];
        unsigned events;
        if (i >= g->nfds) {
            evl_io_stop(loop, w);
            continue;
        }
        g->fds[i].revents = 0;
        events = (g->fds[i].events & G_IO_IN ? EVL_READ : 0u) | (g->fds[i].events & G_IO_OUT ? EVL_WRITE : 0u) |
                 (g->fds[i].events & G_IO_PRI ? EVL_PRI : 0u);
        w->data = &g->fds[i];
        if (evl_io_active(w) && w->fd == g->fds[i].fd) (void)evl_io_set(loop, w, events);
        else (void)evl_io_reset(loop, w, g->fds[i].fd, events);
    }
    if (ready) timeout = 0;
    if (timeout < 0) evl_timer_stop(loop, &g->timer);
    else evl_timer_start(loop, &g->timer, EVL_MS(timeout), 0);
}

static inline void evl_gmain__on_check(evl_loop *loop, evl_hook *h) {
    evl_gmain *g = (evl_gmain *)h->data;
    (void)loop;
    if (g_main_context_check(g->ctx, g->max_priority, g->fds, g->nfds)) g_main_context_dispatch(g->ctx);
}

/* Drives ctx (NULL: the default context) from loop, which must not also be run by GLib.  The
   hooks, watchers and timer are unreferenced: GLib's sources alone do not keep evl_run going.
   0, or -EBUSY if another thread owns ctx. */
static inline int evl_gmain_start(evl_gmain *g, evl_loop *loop, GMainContext *ctx) {
    int i;
    memset(g, 0, sizeof *g);
    g->loop = loop;
    g->ctx = ctx ? ctx : g_main_context_default();
    if (!g_main_context_acquire(g->ctx)) return -EBUSY;
    for (i = 0; i < EVL_GMAIN_FDS; i++) {
        evl_io_init(&g->io[i], evl_gmain__on_io, -1, EVL_READ);
        evl_unref(loop, &g->io[i]);             /* kept across every reset */
    }
    evl_timer_init(&g->timer, evl_gmain__on_timer);
    evl_hook_init(&g->prepare, evl_gmain__on_prepare, EVL_PREPARE);
    evl_hook_init(&g->check, evl_gmain__on_check, EVL_CHECK);
    g->prepare.data = g->check.data = g;
    evl_hook_start(loop, &g->prepare);
    evl_hook_start(loop, &g->check);
    evl_unref(loop, &g->prepare);
    evl_unref(loop, &g->check);
    evl_unref(loop, &g->timer);
    return 0;
}

static inline void evl_gmain_stop(evl_gmain *g) {
    int i;
    for (i = 0; i < EVL_GMAIN_FDS; i++) evl_io_stop(g->loop, &g->io[i]);
    evl_timer_stop(g->loop, &g->timer);
    evl_hook_stop(g->loop, &g->prepare);
    evl_hook_stop(g->loop, &g->check);
    g_main_context_release(g->ctx);
}

#endif
