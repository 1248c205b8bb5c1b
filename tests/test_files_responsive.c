/* File operations keep the loop running: while an operation waits, timers fire and other fibers
   run; fibers reading a file have their reads in flight together instead of one after another.
   These are the behaviours the feature exists for, checked by order of events, never by time: how
   late a timer gets under disk load is measured in bench/ (files_evloop), not asserted here.
   The tests are part of the "files" suite and, like tests/test_files.c, run on the engine the
   environment variable EVL_TEST_FILE_ENGINE asks for ("workers" starts worker threads), or on
   whatever the machine offers; the reads that wait for data are skipped on the inline engine,
   which blocks the loop by design. */
#define T_FILE_DESCRIPTORS 1                    /* on Windows: read, write, close and pipe on files */
#include "t.h"

#if EVLOOP_HAS_FILE_OPS

#include <sys/stat.h>

/* A new file that is gone once closed (for the fibers' tests). */
#if EVLOOP_HAS_FIBERS && defined(_WIN32)
static int temp_file(void) {
    char dir[MAX_PATH], path[MAX_PATH + 64];
    if (!GetTempPathA(sizeof dir, dir)) return -1;
    snprintf(path, sizeof path, "%sevl-responsive-%lu", dir, (unsigned long)GetCurrentProcessId());
    return open(path, O_RDWR | O_CREAT | O_TRUNC | O_BINARY | O_TEMPORARY, 0600);
}
#elif EVLOOP_HAS_FIBERS
static int temp_file(void) {
    char path[] = "/tmp/evl-files-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}
#endif

static evl_worker workers[2];

/* A loop on the engine the run asks for (see tests/test_files.c). */
static void init_on_engine(evl_loop *loop) {
    const char *want = getenv("EVL_TEST_FILE_ENGINE");
    CHECK_EQ(evl_init(loop), 0);
    if (want && !strcmp(want, "workers")) CHECK_EQ(evl_workers_start(loop, workers, 2), 0);
    if (want && *want && strcmp(evl_op_engine(loop), want) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "engine %s, the run asked for %s", evl_op_engine(loop), want);
        t_fail(__FILE__, __LINE__, "evl_op_engine(loop) is the engine asked for", msg);
    }
}

static void finish(evl_loop *loop) {
    evl_workers_stop(loop);
    evl_deinit(loop);
}

/* A blocking pipe: an operation on it waits until the test writes. */
static void blocking_pipe(int fds[2]) { CHECK_EQ(pipe(fds), 0); }

static void skip_if_inline(evl_loop *loop) {
    if (strcmp(evl_op_engine(loop), "inline") == 0) t_skip("the inline engine blocks the loop by design");
}

/* ---- an operation that waits does not stop timers ---------------------------------------------- */

static int pipe_w, ticks, read_done;
static ssize_t read_result;
static evl_op read_op;

static void tick_feeds_the_pipe_at_five(evl_loop *loop, evl_timer *t) {
    CHECK(!read_done);                          /* nothing was written yet: the read still waits */
    CHECK(evl_op_active(&read_op));
    if (++ticks == 5) {
        CHECK_EQ(write(pipe_w, "x", 1), 1);
        evl_timer_stop(loop, t);
    }
}

static void note_read(evl_loop *loop, evl_op *op, ssize_t result) {
    (void)loop;
    (void)op;
    read_result = result;
    read_done = 1;
}

static void timer_fires_while_a_read_waits_for_data(void) {
    evl_loop loop;
    evl_timer tick;
    char buf[4] = {0};
    int fds[2];
    init_on_engine(&loop);
    blocking_pipe(fds);
    pipe_w = fds[1];
    evl_op_init(&read_op, note_read);
    CHECK_EQ(evl_op_read(&loop, &read_op, fds[0], buf, sizeof buf, EVL_OP_CURRENT), 0);
    skip_if_inline(&loop);
    evl_timer_init(&tick, tick_feeds_the_pipe_at_five);
    evl_timer_start(&loop, &tick, EVL_MS(1), EVL_MS(1));
    CHECK(t_run_until(&loop, &read_done, EVL_SEC(10)));
    CHECK_EQ(ticks, 5);                         /* all five ran before the read could complete */
    CHECK_EQ(read_result, 1);
    CHECK_EQ(buf[0], 'x');
    close(fds[0]);
    close(fds[1]);
    finish(&loop);
}

/* ---- a fiber waiting in evl_pread lets other fibers run ---------------------------------------- */

#if EVLOOP_HAS_FIBERS

static int sleeper_rounds, reader_saw_rounds;
static ssize_t reader_got;

static void read_one_byte(void *arg) {
    char c = 0;
    reader_got = evl_pread((int)(intptr_t)arg, &c, 1, EVL_OP_CURRENT, EVL_SEC(10));
    reader_saw_rounds = sleeper_rounds;
    if (reader_got == 1 && c != 'y') reader_got = -EPROTO;
}

static void sleep_five_times_then_write(void *arg) {
    while (sleeper_rounds < 5) {
        CHECK_EQ(evl_sleep(EVL_MS(1)), 0);
        sleeper_rounds++;
    }
    CHECK_EQ(write((int)(intptr_t)arg, "y", 1), 1);
}

static void fiber_waiting_in_evl_pread_lets_another_fiber_run(void) {
    evl_loop loop;
    evl_fiber reader, sleeper;
    int fds[2];
    init_on_engine(&loop);
    skip_if_inline(&loop);
    blocking_pipe(fds);
    CHECK_EQ(evl_fiber_start(&loop, &reader, NULL, 0, read_one_byte, (void *)(intptr_t)fds[0]), 0);
    CHECK_EQ(evl_fiber_start(&loop, &sleeper, NULL, 0, sleep_five_times_then_write, (void *)(intptr_t)fds[1]), 0);
    CHECK(evl_run(&loop, EVL_SEC(10)) >= 0);
    CHECK(evl_fiber_done(&reader) && evl_fiber_done(&sleeper));
    CHECK_EQ(reader_got, 1);
    CHECK_EQ(reader_saw_rounds, 5);             /* the sleeper ran all its rounds meanwhile */
    close(fds[0]);
    close(fds[1]);
    finish(&loop);
}

/* ---- four fibers reading a file: their reads are in flight together ----------------------------- */

#define BLOCK 4096
#define FILE_BLOCKS 256                         /* 1 MiB */
#define READS_PER_FIBER 64

static int file_fd, in_flight, most_in_flight, reads_checked;

/* Block b holds the byte (b * 7 + i) & 0xff at position i: every read can be checked. */
static unsigned char expected_byte(int block, int i) { return (unsigned char)((block * 7 + i) & 0xff); }

static void read_random_blocks(void *arg) {
    static unsigned char bufs[4][BLOCK];
    unsigned char *buf = bufs[(intptr_t)arg];
    unsigned seed = (unsigned)(intptr_t)arg * 2654435761u + 1;
    int r, i;
    for (r = 0; r < READS_PER_FIBER; r++) {
        int block;
        ssize_t n;
        seed = seed * 1103515245u + 12345u;
        block = (int)((seed >> 8) % FILE_BLOCKS);
        if (++in_flight > most_in_flight) most_in_flight = in_flight;
        n = evl_pread(file_fd, buf, BLOCK, (int64_t)block * BLOCK, EVL_SEC(10));
        in_flight--;
        CHECK_EQ(n, BLOCK);
        for (i = 0; i < BLOCK; i++) CHECK_EQ(buf[i], expected_byte(block, i));
        reads_checked++;
    }
}

static void four_fibers_reading_a_file_have_their_reads_in_flight_together(void) {
    static unsigned char block[BLOCK];
    evl_loop loop;
    evl_fiber readers[4];
    int b, i;
    init_on_engine(&loop);
    file_fd = temp_file();
    CHECK(file_fd >= 0);
    for (b = 0; b < FILE_BLOCKS; b++) {
        for (i = 0; i < BLOCK; i++) block[i] = expected_byte(b, i);
        CHECK_EQ(write(file_fd, block, BLOCK), BLOCK);
    }
    for (i = 0; i < 4; i++)
        CHECK_EQ(evl_fiber_start(&loop, &readers[i], NULL, 0, read_random_blocks, (void *)(intptr_t)i), 0);
    CHECK(evl_run(&loop, EVL_SEC(30)) >= 0);
    CHECK_EQ(reads_checked, 4 * READS_PER_FIBER);
    /* Each fiber waits in evl_pread and the next one starts its read meanwhile; a call that blocked
       the loop would have returned before the next fiber ran, leaving one read in flight. */
    CHECK_EQ(most_in_flight, 4);
    close(file_fd);
    finish(&loop);
}

#endif /* EVLOOP_HAS_FIBERS */

const t_case files_responsive_tests[] = {
    T(timer_fires_while_a_read_waits_for_data),
#if EVLOOP_HAS_FIBERS
    T(fiber_waiting_in_evl_pread_lets_another_fiber_run),
    T(four_fibers_reading_a_file_have_their_reads_in_flight_together),
#endif
    T_END,
};

#else
static void file_operations_are_in_this_build(void) { t_skip("file operations are left out of this build"); }

const t_case files_responsive_tests[] = {
    T(file_operations_are_in_this_build),
    T_END,
};
#endif
