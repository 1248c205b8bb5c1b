/* files benchmark, evloop. See files.h.
 *
 * Reads are evl_op_read with a callback.  Built twice: files_evloop reads on io_uring (the ring
 * evloop sets up at the first operation), and files_evloop_workers, built with EVLOOP_NO_IO_URING,
 * on FILES_WORKERS threads started with evl_workers_start (as many as libuv's default thread
 * pool).  The program reports the engine that really ran the reads (evl_op_engine), so a machine
 * where the kernel refuses io_uring cannot pass other figures off as io_uring ones.
 *
 * The timer is an evl_timer with a 1 ms repeat, which keeps its phase; the deadline of each tick is
 * read from evloop after the previous one (evl_now + evl_timer_remaining: the same monotonic clock
 * as bench_now_ns).
 *
 * Two more modes compare the two ways a program can read a file from the loop: "fibers" (N fibers,
 * each calling evl_pread in a loop) and "blocking" (N timer callbacks, each doing one blocking
 * pread() and re-armed to run again in the next iteration: what a program without file
 * operations does). */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#define FILES_HAVE_FIBERS
#include "files.h"

#define FILES_WORKERS 4
#define FILES_FIBER_STACK (64 * 1024)

static evl_loop loop;
static evl_op *ops;
static evl_timer tick;
static evl_time tick_due;
#ifdef EVLOOP_NO_IO_URING
static evl_worker workers[FILES_WORKERS];
#endif
static const char *engine_used = "none";

static const char *lib_name(void)
{
    static char name[64];
    snprintf(name, sizeof name, "evloop (%s)", evl_backend_name());
    return name;
}

static void read_cb(evl_loop *l, evl_op *op, ssize_t result)
{
    (void)l;
    files_read_done((size_t)(op - ops), (long long)result);
}

static void tick_cb(evl_loop *l, evl_timer *t)
{
    files_tick(tick_due);
    tick_due = evl_now(l) + evl_timer_remaining(l, t);
}

static void lib_init(size_t slots)
{
    size_t i;
    BENCH_CHECK(evl_init(&loop) == 0, "evl_init failed");
    ops = bench_calloc(slots ? slots : 1, sizeof *ops);
    for (i = 0; i < slots; i++)
        evl_op_init(&ops[i], read_cb);
    evl_timer_init(&tick, tick_cb);
#ifdef EVLOOP_NO_IO_URING
    {
        int rc = evl_workers_start(&loop, workers, FILES_WORKERS);
        BENCH_CHECK(rc == 0, "evl_workers_start: %s", strerror(-rc));
    }
#endif
}

static const char *lib_engine(void)
{
    return engine_used;
}

static void lib_read(size_t slot, int fd, void *buf, uint64_t offset)
{
    int rc;
    engine_used = evl_op_engine(&loop);
    rc = evl_op_read(&loop, &ops[slot], fd, buf, FILES_BLOCK, (int64_t)offset);
    BENCH_CHECK(rc == 0, "evl_op_read: %s", strerror(-rc));
}

static void lib_tick_start(void)
{
    evl_time now = evl_now_update(&loop);
    tick_due = now + FILES_TICK_NS;
    evl_timer_start_at(&loop, &tick, tick_due, FILES_TICK_NS);
}

static void lib_tick_stop(void)
{
    evl_timer_stop(&loop, &tick);
}

static void lib_run(void)
{
    int rc = evl_run(&loop, EVL_FOREVER);
    BENCH_CHECK(rc >= 0, "evl_run: %d", rc);
#ifdef EVLOOP_NO_IO_URING
    evl_workers_stop(&loop);
#endif
    evl_deinit(&loop);
}

/* ---- fibers: N of them, each reading one block at a time with evl_pread ---- */

static void reader(void *arg)
{
    size_t slot = (size_t)(uintptr_t)arg;
    do {
        uint64_t offset = files_begin(slot);
        engine_used = evl_op_engine(&loop);
        if (!files_end(slot, (long long)evl_pread(files_fd, files_buf[slot], FILES_BLOCK, (int64_t)offset,
                                                   EVL_FOREVER)))
            break;
    } while (1);
}

static void lib_fibers_start(size_t n)
{
    evl_fiber *fibers = bench_calloc(n, sizeof *fibers);
    size_t i;
    for (i = 0; i < n; i++) {
        int rc = evl_fiber_start(&loop, &fibers[i], NULL, FILES_FIBER_STACK, reader, (void *)(uintptr_t)i);
        BENCH_CHECK(rc == 0, "evl_fiber_start: %s", strerror(-rc));
    }
}

/* ---- blocking: N timer callbacks, each one pread() per iteration ---- */

static evl_timer *blockers;

static void blocking_cb(evl_loop *l, evl_timer *t)
{
    size_t slot = (size_t)(t - blockers);
    uint64_t offset = files_begin(slot);
    ssize_t n = pread(files_fd, files_buf[slot], FILES_BLOCK, (off_t)offset);
    if (files_end(slot, n < 0 ? -(long long)errno : (long long)n))
        evl_timer_start(l, t, 0, 0);
}

static void lib_blocking_start(size_t n)
{
    size_t i;
    blockers = bench_calloc(n, sizeof *blockers);
    engine_used = "blocking pread() in callbacks";
    for (i = 0; i < n; i++) {
        evl_timer_init(&blockers[i], blocking_cb);
        evl_timer_start(&loop, &blockers[i], 0, 0);
    }
}
