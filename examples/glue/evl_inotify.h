/* evl_inotify.h - directory events from inotify (fanotify has the same shape) on an evloop loop.
   Include evloop.h first.  See docs/inotify.md.

   An inotify descriptor is readable while events are queued; each read returns whole
   struct inotify_event records (with the name of the entry, for a watched directory).  The loop
   watches it for EVL_READ and the callback reads until EAGAIN.  The descriptor is the glue's:
   made at start, closed at stop after the watcher stops.  fanotify is the same shape: a readable
   descriptor of event records; with FAN_REPORT_DFID_NAME (Linux 5.9) they name the entry too. */
#ifndef EVL_INOTIFY_H
#define EVL_INOTIFY_H

#ifndef EVLOOP_H
#error "include evloop.h before evl_inotify.h"
#endif

#include <errno.h>
#include <sys/inotify.h>
#include <unistd.h>

typedef struct evl_dirwatch evl_dirwatch;
/* mask: the IN_* bits of the event; cookie pairs IN_MOVED_FROM with its IN_MOVED_TO; name is the
   entry in the directory ("" for the directory itself). */
typedef void (*evl_dirwatch_cb)(evl_dirwatch *d, unsigned mask, unsigned cookie, const char *name);

struct evl_dirwatch {
    evl_io io;
    evl_loop *loop;
    int wd;
    evl_dirwatch_cb on_event;
    unsigned overflows;         /* IN_Q_OVERFLOW: events were lost, rescan the directory */
    void *data;                 /* yours */
};

static inline void evl_dirwatch__on_readable(evl_loop *loop, evl_io *w, unsigned revents) {
    evl_dirwatch *d = (evl_dirwatch *)w->data;
    /* aligned for struct inotify_event, as inotify(7) asks */
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    (void)loop, (void)revents;
    while (evl_io_active(w) && (n = read(w->fd, buf, sizeof buf)) > 0) {
        char *p = buf;
        while (p < buf + n) {
            const struct inotify_event *e = (const struct inotify_event *)(void *)p;
            if (e->mask & IN_Q_OVERFLOW) d->overflows++;
            d->on_event(d, e->mask, e->cookie, e->len ? e->name : "");
            if (!evl_io_active(w)) return;      /* the callback stopped the watch */
            p += sizeof *e + e->len;
        }
    }
}

/* Watches dir for the IN_* events in mask.  0 or -errno. */
static inline int evl_dirwatch_start(evl_loop *loop, evl_dirwatch *d, const char *dir, unsigned mask,
                                     evl_dirwatch_cb on_event) {
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), rc;
    if (fd < 0) return -errno;
    d->loop = loop;
    d->on_event = on_event;
    d->overflows = 0;
    if ((d->wd = inotify_add_watch(fd, dir, mask)) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    evl_io_init(&d->io, evl_dirwatch__on_readable, fd, EVL_READ);
    d->io.data = d;
    if ((rc = evl_io_start(loop, &d->io)) < 0) close(fd);
    return rc;
}

static inline void evl_dirwatch_stop(evl_dirwatch *d) {
    if (!evl_io_active(&d->io)) return;
    evl_io_stop(d->loop, &d->io);               /* before the close: the number may come back */
    close(d->io.fd);
}

#endif
