/* probe.h - a register probe for the fiber tests (one per CPU, beside the context switch).

   uintptr_t test_probe_regs(void (*fn)(void *), void *arg, uintptr_t seed)

   Saves the caller's callee-saved registers (it is an ordinary function to
   its caller), fills every callee-saved register of the ABI - integer and
   floating-point, plus the FP control registers that are callee-saved on
   x86_64 - with values derived from seed, calls fn(arg), and returns 0 if
   all of them still hold those values afterwards (otherwise the bits that
   differ, OR-ed together). fn switches to other contexts, which run the same
   probe with other seeds: if a switch failed to save or restore a register,
   the probe sees the other context's value.

   Include once per program (it defines a global symbol). */
#ifndef TEST_PROBE_H
#define TEST_PROBE_H

#include <stdint.h>

#if (defined(__x86_64__) && defined(_WIN32)) || defined(__APPLE__)   /* PE and Mach-O: no .type */
#define TEST_PROBE_SECTION_BEGIN ".text\n"
#define TEST_PROBE_SECTION_END   ".text\n"
#define TEST_PROBE_TYPE ""
#else
#define TEST_PROBE_SECTION_BEGIN ".pushsection .text\n"
#define TEST_PROBE_SECTION_END   ".popsection\n"
#define TEST_PROBE_TYPE ".type test_probe_regs,%function\n"
#endif

#define TEST_PROBE_BEGIN \
    TEST_PROBE_SECTION_BEGIN ".globl test_probe_regs\n" TEST_PROBE_TYPE \
    ".p2align 4\n" TEST_PROBE_THUMB "test_probe_regs:\n"
#define TEST_PROBE_END TEST_PROBE_SECTION_END

#if defined(__arm__) && defined(__thumb__)
#define TEST_PROBE_THUMB ".thumb_func\n"
#else
#define TEST_PROBE_THUMB ""
#endif

#if defined(__x86_64__) && !defined(_WIN32) && !defined(__ILP32__)
#define TEST_PROBE_AVAILABLE 1
#define TEST_PROBE_WHAT "rbx rbp r12-r15, MXCSR control, x87 control word"
/* frame: [0] caller mxcsr [4] caller fcw [8] seed [16] our mxcsr [20] our fcw */
#define X(reg, k) "    leaq " #k "(%rdx), %rcx\n    xorq %" reg ", %rcx\n    orq %rcx, %rax\n"
__asm__(
    TEST_PROBE_BEGIN
    "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
    "    subq $40, %rsp\n"
    "    stmxcsr 0(%rsp)\n    fnstcw 4(%rsp)\n"
    "    movq %rdx, 8(%rsp)\n"
    /* rounding mode from seed bits 0-1 (MXCSR) and 2-3 (x87) */
    "    movl %edx, %ecx\n    andl $3, %ecx\n    shll $13, %ecx\n    orl $0x1f80, %ecx\n"
    "    movl %ecx, 16(%rsp)\n    ldmxcsr 16(%rsp)\n"
    "    movl %edx, %ecx\n    shrl $2, %ecx\n    andl $3, %ecx\n    shll $10, %ecx\n    orl $0x37f, %ecx\n"
    "    movl %ecx, 20(%rsp)\n    fldcw 20(%rsp)\n"
    "    movq %rdi, %rax\n    movq %rsi, %rdi\n"
    "    leaq 1(%rdx), %rbx\n    leaq 2(%rdx), %rbp\n    leaq 3(%rdx), %r12\n"
    "    leaq 4(%rdx), %r13\n    leaq 5(%rdx), %r14\n    leaq 6(%rdx), %r15\n"
    "    call *%rax\n"
    "    movq 8(%rsp), %rdx\n    xorl %eax, %eax\n"
    X("rbx", 1) X("rbp", 2) X("r12", 3) X("r13", 4) X("r14", 5) X("r15", 6)
    /* the control bits of MXCSR (status flags, bits 0-5, may change) */
    "    stmxcsr 24(%rsp)\n    movl 24(%rsp), %ecx\n    xorl 16(%rsp), %ecx\n    andl $0xffc0, %ecx\n    orq %rcx, %rax\n"
    "    fnstcw 24(%rsp)\n    movzwl 24(%rsp), %ecx\n    xorl 20(%rsp), %ecx\n    orq %rcx, %rax\n"
    "    ldmxcsr 0(%rsp)\n    fldcw 4(%rsp)\n"
    "    addq $40, %rsp\n"
    "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
    "    ret\n"
    TEST_PROBE_END);
#undef X

#elif defined(__x86_64__) && defined(_WIN32)
#define TEST_PROBE_AVAILABLE 1
#define TEST_PROBE_WHAT "rbx rbp rdi rsi r12-r15, xmm6-xmm15 (128 bits)"
/* frame: [0..31] home space, [32..191] caller's xmm6-15, [192] seed */
#define X(reg, k) "    leaq " #k "(%r8), %r9\n    xorq %" reg ", %r9\n    orq %r9, %rax\n"
#define XS(n, k) "    leaq " #k "(%r8), %r9\n    movq %r9, %xmm" #n "\n    punpcklqdq %xmm" #n ", %xmm" #n "\n"
#define XC(n, k) "    leaq " #k "(%r8), %r10\n    movq %xmm" #n ", %r9\n    xorq %r10, %r9\n    orq %r9, %rax\n" \
                 "    movhlps %xmm" #n ", %xmm0\n    movq %xmm0, %r9\n    xorq %r10, %r9\n    orq %r9, %rax\n"
#define XSAVE(n, off) "    movups %xmm" #n ", " #off "(%rsp)\n"
#define XLOAD(n, off) "    movups " #off "(%rsp), %xmm" #n "\n"
__asm__(
    TEST_PROBE_BEGIN
    "    pushq %rbx\n    pushq %rbp\n    pushq %rdi\n    pushq %rsi\n"
    "    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
    "    subq $216, %rsp\n"
    XSAVE(6, 32) XSAVE(7, 48) XSAVE(8, 64) XSAVE(9, 80) XSAVE(10, 96)
    XSAVE(11, 112) XSAVE(12, 128) XSAVE(13, 144) XSAVE(14, 160) XSAVE(15, 176)
    "    movq %r8, 192(%rsp)\n"
    "    movq %rcx, %rax\n    movq %rdx, %rcx\n"
    "    leaq 1(%r8), %rbx\n    leaq 2(%r8), %rbp\n    leaq 3(%r8), %rdi\n    leaq 4(%r8), %rsi\n"
    "    leaq 5(%r8), %r12\n    leaq 6(%r8), %r13\n    leaq 7(%r8), %r14\n    leaq 8(%r8), %r15\n"
    XS(6, 21) XS(7, 22) XS(8, 23) XS(9, 24) XS(10, 25)
    XS(11, 26) XS(12, 27) XS(13, 28) XS(14, 29) XS(15, 30)
    "    call *%rax\n"
    "    movq 192(%rsp), %r8\n    xorl %eax, %eax\n"
    X("rbx", 1) X("rbp", 2) X("rdi", 3) X("rsi", 4) X("r12", 5) X("r13", 6) X("r14", 7) X("r15", 8)
    XC(6, 21) XC(7, 22) XC(8, 23) XC(9, 24) XC(10, 25)
    XC(11, 26) XC(12, 27) XC(13, 28) XC(14, 29) XC(15, 30)
    XLOAD(6, 32) XLOAD(7, 48) XLOAD(8, 64) XLOAD(9, 80) XLOAD(10, 96)
    XLOAD(11, 112) XLOAD(12, 128) XLOAD(13, 144) XLOAD(14, 160) XLOAD(15, 176)
    "    addq $216, %rsp\n"
    "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n"
    "    popq %rsi\n    popq %rdi\n    popq %rbp\n    popq %rbx\n"
    "    ret\n"
    TEST_PROBE_END);
#undef X
#undef XS
#undef XC
#undef XSAVE
#undef XLOAD

#elif defined(__i386__) && !defined(_WIN32)
#define TEST_PROBE_AVAILABLE 1
#define TEST_PROBE_WHAT "ebx esi edi ebp"
/* after the 4 pushes: 20(%esp) fn, 24 arg, 28 seed */
#define X(reg, k) "    leal " #k "(%edx), %ecx\n    xorl %" reg ", %ecx\n    orl %ecx, %eax\n"
__asm__(
    TEST_PROBE_BEGIN
    "    pushl %ebp\n    pushl %ebx\n    pushl %esi\n    pushl %edi\n"
    "    movl 20(%esp), %eax\n    movl 24(%esp), %ecx\n    movl 28(%esp), %edx\n"
    "    subl $8, %esp\n"
    "    movl %edx, 0(%esp)\n"
    "    leal 1(%edx), %ebx\n    leal 2(%edx), %esi\n    leal 3(%edx), %edi\n    leal 4(%edx), %ebp\n"
    "    pushl %ecx\n"               /* esp is now 16-aligned for the call */
    "    call *%eax\n"
    "    addl $4, %esp\n"
    "    movl 0(%esp), %edx\n    xorl %eax, %eax\n"
    X("ebx", 1) X("esi", 2) X("edi", 3) X("ebp", 4)
    "    addl $8, %esp\n"
    "    popl %edi\n    popl %esi\n    popl %ebx\n    popl %ebp\n"
    "    ret\n"
    TEST_PROBE_END);
#undef X

#elif defined(__aarch64__)
#define TEST_PROBE_AVAILABLE 1
#define TEST_PROBE_WHAT "x19-x29, d8-d15"
#define X(reg, k) "    add x10, x2, #" #k "\n    eor x10, x10, " reg "\n    orr x0, x0, x10\n"
#define DS(n, k) "    add x10, x2, #" #k "\n    fmov d" #n ", x10\n"
#define DC(n, k) "    add x10, x2, #" #k "\n    fmov x11, d" #n "\n    eor x10, x10, x11\n    orr x0, x0, x10\n"
__asm__(
    TEST_PROBE_BEGIN
    "    sub sp, sp, #176\n"
    "    stp x19, x20, [sp, #0]\n    stp x21, x22, [sp, #16]\n    stp x23, x24, [sp, #32]\n"
    "    stp x25, x26, [sp, #48]\n    stp x27, x28, [sp, #64]\n    stp x29, x30, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n    stp d14, d15, [sp, #144]\n"
    "    str x2, [sp, #160]\n"
    "    mov x9, x0\n    mov x0, x1\n"
    "    add x19, x2, #1\n    add x20, x2, #2\n    add x21, x2, #3\n    add x22, x2, #4\n"
    "    add x23, x2, #5\n    add x24, x2, #6\n    add x25, x2, #7\n    add x26, x2, #8\n"
    "    add x27, x2, #9\n    add x28, x2, #10\n    add x29, x2, #11\n"
    DS(8, 21) DS(9, 22) DS(10, 23) DS(11, 24) DS(12, 25) DS(13, 26) DS(14, 27) DS(15, 28)
    "    blr x9\n"
    "    ldr x2, [sp, #160]\n    mov x0, #0\n"
    X("x19", 1) X("x20", 2) X("x21", 3) X("x22", 4) X("x23", 5) X("x24", 6)
    X("x25", 7) X("x26", 8) X("x27", 9) X("x28", 10) X("x29", 11)
    DC(8, 21) DC(9, 22) DC(10, 23) DC(11, 24) DC(12, 25) DC(13, 26) DC(14, 27) DC(15, 28)
    "    ldp x19, x20, [sp, #0]\n    ldp x21, x22, [sp, #16]\n    ldp x23, x24, [sp, #32]\n"
    "    ldp x25, x26, [sp, #48]\n    ldp x27, x28, [sp, #64]\n    ldp x29, x30, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n    ldp d14, d15, [sp, #144]\n"
    "    add sp, sp, #176\n"
    "    ret\n"
    TEST_PROBE_END);
#undef X
#undef DS
#undef DC

#elif defined(__arm__) && (!defined(__thumb__) || defined(__thumb2__))
#define TEST_PROBE_AVAILABLE 1
#if defined(__thumb__)
#define INST "    .inst.w "
#else
#define INST "    .inst "
#endif
#if defined(__ARM_FP)
/* VFP instructions as numbers, as in evloop.h (clang with LTO refuses the mnemonics there);
   x is the register number in hex, 8 to f. */
#define TEST_PROBE_WHAT "r4-r11, d8-d15"
#define DS(x, k) "    add r3, r2, #" #k "\n" INST "0xec433b1" #x "\n"  /* vmov dx, r3, r3 */
#define DC(x, k) "    add r3, r2, #" #k "\n" INST "0xec5c1b1" #x "\n"  /* vmov r1, r12, dx */ \
                   "    eor r1, r1, r3\n    orr r0, r0, r1\n    eor r12, r12, r3\n    orr r0, r0, r12\n"
#define VPUSH INST "0xed2d8b10\n"             /* vpush {d8-d15} */
#define VPOP INST "0xecbd8b10\n"              /* vpop {d8-d15} */
#else
#define TEST_PROBE_WHAT "r4-r11 (no VFP)"
#define DS(n, k) ""
#define DC(n, k) ""
#define VPUSH ""
#define VPOP ""
#endif
#if defined(__thumb__)
#define ISA ".thumb\n"
#else
#define ISA ".arm\n"
#endif
#define X(reg, k) "    add r3, r2, #" #k "\n    eor r3, r3, " reg "\n    orr r0, r0, r3\n"
__asm__(
    ".syntax unified\n" ISA
    TEST_PROBE_BEGIN
    "    push {r4-r11, lr}\n"
    VPUSH
    "    sub sp, sp, #12\n"          /* 9 (+16) words pushed: 8-aligned again */
    "    str r2, [sp]\n"
    "    mov r12, r0\n    mov r0, r1\n"
    "    add r4, r2, #1\n    add r5, r2, #2\n    add r6, r2, #3\n    add r7, r2, #4\n"
    "    add r8, r2, #5\n    add r9, r2, #6\n    add r10, r2, #7\n    add r11, r2, #8\n"
    DS(8, 21) DS(9, 22) DS(a, 23) DS(b, 24) DS(c, 25) DS(d, 26) DS(e, 27) DS(f, 28)
    "    blx r12\n"
    "    ldr r2, [sp]\n    mov r0, #0\n"
    X("r4", 1) X("r5", 2) X("r6", 3) X("r7", 4) X("r8", 5) X("r9", 6) X("r10", 7) X("r11", 8)
    DC(8, 21) DC(9, 22) DC(a, 23) DC(b, 24) DC(c, 25) DC(d, 26) DC(e, 27) DC(f, 28)
    "    add sp, sp, #12\n"
    VPOP
    "    pop {r4-r11, pc}\n"
    TEST_PROBE_END
    ISA);
#undef X
#undef DS
#undef DC
#undef VPUSH
#undef VPOP
#undef INST
#undef ISA

#elif defined(__riscv) && __riscv_xlen == 64
#define TEST_PROBE_AVAILABLE 1
#if defined(__riscv_flen) && __riscv_flen >= 64
#define TEST_PROBE_WHAT "s0-s11, fs0-fs11"
#define FS(op) \
     "    " op " fs0, 104(sp)\n    " op " fs1, 112(sp)\n    " op " fs2, 120(sp)\n" \
     "    " op " fs3, 128(sp)\n    " op " fs4, 136(sp)\n    " op " fs5, 144(sp)\n" \
     "    " op " fs6, 152(sp)\n    " op " fs7, 160(sp)\n    " op " fs8, 168(sp)\n" \
     "    " op " fs9, 176(sp)\n    " op " fs10, 184(sp)\n    " op " fs11, 192(sp)\n"
#define FSET(r, k) "    addi t1, a2, " #k "\n    fmv.d.x " r ", t1\n"
#define FCHK(r, k) "    addi t1, a2, " #k "\n    fmv.x.d t2, " r "\n    xor t1, t1, t2\n    or a0, a0, t1\n"
#else
#define TEST_PROBE_WHAT "s0-s11 (no FPU)"
#define FS(op) ""
#define FSET(r, k) ""
#define FCHK(r, k) ""
#endif
#define XR(op) \
    "    " op " ra, 0(sp)\n    " op " s0, 8(sp)\n    " op " s1, 16(sp)\n" \
    "    " op " s2, 24(sp)\n    " op " s3, 32(sp)\n    " op " s4, 40(sp)\n" \
    "    " op " s5, 48(sp)\n    " op " s6, 56(sp)\n    " op " s7, 64(sp)\n" \
    "    " op " s8, 72(sp)\n    " op " s9, 80(sp)\n    " op " s10, 88(sp)\n" \
    "    " op " s11, 96(sp)\n"
#define X(r, k) "    addi t1, a2, " #k "\n    xor t1, t1, " r "\n    or a0, a0, t1\n"
__asm__(
    TEST_PROBE_BEGIN
    "    addi sp, sp, -224\n"
    XR("sd") FS("fsd")
    "    sd a2, 200(sp)\n"
    "    mv t0, a0\n    mv a0, a1\n"
    "    addi s0, a2, 1\n    addi s1, a2, 2\n    addi s2, a2, 3\n    addi s3, a2, 4\n"
    "    addi s4, a2, 5\n    addi s5, a2, 6\n    addi s6, a2, 7\n    addi s7, a2, 8\n"
    "    addi s8, a2, 9\n    addi s9, a2, 10\n    addi s10, a2, 11\n    addi s11, a2, 12\n"
    FSET("fs0", 21) FSET("fs1", 22) FSET("fs2", 23) FSET("fs3", 24) FSET("fs4", 25) FSET("fs5", 26)
    FSET("fs6", 27) FSET("fs7", 28) FSET("fs8", 29) FSET("fs9", 30) FSET("fs10", 31) FSET("fs11", 32)
    "    jalr t0\n"
    "    ld a2, 200(sp)\n    li a0, 0\n"
    X("s0", 1) X("s1", 2) X("s2", 3) X("s3", 4) X("s4", 5) X("s5", 6)
    X("s6", 7) X("s7", 8) X("s8", 9) X("s9", 10) X("s10", 11) X("s11", 12)
    FCHK("fs0", 21) FCHK("fs1", 22) FCHK("fs2", 23) FCHK("fs3", 24) FCHK("fs4", 25) FCHK("fs5", 26)
    FCHK("fs6", 27) FCHK("fs7", 28) FCHK("fs8", 29) FCHK("fs9", 30) FCHK("fs10", 31) FCHK("fs11", 32)
    XR("ld") FS("fld")
    "    addi sp, sp, 224\n"
    "    ret\n"
    TEST_PROBE_END);
#undef X
#undef XR
#undef FS
#undef FSET
#undef FCHK

#elif defined(__mips__) && defined(_ABIO32) && _MIPS_SIM == _ABIO32
#define TEST_PROBE_AVAILABLE 1
/* frame: [0..15] the callee's argument area, [16] a double to move FP values through, [24] seed,
   [32..79] caller's $f20-$f30 (even; pairs with FR=0), [80..119] caller's $s0-$s7 $fp $ra */
#if defined(__mips_hard_float)
#define TEST_PROBE_WHAT "$s0-$s7 $fp, $f20-$f30 even as doubles (with FR=0 the pairs $f20-$f31)"
#define FSAVE(op) "    " op " $f20, 32($sp)\n    " op " $f22, 40($sp)\n    " op " $f24, 48($sp)\n" \
                    "    " op " $f26, 56($sp)\n    " op " $f28, 64($sp)\n    " op " $f30, 72($sp)\n"
/* both halves of the double differ, so a register pair that lost either half is seen */
#define FSET(r, k) "    addiu $t0, $a2, " #k "\n    sw $t0, 16($sp)\n    addiu $t0, $a2, " #k "+50\n" \
                     "    sw $t0, 20($sp)\n    ldc1 " r ", 16($sp)\n"
#define FCHK(r, k) "    sdc1 " r ", 16($sp)\n    lw $t1, 16($sp)\n    addiu $t0, $a2, " #k "\n" \
                     "    xor $t0, $t0, $t1\n    or $v0, $v0, $t0\n    lw $t1, 20($sp)\n" \
                     "    addiu $t0, $a2, " #k "+50\n    xor $t0, $t0, $t1\n    or $v0, $v0, $t0\n"
#else
#define TEST_PROBE_WHAT "$s0-$s7 $fp (soft-float)"
#define FSAVE(op) ""
#define FSET(r, k) ""
#define FCHK(r, k) ""
#endif
#define XR(op) "    " op " $s0, 80($sp)\n    " op " $s1, 84($sp)\n    " op " $s2, 88($sp)\n" \
               "    " op " $s3, 92($sp)\n    " op " $s4, 96($sp)\n    " op " $s5, 100($sp)\n" \
               "    " op " $s6, 104($sp)\n    " op " $s7, 108($sp)\n    " op " $fp, 112($sp)\n" \
               "    " op " $ra, 116($sp)\n"
#define X(r, k) "    addiu $t0, $a2, " #k "\n    xor $t0, $t0, " r "\n    or $v0, $v0, $t0\n"
__asm__(
    TEST_PROBE_BEGIN
    "    .set push\n    .set nomips16\n    .set nomicromips\n    .set reorder\n"
    "    addiu $sp, $sp, -120\n"
    XR("sw") FSAVE("sdc1")
    "    sw $a2, 24($sp)\n"
    "    move $t9, $a0\n    move $a0, $a1\n"
    "    addiu $s0, $a2, 1\n    addiu $s1, $a2, 2\n    addiu $s2, $a2, 3\n    addiu $s3, $a2, 4\n"
    "    addiu $s4, $a2, 5\n    addiu $s5, $a2, 6\n    addiu $s6, $a2, 7\n    addiu $s7, $a2, 8\n"
    "    addiu $fp, $a2, 9\n"
    FSET("$f20", 21) FSET("$f22", 22) FSET("$f24", 23) FSET("$f26", 24) FSET("$f28", 25) FSET("$f30", 26)
    "    jalr $t9\n"
    "    lw $a2, 24($sp)\n    move $v0, $zero\n"
    X("$s0", 1) X("$s1", 2) X("$s2", 3) X("$s3", 4) X("$s4", 5) X("$s5", 6) X("$s6", 7) X("$s7", 8)
    X("$fp", 9)
    FCHK("$f20", 21) FCHK("$f22", 22) FCHK("$f24", 23) FCHK("$f26", 24) FCHK("$f28", 25) FCHK("$f30", 26)
    XR("lw") FSAVE("ldc1")
    "    addiu $sp, $sp, 120\n"
    "    jr $ra\n"
    "    .set pop\n"
    TEST_PROBE_END);
#undef X
#undef XR
#undef FSAVE
#undef FSET
#undef FCHK

#elif defined(__mips__) && defined(_ABI64) && _MIPS_SIM == _ABI64
#define TEST_PROBE_AVAILABLE 1
/* frame: [0] seed, [8..95] caller's $s0-$s7 $gp $fp $ra, [96..159] caller's $f24-$f31.  $gp may
   hold anything across the call: the C function called sets up its own from $t9 and restores
   ours, as n64 makes it callee-saved. */
#if defined(__mips_hard_float)
#define TEST_PROBE_WHAT "$s0-$s7 $gp $fp, $f24-$f31"
#define FSAVE(op) "    " op " $f24, 96($sp)\n    " op " $f25, 104($sp)\n    " op " $f26, 112($sp)\n" \
                    "    " op " $f27, 120($sp)\n    " op " $f28, 128($sp)\n    " op " $f29, 136($sp)\n" \
                    "    " op " $f30, 144($sp)\n    " op " $f31, 152($sp)\n"
#define FSET(r, k) "    daddiu $t0, $a2, " #k "\n    dmtc1 $t0, " r "\n"
#define FCHK(r, k) "    dmfc1 $t1, " r "\n    daddiu $t0, $a2, " #k "\n    xor $t0, $t0, $t1\n    or $v0, $v0, $t0\n"
#else
#define TEST_PROBE_WHAT "$s0-$s7 $gp $fp (soft-float)"
#define FSAVE(op) ""
#define FSET(r, k) ""
#define FCHK(r, k) ""
#endif
#define XR(op) "    " op " $s0, 8($sp)\n    " op " $s1, 16($sp)\n    " op " $s2, 24($sp)\n" \
               "    " op " $s3, 32($sp)\n    " op " $s4, 40($sp)\n    " op " $s5, 48($sp)\n" \
               "    " op " $s6, 56($sp)\n    " op " $s7, 64($sp)\n    " op " $gp, 72($sp)\n" \
               "    " op " $fp, 80($sp)\n    " op " $ra, 88($sp)\n"
#define X(r, k) "    daddiu $t0, $a2, " #k "\n    xor $t0, $t0, " r "\n    or $v0, $v0, $t0\n"
__asm__(
    TEST_PROBE_BEGIN
    "    .set push\n    .set nomips16\n    .set nomicromips\n    .set reorder\n"
    "    daddiu $sp, $sp, -160\n"
    XR("sd") FSAVE("sdc1")
    "    sd $a2, 0($sp)\n"
    "    move $t9, $a0\n    move $a0, $a1\n"
    "    daddiu $s0, $a2, 1\n    daddiu $s1, $a2, 2\n    daddiu $s2, $a2, 3\n    daddiu $s3, $a2, 4\n"
    "    daddiu $s4, $a2, 5\n    daddiu $s5, $a2, 6\n    daddiu $s6, $a2, 7\n    daddiu $s7, $a2, 8\n"
    "    daddiu $gp, $a2, 9\n    daddiu $fp, $a2, 10\n"
    FSET("$f24", 21) FSET("$f25", 22) FSET("$f26", 23) FSET("$f27", 24)
    FSET("$f28", 25) FSET("$f29", 26) FSET("$f30", 27) FSET("$f31", 28)
    "    jalr $t9\n"
    "    ld $a2, 0($sp)\n    move $v0, $zero\n"
    X("$s0", 1) X("$s1", 2) X("$s2", 3) X("$s3", 4) X("$s4", 5) X("$s5", 6) X("$s6", 7) X("$s7", 8)
    X("$gp", 9) X("$fp", 10)
    FCHK("$f24", 21) FCHK("$f25", 22) FCHK("$f26", 23) FCHK("$f27", 24)
    FCHK("$f28", 25) FCHK("$f29", 26) FCHK("$f30", 27) FCHK("$f31", 28)
    XR("ld") FSAVE("ldc1")
    "    daddiu $sp, $sp, 160\n"
    "    jr $ra\n"
    "    .set pop\n"
    TEST_PROBE_END);
#undef X
#undef XR
#undef FSAVE
#undef FSET
#undef FCHK

#elif defined(__powerpc__)
#define TEST_PROBE_AVAILABLE 1
/* PowerPC, 32 and 64 bits.  The assembler repeats each step for a list of registers (.irp), which
   keeps the string under the 4095 bytes a C99 compiler must accept.  Values: r14-r31 get seed+1..18,
   f14-f31 seed+21..38 (and +50 in the other word on 32 bits), v20-v31 seed+41..52 (+100, +200,
   +300 in the other words), VRSAVE seed+0x77, CR2-CR3 a constant and CR4 seed bits 12-15, which
   differ between the contexts. */
#define IRP(list, body) ".irp i," list "\n" body ".endr\n"
#define I18 "14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31"
#define I12 "20,21,22,23,24,25,26,27,28,29,30,31"
#define ACC(reg) "    xor %r0, %r0, " reg "\n    or %r3, %r3, %r0\n"   /* result |= r0 ^ reg */
#if !defined(_SOFT_FLOAT) && !defined(__NO_FPRS__)
#define TEST_PROBE_FPU_WHAT ", f14-f31"
#define HAVE_FPU 1
#else
#define TEST_PROBE_FPU_WHAT " (soft-float)"
#endif
#if defined(__ALTIVEC__) && (!defined(__powerpc64__) || _CALL_ELF != 2)
#define TEST_PROBE_VR_WHAT ", v20-v31, VRSAVE"
#define HAVE_VRSAVE 1                         /* callee-saved, except under ELFv2 (reserved) */
#elif defined(__ALTIVEC__)
#define TEST_PROBE_VR_WHAT ", v20-v31"
#else
#define TEST_PROBE_VR_WHAT ""
#endif
#define TEST_PROBE_WHAT "r14-r31, CR2-CR4" TEST_PROBE_FPU_WHAT TEST_PROBE_VR_WHAT

#if !defined(__powerpc64__)
/* frame: [0] back chain, [4] a callee's LR, [16] seed, [20] caller's CR, [24..95] caller's
   r14-r31, [96..239] caller's f14-f31, [240] a double to move values through, [248] caller's
   VRSAVE, [256..447] caller's v20-v31, [448..463] a vector to move values through; our LR goes to
   the caller's frame (468 from the new r1). */
#define W "4"
#define FRAME "464"
#define ST "stw"
#define LD "lwz"
#define STU "stwu"
#define OFF_SEED "16"
#define OFF_CR "20"
#define OFF_GPR "24"
#define OFF_FPR "96"
#define OFF_FTMP "240"
#define OFF_VRSAVE "248"
#define OFF_VR "256"
#define OFF_VTMP "448"
#define OFF_LR_IN "4"
#define OFF_LR "468"
#define CALL_FN "    mtctr %r3\n"
#define FSET IRP(I18, "    addi %r0, %r5, \\i+7\n    stw %r0, 240(%r1)\n    addi %r0, %r5, \\i+57\n" \
                        "    stw %r0, 244(%r1)\n    lfd %f\\i, 240(%r1)\n")
#define FCHK IRP(I18, "    stfd %f\\i, 240(%r1)\n    lwz %r6, 240(%r1)\n    addi %r0, %r5, \\i+7\n" ACC("%r6") \
                        "    lwz %r6, 244(%r1)\n    addi %r0, %r5, \\i+57\n" ACC("%r6"))
#define VSET IRP(I12, "    addi %r0, %r5, \\i+21\n    stw %r0, 448(%r1)\n    addi %r0, %r5, \\i+121\n" \
                        "    stw %r0, 452(%r1)\n    addi %r0, %r5, \\i+221\n    stw %r0, 456(%r1)\n" \
                        "    addi %r0, %r5, \\i+321\n    stw %r0, 460(%r1)\n    li %r7, 448\n    lvx %v\\i, %r1, %r7\n")
#define VCHK IRP(I12, "    li %r7, 448\n    stvx %v\\i, %r1, %r7\n" \
                        "    lwz %r6, 448(%r1)\n    addi %r0, %r5, \\i+21\n" ACC("%r6") \
                        "    lwz %r6, 452(%r1)\n    addi %r0, %r5, \\i+121\n" ACC("%r6") \
                        "    lwz %r6, 456(%r1)\n    addi %r0, %r5, \\i+221\n" ACC("%r6") \
                        "    lwz %r6, 460(%r1)\n    addi %r0, %r5, \\i+321\n" ACC("%r6"))
#else
/* frame: [0..111] the linkage and parameter area for the callee, [112] seed, [120] caller's r2,
   [128] caller's CR, [136..279] caller's r14-r31, [280..423] caller's f14-f31, [424] a double to
   move values through, [432..447] a vector likewise, [448..639] caller's v20-v31, [640] caller's
   VRSAVE; our LR goes to the caller's frame (672 from the new r1).  r2 is not probed: the function
   called through a pointer sets its own TOC (ELFv2 from r12, ELFv1 from the descriptor); code of
   two modules on fibers is what shows that a switch keeps it. */
#define W "8"
#define FRAME "656"
#define ST "std"
#define LD "ld"
#define STU "stdu"
#define OFF_SEED "112"
#define OFF_CR "128"
#define OFF_GPR "136"
#define OFF_FPR "280"
#define OFF_FTMP "424"
#define OFF_VRSAVE "640"
#define OFF_VR "448"
#define OFF_VTMP "432"
#define OFF_LR_IN "16"
#define OFF_LR "672"
#if _CALL_ELF != 2
/* ELFv1: the probe is called through a descriptor in .opd, and calls fn through its descriptor */
#undef TEST_PROBE_BEGIN
#define TEST_PROBE_BEGIN \
       ".pushsection .opd,\"aw\"\n.p2align 3\n.globl test_probe_regs\n.type test_probe_regs,%function\n" \
       "test_probe_regs:\n.quad .L.test_probe_regs,.TOC.@tocbase,0\n.popsection\n" \
       ".pushsection .text\n.p2align 4\n.L.test_probe_regs:\n"
#define CALL_FN "    ld %r0, 0(%r3)\n    ld %r2, 8(%r3)\n    ld %r11, 16(%r3)\n    mtctr %r0\n"
#else
#define CALL_FN "    mr %r12, %r3\n    mtctr %r3\n"
#endif
#define FSET IRP(I18, "    addi %r0, %r5, \\i+7\n    std %r0, 424(%r1)\n    lfd %f\\i, 424(%r1)\n")
#define FCHK IRP(I18, "    stfd %f\\i, 424(%r1)\n    ld %r6, 424(%r1)\n    addi %r0, %r5, \\i+7\n" ACC("%r6"))
#define VSET IRP(I12, "    addi %r0, %r5, \\i+21\n    std %r0, 432(%r1)\n    addi %r0, %r5, \\i+121\n" \
                        "    std %r0, 440(%r1)\n    li %r7, 432\n    lvx %v\\i, %r1, %r7\n")
#define VCHK IRP(I12, "    li %r7, 432\n    stvx %v\\i, %r1, %r7\n" \
                        "    ld %r6, 432(%r1)\n    addi %r0, %r5, \\i+21\n" ACC("%r6") \
                        "    ld %r6, 440(%r1)\n    addi %r0, %r5, \\i+121\n" ACC("%r6"))
#endif
#define GPRS(op) IRP(I18, "    " op " %r\\i, " OFF_GPR "+" W "*(\\i-14)(%r1)\n")
#if defined(HAVE_FPU)
#define FPRS(op) IRP(I18, "    " op " %f\\i, " OFF_FPR "+8*(\\i-14)(%r1)\n")
#else
#define FPRS(op) ""
#undef FSET
#undef FCHK
#define FSET ""
#define FCHK ""
#endif
#if defined(__ALTIVEC__)
#define VRS(op) IRP(I12, "    li %r7, " OFF_VR "+16*(\\i-20)\n    " op " %v\\i, %r1, %r7\n")
#else
#define VRS(op) ""
#undef VSET
#undef VCHK
#define VSET ""
#define VCHK ""
#endif
#if defined(HAVE_VRSAVE)
#define VRSAVE_SAVE "    mfvrsave %r0\n    " ST " %r0, " OFF_VRSAVE "(%r1)\n"
#define VRSAVE_SET "    addi %r0, %r5, 0x77\n    mtvrsave %r0\n"
#define VRSAVE_CHK "    mfvrsave %r6\n    addi %r0, %r5, 0x77\n" ACC("%r6")
#define VRSAVE_LOAD "    " LD " %r0, " OFF_VRSAVE "(%r1)\n    mtvrsave %r0\n"
#else
#define VRSAVE_SAVE ""
#define VRSAVE_SET ""
#define VRSAVE_CHK ""
#define VRSAVE_LOAD ""
#endif
#if defined(__powerpc64__)
#define TOC_SAVE "    std %r2, 120(%r1)\n"
#define TOC_LOAD "    ld %r2, 120(%r1)\n"
#else
#define TOC_SAVE ""
#define TOC_LOAD ""
#endif
__asm__(
    TEST_PROBE_BEGIN
    "    mflr %r0\n    " ST " %r0, " OFF_LR_IN "(%r1)\n"
    "    " STU " %r1, -" FRAME "(%r1)\n"
    "    mfcr %r0\n    " ST " %r0, " OFF_CR "(%r1)\n"
    TOC_SAVE GPRS(ST) FPRS("stfd") VRS("stvx") VRSAVE_SAVE
    "    " ST " %r5, " OFF_SEED "(%r1)\n"
    CALL_FN
    "    mr %r3, %r4\n"
    IRP(I18, "    addi %r\\i, %r5, \\i-13\n")
    "    xoris %r0, %r5, 0xa5\n    mtcrf 0x38, %r0\n"
    FSET VSET VRSAVE_SET
    "    bctrl\n"
    TOC_LOAD
    "    " LD " %r5, " OFF_SEED "(%r1)\n    li %r3, 0\n"
    IRP(I18, "    addi %r0, %r5, \\i-13\n" ACC("%r\\i"))
    "    mfcr %r6\n    xoris %r0, %r5, 0xa5\n    xor %r0, %r0, %r6\n    rlwinm %r0, %r0, 0, 8, 19\n"
    "    or %r3, %r3, %r0\n"
    FCHK VCHK VRSAVE_CHK
    GPRS(LD) FPRS("lfd") VRS("lvx") VRSAVE_LOAD
    "    " LD " %r0, " OFF_CR "(%r1)\n    mtcrf 0x38, %r0\n"
    "    " LD " %r0, " OFF_LR "(%r1)\n    mtlr %r0\n"
    "    addi %r1, %r1, " FRAME "\n"
    "    blr\n"
    TEST_PROBE_END);
#undef IRP
#undef I18
#undef I12
#undef ACC
#undef HAVE_FPU
#undef HAVE_VRSAVE
#undef W
#undef FRAME
#undef ST
#undef LD
#undef STU
#undef OFF_SEED
#undef OFF_CR
#undef OFF_GPR
#undef OFF_FPR
#undef OFF_FTMP
#undef OFF_VRSAVE
#undef OFF_VR
#undef OFF_VTMP
#undef OFF_LR_IN
#undef OFF_LR
#undef CALL_FN
#undef FSET
#undef FCHK
#undef VSET
#undef VCHK
#undef GPRS
#undef FPRS
#undef VRS
#undef VRSAVE_SAVE
#undef VRSAVE_SET
#undef VRSAVE_CHK
#undef VRSAVE_LOAD
#undef TOC_SAVE
#undef TOC_LOAD

#elif defined(__s390x__)
#define TEST_PROBE_AVAILABLE 1
#define TEST_PROBE_WHAT "r6-r13, f8-f15"
/* r6-r15 go to the caller's save area (standard slots); our frame: [0..159] the callee's save
   area, [160] seed, [168..231] caller's f8-f15, [232] a double to move FP values through */
#define FR(op) "    " op " %f8, 168(%r15)\n    " op " %f9, 176(%r15)\n    " op " %f10, 184(%r15)\n" \
               "    " op " %f11, 192(%r15)\n    " op " %f12, 200(%r15)\n    " op " %f13, 208(%r15)\n" \
               "    " op " %f14, 216(%r15)\n    " op " %f15, 224(%r15)\n"
#define FSET(r, k) "    la %r0, " #k "(%r4)\n    stg %r0, 232(%r15)\n    ld " r ", 232(%r15)\n"
#define FCHK(r, k) "    std " r ", 232(%r15)\n    lg %r1, 232(%r15)\n    la %r0, " #k "(%r4)\n" \
                   "    xgr %r0, %r1\n    ogr %r2, %r0\n"
#define X(r, k) "    la %r0, " #k "(%r4)\n    xgr %r0, " r "\n    ogr %r2, %r0\n"
__asm__(
    TEST_PROBE_BEGIN
    "    stmg %r6, %r15, 48(%r15)\n"
    "    lgr %r1, %r15\n    aghi %r15, -240\n    stg %r1, 0(%r15)\n"
    FR("std")
    "    stg %r4, 160(%r15)\n"
    "    lgr %r1, %r2\n    lgr %r2, %r3\n"
    "    la %r6, 1(%r4)\n    la %r7, 2(%r4)\n    la %r8, 3(%r4)\n    la %r9, 4(%r4)\n"
    "    la %r10, 5(%r4)\n    la %r11, 6(%r4)\n    la %r12, 7(%r4)\n    la %r13, 8(%r4)\n"
    FSET("%f8", 21) FSET("%f9", 22) FSET("%f10", 23) FSET("%f11", 24)
    FSET("%f12", 25) FSET("%f13", 26) FSET("%f14", 27) FSET("%f15", 28)
    "    basr %r14, %r1\n"
    "    lg %r4, 160(%r15)\n    lghi %r2, 0\n"
    X("%r6", 1) X("%r7", 2) X("%r8", 3) X("%r9", 4) X("%r10", 5) X("%r11", 6) X("%r12", 7) X("%r13", 8)
    FCHK("%f8", 21) FCHK("%f9", 22) FCHK("%f10", 23) FCHK("%f11", 24)
    FCHK("%f12", 25) FCHK("%f13", 26) FCHK("%f14", 27) FCHK("%f15", 28)
    FR("ld")
    "    lmg %r6, %r15, 240+48(%r15)\n"
    "    br %r14\n"
    TEST_PROBE_END);
#undef X
#undef FR
#undef FSET
#undef FCHK
#endif

#if defined(TEST_PROBE_AVAILABLE)
#if defined(__cplusplus)
extern "C"
#endif
uintptr_t test_probe_regs(void (*fn)(void *), void *arg, uintptr_t seed) __asm__("test_probe_regs");
#endif

#endif /* TEST_PROBE_H */
