#!/bin/sh
# boards.sh - the whole test suite on the CPUs and C libraries of firmware-like boards, each under
# qemu-user, and the context switch alone in the variants a board may build (FPU modes, AltiVec,
# soft-float, a shared library).  Run by `make check-boards`, which CI runs.
#
#   tests/boards.sh              every row, JOBS at a time (default 2); one line per row, in order
#   tests/boards.sh ROW...       only these rows
#   tests/boards.sh --list       the rows
#   ZIG=path                     zig 0.11 (default /opt/zig/package/zig; .ci/run installs it)
#
# Each row says what it checks:
#   suite    the whole test suite (tests/*.c), fibers included where the build has them
#   ctx      the context switch alone (tests/ctx/test_ctx.c and test_ctx_tu2.c)
#   shared   the same with test_ctx_tu2.c as a shared library: contexts of two modules, so a
#            switch must keep each side's TOC (PowerPC 64) or $gp (MIPS n64)
#   free     the context switch without a C library (tests/ctx/test_ctx_free.c), for ABIs that
#            have none here; under qemu on a CPU without an FPU where qemu has one
#   nofibers the build has neither an assembly switch nor makecontext (ARMv6 Thumb-1 with musl):
#            fibers are left out by themselves (EVLOOP_HAS_FIBERS is 0), the implementation
#            compiles warning-free and refers to no context function.  Not linked or run: the
#            core's atomics would need libatomic there, which zig does not ship for Thumb-1
#            (and clang warns that they are not lock-free, hence -Wno-atomic-alignment)
#   nofp     the freestanding binary contains no floating-point instruction (soft-float proof
#            where qemu has no CPU without an FPU)
#   strict   the implementation alone with every warning an error: C99 with -Wconversion with the
#            row's compiler and with clang, and C++ with clang++ (the Debian cross compilers here
#            have no C++)
#
# Rows that are missing, and why: s390x with musl (zig 0.11's linker cannot link s390x); PowerPC
# soft-float with a C library (zig 0.11 cannot build musl for it, Debian has none: the free rows
# cover it); MIPS n32 (no assembly switch: glibc's ucontext; not a board ABI worth a row).
#
# Logs and binaries go to build/boards/; exit status 1 if any row failed.
cd "$(dirname "$0")/.." || exit 1

B=build/boards
ZIG=${ZIG:-/opt/zig/package/zig}
JOBS=${JOBS:-2}
TESTWARN="-O2 -g -std=gnu99 -Wall -Wextra -Wpedantic -Wshadow -Werror -pthread"
STRICT="-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror -O2"
STRICT_CXX="-std=c++11 -Wall -Wextra -Werror -O2"
FREE="-Itests/ctx/freestanding -ffreestanding -nostdlib -static -fno-stack-protector"

# name | C library | compiler and flags | runner | checks.  zig rows link statically; Debian's
# (glibc) are dynamic, so qemu gets -L /usr/TRIPLE, the cross C library.  The strict check also
# compiles with clang for the same target: zig's own, or clang --target=TRIPLE with the row's flags.
rows() {
    cat <<EOF
mips-musl | musl | \$ZIG cc -target mips-linux-musl -static | qemu-mips | suite ctx strict
mipsel-musl | musl | \$ZIG cc -target mipsel-linux-musl -static | qemu-mipsel | suite ctx strict
mips-musl-soft | musl | \$ZIG cc -target mips-linux-musl -static -msoft-float | qemu-mips -cpu 24Kc | suite ctx strict
mips64-musl | musl | \$ZIG cc -target mips64-linux-musl -static | qemu-mips64 -cpu MIPS64R2-generic | suite ctx strict
mips64el-musl | musl | \$ZIG cc -target mips64el-linux-musl -static | qemu-mips64el -cpu MIPS64R2-generic | suite ctx strict
ppc-musl | musl | \$ZIG cc -target powerpc-linux-musl -static | qemu-ppc | suite ctx strict
ppc64-musl | musl | \$ZIG cc -target powerpc64-linux-musl -static | qemu-ppc64 | suite ctx strict
ppc64le-musl | musl | \$ZIG cc -target powerpc64le-linux-musl -static | qemu-ppc64le | suite ctx strict
armhf-musl | musl | \$ZIG cc -target arm-linux-musleabihf -static | qemu-arm | suite ctx strict
aarch64-musl | musl | \$ZIG cc -target aarch64-linux-musl -static | qemu-aarch64 | suite ctx strict
riscv64-musl | musl | \$ZIG cc -target riscv64-linux-musl -static | qemu-riscv64 | suite ctx strict
thumb1-musl | musl | \$ZIG cc -target thumb-linux-musleabihf -static -Wno-atomic-alignment |  | nofibers
mips-glibc | glibc | mips-linux-gnu-gcc | qemu-mips | suite ctx shared strict
mipsel-glibc | glibc | mipsel-linux-gnu-gcc | qemu-mipsel | suite ctx shared strict
mips64-glibc | glibc | mips64-linux-gnuabi64-gcc | qemu-mips64 -cpu MIPS64R2-generic | suite ctx shared strict
mips64el-glibc | glibc | mips64el-linux-gnuabi64-gcc | qemu-mips64el -cpu MIPS64R2-generic | suite ctx shared strict
ppc-glibc | glibc | powerpc-linux-gnu-gcc | qemu-ppc | suite ctx shared strict
ppc64-glibc | glibc | powerpc64-linux-gnu-gcc | qemu-ppc64 | suite ctx shared strict
ppc64le-glibc | glibc | powerpc64le-linux-gnu-gcc | qemu-ppc64le | suite ctx shared strict
s390x-glibc | glibc | s390x-linux-gnu-gcc | qemu-s390x | suite ctx shared strict
mips-fp32-glibc | glibc | mips-linux-gnu-gcc -mfp32 | qemu-mips | ctx strict
mipsel-fp64-glibc | glibc | mipsel-linux-gnu-gcc -mfp64 -mips32r2 | qemu-mipsel | ctx strict
ppc-altivec-glibc | glibc | powerpc-linux-gnu-gcc -maltivec -mcpu=7400 | qemu-ppc -cpu 7400 | ctx shared strict
ppc64-altivec-glibc | glibc | powerpc64-linux-gnu-gcc -maltivec | qemu-ppc64 | ctx shared strict
mips64el-soft | none | mips64el-linux-gnuabi64-gcc -msoft-float | qemu-mips64el -cpu 5Kc | free strict
ppc-soft | none | powerpc-linux-gnu-gcc -msoft-float | qemu-ppc -cpu 405d2 | free strict
ppc64-soft | none | powerpc64-linux-gnu-gcc -msoft-float | qemu-ppc64 | free nofp strict
ppc64le-soft | none | powerpc64le-linux-gnu-gcc -msoft-float -mno-altivec -mno-vsx | qemu-ppc64le | free nofp strict
EOF
}

trim() { printf '%s' "$1" | sed 's/^ *//; s/ *$//'; }

# count LOG: the "N passed, N failed" line a test program printed last, or nothing
count() { grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1 | sed 's/, [0-9]* skipped//'; }

# run_row NAME: build and run one row; prints its line, exit status 0 if everything passed
run_row() {
    line=$(rows | grep "^$1 *|") || { echo "$1: no such row"; return 1; }
    old_ifs=$IFS
    IFS='|'
    # shellcheck disable=SC2086
    set -- $line
    IFS=$old_ifs
    name=$(trim "$1") libc=$(trim "$2") cc=$(trim "$3") runner=$(trim "$4") checks=$(trim "$5")
    cc=$(eval "echo $cc")
    case $cc in
    "$ZIG cc"*)
        clang=$(echo "$cc" | sed 's/ -static//')
        clangxx="$ZIG c++${clang#"$ZIG cc"}" ;;
    *)
        triple=${cc%%-gcc*}
        flags=${cc#*-gcc}
        clang="clang --target=$triple$flags"
        clangxx="clang++ --target=$triple$flags"
        [ "$libc" = glibc ] && runner="$runner -L /usr/$triple" ;;
    esac
    d=$B/$name
    rm -rf "$d"
    mkdir -p "$d"
    log=$d/log
    start=$(date +%s)
    result="" ok=1
    note() { result="$result${result:+; }$1"; }
    for check in $checks; do
        case $check in
        suite)
            # shellcheck disable=SC2086
            if $cc $TESTWARN tests/*.c -o "$d/test" -lm >> "$log" 2>&1; then
                # shellcheck disable=SC2086
                EVL_TEST_SLOW=1 EVL_TEST_TIMEOUT=120 timeout 900 $runner "$d/test" > "$d/suite.out" 2>&1
                rc=$?
                note "suite $(count "$d/suite.out")"
                [ $rc -eq 0 ] || { ok=0; note "suite rc=$rc"; }
            else
                ok=0; note "suite BUILD FAILED"
            fi ;;
        ctx)
            # shellcheck disable=SC2086
            if $cc $STRICT tests/ctx/test_ctx.c tests/ctx/test_ctx_tu2.c -o "$d/ctx" -lm >> "$log" 2>&1; then
                # shellcheck disable=SC2086
                timeout 300 $runner "$d/ctx" > "$d/ctx.out" 2>&1
                rc=$?
                note "ctx $(count "$d/ctx.out")"
                [ $rc -eq 0 ] || { ok=0; note "ctx rc=$rc"; }
            else
                ok=0; note "ctx BUILD FAILED"
            fi ;;
        shared)
            # shellcheck disable=SC2086
            if $cc $STRICT -fPIC -shared tests/ctx/test_ctx_tu2.c -o "$d/libtu2.so" >> "$log" 2>&1 &&
                $cc $STRICT tests/ctx/test_ctx.c -L"$d" -ltu2 -Wl,-rpath,'$ORIGIN' -o "$d/ctx-shared" -lm \
                    >> "$log" 2>&1; then
                # shellcheck disable=SC2086
                timeout 300 $runner "$d/ctx-shared" > "$d/ctx-shared.out" 2>&1
                rc=$?
                note "shared $(count "$d/ctx-shared.out")"
                [ $rc -eq 0 ] || { ok=0; note "shared rc=$rc"; }
            else
                ok=0; note "shared BUILD FAILED"
            fi ;;
        free)
            # position-dependent code where _start does not set up what PIC needs ($gp, the GOT)
            case $cc in
            mips*) fixed="-mno-abicalls -fno-pic" ;;
            powerpc-*) fixed="-fno-pic" ;;
            *) fixed="" ;;
            esac
            # shellcheck disable=SC2086
            if $cc $STRICT $FREE $fixed tests/ctx/test_ctx_free.c -o "$d/ctx-free" >> "$log" 2>&1; then
                # shellcheck disable=SC2086
                timeout 120 $runner "$d/ctx-free" > "$d/ctx-free.out" 2>&1
                rc=$?
                note "free $(count "$d/ctx-free.out")"
                [ $rc -eq 0 ] || { ok=0; note "free rc=$rc"; }
            else
                ok=0; note "free BUILD FAILED"
            fi ;;
        nofibers)
            # no assembly switch for the CPU and no makecontext in the C library: the build leaves
            # fibers out by itself, and the implementation refers to no context function
            # shellcheck disable=SC2086
            if $cc $STRICT -c tests/headers/impl.c -o "$d/impl.o" >> "$log" 2>&1 &&
                $cc $STRICT -dM -E tests/headers/impl.c | grep -q 'define EVLOOP_HAS_FIBERS 0' &&
                ! grep -q -a -E 'getcontext|makecontext|swapcontext' "$d/impl.o"; then
                note "fibers left out, no context function referenced"
            else
                ok=0; note "fibers NOT left out"
            fi ;;
        nofp)
            # PowerPC floating-point and vector-scalar loads, stores, moves and arithmetic
            objdump=${cc%%-gcc*}-objdump
            fp='lf[sd]u?x?|stf[sd]u?x?|stfiwx|fmr|fneg|fabs|f[a-z]*add[s]?|fsub[s]?|fmul[s]?|fdiv[s]?|fmadd[s]?'
            fp="$fp|mffs|mtfs[a-z0-9]*|lxv[a-z0-9]*|stxv[a-z0-9]*|xs[a-z0-9]*|xv[a-z0-9]*"
            n=$($objdump -d "$d/ctx-free" | grep -cE "[[:space:]]($fp)[[:space:]]")
            if [ "$n" -eq 0 ]; then note "no FP instruction"; else ok=0; note "$n FP instructions"; fi ;;
        strict)
            # shellcheck disable=SC2086
            if $cc $STRICT -Itests/ctx/freestanding -c tests/headers/impl.c -o "$d/impl.o" >> "$log" 2>&1; then
                s="${cc%% *} clean"
            else
                ok=0; s="${cc%% *} WARNINGS"
            fi
            if [ "${cc%% *}" != "$ZIG" ]; then
                # shellcheck disable=SC2086
                if $clang $STRICT -Itests/ctx/freestanding -c tests/headers/impl.c -o "$d/impl-clang.o" \
                    >> "$log" 2>&1; then
                    s="$s, clang clean"
                else
                    ok=0; s="$s, clang WARNINGS"
                fi
            fi
            # shellcheck disable=SC2086
            if $clangxx $STRICT_CXX -Itests/ctx/freestanding -x c++ -c tests/headers/impl.c -o "$d/impl-cxx.o" \
                >> "$log" 2>&1; then
                s="$s, C++ clean"
            else
                ok=0; s="$s, C++ WARNINGS"
            fi
            note "$s" ;;
        esac
    done
    [ $ok -eq 1 ] || grep -hE '^FAIL' "$d"/*.out 2>/dev/null | head -n 5 | sed 's/^/      /' > "$d/fails"
    verdict=FAILED
    [ $ok -eq 1 ] && verdict=ok
    printf '%-20s %-6s %4ss  %s %s\n' "$name" "$libc" "$(($(date +%s) - start))" "$verdict" "$result" > "$d/line"
    cat "$d/line"
    [ -s "$d/fails" ] && cat "$d/fails"
    [ $ok -eq 1 ]
}

case "$1" in
--list) rows | sed 's/ *|.*//'; exit 0 ;;
--row) run_row "$2" > /dev/null 2>&1; exit $? ;;
esac

mkdir -p "$B"
if [ $# -gt 0 ]; then names="$*"; else names=$(rows | sed 's/ *|.*//'); fi
echo "== boards: $(echo "$names" | wc -w) rows, $JOBS at a time (logs in $B/ROW/)"
start=$(date +%s)
# shellcheck disable=SC2086
printf '%s\n' $names | xargs -P "$JOBS" -I{} sh "$0" --row {}
failed=0
for n in $names; do
    if [ -f "$B/$n/line" ]; then cat "$B/$n/line"; else echo "$n: did not run"; failed=1; fi
    [ -s "$B/$n/fails" ] && cat "$B/$n/fails"
    grep -q ' FAILED ' "$B/$n/line" 2>/dev/null && failed=1
done
echo "== boards: $(($(date +%s) - start)) s in all"
exit $failed
