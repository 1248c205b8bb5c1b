/* io watchers: readiness, level triggering, error and hang-up reporting, changing the interest,
   the errors evl_io_start gives, and descriptors the kernel cannot poll. */
#include "t.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static void setup(evl_loop *loop, evl_io *w, t_seen *seen, int fd, unsigned events) {
    memset(seen, 0, sizeof *seen);
    evl_io_init(w, t_record_io, fd, events);
    w->data = seen;
    CHECK_EQ(evl_io_start(loop, w), 0);
}

static void readable_pipe_calls_back_with_read(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    setup(&loop, &w, &seen, fds[0], EVL_READ);
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.calls, 0);                    /* nothing to read yet */
    CHECK_EQ(write(fds[1], "hi", 2), 2);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(seen.last, EVL_READ);
    evl_io_stop(&loop, &w);
    evl_deinit(&loop);
}

static void writable_pipe_calls_back_with_write(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    setup(&loop, &w, &seen, fds[1], EVL_WRITE);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(seen.last, EVL_WRITE);
    evl_deinit(&loop);
}

static void unread_data_is_reported_at_every_iteration(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2], i;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    setup(&loop, &w, &seen, fds[0], EVL_READ);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    for (i = 0; i < 5; i++) CHECK_EQ(evl_run(&loop, 0), 1);   /* one pass each */
    CHECK_EQ(seen.calls, 5);
    evl_deinit(&loop);
}

static void closed_writer_is_reported_as_hangup(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    setup(&loop, &w, &seen, fds[0], EVL_READ);
    close(fds[1]);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK(seen.last & EVL_HUP);
    evl_deinit(&loop);
}

#if T_POSIX
static void closed_reader_is_reported_as_error_to_the_writer(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    if (!T_HUP_WITHOUT_INTEREST) t_skip("this backend reports a stream's end only to a read or write interest");
    close(fds[0]);
    setup(&loop, &w, &seen, fds[1], 0);         /* no interest: errors come anyway */
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK(seen.last & EVL_ERROR);
    CHECK(!(seen.last & EVL_WRITE));
    evl_deinit(&loop);
}
#endif

#if T_POSIX
static void second_watcher_on_a_descriptor_is_refused(void) {
    evl_loop loop;
    evl_io a, b, c;
    t_seen sa, sb, sc;
    int fds[2], copy;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    setup(&loop, &a, &sa, fds[0], EVL_READ);
    memset(&sb, 0, sizeof sb);
    evl_io_init(&b, t_record_io, fds[0], EVL_READ);
    b.data = &sb;
    CHECK_EQ(evl_io_start(&loop, &b), -EEXIST);
    CHECK_EQ(evl_run(&loop, 0), 1);             /* b is not active */
    copy = dup(fds[0]);                         /* another descriptor of the same pipe is fine */
    setup(&loop, &c, &sc, copy, EVL_READ);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK(t_run_until(&loop, &sc.calls, EVL_SEC(2)));
    CHECK(sa.calls > 0);
    CHECK_EQ(sb.calls, 0);
    evl_io_stop(&loop, &a);
    CHECK_EQ(evl_io_start(&loop, &b), 0);       /* once the first has stopped */
    evl_deinit(&loop);
}
#endif

static void bad_descriptors_are_refused_with_ebadf(void) {
    evl_loop loop;
    evl_io w;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    evl_io_init(&w, t_record_io, -1, EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), -EBADF);
    evl_io_init(&w, t_record_io, 1 << 20, EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), -EBADF);
    t_pipe(fds);
    close(fds[0]);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), -EBADF);
    CHECK_EQ(evl_run(&loop, 0), 0);
    evl_deinit(&loop);
}

static void unknown_event_bits_are_refused(void) {
    evl_loop loop;
    evl_io w;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ | 64);
    CHECK_EQ(evl_io_start(&loop, &w), -EINVAL);
    evl_io_init(&w, t_record_io, fds[0], 0x10000);
    CHECK_EQ(evl_io_start(&loop, &w), -EINVAL);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ | EVL_ERROR | EVL_HUP);  /* always reported: accepted */
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK_EQ(evl_io_set(&loop, &w, EVL_WRITE | 256), -EINVAL);
    CHECK_EQ(w.events, EVL_READ);               /* unchanged */
    evl_deinit(&loop);
}

static void set_changes_the_interest_of_an_active_watcher(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_socketpair(SOCK_STREAM, fds);
    setup(&loop, &w, &seen, fds[0], EVL_READ);
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.calls, 0);
    CHECK_EQ(evl_io_set(&loop, &w, EVL_READ | EVL_WRITE), 0);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(seen.last, EVL_WRITE);
    CHECK_EQ(evl_io_set(&loop, &w, 0), 0);
    seen.calls = 0;
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.calls, 0);
    evl_deinit(&loop);
}

static void set_on_an_inactive_watcher_applies_at_start(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_socketpair(SOCK_STREAM, fds);
    memset(&seen, 0, sizeof seen);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ);
    w.data = &seen;
    CHECK_EQ(evl_io_set(&loop, &w, EVL_WRITE), 0);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(seen.last, EVL_WRITE);
    evl_deinit(&loop);
}

static void stopped_watcher_is_not_called_and_can_restart(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    setup(&loop, &w, &seen, fds[0], EVL_READ);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    evl_io_stop(&loop, &w);
    evl_io_stop(&loop, &w);                     /* idempotent */
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 0);
    CHECK_EQ(seen.calls, 0);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    evl_deinit(&loop);
}

#if T_POSIX
static void regular_file_is_ready_at_every_iteration(void) {
    evl_loop loop;
    evl_io w, second;
    t_seen seen, seen2;
    int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC), i;
    if (fd < 0) fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(evl_init(&loop), 0);
    setup(&loop, &w, &seen, fd, EVL_READ | EVL_WRITE | EVL_PRI);
    for (i = 0; i < 3; i++) CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.calls, 3);
    CHECK_EQ(seen.all, EVL_READ | EVL_WRITE);  /* as poll() reports a file: no PRI */
    memset(&seen2, 0, sizeof seen2);
    evl_io_init(&second, t_record_io, fd, EVL_READ);
    second.data = &seen2;
    CHECK_EQ(evl_io_start(&loop, &second), -EEXIST);
    evl_io_stop(&loop, &w);
    CHECK_EQ(evl_run(&loop, 0), 0);
    CHECK_EQ(seen.calls, 3);
    evl_deinit(&loop);
    close(fd);
}

static void directory_is_ready_at_every_iteration(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(evl_init(&loop), 0);
    setup(&loop, &w, &seen, fd, EVL_READ);
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.calls, 1);
    CHECK_EQ(seen.last, EVL_READ);
    evl_deinit(&loop);
    close(fd);
}

static void file_watcher_set_changes_reported_events(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    char path[] = "/tmp/evl-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    CHECK_EQ(evl_init(&loop), 0);
    setup(&loop, &w, &seen, fd, EVL_READ);
    CHECK_EQ(evl_io_set(&loop, &w, EVL_WRITE), 0);
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.last, EVL_WRITE);
    evl_deinit(&loop);
    close(fd);
}

/* A library that closes its socket and opens another (a reconnect) usually gets the same number
   back.  The kernel dropped the old registration at close, so the watcher hears nothing until it
   is told: evl_io_reset follows the new descriptor, evl_io_set registers the number again. */
static void reset_follows_a_descriptor_closed_and_reopened_with_the_same_number(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2], again[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    setup(&loop, &w, &seen, fds[0], EVL_READ);
    close(fds[0]);                              /* behind the watcher's back */
    close(fds[1]);
    t_pipe_at(fds[0], again);
    CHECK_EQ(write(again[1], "x", 1), 1);
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);
    if (T_BACKEND_BY_NUMBER) CHECK(seen.calls > 0);  /* poll() watches the number: it hears the new file */
    else CHECK_EQ(seen.calls, 0);               /* deaf, as documented */
    CHECK_EQ(evl_io_reset(&loop, &w, again[0], EVL_READ), 0);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(5)));
    CHECK(seen.last & EVL_READ);
    CHECK(evl_io_active(&w));
    CHECK_EQ(evl_io_reset(&loop, &w, -1, EVL_READ), -EBADF);
    CHECK(!evl_io_active(&w));                  /* a failed reset leaves it stopped */
    evl_deinit(&loop);
}

static void set_registers_again_a_descriptor_the_kernel_forgot(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2], again[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    setup(&loop, &w, &seen, fds[0], EVL_READ);
    close(fds[0]);
    close(fds[1]);
    t_pipe_at(fds[0], again);
    CHECK_EQ(evl_io_set(&loop, &w, EVL_READ), 0);
    CHECK_EQ(write(again[1], "x", 1), 1);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(5)));
    evl_io_stop(&loop, &w);
    close(again[0]);
    close(again[1]);
    evl_deinit(&loop);
}
#endif

static void active_tells_whether_a_watcher_is_started(void) {
    evl_loop loop;
    evl_io w;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    evl_io_init(&w, t_record_io, fds[0], EVL_READ);
    CHECK(!evl_io_active(&w));
    CHECK(!evl_io_active(NULL));
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK(evl_io_active(&w));
    evl_io_stop(&loop, &w);
    CHECK(!evl_io_active(&w));
    evl_deinit(&loop);
}

/* A descriptor that stays ready keeps a level-triggered loop busy; evl_dump names it. */
static void dump_names_the_descriptor_the_last_wait_reported(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    char text[4096], want[64];
    FILE *f = tmpfile();
    size_t len;
    CHECK(f != NULL);
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    setup(&loop, &w, &seen, fds[0], EVL_READ);
    CHECK_EQ(write(fds[1], "x", 1), 1);        /* never read: ready at every pass */
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.calls, 1);
    evl_dump(&loop, f);
    rewind(f);
    len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    snprintf(want, sizeof want, "last wait reported  fd %d READ", fds[0]);
    CHECK(strstr(text, want) != NULL);
    evl_io_stop(&loop, &w);                     /* a stopped watcher is no longer named */
    rewind(f);
    CHECK(ftruncate(fileno(f), 0) == 0);
    evl_dump(&loop, f);
    rewind(f);
    len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    CHECK(strstr(text, want) == NULL);
    fclose(f);
    evl_deinit(&loop);
}

const t_case io_tests[] = {
    T(readable_pipe_calls_back_with_read),
    T(writable_pipe_calls_back_with_write),
    T(unread_data_is_reported_at_every_iteration),
    T(closed_writer_is_reported_as_hangup),
#if T_POSIX
    T(closed_reader_is_reported_as_error_to_the_writer),
#endif
#if T_POSIX
    T(second_watcher_on_a_descriptor_is_refused),
#endif
    T(bad_descriptors_are_refused_with_ebadf),
    T(unknown_event_bits_are_refused),
    T(set_changes_the_interest_of_an_active_watcher),
    T(set_on_an_inactive_watcher_applies_at_start),
    T(stopped_watcher_is_not_called_and_can_restart),
#if T_POSIX
    T(regular_file_is_ready_at_every_iteration),
    T(directory_is_ready_at_every_iteration),
    T(file_watcher_set_changes_reported_events),
    T(reset_follows_a_descriptor_closed_and_reopened_with_the_same_number),
    T(set_registers_again_a_descriptor_the_kernel_forgot),
#endif
    T(active_tells_whether_a_watcher_is_started),
    T(dump_names_the_descriptor_the_last_wait_reported),
    T_END,
};
