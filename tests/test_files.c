/* File operations (evl_op_*) on real files in a temporary directory, on whichever engine this run
   gives them: io_uring where the kernel has it, the worker threads, or inline.  The environment
   variable EVL_TEST_FILE_ENGINE ("io_uring", "workers" or "inline") says which engine the run
   must use: "workers" starts four worker threads in every test, and each test checks that
   evl_op_engine agrees (make check-files runs the suite once per engine, refusing io_uring_setup
   through --nosys for the other two).  Without it, the engine is whatever the machine offers.
   On Windows (the IOCP backend, under wine) the descriptors are the C library's, pipes are _pipe's,
   and what Windows cannot do is compiled out: directory descriptors, O_DIRECT, POSIX modes. */
#define T_FILE_DESCRIPTORS 1                    /* on Windows: read, write, close and pipe on files */
#include "t.h"

#if EVLOOP_HAS_FILE_OPS

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#ifdef _WIN32
#include <direct.h>
#define O_CLOEXEC O_NOINHERIT
#define O_FILE O_BINARY                         /* the tests' own reads and writes: no newline translation */
#define NULL_DEVICE "NUL"
typedef DWORD thread_id;
static thread_id this_thread(void) { return GetCurrentThreadId(); }
static int same_thread(thread_id a, thread_id b) { return a == b; }

/* Windows has no pread and pwrite: the tests' own checks go through the file position. */
static ssize_t pread(int fd, void *buf, size_t len, off_t at) {
    if (lseek(fd, at, SEEK_SET) != at) return -1;
    return read(fd, buf, (unsigned)len);
}
static ssize_t pwrite(int fd, const void *buf, size_t len, off_t at) {
    if (lseek(fd, at, SEEK_SET) != at) return -1;
    return write(fd, buf, (unsigned)len);
}

/* Named after the process (a test that crashed may leave one behind: it is emptied and reused). */
static void remove_dir(void);
static char *make_temp_dir(char *path, size_t size, const char *tmp) {
    char base[MAX_PATH];
    (void)tmp;
    if (!GetTempPathA(sizeof base, base)) return NULL;
    snprintf(path, size, "%sevl-files-%lu", base, (unsigned long)GetCurrentProcessId());
    if (_mkdir(path) == 0) return path;
    if (errno != EEXIST) return NULL;
    remove_dir();                                   /* path is dir_path */
    return _mkdir(path) == 0 ? path : NULL;
}
#else
#include <pthread.h>
#include <sys/uio.h>
#include <sys/wait.h>
#define O_FILE 0
#define NULL_DEVICE "/dev/null"
typedef pthread_t thread_id;
static thread_id this_thread(void) { return pthread_self(); }
static int same_thread(thread_id a, thread_id b) { return pthread_equal(a, b); }

static char *make_temp_dir(char *path, size_t size, const char *tmp) {
    snprintf(path, size, "%s/evl-files-XXXXXX", tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    return mkdtemp(path);
}
#endif

/* ---- Set-up ------------------------------------------------------------------------------------ */

static char dir_path[320];
static evl_worker workers[4];

static const char *wanted_engine(void) {
    const char *e = getenv("EVL_TEST_FILE_ENGINE");
    return e && *e ? e : NULL;
}

static void remove_dir(void) {
    DIR *d = opendir(dir_path);
    struct dirent *e;
    char path[640];
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir_path, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir_path);
}

/* A loop on the engine the run asks for, and a fresh temporary directory (removed at exit). */
static void files_loop(evl_loop *loop) {
    const char *want = wanted_engine();
    CHECK(make_temp_dir(dir_path, sizeof dir_path, getenv("TMPDIR")) != NULL);
    t_at_exit(remove_dir);
    CHECK_EQ(evl_init(loop), 0);
    if (want && !strcmp(want, "workers")) CHECK_EQ(evl_workers_start(loop, workers, 4), 0);
    if (want && strcmp(evl_op_engine(loop), want) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "engine %s, the run asked for %s", evl_op_engine(loop), want);
        t_fail(__FILE__, __LINE__, "evl_op_engine(loop) is the engine asked for", msg);
    }
}

static int on_engine(const evl_loop *loop, const char *name) { return !strcmp(evl_op_engine(loop), name); }

static int make_file(const char *name, int flags) {
    char path[400];
    int fd;
    snprintf(path, sizeof path, "%s/%s", dir_path, name);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_FILE | flags, 0600);
    return fd < 0 ? -errno : fd;
}

/* What a callback saw. */
typedef struct seen_op {
    int calls;
    ssize_t result;
    thread_id thread;
} seen_op;

static void record_op(evl_loop *loop, evl_op *op, ssize_t result) {
    seen_op *s = (seen_op *)op->data;
    (void)loop;
    s->calls++;
    s->result = result;
    s->thread = this_thread();
}

/* Runs the loop until every given record has been called back (evl_run returns once nothing is
   active; a time limit guards against a hang). */
static void run_until_done(evl_loop *loop, seen_op *s, int count) {
    evl_time end = t_clock() + EVL_SEC(t_slow ? 120 : 20);
    int i, pending = 1;
    while (pending && t_clock() < end) {
        CHECK(evl_run(loop, EVL_MS(100)) >= 0);
        for (pending = 0, i = 0; i < count; i++) pending |= s[i].calls == 0;
    }
    CHECK(!pending);
}

/* A small xorshift generator: reproducible random offsets, lengths and contents. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(unsigned char *p, size_t len) {
    size_t i;
    for (i = 0; i < len; i++) p[i] = (unsigned char)rnd();
}

/* ---- Transfers ----------------------------------------------------------------------------------- */

/* 64 MiB (16 MiB under valgrind and qemu) in lanes of 16 KiB; each operation in flight owns a
   lane, so none overlap and the file's final content is known exactly: the shadow copy, checked
   against pread at the end and by every read on the way. */
#define BIG_SIZE ((size_t)(t_slow ? 16 : 64) << 20)
#define LANE ((size_t)16 << 10)
#define IN_FLIGHT 48

typedef struct big_op {
    evl_op op;
    size_t lane, at, len;
    int writing;
    unsigned char buf[8192];
} big_op;

static struct {
    unsigned char *shadow;
    unsigned char *lane_busy;
    int fd, started, finished, failures, total;
    big_op ops[IN_FLIGHT];
} big;

static void big_start(evl_loop *loop, big_op *b);

static void big_done(evl_loop *loop, evl_op *op, ssize_t result) {
    big_op *b = (big_op *)(void *)((char *)op - offsetof(big_op, op));
    size_t expect = b->len;
    big.finished++;
    if (result != (ssize_t)expect)
        big.failures++;
    else if (!b->writing && memcmp(b->buf, big.shadow + b->at, b->len) != 0)
        big.failures++;
    big.lane_busy[b->lane] = 0;
    if (big.started < big.total) big_start(loop, b); /* from the callback: the next one */
}

static void big_start(evl_loop *loop, big_op *b) {
    size_t lanes = BIG_SIZE / LANE;
    do b->lane = (size_t)(rnd() % lanes);
    while (big.lane_busy[b->lane]);
    big.lane_busy[b->lane] = 1;
    b->len = 1 + (size_t)(rnd() % sizeof b->buf);
    b->at = b->lane * LANE + (size_t)(rnd() % (LANE - b->len + 1));
    b->writing = (int)(rnd() & 1);
    evl_op_init(&b->op, big_done);
    if (b->writing) {
        fill_random(b->buf, b->len);
        memcpy(big.shadow + b->at, b->buf, b->len); /* the lane is ours until the callback */
        CHECK_EQ(evl_op_write(loop, &b->op, big.fd, b->buf, b->len, (int64_t)b->at), 0);
    } else {
        CHECK_EQ(evl_op_read(loop, &b->op, big.fd, b->buf, b->len, (int64_t)b->at), 0);
    }
    big.started++;
}

static void files_random_offsets_byte_exact(void) {
    evl_loop loop;
    unsigned char *check;
    size_t done;
    int i;
    files_loop(&loop);
    big.shadow = (unsigned char *)malloc(BIG_SIZE);
    check = (unsigned char *)malloc(BIG_SIZE);
    big.lane_busy = (unsigned char *)calloc(BIG_SIZE / LANE, 1);
    CHECK(big.shadow && check && big.lane_busy);
    fill_random(big.shadow, BIG_SIZE);
    CHECK((big.fd = make_file("big", 0)) >= 0);
    for (done = 0; done < BIG_SIZE;) {
        ssize_t n = pwrite(big.fd, big.shadow + done, BIG_SIZE - done, (off_t)done);
        CHECK(n > 0);
        done += (size_t)n;
    }
    big.total = t_slow ? 1500 : 6000;
    for (i = 0; i < IN_FLIGHT; i++) big_start(&loop, &big.ops[i]);
    CHECK_EQ(evl_run(&loop, EVL_SEC(t_slow ? 200 : 60)), 0);
    CHECK_EQ(big.finished, big.total);
    CHECK_EQ(big.failures, 0);
    for (done = 0; done < BIG_SIZE;) {
        ssize_t n = pread(big.fd, check + done, BIG_SIZE - done, (off_t)done);
        CHECK(n > 0);
        done += (size_t)n;
    }
    CHECK(memcmp(check, big.shadow, BIG_SIZE) == 0);
    evl_deinit(&loop);
    close(big.fd);
    free(check);
    free(big.shadow);
    free(big.lane_busy);
}

static void files_short_read_at_end_of_file(void) {
    evl_loop loop;
    evl_op op[3];
    seen_op s[3];
    char data[100], buf[3][4096];
    int fd, i;
    files_loop(&loop);
    CHECK((fd = make_file("short", 0)) >= 0);
    memset(data, 'x', sizeof data);
    CHECK_EQ(write(fd, data, sizeof data), (ssize_t)sizeof data);
    memset(s, 0, sizeof s);
    for (i = 0; i < 3; i++) {
        evl_op_init(&op[i], record_op);
        op[i].data = &s[i];
    }
    CHECK_EQ(evl_op_read(&loop, &op[0], fd, buf[0], sizeof buf[0], 50), 0);
    CHECK_EQ(evl_op_read(&loop, &op[1], fd, buf[1], sizeof buf[1], 100), 0);
    CHECK_EQ(evl_op_read(&loop, &op[2], fd, buf[2], sizeof buf[2], 1 << 20), 0);
    run_until_done(&loop, s, 3);
    CHECK_EQ(s[0].result, 50);
    CHECK(memcmp(buf[0], data, 50) == 0);
    CHECK_EQ(s[1].result, 0);
    CHECK_EQ(s[2].result, 0);
    evl_deinit(&loop);
    close(fd);
}

/* EVL_OP_CURRENT reads and writes at the descriptor's position and moves it, like read/write. */
static void files_current_position_advances(void) {
    evl_loop loop;
    evl_op op;
    seen_op s;
    char buf[8];
    int fd;
    files_loop(&loop);
    CHECK((fd = make_file("pos", 0)) >= 0);
    evl_op_init(&op, record_op);
    op.data = &s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_write(&loop, &op, fd, "abcdef", 6, EVL_OP_CURRENT), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 6);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 6);
    CHECK_EQ(lseek(fd, 2, SEEK_SET), 2);
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_read(&loop, &op, fd, buf, 3, EVL_OP_CURRENT), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 3);
    CHECK(memcmp(buf, "cde", 3) == 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5);
    evl_deinit(&loop);
    close(fd);
}

static void files_vectored_read_and_write(void) {
    evl_loop loop;
    evl_op op;
    seen_op s;
    char a[3], b[5], c[2], back[10];
    evl_iovec out[3], in[3];                        /* struct iovec on POSIX */
    int fd;
    files_loop(&loop);
    CHECK((fd = make_file("vec", 0)) >= 0);
    evl_op_init(&op, record_op);
    op.data = &s;
    memcpy(a, "one", 3);
    memcpy(b, "three", 5);
    memcpy(c, "xy", 2);
    out[0].iov_base = a, out[0].iov_len = 3;
    out[1].iov_base = b, out[1].iov_len = 5;
    out[2].iov_base = c, out[2].iov_len = 2;
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_writev(&loop, &op, fd, out, 3, 100), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 10);
    CHECK_EQ(pread(fd, back, 10, 100), 10);
    CHECK(memcmp(back, "onethreexy", 10) == 0);
    memset(a, 0, 3), memset(b, 0, 5), memset(c, 0, 2);
    in[0] = out[2], in[1] = out[0], in[2] = out[1]; /* 2 + 3 + 5 bytes in another order */
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_readv(&loop, &op, fd, in, 3, 100), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 10);
    CHECK(memcmp(c, "on", 2) == 0 && memcmp(a, "eth", 3) == 0 && memcmp(b, "reexy", 5) == 0);
    CHECK_EQ(evl_op_readv(&loop, &op, fd, in, -1, 0), -EINVAL);
    evl_deinit(&loop);
    close(fd);
}

/* ---- Open, stat, sync, close ------------------------------------------------------------------------ */

static void files_open_sync_stat_close(void) {
    evl_loop loop;
    evl_op op;
    seen_op s;
    struct stat st;
    char name[400];
    int dirfd, fd;
    files_loop(&loop);
    evl_op_init(&op, record_op);
    op.data = &s;
#if T_POSIX
    CHECK((dirfd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
    snprintf(name, sizeof name, "opened");
#else
    dirfd = AT_FDCWD;                               /* Windows has no directory descriptors */
    snprintf(name, sizeof name, "%s/opened", dir_path);
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_openat(&loop, &op, 0, name, O_RDWR | O_CREAT, 0640), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, -ENOTSUP);
#endif
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_openat(&loop, &op, dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640), 0);
    run_until_done(&loop, &s, 1);
    CHECK(s.result >= 0);
    fd = (int)s.result;
    CHECK_EQ(write(fd, "12345", 5), 5);
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_fsync(&loop, &op, fd), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 0);
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_fdatasync(&loop, &op, fd), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 0);
    memset(&s, 0, sizeof s);
    memset(&st, 0, sizeof st);
    CHECK_EQ(evl_op_fstat(&loop, &op, fd, &st), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 0);
    CHECK_EQ(st.st_size, 5);
#if T_POSIX
    CHECK((st.st_mode & 0777) == 0640);
#else
    CHECK((st.st_mode & S_IFMT) == S_IFREG);       /* no POSIX permission bits there */
#endif
#if EVLOOP_HAS_STATX
    {
        struct statx sx;
        memset(&sx, 0, sizeof sx);
        memset(&s, 0, sizeof s);
        CHECK_EQ(evl_op_statx(&loop, &op, dirfd, "opened", 0, STATX_SIZE | STATX_MODE, &sx), 0);
        run_until_done(&loop, &s, 1);
        CHECK_EQ(s.result, 0);
        CHECK_EQ(sx.stx_size, 5);
        CHECK(S_ISREG(sx.stx_mode));
    }
#endif
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_openat(&loop, &op, dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, -EEXIST);
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_close(&loop, &op, fd), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 0);
#if T_POSIX
    CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
#endif
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_close(&loop, &op, fd), 0);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, -EBADF);
    evl_deinit(&loop);
#if T_POSIX
    close(dirfd);
#endif
}

/* ---- Errors ------------------------------------------------------------------------------------------ */

static void files_errors_come_through_the_callback(void) {
    evl_loop loop;
    evl_op op[4];
    seen_op s[4];
    char buf[64];
    int dirfd, rdonly, i;
    files_loop(&loop);
#if T_POSIX
    CHECK((dirfd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
#else
    {                                               /* no directory descriptors: a write-only file */
        char path[400];
        snprintf(path, sizeof path, "%s/wo", dir_path);
        CHECK((dirfd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >= 0);
    }
#endif
    CHECK((rdonly = make_file("ro", 0)) >= 0);
    close(rdonly);
    {
        char path[400];
        snprintf(path, sizeof path, "%s/ro", dir_path);
        CHECK((rdonly = open(path, O_RDONLY | O_CLOEXEC | O_FILE)) >= 0);
    }
    memset(s, 0, sizeof s);
    memset(buf, 0, sizeof buf);
    for (i = 0; i < 4; i++) {
        evl_op_init(&op[i], record_op);
        op[i].data = &s[i];
    }
    CHECK_EQ(evl_op_read(&loop, &op[0], -1, buf, sizeof buf, 0), 0);
    CHECK_EQ(evl_op_read(&loop, &op[1], dirfd, buf, sizeof buf, 0), 0);
    CHECK_EQ(evl_op_write(&loop, &op[2], rdonly, buf, sizeof buf, 0), 0);
    CHECK_EQ(evl_op_read(&loop, &op[3], rdonly, buf, sizeof buf, -5), -EINVAL); /* refused at the start */
    run_until_done(&loop, s, 3);
    CHECK_EQ(s[0].result, -EBADF);
    CHECK_EQ(s[1].result, T_POSIX ? -EISDIR : -EBADF);
    CHECK_EQ(s[2].result, -EBADF);
    CHECK_EQ(s[3].calls, 0);
    evl_deinit(&loop);
    close(dirfd);
    close(rdonly);
}

/* O_DIRECT wants the offset and length aligned to the device's blocks (and the buffer, to a
   degree that depends on the device). */
static void files_misaligned_direct_io_is_einval(void) {
    evl_loop loop;
    evl_op op;
    seen_op s;
    unsigned char *mem = NULL;
    int fd;
#if !defined(O_DIRECT) || !T_POSIX
    t_skip("no O_DIRECT on this system (macOS has F_NOCACHE, which sets no alignment rule; Windows "
           "has FILE_FLAG_NO_BUFFERING, which its C library cannot ask for)");
    (void)loop, (void)op, (void)s, (void)mem, (void)fd;
#else
    files_loop(&loop);
    fd = make_file("direct", O_DIRECT);
    if (fd == -EINVAL) t_skip("the temporary directory's file system refuses O_DIRECT");
    CHECK(fd >= 0);
    CHECK(posix_memalign((void **)&mem, 4096, 8192 + 1) == 0);
    memset(mem, 7, 8192);
    CHECK_EQ(pwrite(fd, mem, 8192, 0), 8192); /* data, not a hole, which some file systems forgive */
    evl_op_init(&op, record_op);
    op.data = &s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_read(&loop, &op, fd, mem, 4096, 1), 0); /* an offset off the blocks */
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, -EINVAL);
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_read(&loop, &op, fd, mem, 4096, 4096), 0); /* aligned: works */
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 4096);
    evl_deinit(&loop);
    close(fd);
    free(mem);
#endif
}

/* ---- Callbacks ----------------------------------------------------------------------------------------- */

static void files_callback_never_from_the_start_call(void) {
    evl_loop loop;
    evl_op op;
    seen_op s;
    char buf[16];
    int fd;
    files_loop(&loop);
    CHECK((fd = make_file("cb", 0)) >= 0);
    evl_op_init(&op, record_op);
    op.data = &s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_read(&loop, &op, fd, buf, sizeof buf, 0), 0);
    CHECK_EQ(s.calls, 0);
    CHECK_EQ(evl_op_active(&op), 1);
    CHECK_EQ(evl_op_read(&loop, &op, fd, buf, sizeof buf, 0), -EALREADY);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0); /* the operation kept it alive, then not */
    CHECK_EQ(s.calls, 1);
    CHECK_EQ(s.result, 0);
    CHECK_EQ(evl_op_active(&op), 0);
    CHECK(same_thread(s.thread, this_thread()));
    evl_deinit(&loop);
    close(fd);
}

/* A chain: each callback starts the next read of a file copy with the same op. */
static struct {
    int in, out, ops, failed;
    int64_t at;
    char buf[1000];
    int writing;
} chain;

static void chain_step(evl_loop *loop, evl_op *op, ssize_t result) {
    int rc;
    chain.ops++;
    if (result < 0 || (chain.writing && result != 1000)) {
        chain.failed = 1;
        return;
    }
    if (!chain.writing && result == 0) return; /* end of file */
    if (chain.writing) {
        chain.at += 1000;
        rc = evl_op_read(loop, op, chain.in, chain.buf, sizeof chain.buf, chain.at);
    } else {
        rc = evl_op_write(loop, op, chain.out, chain.buf, (size_t)result, chain.at);
    }
    chain.writing = !chain.writing;
    if (rc < 0) chain.failed = 1;
}

static void files_ops_started_from_callbacks(void) {
    evl_loop loop;
    evl_op op;
    unsigned char *data, *back;
    size_t size = 1000 * 200;
    files_loop(&loop);
    data = (unsigned char *)malloc(size);
    back = (unsigned char *)malloc(size);
    CHECK(data && back);
    fill_random(data, size);
    CHECK((chain.in = make_file("chain_in", 0)) >= 0);
    CHECK((chain.out = make_file("chain_out", 0)) >= 0);
    CHECK_EQ(pwrite(chain.in, data, size, 0), (ssize_t)size);
    evl_op_init(&op, chain_step);
    CHECK_EQ(evl_op_read(&loop, &op, chain.in, chain.buf, sizeof chain.buf, 0), 0);
    CHECK_EQ(evl_run(&loop, EVL_SEC(30)), 0);
    CHECK_EQ(chain.failed, 0);
    CHECK_EQ(chain.ops, 2 * 200 + 1);
    CHECK_EQ(pread(chain.out, back, size, 0), (ssize_t)size);
    CHECK(memcmp(back, data, size) == 0);
    evl_deinit(&loop);
    free(data);
    free(back);
}

/* ---- Cancellation ------------------------------------------------------------------------------------- */

/* Not yet submitted (started in this iteration): cancelled for sure. */
static void files_cancel_before_submission(void) {
    evl_loop loop;
    evl_op op[2];
    seen_op s[2];
    char buf[2][16];
    int fd, i;
    files_loop(&loop);
    CHECK((fd = make_file("cancel", 0)) >= 0);
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    memset(s, 0, sizeof s);
    for (i = 0; i < 2; i++) {
        evl_op_init(&op[i], record_op);
        op[i].data = &s[i];
        CHECK_EQ(evl_op_read(&loop, &op[i], fd, buf[i], sizeof buf[i], 0), 0);
    }
    CHECK_EQ(evl_op_cancel(&loop, &op[0]), 0);
    CHECK_EQ(evl_op_cancel(&loop, &op[0]), -EALREADY); /* finished (cancelled) already */
    CHECK_EQ(s[0].calls, 0);                           /* the callback comes from the loop */
    run_until_done(&loop, s, 2);
    CHECK_EQ(s[0].calls, 1);
    CHECK_EQ(s[0].result, -ECANCELED);
    CHECK_EQ(s[1].result, 10);
    CHECK_EQ(evl_op_cancel(&loop, &op[0]), -EINVAL); /* no longer active */
    evl_deinit(&loop);
    close(fd);
}

/* A read of an empty pipe runs until data comes: on io_uring it is cancelled; a worker cannot be
   interrupted, so there the cancel says so and the read completes once data is written. */
static void files_cancel_running_operation(void) {
    evl_loop loop;
    evl_op op;
    seen_op s;
    char buf[16];
    int p[2], i, rc;
    files_loop(&loop);
    if (on_engine(&loop, "inline")) t_skip("inline: a read of an empty pipe would block the loop itself");
    CHECK(pipe(p) == 0); /* blocking, as a worker reads it */
    evl_op_init(&op, record_op);
    op.data = &s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_read(&loop, &op, p[0], buf, sizeof buf, EVL_OP_CURRENT), 0);
    for (i = 0; i < 5; i++) CHECK(evl_run(&loop, EVL_MS(10)) >= 0); /* submitted, and waiting */
    CHECK_EQ(s.calls, 0);
    if (on_engine(&loop, "io_uring")) {
        CHECK_EQ(evl_op_cancel(&loop, &op), 0);
        run_until_done(&loop, &s, 1);
        CHECK_EQ(s.result, -ECANCELED);
    } else if ((rc = evl_op_cancel(&loop, &op)) == -EALREADY) {
        CHECK_EQ(write(p[1], "late", 4), 4);
        run_until_done(&loop, &s, 1);
        CHECK_EQ(s.result, 4);
    } else { /* a loaded machine: no worker took it yet */
        CHECK_EQ(rc, 0);
        run_until_done(&loop, &s, 1);
        CHECK_EQ(s.result, -ECANCELED);
    }
    evl_deinit(&loop);
    close(p[0]);
    close(p[1]);
}

/* ---- Deinit with operations in flight --------------------------------------------------------------- */

static void files_deinit_with_operations_in_flight(void) {
    evl_loop loop;
    evl_op *ops;
    seen_op *s;
    unsigned char *bufs;
    int fd, i, n = 64, p[2];
    files_loop(&loop);
    CHECK((fd = make_file("deinit", 0)) >= 0);
    CHECK(ftruncate(fd, 4 << 20) == 0);
    ops = (evl_op *)calloc((size_t)n + 1, sizeof *ops);
    s = (seen_op *)calloc((size_t)n + 1, sizeof *s);
    bufs = (unsigned char *)malloc((size_t)(n + 1) * 65536);
    CHECK(ops && s && bufs);
    for (i = 0; i < n; i++) {
        evl_op_init(&ops[i], record_op);
        ops[i].data = &s[i];
        CHECK_EQ(evl_op_read(&loop, &ops[i], fd, bufs + (size_t)i * 65536, 65536, (int64_t)i * 65536), 0);
        if (i == n / 2) CHECK(evl_run(&loop, 0) >= 0); /* half submitted, the rest new */
    }
    CHECK(pipe(p) == 0);
    if (on_engine(&loop, "io_uring")) { /* one that would never finish by itself */
        evl_op_init(&ops[n], record_op);
        ops[n].data = &s[n];
        CHECK_EQ(evl_op_read(&loop, &ops[n], p[0], bufs + (size_t)n * 65536, 16, EVL_OP_CURRENT), 0);
        CHECK(evl_run(&loop, 0) >= 0);
    }
    for (i = 0; i <= n; i++) s[i].calls = 0; /* only what comes after deinit counts */
    evl_deinit(&loop);
    for (i = 0; i <= n; i++) CHECK_EQ(evl_op_active(&ops[i]), 0);
    free(ops); /* the library must not touch these now */
    free(bufs);
    for (i = 0; i <= n; i++) CHECK_EQ(s[i].calls, 0);
    CHECK_EQ(write(p[1], "x", 1), 1); /* the cancelled read took nothing */
    {
        char c;
#if T_POSIX
        t_set_nonblocking(p[0]);
#endif
        CHECK_EQ(read(p[0], &c, 1), 1);
    }
    free(s);
    close(fd);
    close(p[0]);
    close(p[1]);
}

/* An openat that finished but whose callback never ran (the loop stopped first, then evl_deinit):
   the descriptor it opened is closed, not leaked: after evl_deinit the descriptors free from the
   lowest are what they were before the loop. */
static void stop_at_once(evl_loop *loop, evl_timer *t) {
    (void)t;
    evl_stop(loop);
}

static void lowest_free_descriptors(int *fds, int count) {
    int i;
    for (i = 0; i < count; i++) CHECK((fds[i] = open(NULL_DEVICE, O_RDONLY)) >= 0);
    for (i = 0; i < count; i++) close(fds[i]);
}

static void files_deinit_closes_what_an_unreported_openat_opened(void) {
    evl_loop loop;
    evl_op op;
    evl_timer t;
    seen_op s;
    char path[400];
    int fd, free_before[8], free_after[8], i;
    CHECK_EQ(evl_init(&loop), 0);               /* what a backend keeps from its first use (the */
    evl_deinit(&loop);                          /* kqueue emulation's process-wide descriptors) */
    lowest_free_descriptors(free_before, 8);
    files_loop(&loop);
    CHECK((fd = make_file("opened-late", 0)) >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/opened-late", dir_path);
    evl_op_init(&op, record_op);
    op.data = &s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_openat(&loop, &op, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0), 0);
    evl_timer_init(&t, stop_at_once);
    evl_timer_start(&loop, &t, 0, 0);
    CHECK(evl_run(&loop, EVL_SEC(10)) >= 0);
    if (s.calls && s.result >= 0) close((int)s.result);     /* it was reported after all */
    evl_deinit(&loop);
    lowest_free_descriptors(free_after, 8);     /* the loop's own and the opened one were among them */
    for (i = 0; i < 8; i++) CHECK_EQ(free_after[i], free_before[i]);
}

#if T_POSIX
/* A child made by fork() may evl_deinit the loop it inherited: the parent's ring and worker
   threads are not its own, so it neither cancels nor joins them, and the parent's operation still
   completes. */
static void files_forked_child_deinit_leaves_the_parents_operations(void) {
    evl_loop loop;
    evl_op op;
    seen_op s;
    char buf[4];
    int p[2], status = 0;
    pid_t pid;
    evl_time end;
    files_loop(&loop);
    if (on_engine(&loop, "inline")) t_skip("inline: a read of an empty pipe would block the loop itself");
    CHECK(pipe(p) == 0);
    evl_op_init(&op, record_op);
    op.data = &s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_read(&loop, &op, p[0], buf, sizeof buf, EVL_OP_CURRENT), 0);
    CHECK(evl_run(&loop, 0) >= 0); /* in the kernel, or with a worker */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        evl_deinit(&loop);
        _exit(0);
    }
    for (end = t_clock() + EVL_SEC(10); waitpid(pid, &status, WNOHANG) == 0 && t_clock() < end;) sched_yield();
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* it did not hang on the parent's threads */
    CHECK_EQ(write(p[1], "abc", 3), 3);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 3);
    evl_deinit(&loop);
    close(p[0]);
    close(p[1]);
}
#endif

/* ---- Offloaded work ---------------------------------------------------------------------------------- */

static thread_id work_thread;
static ssize_t square(evl_op *op, void *arg) {
    (void)op;
    work_thread = this_thread();
    return (ssize_t)(intptr_t)arg * (ssize_t)(intptr_t)arg;
}

static void files_work_runs_and_reports(void) {
    evl_loop loop;
    evl_op op;
    seen_op s;
    files_loop(&loop);
    evl_op_init(&op, record_op);
    op.data = &s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(evl_op_work(&loop, &op, square, (void *)(intptr_t)12), 0);
    CHECK_EQ(evl_op_work(&loop, &op, square, NULL), -EALREADY);
    run_until_done(&loop, &s, 1);
    CHECK_EQ(s.result, 144);
    CHECK(same_thread(s.thread, this_thread()));
    if (wanted_engine() && !strcmp(wanted_engine(), "workers")) CHECK(!same_thread(work_thread, this_thread()));
    else CHECK(same_thread(work_thread, this_thread()));   /* inline without workers */
    CHECK_EQ(evl_op_work(&loop, &op, NULL, NULL), -EINVAL);
    evl_deinit(&loop);
}

/* One worker, held busy by a work function that waits for a pipe; what is queued behind it can
   be cancelled, what it runs cannot. */
static int busy_running;
static ssize_t wait_for_pipe(evl_op *op, void *arg) {
    char c;
    (void)op;
    __atomic_store_n(&busy_running, 1, __ATOMIC_SEQ_CST);
    return read(*(int *)arg, &c, 1);
}

static void await_busy_running(void) {
    evl_time end = t_clock() + EVL_SEC(10);
    while (!__atomic_load_n(&busy_running, __ATOMIC_SEQ_CST) && t_clock() < end) sched_yield();
    CHECK(busy_running);
}

/* One worker, running `busy` (which waits for the pipe) with `queued` behind it. */
static struct {
    evl_loop loop;
    evl_worker one;
    evl_op busy, queued;
    seen_op s[2];
    int p[2];
} held;

static void hold_the_only_worker(void) {
    const char *want = wanted_engine();
    if (want && strcmp(want, "workers") != 0) t_skip("needs worker threads");
    CHECK_EQ(evl_init(&held.loop), 0);
    CHECK_EQ(evl_workers_start(&held.loop, &held.one, 1), 0);
    CHECK_EQ(evl_workers_start(&held.loop, &held.one, 1), -EALREADY);
    CHECK(pipe(held.p) == 0);
    evl_op_init(&held.busy, record_op);
    held.busy.data = &held.s[0];
    evl_op_init(&held.queued, record_op);
    held.queued.data = &held.s[1];
    CHECK_EQ(evl_op_work(&held.loop, &held.busy, wait_for_pipe, &held.p[0]), 0);
    CHECK_EQ(evl_op_work(&held.loop, &held.queued, square, (void *)(intptr_t)3), 0);
    CHECK(evl_run(&held.loop, 0) >= 0); /* both handed to the worker's queue */
    await_busy_running();
}

static void files_work_cancel_while_queued(void) {
    hold_the_only_worker();
    CHECK_EQ(evl_op_cancel(&held.loop, &held.queued), 0);
    CHECK_EQ(evl_op_cancel(&held.loop, &held.busy), -EALREADY); /* running: not interrupted */
    run_until_done(&held.loop, &held.s[1], 1);
    CHECK_EQ(held.s[1].result, -ECANCELED);
    CHECK_EQ(held.s[0].calls, 0);
    CHECK_EQ(write(held.p[1], "go", 1), 1);
    run_until_done(&held.loop, &held.s[0], 1);
    CHECK_EQ(held.s[0].result, 1);
    evl_workers_stop(&held.loop);
    evl_workers_stop(&held.loop); /* idempotent */
    CHECK(strcmp(evl_op_engine(&held.loop), "workers") != 0);
    evl_deinit(&held.loop);
}

/* evl_workers_stop lets the running operation finish and cancels what is still queued. */
static void files_workers_stop_cancels_the_queue(void) {
    hold_the_only_worker();
    CHECK_EQ(write(held.p[1], "go", 1), 1); /* the busy one can finish while stopping */
    evl_workers_stop(&held.loop);
    run_until_done(&held.loop, held.s, 2);
    CHECK_EQ(held.s[0].result, 1);
    CHECK(held.s[1].result == 9 || held.s[1].result == -ECANCELED); /* taken before the stop, or not */
    evl_deinit(&held.loop);
}

/* ---- Fibers ---------------------------------------------------------------------------------------------- */

#if EVLOOP_HAS_FIBERS
static struct {
    int fd, pipe_rd;
    ssize_t results[8];
    int done;
} fib;

/* evl_read and evl_write take a file on POSIX; on Windows, where an evl_fd is a socket, the same
   transfers at the file position are evl_pread and evl_pwrite's. */
#if T_POSIX
#define file_read(fd, buf, len, timeout) evl_read((fd), (buf), (len), (timeout))
#define file_write(fd, buf, len, timeout) evl_write((fd), (buf), (len), (timeout))
#else
#define file_read(fd, buf, len, timeout) evl_pread((fd), (buf), (len), EVL_OP_CURRENT, (timeout))
#define file_write(fd, buf, len, timeout) evl_pwrite((fd), (buf), (len), EVL_OP_CURRENT, (timeout))
#endif

static void fiber_file_io(void *arg) {
    char buf[32];
    (void)arg;
    fib.results[0] = evl_pwrite(fib.fd, "hello, file", 11, 1000, EVL_SEC(10));
    fib.results[1] = evl_pread(fib.fd, buf, sizeof buf, 1000, EVL_SEC(10));
    fib.results[2] = memcmp(buf, "hello, file", 11) == 0;
    fib.results[3] = file_write(fib.fd, "abc", 3, EVL_SEC(10));     /* at the position: 0 */
    fib.results[4] = lseek(fib.fd, 0, SEEK_CUR);
    lseek(fib.fd, 1000, SEEK_SET);
    fib.results[5] = file_read(fib.fd, buf, 5, EVL_SEC(10));
    fib.results[6] = memcmp(buf, "hello", 5) == 0 && lseek(fib.fd, 0, SEEK_CUR) == 1005;
    fib.done = 1;
}

static void files_fiber_pread_pwrite_and_read_write(void) {
    evl_loop loop;
    evl_fiber f;
    files_loop(&loop);
    CHECK((fib.fd = make_file("fiber", 0)) >= 0);
    CHECK_EQ(evl_pread(fib.fd, NULL, 0, 0, 0), -EPERM); /* outside a fiber */
    CHECK_EQ(evl_fiber_start(&loop, &f, NULL, 0, fiber_file_io, NULL), 0);
    CHECK_EQ(evl_run(&loop, EVL_SEC(30)), 0);
    CHECK(fib.done);
    CHECK_EQ(fib.results[0], 11);
    CHECK_EQ(fib.results[1], 11);
    CHECK_EQ(fib.results[2], 1);
    CHECK_EQ(fib.results[3], 3);
    CHECK_EQ(fib.results[4], 3);
    CHECK_EQ(fib.results[5], 5);
    CHECK_EQ(fib.results[6], 1);
    evl_deinit(&loop);
    close(fib.fd);
}

/* A read that cannot finish (an empty pipe) with a timeout, then one cancelled by another fiber.
   On io_uring both are cancelled; a worker cannot be interrupted, so there the fiber waits until
   the data that a timer writes arrives, and gets it. */
static int write_end;
static void feed_pipe(evl_loop *loop, evl_timer *t) {
    (void)loop, (void)t;
    CHECK_EQ(write(write_end, "ab", 2), 2);
}

static void fiber_timeout(void *arg) {
    char buf[4];
    (void)arg;
    fib.results[0] = evl_pread(fib.pipe_rd, buf, 1, EVL_OP_CURRENT, EVL_MS(50));
    fib.results[1] = evl_pread(fib.pipe_rd, buf, 1, EVL_OP_CURRENT, EVL_FOREVER);
    fib.done = 1;
}

static void canceller(void *arg) { evl_fiber_cancel((evl_fiber *)arg); }

static void files_fiber_timeout_and_cancel(void) {
    evl_loop loop;
    evl_fiber f, c;
    evl_timer feed;
    int p[2], uring;
    files_loop(&loop);
    if (on_engine(&loop, "inline")) t_skip("inline: a read of an empty pipe would block the loop itself");
    uring = on_engine(&loop, "io_uring");
    CHECK(pipe(p) == 0);
    fib.pipe_rd = p[0];
    write_end = p[1];
    evl_timer_init(&feed, feed_pipe);
    if (!uring) evl_timer_start(&loop, &feed, EVL_MS(200), 0);
    CHECK_EQ(evl_fiber_start(&loop, &f, NULL, 0, fiber_timeout, NULL), 0);
    if (uring) {
        /* the second read waits forever: another fiber cancels it once the first timed out */
        while (fib.results[0] == 0) CHECK(evl_run(&loop, EVL_MS(10)) >= 0);
        CHECK_EQ(evl_fiber_start(&loop, &c, NULL, 0, canceller, &f), 0);
    }
    CHECK_EQ(evl_run(&loop, EVL_SEC(30)), 0);
    CHECK(fib.done);
    if (uring) {
        CHECK_EQ(fib.results[0], -ETIMEDOUT);
        CHECK_EQ(fib.results[1], -ECANCELED);
    } else {
        /* timed out: cancelled if still queued, else the worker's read finished with the data */
        CHECK(fib.results[0] == 1 || fib.results[0] == -ETIMEDOUT);
        CHECK_EQ(fib.results[1], 1);
    }
    evl_deinit(&loop);
    close(p[0]);
    close(p[1]);
}
#endif

/* ---- Engines ---------------------------------------------------------------------------------------------- */

static void files_engine_is_named(void) {
    evl_loop loop;
    const char *e;
    files_loop(&loop);
    e = evl_op_engine(&loop);
    CHECK(!strcmp(e, "io_uring") || !strcmp(e, "workers") || !strcmp(e, "inline"));
    if (t_refused_errno) CHECK(strcmp(e, "io_uring") != 0); /* --nosys refuses io_uring_setup */
    CHECK(!strcmp(evl_op_engine(NULL), "inline"));
    evl_deinit(&loop);
}

static void files_bad_arguments_are_refused(void) {
    evl_loop loop;
    evl_op op, zero;
    char buf[4];
    files_loop(&loop);
    memset(&zero, 0, sizeof zero);
    CHECK_EQ(evl_op_read(&loop, &zero, 0, buf, 4, 0), -EINVAL); /* never initialised */
    evl_op_init(&op, NULL);
    CHECK_EQ(evl_op_read(&loop, &op, 0, buf, 4, 0), -EINVAL); /* no callback */
    evl_op_init(&op, record_op);
    CHECK_EQ(evl_op_read(NULL, &op, 0, buf, 4, 0), -EINVAL);
    CHECK_EQ(evl_op_read(&loop, &op, 0, buf, (size_t)-1, 0), -EINVAL);
    CHECK_EQ(evl_op_readv(&loop, &op, 0, NULL, 2, 0), -EINVAL);   /* no vector */
    CHECK_EQ(evl_op_writev(&loop, &op, 0, NULL, 1, 0), -EINVAL);
    CHECK_EQ(evl_op_readv(&loop, &op, 0, NULL, -1, 0), -EINVAL);
    CHECK_EQ(evl_op_openat(&loop, &op, AT_FDCWD, NULL, O_RDONLY, 0), -EINVAL);
    CHECK_EQ(evl_op_fstat(&loop, &op, 0, NULL), -EINVAL);
    CHECK_EQ(evl_op_cancel(&loop, &op), -EINVAL);
    CHECK_EQ(evl_workers_start(&loop, NULL, 1), -EINVAL);
    CHECK_EQ(evl_op_active(&op), 0);
    evl_deinit(&loop);
}

const t_case files_tests[] = {T(files_random_offsets_byte_exact),
                              T(files_short_read_at_end_of_file),
                              T(files_current_position_advances),
                              T(files_vectored_read_and_write),
                              T(files_open_sync_stat_close),
                              T(files_errors_come_through_the_callback),
                              T(files_misaligned_direct_io_is_einval),
                              T(files_callback_never_from_the_start_call),
                              T(files_ops_started_from_callbacks),
                              T(files_cancel_before_submission),
                              T(files_cancel_running_operation),
                              T(files_deinit_with_operations_in_flight),
                              T(files_deinit_closes_what_an_unreported_openat_opened),
#if T_POSIX
                              T(files_forked_child_deinit_leaves_the_parents_operations),
#endif
                              T(files_work_runs_and_reports),
                              T(files_work_cancel_while_queued),
                              T(files_workers_stop_cancels_the_queue),
#if EVLOOP_HAS_FIBERS
                              T(files_fiber_pread_pwrite_and_read_write),
                              T(files_fiber_timeout_and_cancel),
#endif
                              T(files_engine_is_named),
                              T(files_bad_arguments_are_refused),
                              T_END};

#else
const t_case files_tests[] = {T_END};
#endif
