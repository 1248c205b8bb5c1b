/* serial_fiber - talking a line protocol to a serial device from a fiber.
 *
 *   ./serial_fiber
 *
 * The "device" is the other end of a pty, so the example runs anywhere; with real hardware you
 * would open /dev/ttyUSB0 (or /dev/ttyS1...) instead and keep everything else.  The fiber opens
 * the port, puts it in raw mode at 115200 baud with termios, and for each command writes it and
 * reads the reply line by line until "OK" or "ERROR", with a timeout: a device that does not
 * answer costs 300 ms, not a hung program.  The device side is a plain io callback in the same
 * loop, answering like a modem. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* ---- the serial side, as an application would write it ---------------------------------------- */

static int open_serial(const char *path) {
    struct termios tio;
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    if (tcgetattr(fd, &tio) < 0) {
        close(fd);
        return -1;
    }
    cfmakeraw(&tio);                    /* bytes as they are: no echo, no line editing, no CR/LF games */
    cfsetspeed(&tio, B115200);
    tio.c_cflag |= CLOCAL | CREAD;
    tcsetattr(fd, TCSANOW, &tio);
    tcflush(fd, TCIOFLUSH);
    return fd;
}

/* Reads one "\r\n"-terminated line into line (without the terminator).  Returns its length, or a
   negative errno: -ETIMEDOUT if the whole reply took longer than the timeout. */
typedef struct line_reader {
    int fd;
    char buf[256];
    size_t len;
} line_reader;

static int read_line(line_reader *r, char *line, size_t size, evl_time timeout) {
    for (;;) {
        char *end = (char *)memchr(r->buf, '\n', r->len);
        ssize_t n;
        if (end) {
            size_t len = (size_t)(end - r->buf), keep = len;
            if (keep > 0 && r->buf[keep - 1] == '\r') keep--;
            if (keep >= size) keep = size - 1;
            memcpy(line, r->buf, keep);
            line[keep] = 0;
            r->len -= len + 1;
            memmove(r->buf, end + 1, r->len);
            return (int)keep;
        }
        if (r->len == sizeof r->buf) return -EMSGSIZE;
        n = evl_read(r->fd, r->buf + r->len, sizeof r->buf - r->len, timeout);
        if (n <= 0) return n == 0 ? -EPIPE : (int)n;
        r->len += (size_t)n;
    }
}

/* Sends a command and collects the reply lines up to "OK" or "ERROR". */
static int command(line_reader *r, const char *cmd, evl_time timeout) {
    char line[128];
    int rc;
    printf("> %s\n", cmd);
    if ((rc = (int)evl_write(r->fd, cmd, strlen(cmd), timeout)) < 0 || (rc = (int)evl_write(r->fd, "\r", 1, timeout)) < 0)
        return rc;
    while ((rc = read_line(r, line, sizeof line, timeout)) >= 0) {
        if (rc == 0) continue;          /* blank lines between replies */
        printf("< %s\n", line);
        if (!strcmp(line, "OK")) return 0;
        if (!strcmp(line, "ERROR")) return -EIO;
    }
    return rc;
}

static void talk_to_the_modem(void *arg) {
    static const char *const script[] = {"AT", "ATI", "AT+FOO", "AT+SLOW"};
    line_reader r;
    unsigned i;
    memset(&r, 0, sizeof r);
    r.fd = open_serial((const char *)arg);
    if (r.fd < 0) {
        perror("open_serial");
        return;
    }
    for (i = 0; i < sizeof script / sizeof script[0]; i++) {
        int rc = command(&r, script[i], EVL_MS(300));
        printf("  -> %s\n\n", rc == 0 ? "ok" : strerror(-rc));
    }
    close(r.fd);
}

/* ---- the pretend device: the pty's other end, answering like a modem -------------------------- */

static char command_buf[64];
static size_t command_len;

static void device_answers(evl_loop *loop, evl_io *w, unsigned revents) {
    char c;
    (void)revents;
    while (read(w->fd, &c, 1) == 1) {
        const char *reply;
        if (c != '\r') {
            if (command_len < sizeof command_buf - 1) command_buf[command_len++] = c;
            continue;
        }
        command_buf[command_len] = 0;
        command_len = 0;
        if (!strcmp(command_buf, "AT")) reply = "\r\nOK\r\n";
        else if (!strcmp(command_buf, "ATI")) reply = "\r\nevloop pretend modem 1.0\r\nserial 0042\r\n\r\nOK\r\n";
        else if (!strcmp(command_buf, "AT+SLOW")) reply = NULL;  /* never answers */
        else reply = "\r\nERROR\r\n";
        if (reply) (void)!write(w->fd, reply, strlen(reply));
    }
    (void)loop;
}

int main(void) {
    evl_loop loop;
    evl_fiber talker;
    evl_io device;
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
        perror("posix_openpt");
        return 1;
    }
    if (evl_init(&loop) < 0) return 1;
    evl_io_init(&device, device_answers, master, EVL_READ);
    evl_io_start(&loop, &device);
    evl_unref(&loop, &device);          /* the device does not keep the program alive */
    printf("device at %s\n\n", ptsname(master));
    evl_fiber_start(&loop, &talker, NULL, 0, talk_to_the_modem, ptsname(master));
    evl_run(&loop, EVL_FOREVER);        /* until the fiber has gone through its script */
    evl_deinit(&loop);
    close(master);
    return 0;
}
