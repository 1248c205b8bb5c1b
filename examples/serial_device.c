/* serial_device - talking a line protocol (AT commands here) to a serial device, in callback form
 * or in fiber form, on a real port or on a pty.
 *
 *   ./serial_device /dev/ttyUSB0 [--fiber] [COMMAND...]    a real port at 115200 baud
 *   ./serial_device --self-test                            a pty, with a pretend modem on the
 *                                                          other end, in both forms
 *
 * Each command is sent with "\r\n" and its reply read up to "OK" or "ERROR" by one deadline of
 * 500 ms for the whole reply.  The callback form is a line watcher plus a timer per command; the
 * fiber form reads like blocking code.  See docs/serial.md. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glue/evl_serial.h"

#define REPLY_TIME EVL_MS(500)

static const char *default_commands[] = {"AT", "ATI", NULL};
static const char **commands = default_commands;
static int failures;

static int send_command(int fd, const char *cmd) {
    char line[128];
    int n = snprintf(line, sizeof line, "%s\r\n", cmd);
    printf("> %s\n", cmd);
    return write(fd, line, (size_t)n) == n ? 0 : -1;   /* short commands fit the port's buffer */
}

static int is_final(const char *line) { return !strcmp(line, "OK") || !strcmp(line, "ERROR"); }

/* ---- callback form: a line watcher, and a timer holding each reply to its deadline ------------ */

typedef struct callback_session {
    evl_serial_lines lines;
    evl_timer deadline;
    int fd, next;
} callback_session;

static void next_command(callback_session *s) {
    if (!commands[s->next]) {
        evl_serial_lines_stop(&s->lines);
        evl_timer_stop(s->lines.loop, &s->deadline);
        return;
    }
    if (send_command(s->fd, commands[s->next++]) < 0) failures++;
    evl_timer_start(s->lines.loop, &s->deadline, REPLY_TIME, 0);
}

static void on_line(evl_serial_lines *l, const char *line) {
    callback_session *s = (callback_session *)l->data;
    if (!line[0]) return;
    printf("< %s\n", line);
    if (!is_final(line)) return;
    if (strcmp(line, "OK")) failures++;
    next_command(s);
}

static void on_no_reply(evl_loop *loop, evl_timer *t) {
    callback_session *s = (callback_session *)t->data;
    (void)loop;
    printf("  (no complete reply within %d ms)\n", (int)(REPLY_TIME / 1000000));
    failures++;
    next_command(s);
}

static void on_port_error(evl_serial_lines *l, int err) {
    callback_session *s = (callback_session *)l->data;
    printf("  port: %s\n", err ? strerror(-err) : "hung up");
    failures++;
    evl_timer_stop(l->loop, &s->deadline);
}

static void run_callbacks(evl_loop *loop, int fd) {
    static callback_session s;
    memset(&s, 0, sizeof s);
    s.fd = fd;
    s.lines.data = &s;
    evl_timer_init(&s.deadline, on_no_reply);
    s.deadline.data = &s;
    evl_serial_lines_start(loop, &s.lines, fd, on_line, on_port_error);
    next_command(&s);
    evl_run(loop, EVL_FOREVER);
}

/* ---- fiber form: the same, as straight-line code --------------------------------------------- */

#if EVLOOP_HAS_FIBERS
static void talk(void *arg) {
    int fd = *(int *)arg, i;
    evl_serial_buf in;
    char line[128];
    memset(&in, 0, sizeof in);
    for (i = 0; commands[i]; i++) {
        evl_time deadline = evl_deadline(REPLY_TIME);
        int rc;
        if (send_command(fd, commands[i]) < 0) failures++;
        while ((rc = evl_serial_read_line(fd, &in, line, sizeof line, deadline)) >= 0) {
            if (!line[0]) continue;
            printf("< %s\n", line);
            if (is_final(line)) break;
        }
        if (rc < 0 || strcmp(line, "OK")) {
            if (rc < 0) printf("  (%s)\n", strerror(-rc));
            failures++;
        }
    }
}

static void run_fiber(evl_loop *loop, int fd) {
    static evl_fiber f;
    evl_fiber_start(loop, &f, NULL, 0, talk, &fd);
    evl_run(loop, EVL_FOREVER);
}
#endif

/* ---- --self-test: a pretend modem on the master side of a pty -------------------------------- */

static evl_serial_buf modem_in;

static void modem(evl_loop *loop, evl_io *w, unsigned revents) {
    char line[128];
    ssize_t n = read(w->fd, modem_in.bytes + modem_in.len, sizeof modem_in.bytes - modem_in.len);
    const char *reply;
    (void)revents;
    if (n <= 0) {
        evl_io_stop(loop, w);
        return;
    }
    modem_in.len += (size_t)n;
    while (evl_serial_take_line(&modem_in, line, sizeof line) >= 0) {
        if (!line[0]) continue;
        reply = !strcmp(line, "AT") ? "OK\r\n" : !strcmp(line, "ATI") ? "pretend modem 1.0\r\nOK\r\n" : "ERROR\r\n";
        if (write(w->fd, reply, strlen(reply)) < 0) evl_io_stop(loop, w);
    }
}

static int self_test(evl_loop *loop) {
    char path[64];
    evl_io device;
    int form, master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, path, sizeof path) != 0)
        return 1;
    evl_io_init(&device, modem, master, EVL_READ);
    evl_io_start(loop, &device);
    evl_unref(loop, &device);                   /* the session decides when the run ends */
    for (form = 0; form < 1 + EVLOOP_HAS_FIBERS; form++) {
        int fd = evl_serial_open(path, B115200);
        if (fd < 0) return 1;
        printf("-- %s form on %s\n", form ? "fiber" : "callback", path);
#if EVLOOP_HAS_FIBERS
        if (form) run_fiber(loop, fd);
        else
#endif
            run_callbacks(loop, fd);
        close(fd);
    }
    evl_io_stop(loop, &device);
    close(master);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    evl_loop loop;
    int fd, fiber = 0, rc;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DEVICE [--fiber] [COMMAND...] | --self-test\n", argv[0]);
        return 2;
    }
    if (evl_init(&loop) < 0) return 1;
    if (!strcmp(argv[1], "--self-test")) {
        rc = self_test(&loop);
        evl_deinit(&loop);
        return rc;
    }
    if (argc > 2 && !strcmp(argv[2], "--fiber")) fiber = 1;
    if (argc > 2 + fiber) commands = (const char **)argv + 2 + fiber;  /* argv ends with NULL */
    fd = evl_serial_open(argv[1], B115200);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(-fd));
        return 1;
    }
#if EVLOOP_HAS_FIBERS
    if (fiber) run_fiber(&loop, fd);
    else
#endif
        run_callbacks(&loop, fd);
    close(fd);
    evl_deinit(&loop);
    return failures ? 1 : 0;
}
