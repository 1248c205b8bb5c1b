#!/bin/sh
# matrix.sh - the test suite, fibers included, on every CPU and C library evloop supports, and the
# context switch alone where the loop cannot run yet.  Run by `make check-cross`.
#
#   whole suite    aarch64, armhf (ARM and Thumb-2), armel soft-float on a CPU without VFP,
#                  riscv64 (all under qemu-user), i386 (static, natively or under qemu-i386),
#                  the ucontext fallback forced, musl (static), and with EVLOOP_NO_FIBERS
#   context only   x86_64 Windows (mingw, run under wine), RISC-V 64 without F/D (freestanding,
#                  under qemu with the FPU switched off)
#   strict compile the implementation with every warning an error, for each cross compiler
#   boards         the quick rows of tests/boards.sh: MIPS with musl (the default build that
#                  used to fail to link), PowerPC 64 ELFv1 with glibc, the context switch in its
#                  FPU variants (MIPS FR=0/FR=1, AltiVec) and soft-float without a C library, and
#                  fibers left out where no switch exists; `make check-boards` runs every row
#
# One line per configuration; exit status 1 if any failed.  Builds go to build/cross/.
cd "$(dirname "$0")/.." || exit 1

B=build/cross
mkdir -p "$B"
SRC=$(ls tests/*.c)
TESTWARN="-O2 -g -std=gnu99 -Wall -Wextra -Wpedantic -Wshadow -Werror -pthread"
STRICT="-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror -O2"
failed=0

say() { printf '%-40s %s\n' "$1" "$2"; }

# suite NAME "RUNNER" COMPILER FLAGS... : build the test suite and run it; the runner's last line
# says "N passed, N failed".
suite() {
    name=$1 runner=$2 start=$(date +%s)
    shift 2
    log=$B/$name.log
    if ! "$@" $TESTWARN $SRC -o "$B/test-$name" -lm > "$log" 2>&1; then
        say "$name" "BUILD FAILED (see $log)"
        failed=1
        return
    fi
    # shellcheck disable=SC2086
    EVL_TEST_SLOW=1 EVL_TEST_TIMEOUT=120 timeout 900 $runner "$B/test-$name" >> "$log" 2>&1
    rc=$?
    say "$name" "rc=$rc  $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)  ($(($(date +%s) - start)) s)"
    [ $rc -eq 0 ] || { failed=1; grep -E '^FAIL' "$log" | head -n 5; }
}

# ctx NAME "RUNNER" COMPILER FLAGS... : the context switch tests, two translation units.
ctx() {
    name=ctx-$1 runner=$2 start=$(date +%s)
    shift 2
    log=$B/$name.log
    exe=$B/$name
    case "$1" in *mingw*) exe=$B/$name.exe ;; esac
    if ! "$@" $STRICT tests/ctx/test_ctx.c tests/ctx/test_ctx_tu2.c -o "$exe" -lm > "$log" 2>&1; then
        say "$name" "BUILD FAILED (see $log)"
        failed=1
        return
    fi
    # shellcheck disable=SC2086
    timeout 300 $runner "$exe" >> "$log" 2>&1
    rc=$?
    say "$name" "rc=$rc  $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)  ($(($(date +%s) - start)) s)"
    [ $rc -eq 0 ] || failed=1
}

# strict NAME COMPILER FLAGS... : the implementation alone, every warning an error.
strict() {
    name=$1
    shift
    if "$@" $STRICT -c tests/headers/impl.c -o "$B/impl-$name.o" > "$B/strict-$name.log" 2>&1; then
        say "strict-$name" "clean"
    else
        say "strict-$name" "WARNINGS (see $B/strict-$name.log)"
        failed=1
    fi
}

A64="qemu-aarch64 -L /usr/aarch64-linux-gnu"
ARMHF="qemu-arm -L /usr/arm-linux-gnueabihf"
ARMEL="qemu-arm -cpu cortex-r5 -L /usr/arm-linux-gnueabi"      # cortex-r5: no VFP at all
RV64="qemu-riscv64 -L /usr/riscv64-linux-gnu"

strict aarch64 aarch64-linux-gnu-gcc
strict armhf-thumb arm-linux-gnueabihf-gcc -mthumb
strict armel-soft arm-linux-gnueabi-gcc -march=armv7-a -mfloat-abi=soft
strict riscv64 riscv64-linux-gnu-gcc
strict i386 i686-linux-gnu-gcc
strict musl musl-gcc

suite aarch64 "$A64" aarch64-linux-gnu-gcc
suite armhf-arm "$ARMHF" arm-linux-gnueabihf-gcc -marm
suite armhf-thumb "$ARMHF" arm-linux-gnueabihf-gcc -mthumb
suite armel-no-vfp "$ARMEL" arm-linux-gnueabi-gcc -march=armv7-a -mfloat-abi=soft -marm
suite riscv64 "$RV64" riscv64-linux-gnu-gcc
# i386 binaries run natively where the kernel has 32-bit support; qemu-i386 otherwise.
if printf 'int main(void){return 0;}' | i686-linux-gnu-gcc -static -x c - -o "$B/probe-i386" 2>/dev/null &&
    "$B/probe-i386" 2>/dev/null; then I386=""; else I386="qemu-i386"; fi
suite i386 "$I386" i686-linux-gnu-gcc -static
suite ucontext "" gcc -DEVLOOP_FIBER_UCONTEXT
suite no-fibers "" gcc -DEVLOOP_NO_FIBERS
suite musl-static "" musl-gcc -static

ctx aarch64 "$A64" aarch64-linux-gnu-gcc
ctx armhf-thumb "$ARMHF" arm-linux-gnueabihf-gcc -mthumb
ctx armel-no-vfp "$ARMEL" arm-linux-gnueabi-gcc -march=armv7-a -mfloat-abi=soft
ctx riscv64 "$RV64" riscv64-linux-gnu-gcc
ctx i386 "$I386" i686-linux-gnu-gcc -static
export WINEPREFIX="${WINEPREFIX:-$PWD/$B/wineprefix}" WINEDEBUG=-all
WINE=$(command -v wine64 || echo /usr/lib/wine/wine64)
ctx win64 "$WINE" x86_64-w64-mingw32-gcc

# RISC-V without F/D: Debian has no lp64 C library, so a freestanding build under qemu with the
# FPU switched off (one stray floating-point instruction would kill it).
log=$B/ctx-rv64imac.log
if riscv64-linux-gnu-gcc $STRICT -Itests/ctx/freestanding -march=rv64imac -mabi=lp64 -ffreestanding -nostdlib -static -fno-stack-protector \
    tests/ctx/test_ctx_free.c -o "$B/ctx-rv64imac" > "$log" 2>&1; then
    timeout 120 qemu-riscv64 -cpu rv64,f=false,d=false "$B/ctx-rv64imac" >> "$log" 2>&1
    rc=$?
    say ctx-rv64imac "rc=$rc  $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)"
    [ $rc -eq 0 ] || failed=1
else
    say ctx-rv64imac "BUILD FAILED (see $log)"
    failed=1
fi

sh tests/boards.sh mips-musl ppc64-glibc mips-fp32-glibc mipsel-fp64-glibc ppc-altivec-glibc ppc64-altivec-glibc \
    mips64el-soft ppc-soft ppc64-soft ppc64le-soft thumb1-musl || failed=1

exit $failed
