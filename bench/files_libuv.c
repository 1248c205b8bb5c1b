/* files benchmark, libuv 1.x. See files.h.
 *
 * Reads are uv_fs_read with a callback: libuv runs them on its thread pool (UV_THREADPOOL_SIZE,
 * default 4 threads) and completes them on the loop.  The timer is a uv_timer_t with a 1 ms repeat;
 * libuv re-arms a repeating timer from the loop time when it fires, so each tick's deadline is read
 * from libuv itself (uv_now + uv_timer_get_due_in, in whole milliseconds of the same monotonic
 * clock) right after the previous tick. */
#include "files.h"

#include <uv.h>

static uv_loop_t loop;
static uv_fs_t *reqs;
static uv_timer_t tick;
static uint64_t tick_due;

static const char *lib_name(void)
{
    static char name[64];
    snprintf(name, sizeof name, "libuv %s", uv_version_string());
    return name;
}

static void lib_init(size_t slots)
{
    BENCH_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init failed");
    reqs = bench_calloc(slots ? slots : 1, sizeof *reqs);
    BENCH_CHECK(uv_timer_init(&loop, &tick) == 0, "uv_timer_init failed");
}

static const char *lib_engine(void)
{
    static char name[64];
    const char *threads = getenv("UV_THREADPOOL_SIZE");
    snprintf(name, sizeof name, "thread pool (%s threads)", threads ? threads : "4");
    return name;
}

static void read_cb(uv_fs_t *req)
{
    long long result = (long long)req->result;
    uv_fs_req_cleanup(req);
    files_read_done((size_t)(req - reqs), result);
}

static void lib_read(size_t slot, int fd, void *buf, uint64_t offset)
{
    uv_buf_t b = uv_buf_init(buf, FILES_BLOCK);
    int rc = uv_fs_read(&loop, &reqs[slot], fd, &b, 1, (int64_t)offset, read_cb);
    BENCH_CHECK(rc == 0, "uv_fs_read: %s", uv_strerror(rc));
}

static uint64_t next_due(void)
{
    return (uv_now(&loop) + uv_timer_get_due_in(&tick)) * 1000000u;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
    files_tick(tick_due);
    tick_due = next_due();
}

static void lib_tick_start(void)
{
    uv_update_time(&loop);
    BENCH_CHECK(uv_timer_start(&tick, tick_cb, 1, 1) == 0, "uv_timer_start failed");
    tick_due = next_due();
}

static void lib_tick_stop(void)
{
    uv_timer_stop(&tick);
}

static void lib_run(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
}
