/* The life of a descriptor around its watcher: closed inside its own callback, stopped, closed and
   its number reused within one batch, duplicated (two descriptors of one open file), inherited by a
   forked child, and stuck in an error or hang-up state.  These run on every backend; the few
   expectations that differ are guarded by the T_ macros of t.h. */
#include "t.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void watch(evl_loop *loop, evl_io *w, t_seen *seen, evl_io_cb cb, int fd, unsigned events) {
    memset(seen, 0, sizeof *seen);
    evl_io_init(w, cb, fd, events);
    w->data = seen;
    CHECK_EQ(evl_io_start(loop, w), 0);
}

/* Gives `number` a new, empty pipe's read end; returns the write end. */
static int reopen_as_empty_pipe(int number) {
    int fds[2];
    t_pipe_at(number, fds);
    return fds[1];
}

/* ---- Closed inside its own callback ------------------------------------------------------------ */

static void stop_and_close_self(evl_loop *loop, evl_io *w, unsigned revents) {
    t_record_io(loop, w, revents);
    evl_io_stop(loop, w);
    close(w->fd);
}

static void descriptor_stopped_and_closed_in_its_own_callback_frees_its_number(void) {
    evl_loop loop;
    evl_io w, again;
    t_seen seen, seen_again;
    int fds[2], writer;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    watch(&loop, &w, &seen, stop_and_close_self, fds[0], EVL_READ);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(evl_run(&loop, 0), 0);             /* nothing left to watch */
    writer = reopen_as_empty_pipe(fds[0]);      /* the number comes back for another file */
    watch(&loop, &again, &seen_again, t_record_io, fds[0], EVL_READ);
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen_again.calls, 0);              /* empty: nothing inherited from the old file */
    CHECK_EQ(write(writer, "y", 1), 1);
    CHECK(t_run_until(&loop, &seen_again.calls, EVL_SEC(2)));
    CHECK_EQ(seen.calls, 1);
    evl_io_stop(&loop, &again);
    close(fds[0]);
    close(fds[1]);
    close(writer);
    evl_deinit(&loop);
}

static void close_self_only(evl_loop *loop, evl_io *w, unsigned revents) {
    t_record_io(loop, w, revents);
    close(w->fd);
}

/* Against the rule (stop first), but common: the watcher goes deaf, the loop does not spin on the
   dead descriptor, and the late stop is harmless. */
static void descriptor_closed_in_its_own_callback_without_a_stop_goes_quiet(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2], i;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    watch(&loop, &w, &seen, close_self_only, fds[0], EVL_READ);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    for (i = 0; i < 20; i++) CHECK(evl_run(&loop, 0) >= 0);
    CHECK_EQ(seen.calls, 1);
    evl_io_stop(&loop, &w);
    CHECK(!evl_io_active(&w));
    CHECK_EQ(evl_run(&loop, 0), 0);
    close(fds[1]);
    evl_deinit(&loop);
}

/* ---- Stop, close and reuse in one batch ---------------------------------------------------------- */

typedef struct pair_state {
    evl_io w[2];
    t_seen seen[2];
    int read_end[2], write_end[2];
    int swapped;                                /* which watcher the first callback replaced, +1 */
    int replacement_writer;
} pair_state;

static void record_pair(evl_loop *loop, evl_io *w, unsigned revents) {
    pair_state *s = (pair_state *)w->data;
    s->seen[w == &s->w[1]].calls++;
    s->seen[w == &s->w[1]].all |= revents;
    (void)loop;
}

/* The first of the two ready watchers to run replaces the other: stops it, closes its descriptor,
   opens an empty pipe under the same number and starts the same watcher memory on it.  The event
   already fetched for the old file must not reach the new one. */
static void replace_the_other(evl_loop *loop, evl_io *w, unsigned revents) {
    pair_state *s = (pair_state *)w->data;
    int other = w == &s->w[0];
    record_pair(loop, w, revents);
    if (s->swapped) return;
    s->swapped = other + 1;
    evl_io_stop(loop, &s->w[other]);
    close(s->read_end[other]);
    s->replacement_writer = reopen_as_empty_pipe(s->read_end[other]);
    evl_io_init(&s->w[other], record_pair, s->read_end[other], EVL_READ);
    s->w[other].data = s;
    CHECK_EQ(evl_io_start(loop, &s->w[other]), 0);
}

static void stop_close_and_reuse_of_a_number_in_one_batch_delivers_no_stale_event(void) {
    evl_loop loop;
    pair_state s;
    int i, other;
    char c;
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_init(&loop), 0);
    for (i = 0; i < 2; i++) {
        int fds[2];
        t_pipe(fds);
        s.read_end[i] = fds[0];
        s.write_end[i] = fds[1];
        evl_io_init(&s.w[i], replace_the_other, fds[0], EVL_READ);
        s.w[i].data = &s;
        CHECK_EQ(evl_io_start(&loop, &s.w[i]), 0);
        CHECK_EQ(write(fds[1], "x", 1), 1);     /* both ready in the same batch */
    }
    CHECK_EQ(evl_run(&loop, 0), 2);
    CHECK(s.swapped);
    other = s.swapped - 1;
    CHECK_EQ(s.seen[other].calls, 0);           /* its event was for the closed file */
    for (i = 0; i < 5; i++) CHECK_EQ(evl_run(&loop, 0), 2);
    CHECK_EQ(s.seen[other].calls, 0);           /* the new file is empty */
    CHECK_EQ(write(s.replacement_writer, "y", 1), 1);
    CHECK(t_run_until(&loop, &s.seen[other].calls, EVL_SEC(2)));
    CHECK_EQ(s.seen[other].all, EVL_READ);
    CHECK_EQ(read(s.read_end[other], &c, 1), 1);
    CHECK_EQ(c, 'y');
    evl_deinit(&loop);
}

/* ---- Two descriptors, one open file ------------------------------------------------------------ */

static void duplicated_descriptor_keeps_its_own_watcher_when_the_other_is_stopped_and_closed(void) {
    evl_loop loop;
    evl_io a, b;
    t_seen sa, sb;
    int fds[2], copy;
    char c;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    copy = dup(fds[0]);
    CHECK(copy >= 0);
    watch(&loop, &a, &sa, t_record_io, fds[0], EVL_READ);
    watch(&loop, &b, &sb, t_record_io, copy, EVL_READ);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK(t_run_until(&loop, &sb.calls, EVL_SEC(2)));
    CHECK(t_run_until(&loop, &sa.calls, EVL_SEC(2)));   /* both hear the one file */
    CHECK_EQ(read(copy, &c, 1), 1);
    evl_io_stop(&loop, &a);
    close(fds[0]);                              /* the file stays open through the copy */
    sa.calls = sb.calls = 0;
    CHECK_EQ(write(fds[1], "y", 1), 1);
    CHECK(t_run_until(&loop, &sb.calls, EVL_SEC(2)));
    CHECK_EQ(sa.calls, 0);                      /* stopped before the close: never called again */
    CHECK_EQ(read(copy, &c, 1), 1);
    CHECK_EQ(c, 'y');
    evl_io_stop(&loop, &b);
    close(copy);
    close(fds[1]);
    evl_deinit(&loop);
}

/* One watcher per descriptor: a second descriptor of the same socket gets the other direction. */
static void one_socket_read_and_written_through_two_descriptors(void) {
    evl_loop loop;
    evl_io reader, writer;
    t_seen sr, sw;
    int fds[2], copy;
    char c;
    CHECK_EQ(evl_init(&loop), 0);
    t_socketpair(SOCK_STREAM, fds);
    copy = dup(fds[0]);
    CHECK(copy >= 0);
    watch(&loop, &reader, &sr, t_record_io, fds[0], EVL_READ);
    watch(&loop, &writer, &sw, t_record_io, copy, EVL_WRITE);
    CHECK(t_run_until(&loop, &sw.calls, EVL_SEC(2)));
    CHECK_EQ(sr.calls, 0);
    CHECK_EQ(sw.all, EVL_WRITE);
    CHECK_EQ(evl_io_set(&loop, &writer, 0), 0); /* quiet now: only the reader can be called */
    sw.calls = 0;
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK(t_run_until(&loop, &sr.calls, EVL_SEC(2)));
    CHECK_EQ(sr.all, EVL_READ);
    CHECK_EQ(sw.calls, 0);
    CHECK_EQ(read(copy, &c, 1), 1);             /* read through the other descriptor */
    sr.calls = 0;
    CHECK_EQ(evl_run(&loop, 0), 2);
    CHECK_EQ(sr.calls, 0);                      /* drained for both */
    evl_deinit(&loop);
    close(copy);
    close(fds[0]);
    close(fds[1]);
}

/* ---- Inherited across fork --------------------------------------------------------------------- */

/* The child gives up the inherited loop, watches the inherited descriptor with a loop of its own,
   reads one byte through it, and exits. */
static int child_reads_the_inherited_descriptor(evl_loop *inherited, int fd) {
    evl_loop own;
    evl_io w;
    t_seen seen;
    char c;
    int slices = 0;
    evl_deinit(inherited);
    if (evl_init(&own) < 0) return 10;
    memset(&seen, 0, sizeof seen);
    evl_io_init(&w, t_record_io, fd, EVL_READ);
    w.data = &seen;
    if (evl_io_start(&own, &w) < 0) return 11;
    while (!seen.calls && slices++ < 500)
        if (evl_run(&own, EVL_MS(10)) < 0) return 12;
    if (read(fd, &c, 1) != 1 || c != 'c') return 13;
    evl_io_stop(&own, &w);
    close(fd);
    evl_deinit(&own);
    return 0;
}

static void descriptor_inherited_by_a_child_serves_it_and_stays_watched_in_the_parent(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2], status;
    pid_t pid;
    char c;
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    watch(&loop, &w, &seen, t_record_io, fds[0], EVL_READ);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(child_reads_the_inherited_descriptor(&loop, fds[0]));
    CHECK_EQ(write(fds[1], "c", 1), 1);         /* the child takes this one */
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    seen.calls = 0;
    CHECK_EQ(evl_run(&loop, 0), 1);
    CHECK_EQ(seen.calls, 0);                    /* the child read it: nothing left here */
    CHECK_EQ(write(fds[1], "p", 1), 1);         /* the child's stop and close left ours alone */
    CHECK(t_run_until(&loop, &seen.calls, EVL_SEC(2)));
    CHECK_EQ(read(fds[0], &c, 1), 1);
    CHECK_EQ(c, 'p');
    evl_deinit(&loop);
    close(fds[0]);
    close(fds[1]);
}

/* ---- Stuck in an error or hang-up state --------------------------------------------------------- */

/* Level-triggered: the condition is reported at every pass, whatever the interest, until the
   watcher stops; after the stop the loop has nothing to do and says so. */
static void expect_reported_at_every_pass_until_stopped(evl_loop *loop, evl_io *w, t_seen *seen, unsigned bit) {
    int i;
    CHECK(t_run_until(loop, &seen->calls, EVL_SEC(2)));
    seen->calls = 0;
    for (i = 0; i < 10; i++) CHECK_EQ(evl_run(loop, 0), 1);
    CHECK_EQ(seen->calls, 10);
    CHECK(seen->all & bit);
    if (T_HUP_WITHOUT_INTEREST) {
        CHECK_EQ(evl_io_set(loop, w, 0), 0);    /* no interest: still reported */
        seen->calls = 0;
        CHECK_EQ(evl_run(loop, 0), 1);
        CHECK_EQ(seen->calls, 1);
    }
    evl_io_stop(loop, w);
    seen->calls = 0;
    CHECK_EQ(evl_run(loop, EVL_MS(10)), 0);
    CHECK_EQ(seen->calls, 0);
}

/* A pipe whose other end is closed: its end `watched` (0 read, 1 write) reports `bit` until stopped. */
static void expect_pipe_end_stuck(int watched, unsigned events, unsigned bit) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    CHECK_EQ(evl_init(&loop), 0);
    t_pipe(fds);
    close(fds[!watched]);
    watch(&loop, &w, &seen, t_record_io, fds[watched], events);
    expect_reported_at_every_pass_until_stopped(&loop, &w, &seen, bit);
    close(fds[watched]);
    evl_deinit(&loop);
}

/* kqueue tells a writer of its reader's end with EV_EOF, which is EVL_HUP there (a reduction the
   README names); epoll and poll say EVL_ERROR. */
static void writer_whose_reader_closed_is_reported_in_error_until_stopped(void) {
    expect_pipe_end_stuck(1, EVL_WRITE, T_KQUEUE ? EVL_HUP : EVL_ERROR);
}

static void reader_whose_writer_closed_is_reported_hung_up_until_stopped(void) {
    expect_pipe_end_stuck(0, EVL_READ, EVL_HUP);
}

/* A connection reset by its peer (RST from a zero linger close) is in error and hung up. */
static void reset_connection_is_reported_until_stopped(void) {
    evl_loop loop;
    evl_io w;
    t_seen seen;
    int fds[2];
    struct linger hard = {1, 0};
    CHECK_EQ(evl_init(&loop), 0);
    t_tcp_pair(fds);
    CHECK(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
    close(fds[1]);
    watch(&loop, &w, &seen, t_record_io, fds[0], EVL_READ);
    expect_reported_at_every_pass_until_stopped(&loop, &w, &seen, EVL_HUP);
    close(fds[0]);
    evl_deinit(&loop);
}

const t_case fdlife_tests[] = {
    T(descriptor_stopped_and_closed_in_its_own_callback_frees_its_number),
    T(descriptor_closed_in_its_own_callback_without_a_stop_goes_quiet),
    T(stop_close_and_reuse_of_a_number_in_one_batch_delivers_no_stale_event),
    T(duplicated_descriptor_keeps_its_own_watcher_when_the_other_is_stopped_and_closed),
    T(one_socket_read_and_written_through_two_descriptors),
    T(descriptor_inherited_by_a_child_serves_it_and_stays_watched_in_the_parent),
    T(writer_whose_reader_closed_is_reported_in_error_until_stopped),
    T(reader_whose_writer_closed_is_reported_hung_up_until_stopped),
    T(reset_connection_is_reported_until_stopped),
    T_END,
};
