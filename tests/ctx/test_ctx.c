/* test_ctx.c - tests of evloop's context switch alone, beneath the fibers. One behaviour per test,
   named after it.  Built for every CPU the switch supports, including x86_64 Windows (mingw,
   run under wine), where the loop itself does not run yet.
   Prints one line per test and "N passed, N failed, N skipped" last; exits
   non-zero if anything failed. Link with test_ctx_tu2.c (the second
   translation unit that includes the header). */
#if !defined(_WIN32) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
/* The context layer alone, from evloop.h (see "Fibers: the context switch" there). */
#define EVL__CONTEXT_ONLY
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"
#include "../probe.h"

#include <errno.h>
#include <fenv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)
#include <windows.h>
#include <process.h>
#else
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "tu2.h"

#define NOINLINE __attribute__((noinline))

/* What each ABI promises at a call: 8 bytes on 32-bit ARM, MIPS o32 and s390x, 16 elsewhere. */
#if defined(__arm__) || (defined(__mips__) && defined(_ABIO32) && _MIPS_SIM == _ABIO32) || defined(__s390x__)
#define ABI_STACK_ALIGN 8
#else
#define ABI_STACK_ALIGN 16
#endif

/* ------------------------------------------------------------------------ */
/* Stacks for the tests: pages with an inaccessible guard page below         */
/* ------------------------------------------------------------------------ */
#if defined(_WIN32)
static size_t stack_page(void) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize;
}
#else
#include <sys/mman.h>
static size_t stack_page(void) {
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}
#endif

static int map_stack(size_t size, void **stack, size_t *usable) {
    size_t page = stack_page(), rounded;
    char *base;
    if (size == 0) return -EINVAL;
    rounded = (size + page - 1) & ~(page - 1);
#if defined(_WIN32)
    {
        DWORD old;
        base = (char *)VirtualAlloc(NULL, rounded + page, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        if (base == NULL) return -ENOMEM;
        VirtualProtect(base, page, PAGE_NOACCESS, &old);
    }
#else
    base = (char *)mmap(NULL, rounded + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((void *)base == MAP_FAILED) return -errno;
    mprotect(base, page, PROT_NONE);
#endif
    *stack = base + page;
    *usable = rounded;
    return 0;
}

static void unmap_stack(void *stack, size_t usable) {
#if defined(_WIN32)
    (void)usable;
    VirtualFree((char *)stack - stack_page(), 0, MEM_RELEASE);
#else
    munmap((char *)stack - stack_page(), usable + stack_page());
#endif
}

/* ------------------------------------------------------------------------ */
/* A very small test runner                                                 */
/* ------------------------------------------------------------------------ */

static int n_passed, n_failed, n_skipped;
static int cur_failed, cur_skipped;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            printf("    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                        \
            cur_failed = 1;                                                                                            \
        }                                                                                                              \
    } while (0)

#define SKIP(why)                                                                                                      \
    do {                                                                                                               \
        printf("    skipped: %s\n", why);                                                                              \
        cur_skipped = 1;                                                                                               \
        return;                                                                                                        \
    } while (0)

static void run(const char *name, void (*test)(void)) {
    cur_failed = cur_skipped = 0;
    test();
    if (cur_failed) {
        n_failed++;
        printf("FAIL %s\n", name);
    } else if (cur_skipped) {
        n_skipped++;
        printf("skip %s\n", name);
    } else {
        n_passed++;
        printf("ok   %s\n", name);
    }
    fflush(stdout);
}

#define RUN(test) run(#test, test)

static evl__ctx main_ctx;

/* ------------------------------------------------------------------------ */
/* Switching                                                                */
/* ------------------------------------------------------------------------ */

enum { PP_FIBERS = 3, PP_ROUNDS = 50, PP_STACK = 64 * 1024 };
static evl__ctx pp_ctx[PP_FIBERS];
static unsigned char pp_stack[PP_FIBERS][PP_STACK] __attribute__((aligned(16)));
static int pp_ids[PP_FIBERS];
static int pp_log[PP_FIBERS * PP_ROUNDS + 8];
static int pp_n;

static void pp_entry(void *arg) {
    int id = *(int *)arg;
    int r;
    for (r = 0; r < PP_ROUNDS; r++) {
        pp_log[pp_n++] = id * 1000 + r; /* r lives on this stack */
        evl__ctx_switch(&pp_ctx[id], &main_ctx);
    }
    pp_log[pp_n++] = id * 1000 + 999;
    evl__ctx_exit(&pp_ctx[id], &main_ctx);
}

static void test_ping_pong_between_main_and_three_contexts(void) {
    int id, r, ok = 1;
    pp_n = 0;
    for (id = 0; id < PP_FIBERS; id++) {
        pp_ids[id] = id;
        evl__ctx_init(&pp_ctx[id], pp_stack[id], PP_STACK, pp_entry, &pp_ids[id]);
    }
    for (r = 0; r <= PP_ROUNDS; r++)
        for (id = 0; id < PP_FIBERS; id++) evl__ctx_switch(&main_ctx, &pp_ctx[id]);
    for (id = 0; id < PP_FIBERS; id++) evl__ctx_release(&pp_ctx[id]);
    CHECK(pp_n == PP_FIBERS * (PP_ROUNDS + 1));
    for (r = 0; r < PP_ROUNDS; r++)
        for (id = 0; id < PP_FIBERS; id++)
            if (pp_log[r * PP_FIBERS + id] != id * 1000 + r) ok = 0;
    for (id = 0; id < PP_FIBERS; id++)
        if (pp_log[PP_ROUNDS * PP_FIBERS + id] != id * 1000 + 999) ok = 0;
    CHECK(ok);
}

/* A -> B -> C -> main -> A -> B -> C -> main, without passing through main */
enum { CH_STACK = 64 * 1024 };
static evl__ctx ch_ctx[3];
static unsigned char ch_stack[3][CH_STACK] __attribute__((aligned(16)));
static char ch_log[16];
static int ch_n;

static void ch_entry(void *arg) {
    int i = (int)(intptr_t)arg;
    evl__ctx *next = i == 2 ? &main_ctx : &ch_ctx[i + 1];
    ch_log[ch_n++] = (char)('A' + i);
    evl__ctx_switch(&ch_ctx[i], next);
    ch_log[ch_n++] = (char)('a' + i);
    evl__ctx_exit(&ch_ctx[i], next);
}

static void test_contexts_switch_directly_to_each_other(void) {
    int i;
    ch_n = 0;
    memset(ch_log, 0, sizeof ch_log);
    for (i = 0; i < 3; i++) evl__ctx_init(&ch_ctx[i], ch_stack[i], CH_STACK, ch_entry, (void *)(intptr_t)i);
    evl__ctx_switch(&main_ctx, &ch_ctx[0]);
    ch_log[ch_n++] = 'm';
    evl__ctx_switch(&main_ctx, &ch_ctx[0]);
    for (i = 0; i < 3; i++) evl__ctx_release(&ch_ctx[i]);
    CHECK(strcmp(ch_log, "ABCmabc") == 0);
}

/* ------------------------------------------------------------------------ */
/* Registers                                                                */
/* ------------------------------------------------------------------------ */

#if defined(TEST_PROBE_AVAILABLE)
enum { PR_STACK = 64 * 1024 };
static evl__ctx pr_ctx[2];
static unsigned char pr_stack[2][PR_STACK] __attribute__((aligned(16)));
static uintptr_t pr_result[2];
/* the low 4 bits pick the rounding modes the x86_64 probe sets */
static const uintptr_t pr_seed_main = 0x1000, pr_seed[2] = {0x2005, 0x300a};

static void pr_body_a(void *arg) {
    (void)arg;
    evl__ctx_switch(&pr_ctx[0], &pr_ctx[1]);
}
static void pr_body_b(void *arg) {
    (void)arg;
    evl__ctx_switch(&pr_ctx[1], &main_ctx);
}
static void pr_body_main(void *arg) {
    (void)arg;
    evl__ctx_switch(&main_ctx, &pr_ctx[0]);
}

static void pr_entry(void *arg) {
    int i = (int)(intptr_t)arg;
    pr_result[i] = test_probe_regs(i == 0 ? pr_body_a : pr_body_b, NULL, pr_seed[i]);
    evl__ctx_exit(&pr_ctx[i], i == 0 ? &pr_ctx[1] : &main_ctx);
}
#endif

#if defined(EVL__CTX_MIPS32) && defined(__mips_hard_float)
/* Which FPU mode this process runs in: with FR=0 a double in $f0 has its high half in $f1, with
   FR=1 $f1 is a register of its own.  The switch must be right in both. */
static int mips_fr(void) {
    volatile double one = 1.0;
    unsigned odd;
    __asm__ __volatile__(".set push\n\t.set fp=xx\n\t.set oddspreg\n\t"
                         "ldc1 $f0, %1\n\tmfc1 %0, $f1\n\t.set pop"
                         : "=r"(odd)
                         : "m"(one)
                         : "$f0", "$f1");
    return odd == 0x3ff00000u ? 0 : 1;
}
#endif

static void test_callee_saved_registers_survive_switches(void) {
#if defined(TEST_PROBE_AVAILABLE)
    int round;
    for (round = 0; round < 20; round++) {
        uintptr_t r_main;
        pr_result[0] = pr_result[1] = 12345;
        evl__ctx_init(&pr_ctx[0], pr_stack[0], PR_STACK, pr_entry, (void *)(intptr_t)0);
        evl__ctx_init(&pr_ctx[1], pr_stack[1], PR_STACK, pr_entry, (void *)(intptr_t)1);
        /* main probes, A probes, B probes, then each checks on the way back */
        r_main = test_probe_regs(pr_body_main, NULL, pr_seed_main + (uintptr_t)round * 16);
        evl__ctx_switch(&main_ctx, &pr_ctx[0]);
        evl__ctx_release(&pr_ctx[0]);
        evl__ctx_release(&pr_ctx[1]);
        CHECK(r_main == 0);
        CHECK(pr_result[0] == 0);
        CHECK(pr_result[1] == 0);
        if (cur_failed) break;
    }
    printf("    probed: %s\n", TEST_PROBE_WHAT);
#if defined(EVL__CTX_MIPS32) && defined(__mips_hard_float)
    printf("    FPU mode here: FR=%d\n", mips_fr());
#endif
#else
    SKIP("no register probe for this CPU");
#endif
}

/* The same idea in plain C: many live values across a switch. */
enum { RP_STACK = 64 * 1024 };
static evl__ctx rp_ctx;
static unsigned char rp_stack[RP_STACK] __attribute__((aligned(16)));
static volatile unsigned rp_seed_fiber = 77, rp_seed_main = 1234567;
static int rp_fiber_ok;

static NOINLINE int rp_work(unsigned s, evl__ctx *self, evl__ctx *other) {
    unsigned a = s * 3u + 1, b = s * 5u + 2, c = s * 7u + 3, d = s * 11u + 4;
    unsigned e = s * 13u + 5, f = s * 17u + 6, g = s * 19u + 7, h = s * 23u + 8;
    unsigned i = a ^ h, j = b ^ g, k = c ^ f, l = d ^ e;
    double x = (double)s * 0.5, y = (double)a * 1.25, z = (double)b + 0.75;
    double u = x * y, v = y * z, w = z * x;
    unsigned sum1 = a + b + c + d + e + f + g + h + i + j + k + l;
    double dsum1 = x + y + z + u + v + w;
    evl__ctx_switch(self, other);
    {
        unsigned sum2 = a + b + c + d + e + f + g + h + i + j + k + l;
        double dsum2 = x + y + z + u + v + w;
        return sum1 == sum2 && dsum1 == dsum2 && a == s * 3u + 1 && l == (d ^ e) && w == z * x;
    }
}

static void rp_entry(void *arg) {
    (void)arg;
    rp_fiber_ok = rp_work(rp_seed_fiber, &rp_ctx, &main_ctx);
    evl__ctx_exit(&rp_ctx, &main_ctx);
}

static void test_live_values_survive_switches_under_register_pressure(void) {
    int main_ok;
    rp_fiber_ok = -1;
    evl__ctx_init(&rp_ctx, rp_stack, RP_STACK, rp_entry, NULL);
    evl__ctx_switch(&main_ctx, &rp_ctx);                 /* fiber computes, comes back */
    main_ok = rp_work(rp_seed_main, &main_ctx, &rp_ctx); /* main computes, fiber checks */
    evl__ctx_release(&rp_ctx);
    CHECK(main_ok == 1);
    CHECK(rp_fiber_ok == 1);
}

/* ------------------------------------------------------------------------ */
/* Floating-point control state                                             */
/* ------------------------------------------------------------------------ */

#if defined(EVL__CTX_X86_64) || defined(EVL__CTX_WIN64) || defined(EVL__CTX_I386)
static void x86_modes(unsigned *mxcsr_rc, unsigned *x87_rc) {
    unsigned short cw;
    __asm__ __volatile__("fnstcw %0" : "=m"(cw));
    *x87_rc = (unsigned)(cw >> 10) & 3u;
#if defined(__SSE__)
    {
        unsigned mx;
        __asm__ __volatile__("stmxcsr %0" : "=m"(mx));
        *mxcsr_rc = (mx >> 13) & 3u;
    }
#else
    *mxcsr_rc = *x87_rc; /* no MXCSR to look at */
#endif
}
#define X86_UP 2u /* rounding control encoding of FE_UPWARD */
#define X86_NEAREST 0u
#endif

#if defined(FE_UPWARD) && defined(FE_DOWNWARD) && defined(FE_TOWARDZERO) && defined(EVL__CTX_FP_CONTROL_PER_CONTEXT)
enum { FP_STACK = 64 * 1024 };
static evl__ctx fp_ctx;
static unsigned char fp_stack[FP_STACK] __attribute__((aligned(16)));
static int fp_at_start, fp_after_resume;
#if defined(EVL__CTX_X86_64) || defined(EVL__CTX_WIN64) || defined(EVL__CTX_I386)
static unsigned fp_mx_after_resume, fp_x87_after_resume;
#endif

static void fp_entry(void *arg) {
    (void)arg;
    fp_at_start = fegetround();
    fesetround(FE_UPWARD);
    evl__ctx_switch(&fp_ctx, &main_ctx);
    fp_after_resume = fegetround();
#if defined(EVL__CTX_X86_64) || defined(EVL__CTX_WIN64) || defined(EVL__CTX_I386)
    x86_modes(&fp_mx_after_resume, &fp_x87_after_resume);
#endif
    evl__ctx_exit(&fp_ctx, &main_ctx);
}
#endif

static void test_fp_control_state_follows_the_abi_rule(void) {
#if !defined(FE_UPWARD) || !defined(FE_DOWNWARD) || !defined(FE_TOWARDZERO)
    SKIP("fenv.h has no directed rounding modes");
#elif !defined(EVL__CTX_FP_CONTROL_PER_CONTEXT)
    SKIP("ucontext: whether the FP environment is per context is up to the libc");
#else
    int main_after_first;
    if (fesetround(FE_UPWARD) != 0 || fegetround() != FE_UPWARD) {
        fesetround(FE_TONEAREST);
        SKIP("no hardware rounding modes (soft-float)");
    }
    fesetround(FE_TOWARDZERO); /* the creator's mode at init */
    evl__ctx_init(&fp_ctx, fp_stack, FP_STACK, fp_entry, NULL);
    fesetround(FE_TONEAREST);
    evl__ctx_switch(&main_ctx, &fp_ctx); /* fiber sets FE_UPWARD, comes back */
    main_after_first = fegetround();
    fesetround(FE_DOWNWARD);
    evl__ctx_switch(&main_ctx, &fp_ctx); /* fiber reads its mode and exits */
    evl__ctx_release(&fp_ctx);
    if (EVL__CTX_FP_CONTROL_PER_CONTEXT) {
        /* x86: MXCSR control bits and the x87 control word are callee-saved,
           so they belong to each context, and a new one inherits its creator's */
        CHECK(fp_at_start == FE_TOWARDZERO);
        CHECK(main_after_first == FE_TONEAREST);
        CHECK(fp_after_resume == FE_UPWARD);
        CHECK(fegetround() == FE_DOWNWARD);
#if defined(EVL__CTX_X86_64) || defined(EVL__CTX_WIN64) || defined(EVL__CTX_I386)
        CHECK(fp_mx_after_resume == X86_UP);  /* both registers, not just the */
        CHECK(fp_x87_after_resume == X86_UP); /* one fegetround happens to read */
        {
            unsigned mx, x87;
            fesetround(FE_TONEAREST);
            x86_modes(&mx, &x87);
            CHECK(mx == X86_NEAREST && x87 == X86_NEAREST);
        }
#endif
        printf("    per context (x86 ABI: control bits are callee-saved)\n");
    } else {
        /* AArch64 FPCR, ARM FPSCR, RISC-V fcsr: thread-wide, untouched by a switch */
        CHECK(fp_at_start == FE_TONEAREST);
        CHECK(main_after_first == FE_UPWARD);
        CHECK(fp_after_resume == FE_DOWNWARD);
        CHECK(fegetround() == FE_DOWNWARD);
        printf("    per thread (ABI: the FP control register is global)\n");
    }
    fesetround(FE_TONEAREST);
#endif
}

/* ------------------------------------------------------------------------ */
/* Stacks and alignment                                                     */
/* ------------------------------------------------------------------------ */

static evl__ctx al_ctx;
static uintptr_t al_entry_mod, al_callee_mod, al_frame;
static int al_vector_ok;

#if defined(__x86_64__) && !defined(_WIN32)
typedef float al_v4 __attribute__((vector_size(16)));
#endif

static NOINLINE void al_callee(void) {
    volatile unsigned char x[ABI_STACK_ALIGN] __attribute__((aligned(ABI_STACK_ALIGN)));
    x[0] = 1;
    al_callee_mod = (uintptr_t)&x[0] % ABI_STACK_ALIGN;
}

static void al_entry(void *arg) {
    volatile unsigned char x[ABI_STACK_ALIGN] __attribute__((aligned(ABI_STACK_ALIGN)));
    (void)arg;
    x[0] = 1;
    al_entry_mod = (uintptr_t)&x[0] % ABI_STACK_ALIGN;
    al_frame = (uintptr_t)__builtin_frame_address(0);
    al_callee();
#if defined(__x86_64__) && !defined(_WIN32)
    {
        /* an aligned SSE spill/reload faults on a misaligned stack */
        volatile al_v4 v = {1.0f, 2.0f, 3.0f, 4.0f};
        al_v4 w = v;
        al_vector_ok = w[0] == 1.0f && w[3] == 4.0f;
    }
#else
    al_vector_ok = 1;
#endif
    evl__ctx_exit(&al_ctx, &main_ctx);
}

static void check_alignment_on(unsigned char *stack, size_t size) {
    al_entry_mod = al_callee_mod = 99;
    al_vector_ok = 0;
    evl__ctx_init(&al_ctx, stack, size, al_entry, NULL);
    evl__ctx_switch(&main_ctx, &al_ctx);
    evl__ctx_release(&al_ctx);
    CHECK(al_entry_mod == 0);
    CHECK(al_callee_mod == 0);
    CHECK(al_vector_ok == 1);
    /* the frame, not a local: with ASan's fake stacks locals live elsewhere */
    CHECK(al_frame >= (uintptr_t)stack && al_frame < (uintptr_t)stack + size);
#if defined(EVL__CTX_X86_64)
    /* rbp = entry rsp - 8; the ABI wants rsp + 8 16-aligned at entry */
    CHECK(al_frame % 16 == 0);
#elif defined(EVL__CTX_I386)
    /* ebp = entry esp - 4; the ABI (as GCC/clang use it) wants esp + 4 16-aligned */
    CHECK(al_frame % 16 == 8);
#elif defined(EVL__CTX_AARCH64) || defined(EVL__CTX_RISCV64) || defined(EVL__CTX_MIPS64) || defined(EVL__CTX_PPC32) || \
    defined(EVL__CTX_PPC64)
    CHECK(al_frame % 16 == 0);
#elif defined(EVL__CTX_MIPS32) || defined(EVL__CTX_S390X)
    CHECK(al_frame % 8 == 0);
#endif
}

static unsigned char al_buf[64 * 1024 + 64] __attribute__((aligned(16)));

static void test_entry_stack_is_aligned_for_the_abi(void) { check_alignment_on(al_buf, 64 * 1024); }

static void test_entry_stack_is_aligned_even_for_an_odd_user_stack(void) {
    size_t off;
    for (off = 1; off < 16 && !cur_failed; off += 3) check_alignment_on(al_buf + off, 64 * 1024 - 2 * off - 1);
}

static void test_stack_map_rounds_up_to_pages_and_rejects_zero(void) {
    void *stack = NULL;
    size_t usable = 0;
    size_t page = stack_page();
    CHECK(map_stack(0, &stack, &usable) == -EINVAL);
    CHECK(map_stack(1, &stack, &usable) == 0);
    CHECK(usable == page);
    CHECK((uintptr_t)stack % page == 0);
    memset(stack, 0xab, usable); /* all of it is writable */
    unmap_stack(stack, usable);
    CHECK(map_stack(3 * page + 1, &stack, &usable) == 0);
    CHECK(usable == 4 * page);
    memset(stack, 0xcd, usable);
    unmap_stack(stack, usable);
}

enum { MANY = 200, MANY_ROUNDS = 20, MANY_STACK = 64 * 1024 };
struct many {
    evl__ctx ctx;
    void *stack;
    size_t usable;
    int id, count, done;
};
static struct many many_f[MANY];

static void many_entry(void *arg) {
    struct many *m = (struct many *)arg;
    int mine[8], r, k;
    for (k = 0; k < 8; k++) mine[k] = m->id * 8 + k;
    for (r = 0; r < MANY_ROUNDS; r++) {
        m->count++;
        evl__ctx_switch(&m->ctx, &main_ctx);
        for (k = 0; k < 8; k++) /* our stack was not disturbed */
            if (mine[k] != m->id * 8 + k) m->count = -1000;
    }
    m->done = 1;
    evl__ctx_exit(&m->ctx, &main_ctx);
}

static void test_two_hundred_contexts_on_mapped_stacks(void) {
    int i, r, mapped = 0, all_ok = 1;
    for (i = 0; i < MANY; i++) {
        struct many *m = &many_f[i];
        m->id = i;
        m->count = m->done = 0;
        if (map_stack(MANY_STACK, &m->stack, &m->usable) != 0) break;
        mapped++;
        evl__ctx_init(&m->ctx, m->stack, m->usable, many_entry, m);
    }
    CHECK(mapped == MANY);
    for (r = 0; r <= MANY_ROUNDS; r++)
        for (i = 0; i < mapped; i++)
            if (!many_f[i].done) evl__ctx_switch(&main_ctx, &many_f[i].ctx);
    for (i = 0; i < mapped; i++) {
        struct many *m = &many_f[i];
        if (m->count != MANY_ROUNDS || !m->done || m->usable < MANY_STACK) all_ok = 0;
        evl__ctx_release(&m->ctx);
        unmap_stack(m->stack, m->usable);
    }
    CHECK(all_ok);
}

/* Recurse until three quarters of the usable stack are in use (measured by
   the frame address: with ASan's fake stacks the arrays live elsewhere). */
static uintptr_t deep_top, deep_target;
static int deep_depth;
static unsigned deep_sum;
static evl__ctx deep_ctx;

static NOINLINE unsigned deep(unsigned n) {
    volatile unsigned char pad[512];
    unsigned r;
    pad[0] = (unsigned char)n;
    pad[511] = (unsigned char)(n >> 8);
    if ((uintptr_t)__builtin_frame_address(0) <= deep_target) {
        deep_depth = (int)n;
        return n;
    }
    r = deep(n + 1) + pad[0] + 256u * pad[511];
    return r;
}

static void deep_entry(void *arg) {
    (void)arg;
    deep_sum = deep(0);
    evl__ctx_exit(&deep_ctx, &main_ctx);
}

static void test_deep_recursion_within_the_usable_size_works(void) {
    void *stack;
    size_t usable;
    unsigned expect = 0, n;
    CHECK(map_stack(256 * 1024, &stack, &usable) == 0);
    if (cur_failed) return;
    deep_top = (uintptr_t)stack + usable;
    deep_target = deep_top - usable / 4 * 3;
    deep_depth = -1;
    evl__ctx_init(&deep_ctx, stack, usable, deep_entry, NULL);
    evl__ctx_switch(&main_ctx, &deep_ctx);
    evl__ctx_release(&deep_ctx);
    unmap_stack(stack, usable);
    CHECK(deep_depth > 10);
    for (n = 0; deep_depth >= 0 && n <= (unsigned)deep_depth; n++)
        expect += n < (unsigned)deep_depth ? (n & 255u) + 256u * ((n >> 8) & 255u) : n;
    CHECK(deep_sum == expect);
    printf("    %d frames, %lu KiB of %lu KiB used\n", deep_depth, (unsigned long)((deep_top - deep_target) / 1024),
           (unsigned long)(usable / 1024));
}

/* The child overflows its stack; the guard page must stop it. */
static evl__ctx ov_ctx;
static volatile int ov_sink;

static NOINLINE int overflow(int n) {
    volatile char pad[256];
    pad[0] = (char)n;
    if (n > 100000000) /* never true; keeps -Winfinite-recursion quiet */
        return 0;
    return overflow(n + 1) + pad[0];
}

static void ov_entry(void *arg) {
    (void)arg;
    ov_sink = overflow(0);
    evl__ctx_exit(&ov_ctx, &main_ctx);
}

static int overflow_child(void) {
    void *stack;
    size_t usable;
    if (map_stack(64 * 1024, &stack, &usable) != 0) return 3;
    evl__ctx_init(&ov_ctx, stack, usable, ov_entry, NULL);
    evl__ctx_switch(&main_ctx, &ov_ctx);
    return 4; /* the overflow did not stop the child */
}

static const char *self_path;

static void test_guard_page_stops_a_stack_overflow(void) {
#if defined(_WIN32)
    intptr_t rc = _spawnl(_P_WAIT, self_path, self_path, "--overflow-child", (char *)NULL);
    /* Windows ends it with an access violation (0xC0000005) or a stack
       overflow (0xC00000FD); wine instead dies of the host's SIGSEGV and
       reports 0. Either way the child must not get back to its own return
       (3 or 4), and the spawn must have worked (not -1). */
    printf("    child exit code 0x%lx\n", (unsigned long)rc);
    CHECK(rc != -1 && rc != 3 && rc != 4);
#else
    pid_t pid;
    int status = 0;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        _exit(overflow_child());
    }
    CHECK(pid > 0);
    if (pid <= 0) return;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status))
        printf("    child killed by signal %d\n", WTERMSIG(status));
    else
        printf("    child exited with %d\n", WEXITSTATUS(status));
    CHECK(WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS));
#endif
}

/* A finished context leaves frames behind on its stack (it never returns
   from them). A new context on the same memory must not trip over them -
   with ASan, over their poisoned redzones. */
enum { RU_STACK = 64 * 1024 };
static evl__ctx ru_ctx;
static unsigned char ru_stack[RU_STACK] __attribute__((aligned(16)));
static int ru_ok;

static NOINLINE void ru_leave_from_deep(int n) {
    volatile char a[1000], b[300];
    a[0] = (char)n;
    b[0] = (char)n;
    if (n > 100000) /* never true; keeps -Winfinite-recursion quiet */
        return;
    if (n == 0) evl__ctx_exit(&ru_ctx, &main_ctx);
    ru_leave_from_deep(n - 1);
    ov_sink = a[0] + b[0];
}

static void ru_first(void *arg) {
    (void)arg;
    ru_leave_from_deep(20);
}

static NOINLINE void ru_fill(int n) {
    char big[4000];
    memset(big, n, sizeof big);
    ru_ok &= big[3999] == (char)n;
    if (n > 0) ru_fill(n - 1);
}

static void ru_second(void *arg) {
    (void)arg;
    ru_ok = 1;
    ru_fill(8);
    evl__ctx_exit(&ru_ctx, &main_ctx);
}

static void test_reused_stack_is_clean_for_the_next_context(void) {
    evl__ctx_init(&ru_ctx, ru_stack, RU_STACK, ru_first, NULL);
    evl__ctx_switch(&main_ctx, &ru_ctx);
    evl__ctx_release(&ru_ctx);
    ru_ok = 0;
    evl__ctx_init(&ru_ctx, ru_stack, RU_STACK, ru_second, NULL);
    evl__ctx_switch(&main_ctx, &ru_ctx);
    evl__ctx_release(&ru_ctx);
    CHECK(ru_ok == 1);
}

/* ------------------------------------------------------------------------ */
/* Two translation units                                                    */
/* ------------------------------------------------------------------------ */

enum { TU_STACK = 64 * 1024 };
static evl__ctx tu_ctx;
static unsigned char tu_stack[TU_STACK] __attribute__((aligned(16)));

static void test_contexts_from_two_translation_units_interoperate(void) {
    int log[4] = {0, 0, 0, 0};
    CHECK(strcmp(tu2_backend_name(), EVL__CTX_BACKEND_NAME) == 0);
    /* initialised by the other unit's copy, switched to by this unit's, and
       it switches back with the other unit's copy */
    tu2_start(&tu_ctx, tu_stack, TU_STACK, &main_ctx, log);
    evl__ctx_switch(&main_ctx, &tu_ctx);
    log[1] = 2;
    evl__ctx_switch(&main_ctx, &tu_ctx);
    tu2_release(&tu_ctx);
    CHECK(log[0] == 1 && log[1] == 2 && log[2] == 3);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    self_path = argv[0];
    evl__ctx_init_main(&main_ctx);
    if (argc > 1 && strcmp(argv[1], "--overflow-child") == 0) return overflow_child();

    printf("evl_ctx tests, backend: %s\n", EVL__CTX_BACKEND_NAME);
    RUN(test_ping_pong_between_main_and_three_contexts);
    RUN(test_contexts_switch_directly_to_each_other);
    RUN(test_callee_saved_registers_survive_switches);
    RUN(test_live_values_survive_switches_under_register_pressure);
    RUN(test_fp_control_state_follows_the_abi_rule);
    RUN(test_entry_stack_is_aligned_for_the_abi);
    RUN(test_entry_stack_is_aligned_even_for_an_odd_user_stack);
    RUN(test_stack_map_rounds_up_to_pages_and_rejects_zero);
    RUN(test_two_hundred_contexts_on_mapped_stacks);
    RUN(test_deep_recursion_within_the_usable_size_works);
    RUN(test_guard_page_stops_a_stack_overflow);
    RUN(test_reused_stack_is_clean_for_the_next_context);
    RUN(test_contexts_from_two_translation_units_interoperate);
    printf("%d passed, %d failed, %d skipped\n", n_passed, n_failed, n_skipped);
    return n_failed != 0;
}
