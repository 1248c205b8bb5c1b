/* evl_serial.h - a line-protocol device on a serial port (a USB adapter, a UART, or a pty), in
   callback form and in fiber form.  Include evloop.h first.  See docs/serial.md.

   The descriptor is the application's: evl_serial_open opens the port non-blocking and
   close-on-exec and configures it with termios as a real /dev/ttyUSB0 wants (raw bytes, the
   speed, no modem control lines, receiver on).  A port that is closed and opened again (an
   adapter unplugged and back, a reset) very often gets the same number: evl_serial_lines_start
   moves the watcher with evl_io_reset, so calling it again with the new descriptor is all it
   takes, whatever the number. */
#ifndef EVL_SERIAL_H
#define EVL_SERIAL_H

#ifndef EVLOOP_H
#error "include evloop.h before evl_serial.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Opens path as a raw serial port at the given speed (B115200...): the descriptor or -errno. */
static inline int evl_serial_open(const char *path, speed_t speed) {
    struct termios tio;
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC), err;
    if (fd < 0) return -errno;
    if (tcgetattr(fd, &tio) < 0) goto fail;
    cfmakeraw(&tio);                            /* no echo, no line editing, no CR/LF translation */
    tio.c_cflag |= CLOCAL | CREAD;              /* ignore modem lines; receive */
    tio.c_cflag &= ~(tcflag_t)CRTSCTS;
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (cfsetispeed(&tio, speed) < 0 || cfsetospeed(&tio, speed) < 0) goto fail;
    if (tcsetattr(fd, TCSANOW, &tio) < 0) goto fail;
    tcflush(fd, TCIOFLUSH);                     /* nothing left over from before */
    return fd;
fail:
    err = errno;
    close(fd);
    return -err;
}

/* A line buffer: bytes in, "\n"-terminated lines out (a "\r" before the "\n" is dropped). */
typedef struct evl_serial_buf {
    char bytes[512];
    size_t len;
} evl_serial_buf;

/* Takes the next complete line out of b into line (NUL-terminated, cut at size - 1): its length,
   or -1 if no complete line is buffered. */
static inline int evl_serial_take_line(evl_serial_buf *b, char *line, size_t size) {
    char *end = (char *)memchr(b->bytes, '\n', b->len);
    size_t len, keep;
    if (!end) return -1;
    len = (size_t)(end - b->bytes);
    keep = len > 0 && b->bytes[len - 1] == '\r' ? len - 1 : len;
    if (keep >= size) keep = size - 1;
    memcpy(line, b->bytes, keep);
    line[keep] = 0;
    b->len -= len + 1;
    memmove(b->bytes, end + 1, b->len);
    return (int)keep;
}

/* ---- callback form -------------------------------------------------------------------------- */

typedef struct evl_serial_lines evl_serial_lines;
typedef void (*evl_serial_line_cb)(evl_serial_lines *s, const char *line);
/* on_error: read failed (-errno) or the port hung up (0); the watcher is already stopped. */
typedef void (*evl_serial_error_cb)(evl_serial_lines *s, int err);

struct evl_serial_lines {
    evl_io io;
    evl_loop *loop;
    evl_serial_buf in;
    evl_serial_line_cb on_line;
    evl_serial_error_cb on_error;
    unsigned overlong;          /* lines longer than the buffer, dropped */
    void *data;                 /* yours */
};

static inline void evl_serial__on_readable(evl_loop *loop, evl_io *w, unsigned revents) {
    evl_serial_lines *s = (evl_serial_lines *)w->data;
    char line[sizeof s->in.bytes];
    ssize_t n;
    (void)revents;
    n = read(w->fd, s->in.bytes + s->in.len, sizeof s->in.bytes - s->in.len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        evl_io_stop(loop, w);
        if (s->on_error) s->on_error(s, n < 0 ? -errno : 0);
        return;
    }
    s->in.len += (size_t)n;
    /* The callback may stop or restart the watcher on another descriptor: stop delivering then. */
    while (evl_io_active(w) && evl_serial_take_line(&s->in, line, sizeof line) >= 0) s->on_line(s, line);
    if (s->in.len == sizeof s->in.bytes) {      /* a full buffer without a newline */
        s->in.len = 0;
        s->overlong++;
    }
}

/* Starts (or moves, after a reopen) the line watcher on fd; s zero-filled the first time.
   0 or -errno. */
static inline int evl_serial_lines_start(evl_loop *loop, evl_serial_lines *s, int fd, evl_serial_line_cb on_line,
                                         evl_serial_error_cb on_error) {
    if (!evl_io_active(&s->io)) evl_io_init(&s->io, evl_serial__on_readable, fd, EVL_READ);
    s->io.data = s;
    s->loop = loop;
    s->in.len = 0;
    s->on_line = on_line;
    s->on_error = on_error;
    return evl_io_reset(loop, &s->io, fd, EVL_READ);
}

static inline void evl_serial_lines_stop(evl_serial_lines *s) { evl_io_stop(s->loop, &s->io); }

/* ---- fiber form ----------------------------------------------------------------------------- */
#if EVLOOP_HAS_FIBERS

/* Reads the next line, waiting no later than deadline (from evl_deadline): its length, or
   -ETIMEDOUT, -EPIPE at end of file, -EMSGSIZE for a line longer than the buffer, -errno. */
static inline int evl_serial_read_line(int fd, evl_serial_buf *b, char *line, size_t size, evl_time deadline) {
    for (;;) {
        int len = evl_serial_take_line(b, line, size);
        ssize_t n;
        if (len >= 0) return len;
        if (b->len == sizeof b->bytes) return -EMSGSIZE;
        n = evl_read(fd, b->bytes + b->len, sizeof b->bytes - b->len, evl_until(deadline));
        if (n <= 0) return n == 0 ? -EPIPE : (int)n;
        b->len += (size_t)n;
    }
}

#endif
#endif
