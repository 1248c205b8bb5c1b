/* model.c - model-based random testing of the whole watcher API (see model.h for what is checked).

     model [--ops N] [--len L] [--seed S] [--first K] [--seconds T] [--nosys]
         N operations in all (default 100000), in sequences of L (default 1000), each sequence from
         its own seed derived from S (default: the time), from the K-th sequence on (default 0),
         stopping early after T seconds if given.
         Each sequence runs in a child process, so a crash or a hang (20 s) is a failure like a
         failed check.  A failure prints the seed, then shrinks the sequence to a shorter one that
         still fails and prints it, with the command that replays it.  --nosys refuses
         epoll_pwait2 and pidfd_open (ENOSYS), so the loop runs on its fallbacks.
     model --replay HEX
         runs one sequence given as hex bytes (what a failure prints), in this process.
     model [--seed S] [--len L] --emit DIR
         writes 16 generated sequences into DIR (how tests/robust/corpus was made).
   The last line is "N passed, N failed" (sequences). */
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"

#include "model.h"

#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#if defined(__linux__) && defined(__x86_64__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#endif

/* --nosys: epoll_pwait2 and pidfd_open fail with ENOSYS in this process and its children, as on a
   kernel before 5.3, so the loop takes its fallbacks (a timerfd, SIGCHLD for children).  0 or -1. */
static int refuse_new_syscalls(void) {
#if defined(__linux__) && defined(__x86_64__) && defined(SECCOMP_MODE_FILTER)
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 434 /* pidfd_open */, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 441 /* epoll_pwait2 */, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    };
    struct sock_fprog prog;
    prog.len = (unsigned short)(sizeof code / sizeof code[0]);
    prog.filter = code;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) return -1;
    return syscall(434, getpid(), 0) < 0 && errno == ENOSYS ? 0 : -1;
#else
    return -1;
#endif
}

static uint64_t rng_state;

static uint64_t rng_next(void) {                /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* How often each operation is generated: the common ones often, forks rarely. */
static const unsigned char op_weight[OP_COUNT] = {
    [OP_TIMER_INIT] = 4, [OP_TIMER_START] = 10, [OP_TIMER_START_AT] = 8, [OP_TIMER_AGAIN] = 4,
    [OP_TIMER_STOP] = 5, [OP_TIMER_FREE] = 2,
    [OP_IO_INIT] = 3, [OP_IO_START] = 6, [OP_IO_STOP] = 4, [OP_IO_SET] = 3, [OP_IO_RESET] = 2, [OP_IO_FREE] = 1,
    [OP_SIG_INIT] = 2, [OP_SIG_START] = 3, [OP_SIG_STOP] = 2, [OP_SIG_FREE] = 1, [OP_RAISE] = 4,
    [OP_ASYNC_INIT] = 2, [OP_ASYNC_START] = 3, [OP_ASYNC_STOP] = 2, [OP_ASYNC_SEND] = 4, [OP_ASYNC_FREE] = 1,
    [OP_HOOK_INIT] = 2, [OP_HOOK_START] = 3, [OP_HOOK_STOP] = 2, [OP_HOOK_FREE] = 1,
    [OP_CHILD_SPAWN] = 1, [OP_CHILD_START] = 2, [OP_CHILD_STOP] = 1, [OP_CHILD_FREE] = 1,
    [OP_FIBER_START] = 2,
    [OP_WRITE] = 8, [OP_READ] = 8, [OP_REF] = 2, [OP_UNREF] = 2, [OP_RUN] = 14, [OP_LOOP_STOP] = 1, [OP_DUMP] = 1};

static void generate(uint64_t seed, unsigned char *out, size_t ops) {
    unsigned total = 0, k;
    size_t i;
    for (k = 0; k < OP_COUNT; k++) total += op_weight[k];
    rng_state = seed;
    for (i = 0; i < ops; i++) {
        uint64_t r = rng_next();
        unsigned pick = (unsigned)(r % total), code = 0;
        while (pick >= op_weight[code]) pick -= op_weight[code++];
        /* forks are the slowest operation: one in eight of those drawn is kept */
        if (code == OP_CHILD_SPAWN && (r >> 32) % 8 != 0) code = OP_RUN;
        out[i * M_OP_SIZE] = (unsigned char)(code | ((r >> 20) % 10 < 3 ? M_IN_CALLBACK : 0));
        out[i * M_OP_SIZE + 1] = (unsigned char)(r >> 40);
        out[i * M_OP_SIZE + 2] = (unsigned char)(r >> 48);
        out[i * M_OP_SIZE + 3] = (unsigned char)(r >> 56);
    }
}

static m_stats *stats;                          /* shared with the children */

/* How the last run in a child ended: its wait status (0: passed). */
static int last_status;

/* Runs a sequence in a child process: 1 if it passed.  A hang is a failure too: the child has
   20 s plus a second per 100 operations. */
static int passes(const unsigned char *data, size_t ops, int quiet) {
    pid_t pid;
    int status;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        if (quiet) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) dup2(devnull, 2), close(devnull);
        }
        alarm((unsigned)(20 + ops / 100));
        m_run_sequence(data, ops * M_OP_SIZE, 0, stats);
        _exit(0);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    last_status = status;
    if (!quiet && WIFSIGNALED(status))
        printf("the run was killed by signal %d (%s)\n", WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? "it hung" : strsignal(WTERMSIG(status)));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A shorter sequence is kept only if it fails the way the original did (a failed check, a crash,
   a hang), so that shrinking does not wander off to another failure. */
static int fails_alike(const unsigned char *data, size_t ops, int status) {
    return !passes(data, ops, 1) && last_status == status;
}

static void print_sequence(const unsigned char *data, size_t ops) {
    size_t i;
    for (i = 0; i < ops; i++) {
        const unsigned char *o = data + i * M_OP_SIZE;
        printf("  %3zu  %-15s slot %3u  a %3u  b %3u%s\n", i, m_op_names[o[0] % OP_COUNT], o[1], o[2], o[3],
               o[0] & M_IN_CALLBACK ? "  (in a callback)" : "");
    }
    printf("replay: model --replay ");
    for (i = 0; i < ops * M_OP_SIZE; i++) printf("%02x", data[i]);
    printf("\n");
}

/* Removes chunks of operations, halving the chunk, while the sequence still fails; then tries to
   run each remaining operation outside callbacks.  Bounded in runs, since a timing-dependent
   failure may not come back every time. */
static size_t shrink(unsigned char *data, size_t ops) {
    unsigned char *trial = (unsigned char *)malloc(ops * M_OP_SIZE + 1);
    size_t chunk, i, runs = 0;
    int status = last_status;
    for (chunk = ops / 2; chunk >= 1 && runs < 4000; chunk /= 2) {
        for (i = 0; i + chunk <= ops && runs < 4000;) {
            size_t n = ops - chunk;
            memcpy(trial, data, i * M_OP_SIZE);
            memcpy(trial + i * M_OP_SIZE, data + (i + chunk) * M_OP_SIZE, (ops - i - chunk) * M_OP_SIZE);
            runs++;
            if (fails_alike(trial, n, status)) {
                memcpy(data, trial, n * M_OP_SIZE);
                ops = n;
            } else {
                i += chunk;
            }
        }
    }
    for (i = 0; i < ops && runs < 4000; i++) {
        if (!(data[i * M_OP_SIZE] & M_IN_CALLBACK)) continue;
        data[i * M_OP_SIZE] &= (unsigned char)~M_IN_CALLBACK;
        runs++;
        if (!fails_alike(data, ops, status)) data[i * M_OP_SIZE] |= M_IN_CALLBACK;
    }
    free(trial);
    printf("shrunk in %zu runs to %zu operations\n", runs, ops);
    return ops;
}

static int replay(const char *hex) {
    size_t n = strlen(hex) / 2, i;
    unsigned char *data = (unsigned char *)malloc(n + 1);
    for (i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return 2;
        data[i] = (unsigned char)v;
    }
    m_run_sequence(data, n, 0, NULL);
    free(data);
    printf("1 passed, 0 failed\n");
    return 0;
}

/* Writes 16 generated sequences of len operations into dir, as the fuzzer's seed corpus. */
static int emit_corpus(const char *dir, unsigned long long seed, unsigned long long len) {
    unsigned char *data = (unsigned char *)malloc(len * M_OP_SIZE);
    int k;
    for (k = 0; k < 16; k++) {
        char path[4096];
        FILE *f;
        generate(seed * 1000003ull + (unsigned)k, data, len);
        snprintf(path, sizeof path, "%s/seed-%02d", dir, k);
        if (!(f = fopen(path, "wb")) || fwrite(data, M_OP_SIZE, len, f) != len) return 1;
        fclose(f);
    }
    free(data);
    return 0;
}

int main(int argc, char **argv) {
    unsigned long long total_ops = 100000, len = 1000, seed = (unsigned long long)time(NULL), seq, first = 0;
    double seconds = 0;
    int i, failed = 0, passed = 0, nosys = 0;
    unsigned char *data;
    evl_time start = m_clock();
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--replay") && i + 1 < argc) return replay(argv[++i]);
        else if (!strcmp(argv[i], "--emit") && i + 1 < argc) return emit_corpus(argv[++i], seed, len);
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc) total_ops = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--len") && i + 1 < argc) len = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--nosys")) nosys = 1;
        else if (!strcmp(argv[i], "--first") && i + 1 < argc) first = strtoull(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: model [--ops N] [--len L] [--seed S] [--first K] [--seconds T] [--nosys] | --replay HEX\n");
            return 2;
        }
    }
    if (len == 0) len = 1;
    if (nosys && refuse_new_syscalls() < 0) {
        printf("--nosys: cannot install the seccomp filter\n0 passed, 1 failed\n");
        return 1;
    }
    stats = (m_stats *)mmap(NULL, sizeof *stats, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (stats == MAP_FAILED) return 2;
    memset(stats, 0, sizeof *stats);
    data = (unsigned char *)malloc(len * M_OP_SIZE);
    printf("model: seed %llu, %llu operations in sequences of %llu (backend %s%s)\n", seed, total_ops, len,
           evl_backend_name(), nosys ? ", epoll_pwait2 and pidfd_open refused: timerfd and SIGCHLD" : "");
    for (seq = first; (seq - first) * len < total_ops; seq++) {
        uint64_t s = seed * 1000003ull + seq;
        generate(s, data, len);
        if (passes(data, len, 0)) {
            passed++;
            if (passed % 100 == 0)
                printf("  %d sequences, %llu operations, %.0f s\n", passed, stats->ops, (double)(m_clock() - start) / 1e9);
        } else {
            size_t n;
            failed++;
            printf("FAIL  sequence %llu of seed %llu (again: model --seed %llu --len %llu --first %llu --ops %llu); "
                   "shrinking...\n", seq, seed, seed, len, seq, len);
            n = shrink(data, len);
            print_sequence(data, n);
            printf("the shortest sequence, run again:\n");
            fflush(stdout);
            passes(data, n, 0);
            break;
        }
        if (seconds > 0 && (double)(m_clock() - start) / 1e9 > seconds) break;
    }
    printf("model: %llu operations (%llu of them inside callbacks and fibers) in %llu sequences, %llu callbacks, "
           "%llu checks; timers fired %llu, io calls %llu, signals %llu, asyncs %llu, children %llu, fibers %llu; "
           "%.1f s\n",
           stats->ops, stats->ops_in_callbacks, stats->sequences, stats->callbacks, stats->checks, stats->timers_fired, stats->io_calls, stats->signals,
           stats->asyncs, stats->children, stats->fibers, (double)(m_clock() - start) / 1e9);
    printf("%d passed, %d failed\n", passed, failed);
    free(data);
    return failed != 0;
}
