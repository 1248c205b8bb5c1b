#!/bin/sh
# footprint.sh - the README's footprint table: per CPU, the .text of the implementation alone
# (tests/headers/impl.c at -Os, with and without fibers), its static data, and the size of every
# public struct.
# Run by `make footprint`; prints a Markdown table.  Nothing is run: the sizes are read from the
# objects' symbol tables, so no emulator is needed.  CPUs whose compiler is missing are left out.
cd "$(dirname "$0")/.." || exit 1

B=build/footprint
mkdir -p "$B"
STRUCTS="evl_loop evl_io evl_timer evl_signal evl_child evl_async evl_hook evl_fiber evl_chan"

# One global array per struct, as long as the struct: nm -S reports each array's size.
{
    echo '#include "../../evloop.h"'
    for s in $STRUCTS; do
        [ "$s" = evl_fiber ] || [ "$s" = evl_chan ] || { echo "char sizeof_$s[sizeof($s)];"; continue; }
        echo "#if EVLOOP_HAS_FIBERS"
        echo "char sizeof_$s[sizeof($s)];"
        echo "#endif"
    done
} > "$B/sizes.c"

# text OBJECT SIZE-TOOL: the bytes of every .text section (the assembly routines have their own)
text() { "$2" -A "$1" | awk '$1 ~ /^\.text/ { t += $2 } END { print t + 0 }'; }
# static OBJECT SIZE-TOOL: writable static data, initialised or not (small-data sections included)
static() { "$2" -A "$1" | awk '$1 ~ /^\.s?(data|bss)$/ { t += $2 } END { print t + 0 }'; }

printf '| CPU (ABI) | .text | without fibers | .data + .bss |'
for s in $STRUCTS; do printf ' `%s` |' "$s"; done
printf '\n| --- | ---: | ---: | ---: |'
for s in $STRUCTS; do printf ' ---: |'; done
printf '\n'

# name | compiler and flags | binutils prefix
while IFS='|' read -r name cc tools; do
    name=$(echo "$name" | sed 's/ *$//') cc=$(echo "$cc" | sed 's/^ *//; s/ *$//') tools=$(echo "$tools" | sed 's/ //g')
    command -v "${cc%% *}" > /dev/null 2>&1 || continue
    o=$B/$(echo "$name" | tr -c 'A-Za-z0-9\n' '_')
    # shellcheck disable=SC2086
    $cc -Os -c tests/headers/impl.c -o "$o-impl.o" &&
        $cc -Os -DEVLOOP_NO_FIBERS -c tests/headers/impl.c -o "$o-impl-nofibers.o" &&
        $cc -fno-common -c "$B/sizes.c" -o "$o-sizes.o" || { echo "| $name | build failed |"; continue; }
    printf '| %s | %s | %s | %s |' "$name" "$(text "$o-impl.o" "${tools}size")" "$(text "$o-impl-nofibers.o" "${tools}size")" \
        "$(static "$o-impl.o" "${tools}size")"
    for s in $STRUCTS; do
        hex=$("${tools}nm" -S "$o-sizes.o" | awk -v sym="sizeof_$s" '$4 == sym { print $2 }')
        if [ -n "$hex" ]; then printf ' %d |' "0x$hex"; else printf ' — |'; fi
    done
    printf '\n'
done <<EOF
x86_64                           | gcc                                  |
i386                             | i686-linux-gnu-gcc                   | i686-linux-gnu-
AArch64                          | aarch64-linux-gnu-gcc                | aarch64-linux-gnu-
ARM Thumb-2, VFP (armhf)         | arm-linux-gnueabihf-gcc -mthumb      | arm-linux-gnueabihf-
ARM, no VFP (armel)              | arm-linux-gnueabi-gcc -marm -march=armv7-a -mfloat-abi=soft | arm-linux-gnueabi-
RISC-V 64 (lp64d)                | riscv64-linux-gnu-gcc                | riscv64-linux-gnu-
MIPS32 o32, FPU                  | mipsel-linux-gnu-gcc                 | mipsel-linux-gnu-
MIPS64 n64, FPU                  | mips64el-linux-gnuabi64-gcc          | mips64el-linux-gnuabi64-
PowerPC 32, FPU                  | powerpc-linux-gnu-gcc                | powerpc-linux-gnu-
PowerPC 64 ELFv1                 | powerpc64-linux-gnu-gcc              | powerpc64-linux-gnu-
PowerPC 64 ELFv2 LE (VSX)        | powerpc64le-linux-gnu-gcc            | powerpc64le-linux-gnu-
s390x                            | s390x-linux-gnu-gcc                  | s390x-linux-gnu-
EOF
