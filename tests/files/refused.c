/* io_uring_enter refused for a while (EAGAIN: the kernel is short of memory; EBUSY: completions it
   holds must be read first): what was written to the ring is handed over on a later iteration,
   and evl_deinit still waits until the kernel holds no operation.  The program replaces the C
   library's syscall() to refuse the calls it is told to (glibc, linked dynamically); run by
   make check-files.  Prints one line per check and exits non-zero on a failure. */
#define _GNU_SOURCE
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static int refusals, refused_errno;

long syscall(long number, ...) {
    static long (*real)(long, ...);
    long a[6];
    va_list ap;
    int i;
    va_start(ap, number);
    for (i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "syscall");
    if (number == SYS_io_uring_enter && refusals > 0) {
        refusals--;
        errno = refused_errno;
        return -1;
    }
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static int failed, calls;
static ssize_t last_result;

static void check(int ok, const char *what) {
    printf("%s  %s\n", ok ? "ok  " : "FAIL", what);
    failed |= !ok;
}

static void record(evl_loop *loop, evl_op *op, ssize_t result) {
    (void)loop;
    (void)op;
    calls++;
    last_result = result;
}

/* A read whose first io_uring_enter is refused still completes, in the same evl_run. */
static void refused_submission_is_retried(int err, const char *what) {
    evl_loop loop;
    evl_op op;
    char buf[16];
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    evl_time end;
    calls = 0;
    if (fd < 0 || evl_init(&loop) < 0) exit(2);
    evl_op_init(&op, record);
    if (evl_op_read(&loop, &op, fd, buf, sizeof buf, 0) < 0) exit(2);
    refused_errno = err;
    refusals = 1;
    for (end = evl_now(&loop) + EVL_SEC(5); calls == 0 && evl_now(&loop) < end;)
        if (evl_run(&loop, EVL_MS(100)) < 0) break;
    check(calls == 1 && last_result == (ssize_t)sizeof buf && refusals == 0, what);
    evl_deinit(&loop);
    close(fd);
}

/* evl_deinit with a read of an empty pipe in the kernel, the enters that would hand over its
   cancellation refused a few times: it returns only once the kernel holds nothing. */
static void refused_drain_still_waits(int err, const char *what) {
    evl_loop loop;
    evl_op op;
    static char buf[16];
    char c = 0;
    int p[2];
    calls = 0;
    if (pipe(p) < 0 || evl_init(&loop) < 0) exit(2);
    evl_op_init(&op, record);
    if (evl_op_read(&loop, &op, p[0], buf, sizeof buf, EVL_OP_CURRENT) < 0) exit(2);
    if (evl_run(&loop, 0) < 0) exit(2);
    refused_errno = err;
    refusals = 3;
    evl_deinit(&loop);
    check(loop.backend.ring.in_flight == 0 && calls == 0 && write(p[1], "x", 1) == 1 && read(p[0], &c, 1) == 1 &&
              c == 'x' && buf[0] == 0,
          what);
    close(p[0]);
    close(p[1]);
}

int main(void) {
    evl_loop probe;
    if (evl_init(&probe) < 0) return 2;
    if (strcmp(evl_op_engine(&probe), "io_uring") != 0) {
        printf("skip  no io_uring here (engine %s)\n", evl_op_engine(&probe));
        evl_deinit(&probe);
        return 0;
    }
    evl_deinit(&probe);
    refused_submission_is_retried(EAGAIN, "a submission refused with EAGAIN is handed over on the next iteration");
    refused_submission_is_retried(EBUSY, "a submission refused with EBUSY is handed over on the next iteration");
    refused_drain_still_waits(EAGAIN, "evl_deinit waits for the kernel's operations through EAGAIN");
    refused_drain_still_waits(EBUSY, "evl_deinit waits for the kernel's operations through EBUSY");
    return failed;
}
