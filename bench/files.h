/* files.h - the "files" benchmark, shared by files_evloop.c and files_libuv.c.
 *
 *   files_X read FILE DEPTH MS     random 4 KiB reads of FILE, DEPTH in flight, for MS ms
 *   files_X idle MS                no reads: the 1 ms timer alone, for its idle lateness
 *   files_evloop fibers FILE N MS  N fibers, each reading one block at a time with evl_pread
 *                                  (FILES_HAVE_FIBERS)
 *   files_evloop blocking FILE N MS   N callbacks, each reading one block with a blocking pread()
 *                                  and re-armed for the next iteration
 *
 * Every read is 4 KiB at a pseudo-random 4 KiB-aligned offset (the same sequence in every program).
 * Each completion starts the next read in its slot, so exactly DEPTH reads are in flight until MS ms
 * have passed; the reads that complete after that are checked but not counted.  Meanwhile a 1 ms
 * repeating timer runs, and each tick's lateness is the time its callback ran minus the deadline
 * the library itself had scheduled for it (the library file knows how to read that deadline).
 *
 * FILE is made by run.py: every 4 KiB block starts with its own block number (8 bytes, little
 * endian), so each read is checked for its length and for being the block asked for.  It is opened
 * with O_DIRECT, so that the disk is measured and not the page cache; where the file system refuses
 * O_DIRECT (EINVAL) it is opened buffered, and the program says so (INFO direct 0).
 *
 * Reports iops, lat_p50_us, lat_p99_us (from the call that starts a read to its completion), and
 * late_p50_us, late_p99_us, late_max_us, ticks for the timer; INFO engine: how the reads were done.
 */
#ifndef FILES_H
#define FILES_H

#include "bench.h"

#include <sys/stat.h>
#include <sys/types.h>

#define FILES_BLOCK 4096u
#define FILES_TICK_NS 1000000u /* the timer's period: 1 ms */

/* Hooks every library file defines. */
static const char *lib_name(void);
static void lib_init(size_t slots);
static const char *lib_engine(void);                               /* after the reads: what ran them */
static void lib_read(size_t slot, int fd, void *buf, uint64_t offset); /* -> files_read_done */
static void lib_tick_start(void);   /* 1 ms repeating timer whose callback calls files_tick(due) */
static void lib_tick_stop(void);
static void lib_run(void);          /* until nothing is left to do */

static int files_fd = -1;
static int files_direct;
static uint64_t files_blocks;       /* blocks in the file */
static unsigned char **files_buf;   /* one aligned block per slot */
static uint64_t *files_offset;      /* the offset each slot's read is for */
static uint64_t *files_started;     /* when it was started */
static size_t files_active;         /* slots still reading */
static uint64_t files_t0, files_t_end, files_t_last;
static int files_timer_running;

/* Growing sample arrays: read latencies and tick lateness, in microseconds. */
typedef struct {
    double *v;
    size_t n, cap;
} files_samples;

static files_samples files_lat, files_late;

static void files_add(files_samples *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        BENCH_CHECK(s->v != NULL, "out of memory");
    }
    s->v[s->n++] = x;
}

static void files_open(const char *path, size_t slots)
{
    struct stat st;
    size_t i;
    files_fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    files_direct = files_fd >= 0;
    if (files_fd < 0 && errno == EINVAL) {
        fprintf(stderr, "note: the file system refuses O_DIRECT for %s: reading through the page cache\n",
                path);
        files_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    BENCH_CHECK(files_fd >= 0, "open %s: %s", path, strerror(errno));
    BENCH_CHECK(fstat(files_fd, &st) == 0, "fstat: %s", strerror(errno));
    files_blocks = (uint64_t)st.st_size / FILES_BLOCK;
    BENCH_CHECK(files_blocks >= 1024, "%s is too small (%lld bytes)", path, (long long)st.st_size);
    files_buf = bench_calloc(slots, sizeof *files_buf);
    files_offset = bench_calloc(slots, sizeof *files_offset);
    files_started = bench_calloc(slots, sizeof *files_started);
    for (i = 0; i < slots; i++)
        BENCH_CHECK(posix_memalign((void **)&files_buf[i], FILES_BLOCK, FILES_BLOCK) == 0, "out of memory");
    bench_info("direct", files_direct ? "1" : "0");
}

/* Picks slot's next block and stamps the start; returns the offset to read. */
static uint64_t files_begin(size_t slot)
{
    uint64_t offset = bench_rand_between(0, files_blocks - 1) * FILES_BLOCK;
    files_offset[slot] = offset;
    memset(files_buf[slot], 0xee, 8); /* a read that reports success but fills nothing must fail */
    files_started[slot] = bench_now_ns();
    return offset;
}

static uint64_t files_block_number(const unsigned char *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Checks and counts slot's finished read; returns 1 if the slot should start another read.  When
 * the last slot stops, the timer stops too, and the loop runs out of work. */
static int files_end(size_t slot, long long result)
{
    uint64_t now = bench_now_ns();
    BENCH_CHECK(result == (long long)FILES_BLOCK, "read at %llu returned %lld",
                (unsigned long long)files_offset[slot], result);
    BENCH_CHECK(files_block_number(files_buf[slot]) == files_offset[slot] / FILES_BLOCK,
                "read at %llu returned block %llu", (unsigned long long)files_offset[slot],
                (unsigned long long)files_block_number(files_buf[slot]));
    if (now < files_t_end) {
        files_add(&files_lat, (double)(now - files_started[slot]) / 1e3);
        files_t_last = now;
        return 1;
    }
    if (--files_active == 0 && files_timer_running) {
        files_timer_running = 0;
        lib_tick_stop();
    }
    return 0;
}

/* What a library's completion callback calls. */
static inline void files_read_done(size_t slot, long long result)
{
    if (files_end(slot, result))
        lib_read(slot, files_fd, files_buf[slot], files_begin(slot));
}

/* What the timer callback calls, with the deadline (bench_now_ns clock) the tick was due at. */
static inline void files_tick(uint64_t due)
{
    uint64_t now = bench_now_ns();
    files_add(&files_late, ((double)now - (double)due) / 1e3);
    if (files_active == 0 && now >= files_t_end && files_timer_running) {
        files_timer_running = 0;
        lib_tick_stop();
    }
}

static void files_begin_run(size_t slots, long ms)
{
    files_active = slots;
    lib_tick_start();
    files_timer_running = 1;
    files_t0 = bench_now_ns();
    files_t_end = files_t0 + (uint64_t)ms * 1000000u;
}

#ifdef FILES_HAVE_FIBERS
static void lib_fibers_start(size_t n); /* N fibers, each: files_begin, evl_pread, files_end */
static void lib_blocking_start(size_t n); /* N callbacks, each: files_begin, pread, files_end */
#endif

static void files_report(void)
{
    bench_info("engine", lib_engine());
    if (files_lat.n) {
        bench_result("reads", (double)files_lat.n);
        bench_result("iops", (double)files_lat.n / ((double)(files_t_last - files_t0) / 1e9));
        bench_result("lat_p50_us", bench_percentile(files_lat.v, files_lat.n, 50));
        bench_result("lat_p99_us", bench_percentile(files_lat.v, files_lat.n, 99));
    }
    BENCH_CHECK(files_late.n > 0, "the timer never fired");
    bench_result("ticks", (double)files_late.n);
    bench_result("late_p50_us", bench_percentile(files_late.v, files_late.n, 50));
    bench_result("late_p99_us", bench_percentile(files_late.v, files_late.n, 99));
    bench_result("late_max_us", files_late.v[files_late.n - 1]);
}

static int files_usage(const char *argv0)
{
    fprintf(stderr, "usage: %s read FILE DEPTH MS | idle MS"
#ifdef FILES_HAVE_FIBERS
                    " | fibers FILE N MS | blocking FILE N MS"
#endif
                    "\n",
            argv0);
    return 64;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    size_t slots;
    long ms;

    if (strcmp(mode, "idle") == 0 && argc == 3) {
        ms = atol(argv[2]);
        BENCH_CHECK(ms > 0, "bad parameters");
        lib_init(0);
        bench_info("library", lib_name());
        files_begin_run(0, ms);
        lib_run();
        BENCH_CHECK(!files_timer_running, "the loop returned with the timer running");
        files_report();
        return 0;
    }
    if (argc != 5)
        return files_usage(argv[0]);
    slots = (size_t)atol(argv[3]);
    ms = atol(argv[4]);
    BENCH_CHECK(slots >= 1 && slots <= 1024 && ms > 0, "bad parameters");
    files_open(argv[2], slots);
    lib_init(slots);
    bench_info("library", lib_name());
    if (strcmp(mode, "read") == 0) {
        size_t i;
        files_begin_run(slots, ms);
        for (i = 0; i < slots; i++)
            lib_read(i, files_fd, files_buf[i], files_begin(i));
#ifdef FILES_HAVE_FIBERS
    } else if (strcmp(mode, "fibers") == 0) {
        files_begin_run(slots, ms);
        lib_fibers_start(slots);
    } else if (strcmp(mode, "blocking") == 0) {
        files_begin_run(slots, ms);
        lib_blocking_start(slots);
#endif
    } else {
        return files_usage(argv[0]);
    }
    lib_run();
    BENCH_CHECK(files_active == 0 && !files_timer_running, "the loop returned with %zu slots reading",
                files_active);
    files_report();
    return 0;
}

#endif /* FILES_H */
