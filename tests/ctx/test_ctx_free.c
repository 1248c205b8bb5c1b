/* test_ctx_free.c - the context switch without a C library.

   For ABIs this machine has no C library for: RISC-V without F/D (-march=rv64imac -mabi=lp64;
   Debian ships only an lp64d libc), and the soft-float variants of MIPS64 n64 and PowerPC 32 and
   64.  Built with -ffreestanding -nostdlib -static, it brings its own _start, write and exit
   system calls, and stacks in static arrays (no mmap), and runs under qemu-user on a CPU without
   an FPU where qemu has one (RISC-V with F/D switched off, MIPS 5Kc, PowerPC 405), so one stray
   FP instruction would kill it.  The system call numbers come from the kernel's headers.
   Prints "N passed, N failed" last, like test_ctx.c. */
/* The context layer alone, from evloop.h (see "Fibers: the context switch" there). */
#define EVL__CONTEXT_ONLY
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"
#include "../probe.h"

#include <sys/syscall.h>

/* ---- the little that libc would give us --------------------------------- */

/* _start: align the stack, call free_main, exit with what it returns; sys3: a system call with
   up to three arguments, returning the kernel's result (errors are not looked at). */
#define STR_(x) #x
#define STR(x) STR_(x) /* SYS_exit may be an expression: (4000 + 1) */
#if defined(__riscv) && __riscv_xlen == 64
__asm__(".pushsection .text\n"
        ".globl _start\n"
        "_start:\n"
        "    .option push\n"
        "    .option norelax\n"
        "    la gp, __global_pointer$\n" /* crt1 would set up gp for relaxation */
        "    .option pop\n"
        "    andi sp, sp, -16\n"
        "    call free_main\n"
        "    li a7, " STR(SYS_exit) "\n" /* exit(a0) */
                                    "    ecall\n"
                                    ".popsection\n");

static long sys3(long nr, long a, long b, long c) {
    register long a0 __asm__("a0") = a;
    register long a1 __asm__("a1") = b;
    register long a2 __asm__("a2") = c;
    register long a7 __asm__("a7") = nr;
    __asm__ __volatile__("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}

#elif defined(__mips__)
/* Built without abicalls: no $gp set-up, calls by absolute address.  o32 callers leave 16 bytes
   for the callee's arguments.  The MIPS linkers' default entry point is __start. */
__asm__(".pushsection .text\n"
        ".globl __start\n"
        "__start:\n"
        "    .set push\n    .set reorder\n"
        "    li $t0, -16\n"
        "    and $sp, $sp, $t0\n"
#if defined(__mips64)
        "    daddiu $sp, $sp, -16\n"
#else
         "    addiu $sp, $sp, -16\n"
#endif
        "    jal free_main\n"
        "    move $a0, $v0\n"
        "    li $v0, " STR(SYS_exit) "\n" /* exit(a0) */
                                     "    syscall\n"
                                     "    .set pop\n"
                                     ".popsection\n");

static long sys3(long nr, long a, long b, long c) {
    register long v0 __asm__("$2") = nr;
    register long a0 __asm__("$4") = a;
    register long a1 __asm__("$5") = b;
    register long a2 __asm__("$6") = c;
    register long a3 __asm__("$7");
    __asm__ __volatile__("syscall"
                         : "+r"(v0), "=r"(a3)
                         : "r"(a0), "r"(a1), "r"(a2)
                         : "$1", "$3", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$24", "$25", "hi", "lo",
                           "memory");
    return a3 != 0 ? -v0 : v0;
}

#elif defined(__powerpc__)
#if defined(__powerpc64__) && _CALL_ELF != 2
/* ELFv1: the kernel finds the entry point and the TOC in _start's descriptor. */
__asm__(".pushsection .opd,\"aw\"\n"
        ".p2align 3\n"
        ".globl _start\n"
        "_start:\n"
        "    .quad .L._start, .TOC.@tocbase, 0\n"
        ".popsection\n"
        ".pushsection .text\n"
        ".L._start:\n"
        "    clrrdi %r1, %r1, 4\n"
        "    li %r0, 0\n"
        "    stdu %r0, -128(%r1)\n" /* a frame with a zero back chain */
        "    bl free_main\n"
        "    nop\n"
        "    li %r0, " STR(SYS_exit) "\n" /* exit(r3) */
                                     "    sc\n"
                                     ".popsection\n");
#else
__asm__(".pushsection .text\n"
        ".globl _start\n"
        "_start:\n"
#if defined(__powerpc64__)
        "    addis %r2, %r12, .TOC.-_start@ha\n" /* the kernel puts the entry address in r12 */
        "    addi %r2, %r2, .TOC.-_start@l\n"
        "    clrrdi %r1, %r1, 4\n"
        "    li %r0, 0\n"
        "    stdu %r0, -128(%r1)\n"
        "    bl free_main\n"
        "    nop\n"
#else
         "    clrrwi %r1, %r1, 4\n"
         "    li %r0, 0\n"
         "    stwu %r0, -16(%r1)\n"
         "    bl free_main\n"
#endif
        "    li %r0, " STR(SYS_exit) "\n" /* exit(r3) */
                                     "    sc\n"
                                     ".popsection\n");
#endif

static long sys3(long nr, long a, long b, long c) {
    register long r0 __asm__("r0") = nr;
    register long r3 __asm__("r3") = a;
    register long r4 __asm__("r4") = b;
    register long r5 __asm__("r5") = c;
    __asm__ __volatile__("sc"
                         : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5)
                         :
                         : "r6", "r7", "r8", "r9", "r10", "r11", "r12", "cr0", "ctr", "memory");
    return r3;
}

#else
#error "test_ctx_free.c has _start and system calls for RISC-V 64, MIPS and PowerPC only"
#endif

static void out(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    sys3(SYS_write, 1, (long)s, (long)n);
}

static void out_num(unsigned long v) {
    char buf[24];
    int i = 23;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    out(buf + i);
}

/* the compiler may emit calls to these for struct copies and clears */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n) {
    unsigned char *p = (unsigned char *)d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n) {
    unsigned char *p = (unsigned char *)d;
    const unsigned char *q = (const unsigned char *)s;
    while (n--) *p++ = *q++;
    return d;
}

/* ---- runner -------------------------------------------------------------- */

static int n_passed, n_failed, cur_failed;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            out("    check failed: " #cond "\n");                                                                      \
            cur_failed = 1;                                                                                            \
        }                                                                                                              \
    } while (0)

static void run(const char *name, void (*test)(void)) {
    cur_failed = 0;
    test();
    if (cur_failed)
        n_failed++;
    else
        n_passed++;
    out(cur_failed ? "FAIL " : "ok   ");
    out(name);
    out("\n");
}
#define RUN(t) run(#t, t)

static evl__ctx main_ctx;
enum { STACK = 32 * 1024 };
static unsigned char stacks[3][STACK] __attribute__((aligned(16)));
static evl__ctx ctx[3];

/* ---- tests --------------------------------------------------------------- */

static int pp_log[64], pp_n;

static void pp_entry(void *arg) {
    int id = (int)(long)arg, r;
    for (r = 0; r < 5; r++) {
        pp_log[pp_n++] = id * 10 + r;
        evl__ctx_switch(&ctx[id], &main_ctx);
    }
    evl__ctx_exit(&ctx[id], &main_ctx);
}

static void test_ping_pong_between_main_and_three_contexts(void) {
    int id, r, ok = 1;
    pp_n = 0;
    for (id = 0; id < 3; id++) evl__ctx_init(&ctx[id], stacks[id], STACK, pp_entry, (void *)(long)id);
    for (r = 0; r <= 5; r++)
        for (id = 0; id < 3; id++) evl__ctx_switch(&main_ctx, &ctx[id]);
    CHECK(pp_n == 15);
    for (r = 0; r < 5; r++)
        for (id = 0; id < 3; id++)
            if (pp_log[r * 3 + id] != id * 10 + r) ok = 0;
    CHECK(ok);
}

static uintptr_t pr_result[2];
static void pr_body_a(void *arg) {
    (void)arg;
    evl__ctx_switch(&ctx[0], &ctx[1]);
}
static void pr_body_b(void *arg) {
    (void)arg;
    evl__ctx_switch(&ctx[1], &main_ctx);
}
static void pr_body_main(void *arg) {
    (void)arg;
    evl__ctx_switch(&main_ctx, &ctx[0]);
}

static void pr_entry(void *arg) {
    int i = (int)(long)arg;
    pr_result[i] = test_probe_regs(i == 0 ? pr_body_a : pr_body_b, 0, i == 0 ? 0x2000u : 0x3000u);
    evl__ctx_exit(&ctx[i], i == 0 ? &ctx[1] : &main_ctx);
}

static void test_callee_saved_registers_survive_switches(void) {
    uintptr_t r_main;
    pr_result[0] = pr_result[1] = 1;
    evl__ctx_init(&ctx[0], stacks[0], STACK, pr_entry, (void *)0L);
    evl__ctx_init(&ctx[1], stacks[1], STACK, pr_entry, (void *)1L);
    r_main = test_probe_regs(pr_body_main, 0, 0x1000u);
    evl__ctx_switch(&main_ctx, &ctx[0]);
    CHECK(r_main == 0);
    CHECK(pr_result[0] == 0);
    CHECK(pr_result[1] == 0);
    out("    probed: " TEST_PROBE_WHAT "\n");
}

/* What each ABI promises at a call: 8 bytes on MIPS o32, 16 elsewhere. */
#if defined(__mips__) && defined(_ABIO32) && _MIPS_SIM == _ABIO32
#define ABI_STACK_ALIGN 8
#else
#define ABI_STACK_ALIGN 16
#endif

static uintptr_t al_local, al_frame;

static void al_entry(void *arg) {
    volatile unsigned char x[ABI_STACK_ALIGN] __attribute__((aligned(ABI_STACK_ALIGN)));
    (void)arg;
    x[0] = 1;
    al_local = (uintptr_t)&x[0];
    al_frame = (uintptr_t)__builtin_frame_address(0);
    evl__ctx_exit(&ctx[2], &main_ctx);
}

static void test_entry_stack_is_aligned_for_the_abi(void) {
    int off;
    for (off = 0; off < 16; off += 5) {
        al_local = al_frame = 1;
        evl__ctx_init(&ctx[2], stacks[2] + off, STACK - 2 * (size_t)off - 1, al_entry, 0);
        evl__ctx_switch(&main_ctx, &ctx[2]);
        CHECK(al_local % ABI_STACK_ALIGN == 0);
        CHECK(al_frame % ABI_STACK_ALIGN == 0);
    }
}

int free_main(void);
int free_main(void) {
    evl__ctx_init_main(&main_ctx);
    out("evl_ctx freestanding tests, backend: " EVL__CTX_BACKEND_NAME "\n");
    RUN(test_ping_pong_between_main_and_three_contexts);
    RUN(test_callee_saved_registers_survive_switches);
    RUN(test_entry_stack_is_aligned_for_the_abi);
    out_num((unsigned long)n_passed);
    out(" passed, ");
    out_num((unsigned long)n_failed);
    out(" failed\n");
    return n_failed != 0;
}
