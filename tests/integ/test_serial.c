/* Serial: a line-protocol device on a pty pair, opened and configured with termios like a real
   /dev/ttyUSB0 (examples/glue/evl_serial.h).  The device is a separate process on the master side
   that answers like a modem; the tests drive it in callback and in fiber form, reopen the port
   (the same descriptor number comes back), hold a multi-line reply to one deadline, and learn how
   much of a write went out before its timeout. */
#include "integ.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include "../../examples/glue/evl_serial.h"

typedef struct device {
    pid_t pid;
    int master;
    int control;                                /* the test's end of the control pipe */
    char path[64];
} device;

static void device_write(int master, const char *text) {
    size_t off = 0, len = strlen(text);
    while (off < len) {
        ssize_t n = write(master, text + off, len - off);
        if (n > 0) off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR) _exit(3);
    }
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The device: answers "AT" with OK, "ATI" with two lines and OK, "SLOW" with a line every 40 ms
   and OK after 200 ms; after "FLOOD" it reads nothing until the test says so on the control pipe,
   then drains what the test managed to write and answers "GOT n". */
static void device_main(int master, int control) {
    evl_serial_buf in;
    char line[512];
    memset(&in, 0, sizeof in);
    for (;;) {
        struct pollfd p = {master, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, -1) < 0) continue;
        n = read(master, in.bytes + in.len, sizeof in.bytes - in.len);
        if (n <= 0) {
            if (n < 0 && errno == EIO) {        /* no slave open at this instant (a reopen) */
                pause_ms(1);
                continue;
            }
            _exit(n == 0 ? 0 : 4);
        }
        in.len += (size_t)n;
        while (evl_serial_take_line(&in, line, sizeof line) >= 0) {
            if (!strcmp(line, "AT")) {
                device_write(master, "OK\r\n");
            } else if (!strcmp(line, "ATI")) {
                device_write(master, "evl-modem 1.0\r\nserial 42\r\nOK\r\n");
            } else if (!strcmp(line, "SLOW")) {
                int i;
                for (i = 0; i < 5; i++) {
                    device_write(master, "working\r\n");
                    pause_ms(40);
                }
                device_write(master, "OK\r\n");
            } else if (!strcmp(line, "FLOOD")) {
                char go, buf[4096], reply[64];
                long got = (long)in.len;        /* what came with the command line */
                in.len = 0;
                if (read(control, &go, 1) != 1) _exit(5);
                fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
                while ((n = read(master, buf, sizeof buf)) > 0) got += n;
                fcntl(master, F_SETFL, fcntl(master, F_GETFL) & ~O_NONBLOCK);
                snprintf(reply, sizeof reply, "GOT %ld\r\n", got);
                device_write(master, reply);
            } else if (line[0]) {
                device_write(master, "ERROR\r\n");
            }
        }
    }
}

static void device_start(device *d) {
    int control[2], master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    CHECK(master >= 0);
    CHECK(grantpt(master) == 0 && unlockpt(master) == 0);
    CHECK(ptsname_r(master, d->path, sizeof d->path) == 0);
    CHECK_EQ(pipe2(control, O_CLOEXEC), 0);
    d->pid = fork();
    CHECK(d->pid >= 0);
    if (d->pid == 0) {
        close(control[1]);
        device_main(master, control[0]);
    }
    close(control[0]);
    d->control = control[1];
    d->master = master;                         /* kept: the pty lives while the test runs */
}

static void device_stop(device *d) {
    kill(d->pid, SIGTERM);
    while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    close(d->master);
    close(d->control);
}

/* ---- callback form ------------------------------------------------------------------------ */

static char replies[32][64];
static int nreplies, oks;

static void on_line(evl_serial_lines *s, const char *line) {
    (void)s;
    if (nreplies < 32) snprintf(replies[nreplies++], sizeof replies[0], "%s", line);
    if (!strcmp(line, "OK")) oks++;
}

static void send_line(int fd, const char *text) {
    CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

static void callback_form_follows_the_port_reopened_on_the_same_number(void) {
    device d;
    evl_loop loop;
    evl_serial_lines lines;
    int fd, again, keeper;
    struct termios tio;
    device_start(&d);
    keeper = open(d.path, O_RDWR | O_NOCTTY | O_CLOEXEC);   /* holds the pty while the port reopens */
    CHECK(keeper >= 0);
    CHECK_EQ(evl_init(&loop), 0);
    fd = evl_serial_open(d.path, B115200);
    CHECK(fd >= 0);
    CHECK_EQ(tcgetattr(fd, &tio), 0);           /* configured as a real port would be */
    CHECK(!(tio.c_lflag & (ICANON | ECHO)) && (tio.c_cflag & CLOCAL) && cfgetospeed(&tio) == B115200);
    memset(&lines, 0, sizeof lines);
    CHECK_EQ(evl_serial_lines_start(&loop, &lines, fd, on_line, NULL), 0);
    send_line(fd, "ATI\r\n");
    CHECK(t_run_until(&loop, &oks, EVL_SEC(5)));
    CHECK_EQ(nreplies, 3);
    CHECK(!strcmp(replies[0], "evl-modem 1.0") && !strcmp(replies[1], "serial 42") && !strcmp(replies[2], "OK"));

    /* The port is closed and opened again, as after a reset: same number, new open file.  Without
       following it the watcher would stay active and deaf; evl_serial_lines_start moves it. */
    close(fd);
    again = evl_serial_open(d.path, B115200);
    CHECK_EQ(again, fd);
    CHECK_EQ(evl_serial_lines_start(&loop, &lines, again, on_line, NULL), 0);
    CHECK(integ_is_registered(&loop, again));
    oks = 0;
    send_line(again, "AT\r\n");
    CHECK(t_run_until(&loop, &oks, EVL_SEC(5)));
    CHECK(!strcmp(replies[nreplies - 1], "OK"));
    integ_note("port reopened on the same descriptor %d; the watcher followed it (%d lines in all)", again, nreplies);

    evl_serial_lines_stop(&lines);
    close(again);
    close(keeper);
    evl_deinit(&loop);
    device_stop(&d);
}

/* ---- fiber form --------------------------------------------------------------------------- */

typedef struct session {
    const char *path;
    int fd, done;
    int ati_lines, ati_rc;                      /* a reply well within its deadline */
    int slow_rc, slow_lines;                    /* a reply that outlasts its deadline */
    evl_time slow_took;
    int flood_rc;
    size_t flood_written;
    long device_got;
    int control;
} session;

/* Sends cmd and reads reply lines until "OK", all by one deadline: the number of lines or -errno. */
static int command(session *s, evl_serial_buf *b, const char *cmd, evl_time timeout) {
    evl_time deadline = evl_deadline(timeout);
    char line[128];
    int lines = 0, rc;
    if ((rc = evl_write_all(s->fd, cmd, strlen(cmd), evl_until(deadline), NULL)) < 0) return rc;
    while ((rc = evl_serial_read_line(s->fd, b, line, sizeof line, deadline)) >= 0) {
        lines++;
        if (!strcmp(line, "OK")) return lines;
    }
    return rc == -ETIMEDOUT ? -(1000 + lines) : rc; /* -1000 - the lines that came in time */
}

static void talk(void *arg) {
    session *s = (session *)arg;
    evl_serial_buf b;
    static unsigned char flood[65536];
    char line[64];
    evl_time started;
    int rc;
    memset(&b, 0, sizeof b);
    s->fd = evl_serial_open(s->path, B115200);
    CHECK(s->fd >= 0);
    s->ati_rc = command(s, &b, "ATI\r\n", EVL_MS(500));

    started = evl_now_update(evl_fiber_loop(evl_fiber_self()));
    rc = command(s, &b, "SLOW\r\n", EVL_MS(100));
    s->slow_took = evl_now_update(evl_fiber_loop(evl_fiber_self())) - started;
    s->slow_rc = rc <= -1000 ? -ETIMEDOUT : rc;
    s->slow_lines = rc <= -1000 ? -rc - 1000 : 0;
    /* The rest of the slow reply is still coming: read it to its OK before the next command. */
    while (evl_serial_read_line(s->fd, &b, line, sizeof line, evl_deadline(EVL_SEC(2))) >= 0 && strcmp(line, "OK")) {
    }

    /* The device stops reading after FLOOD: a 64 KiB frame cannot all go out before its timeout,
       and evl_write_all says how much did. */
    CHECK(evl_write_all(s->fd, "FLOOD\r\n", 7, EVL_SEC(1), NULL) == 0);
    memset(flood, 'x', sizeof flood);
    s->flood_rc = evl_write_all(s->fd, flood, sizeof flood, EVL_MS(50), &s->flood_written);
    CHECK_EQ(write(s->control, "g", 1), 1);     /* the device drains and counts */
    rc = evl_serial_read_line(s->fd, &b, line, sizeof line, evl_deadline(EVL_SEC(5)));
    CHECK(rc > 0 && !strncmp(line, "GOT ", 4));
    s->device_got = atol(line + 4);
    close(s->fd);
    s->done = 1;
}

static void fiber_form_deadlines_and_the_count_of_a_partial_write(void) {
    device d;
    evl_loop loop;
    evl_fiber f;
    session s;
    device_start(&d);
    memset(&s, 0, sizeof s);
    s.path = d.path;
    s.control = d.control;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(evl_fiber_start(&loop, &f, NULL, 0, talk, &s), 0);
    CHECK(t_run_until(&loop, &s.done, EVL_SEC(10)));
    CHECK_EQ(s.ati_rc, 3);
    CHECK_EQ(s.slow_rc, -ETIMEDOUT);
    CHECK(s.slow_lines < 5);                    /* the OK did not come in time */
    CHECK(s.slow_took >= EVL_MS(100));          /* the deadline, not earlier */
    CHECK_EQ(s.flood_rc, -ETIMEDOUT);
    CHECK(s.flood_written > 0 && s.flood_written < 65536);
    CHECK_EQ(s.device_got, (long)s.flood_written);  /* exactly what evl_write_all reported */
    integ_note("a 5-line reply held to 100 ms: -ETIMEDOUT after %d lines and %.1f ms", s.slow_lines,
               (double)s.slow_took / 1e6);
    integ_note("64 KiB to a device that stopped reading: -ETIMEDOUT after %zu bytes; the device received %ld",
               s.flood_written, s.device_got);
    evl_deinit(&loop);
    device_stop(&d);
}

const t_case serial_tests[] = {
    T(callback_form_follows_the_port_reopened_on_the_same_number),
    T(fiber_form_deadlines_and_the_count_of_a_partial_write),
    T_END,
};
