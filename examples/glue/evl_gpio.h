/* evl_gpio.h - GPIO inputs on an evloop loop, in the two ways Linux offers.  Include evloop.h
   first.  See docs/gpio.md.

   1. sysfs (/sys/class/gpio/gpioN/value, after "both" is written to its edge file), and any other
      sysfs, procfs or kernfs file that announces changes (/proc/self/mounts, some hwmon and power
      supply attributes).  poll() reports a change as POLLPRI | POLLERR; such a file is always
      readable, so it is watched for EVL_PRI alone (EVL_READ would make the loop call back on
      every iteration: a busy loop that evl_dump's "last wait reported" line names).  The file
      reports once right after it is opened, until it is read: the value is read once at start,
      and on every change the file is read again from offset 0 (lseek, then read) - the read is
      also what re-arms the notification.
   2. The character device (/dev/gpiochipN, the GPIO v2 uAPI): a line requested with edge
      detection gives a descriptor that is readable while edge events are queued, an ordinary
      EVL_READ watcher; each read returns whole struct gpio_v2_line_event records.

   The descriptors are the glue's: opened at start and closed at stop, after the watcher stops. */
#ifndef EVL_GPIO_H
#define EVL_GPIO_H

#ifndef EVLOOP_H
#error "include evloop.h before evl_gpio.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#ifndef EVL_GPIO_VALUE_MAX
#define EVL_GPIO_VALUE_MAX 64                   /* a value file holds "0\n" or "1\n" */
#endif

/* ---- 1. a value file: EVL_PRI, lseek, read again ---------------------------------------------- */

typedef struct evl_gpio_value evl_gpio_value;
typedef void (*evl_gpio_value_cb)(evl_gpio_value *g, const char *value);

struct evl_gpio_value {
    evl_io io;
    evl_loop *loop;
    char value[EVL_GPIO_VALUE_MAX];             /* the content read last, NUL-terminated, cut to size */
    size_t len;
    evl_gpio_value_cb on_change;
    unsigned changes;           /* notifications so far */
    void *data;                 /* yours */
};

/* Reads the whole file from the start; the part that fits is kept.  0 or -errno. */
static inline int evl_gpio__read_value(evl_gpio_value *g) {
    char rest[256];
    ssize_t n;
    if (lseek(g->io.fd, 0, SEEK_SET) < 0) return -errno;
    g->len = 0;
    while (g->len < sizeof g->value - 1 && (n = read(g->io.fd, g->value + g->len, sizeof g->value - 1 - g->len)) > 0)
        g->len += (size_t)n;
    while ((n = read(g->io.fd, rest, sizeof rest)) > 0) {  /* to the end: a partial read may not re-arm */
    }
    g->value[g->len] = 0;
    while (g->len > 0 && g->value[g->len - 1] == '\n') g->value[--g->len] = 0;
    return 0;
}

static inline void evl_gpio__on_pri(evl_loop *loop, evl_io *w, unsigned revents) {
    evl_gpio_value *g = (evl_gpio_value *)w->data;
    (void)loop, (void)revents;                  /* EVL_PRI, with EVL_ERROR: the change, not a fault */
    if (evl_gpio__read_value(g) < 0) return;
    g->changes++;
    g->on_change(g, g->value);
}

/* Opens path, reads its value (into g->value), and calls on_change after every change.
   0 or -errno. */
static inline int evl_gpio_value_start(evl_loop *loop, evl_gpio_value *g, const char *path,
                                       evl_gpio_value_cb on_change) {
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    if (fd < 0) return -errno;
    memset(g, 0, sizeof *g);
    g->loop = loop;
    g->on_change = on_change;
    evl_io_init(&g->io, evl_gpio__on_pri, fd, EVL_PRI);
    g->io.data = g;
    if ((rc = evl_gpio__read_value(g)) < 0 || (rc = evl_io_start(loop, &g->io)) < 0) {
        close(fd);
        return rc;
    }
    return 0;
}

static inline void evl_gpio_value_stop(evl_gpio_value *g) {
    if (!evl_io_active(&g->io)) return;
    evl_io_stop(g->loop, &g->io);
    close(g->io.fd);
}

/* ---- 2. a line of a GPIO character device: edge events on a readable descriptor ---------------- */
#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/gpio.h>)
#include <linux/gpio.h>
#include <sys/ioctl.h>
#ifdef GPIO_V2_GET_LINE_IOCTL
#define EVL_GPIO_HAS_CHARDEV 1

typedef struct evl_gpio_line evl_gpio_line;
typedef void (*evl_gpio_edge_cb)(evl_gpio_line *l, const struct gpio_v2_line_event *e);

struct evl_gpio_line {
    evl_io io;
    evl_loop *loop;
    evl_gpio_edge_cb on_edge;
    void *data;                 /* yours */
};

static inline void evl_gpio__on_events(evl_loop *loop, evl_io *w, unsigned revents) {
    evl_gpio_line *l = (evl_gpio_line *)w->data;
    struct gpio_v2_line_event events[16];
    ssize_t n = read(w->fd, events, sizeof events);
    size_t i;
    (void)loop, (void)revents;
    for (i = 0; n > 0 && i < (size_t)n / sizeof events[0]; i++) l->on_edge(l, &events[i]);
}

/* Requests line `offset` of chip (/dev/gpiochipN) as an input with edge detection (flags: the
   GPIO_V2_LINE_FLAG_EDGE_* bits, and a bias if wanted) and watches it.  0 or -errno. */
static inline int evl_gpio_line_start(evl_loop *loop, evl_gpio_line *l, const char *chip, unsigned offset,
                                      unsigned long long flags, evl_gpio_edge_cb on_edge) {
    struct gpio_v2_line_request req;
    int chip_fd = open(chip, O_RDONLY | O_CLOEXEC), rc;
    if (chip_fd < 0) return -errno;
    memset(&req, 0, sizeof req);
    req.offsets[0] = offset;
    req.num_lines = 1;
    req.config.flags = GPIO_V2_LINE_FLAG_INPUT | flags;
    strncpy(req.consumer, "evloop", sizeof req.consumer - 1);
    rc = ioctl(chip_fd, GPIO_V2_GET_LINE_IOCTL, &req) < 0 ? -errno : 0;
    close(chip_fd);                             /* the line's descriptor lives on by itself */
    if (rc < 0) return rc;
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->on_edge = on_edge;
    evl_io_init(&l->io, evl_gpio__on_events, req.fd, EVL_READ);
    l->io.data = l;
    if ((rc = evl_io_start(loop, &l->io)) < 0) close(req.fd);
    return rc;
}

static inline void evl_gpio_line_stop(evl_gpio_line *l) {
    if (!evl_io_active(&l->io)) return;
    evl_io_stop(l->loop, &l->io);
    close(l->io.fd);
}

#endif
#endif
#endif
#endif
