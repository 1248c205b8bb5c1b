#!/bin/sh
# faults.sh - fault injection on every system call evloop makes, with the shipped code unchanged.
#
#   sh tests/robust/faults.sh DRIVER [K] [OUTDIR] [CONFIGS]
#
# FAULT_ROUNDS=n in the environment makes the driver repeat its phases n times (more occurrences).
# DRIVER is tests/robust/faults.c built.  For each configuration in CONFIGS (default "new old": the
# newer calls working; and epoll_pwait2 and pidfd_open refused with ENOSYS, as on an old kernel, so
# the timerfd and SIGCHLD fallbacks run), the script:
#   1. runs the driver once under `strace -k` and lists every system call of the traced thread
#      with the function that made it; a call whose first caller outside the C library is an evl
#      function is the library's;
#   2. for each such call and each errno that call can give (below), injects that errno at each of
#      the call's first K occurrences made by the library, one fault per run:
#        strace -e inject=CALL:error=ERRNO:when=N
#      and checks the driver's verdict (exit status 0: every phase either worked completely or
#      reported exactly that errno; no descriptor left behind; no spin; no lost event) and that
#      the fault really landed on a library call (strace -k on the injected call, again);
#   3. prints the faults injected, by call and errno, with how many the library absorbed (retried
#      or fell back: the driver saw nothing) and how many it reported.
#
# Errnos: EINTR for every call but getpid and rt_sigreturn (cannot fail), close and munmap (Linux
# releases the descriptor even when close reports EINTR, but an injected error skips the call, a
# state the kernel never produces); ENOMEM and ENOSPC for epoll_ctl; EMFILE, ENFILE and ENOMEM for
# each call that makes a descriptor, EMFILE for fcntl (evl_wait's F_DUPFD); ENOMEM for mmap and
# mprotect (a fiber's stack and guard page); EAGAIN for write (the wake-up); EPERM and ENOSYS for
# the newer calls (epoll_pwait2, pidfd_open, waitid with P_PIDFD).  Built for the poll backend, the driver makes
# ppoll or poll, fcntl and eventfd2 or pipe2 calls instead of the epoll ones.
#
# Only the traced thread is faulted (no -f): strace counts occurrences per thread and process, so
# with -f one fault would land in every thread and child at once.  The driver's loop runs there.

DRIVER=${1:?usage: faults.sh DRIVER [K] [OUTDIR] [CONFIGS]}
K=${2:-6}
OUT=${3:-$DRIVER.out}
CONFIGS=${4:-new old}
mkdir -p "$OUT"
rm -f "$OUT"/tally "$OUT"/failures "$OUT"/notes
touch "$OUT"/tally "$OUT"/notes

errnos_for() {
    case $1 in
    getpid | close | munmap | rt_sigreturn) ;;
    mmap | mprotect) echo ENOMEM ;;
    fcntl) echo EINTR EMFILE ;;
    epoll_ctl) echo EINTR ENOMEM ENOSPC ;;
    epoll_create1 | eventfd2 | timerfd_create | pipe2) echo EINTR EMFILE ENFILE ENOMEM ;;
    pidfd_open) echo EINTR EMFILE ENFILE ENOMEM EPERM ENOSYS ;;
    epoll_pwait2 | waitid) echo EINTR EPERM ENOSYS ;;
    write) echo EINTR EAGAIN ;;
    *) echo EINTR ;;
    esac
}

# From an strace -k log on stdin: "call occurrence caller" for every call the library made.
library_calls() {
    awk '
    function emit() { if (name != "") { n[name]++; if (caller ~ /^evl/) print name, n[name], caller }; name = "" }
    /^[a-z_0-9]+\(/ { emit(); name = $0; sub(/\(.*/, "", name); caller = ""; injected = /INJECTED/; next }
    /^ > / { if (caller == "" && $0 !~ /libc\.so|libpthread|ld-linux|vdso/) {
                 caller = $0; sub(/^ > [^(]*\(/, "", caller); sub(/[+)].*/, "", caller) }
             next }
    END { emit() }'
}

# The caller of the injected call $1, from an strace -k log on stdin.
injected_caller() {
    awk -v call="$1" '
    /^[a-z_0-9]+\(/ { inj = index($0, call "(") == 1 && /INJECTED/; next }
    /^ > / && inj && $0 !~ /libc\.so|libpthread|ld-linux|vdso/ {
        c = $0; sub(/^ > [^(]*\(/, "", c); sub(/[+)].*/, "", c); print c; exit }'
}

runs=0
failed=0
for config in $CONFIGS; do
    if [ $config = old ]; then
        refused="epoll_pwait2 pidfd_open"
        base="-e inject=epoll_pwait2,pidfd_open:error=ENOSYS"
    else
        refused=""
        base=""
    fi
    # shellcheck disable=SC2086
    if ! strace -k -o "$OUT/$config.enum" $base "$DRIVER" > "$OUT/$config.enum.out" 2>&1; then
        echo "faults: the driver fails without injection ($config):"; cat "$OUT/$config.enum.out"; exit 1
    fi
    library_calls < "$OUT/$config.enum" > "$OUT/$config.calls"
    for call in $(awk '{print $1}' "$OUT/$config.calls" | sort -u); do
        case " $refused " in *" $call "*) continue ;; esac
        for n in $(awk -v c="$call" -v k="$K" '$1 == c && ++seen <= k {print $2}' "$OUT/$config.calls"); do
            for err in $(errnos_for "$call"); do
                log="$OUT/run.strace"
                runs=$((runs + 1))
                # shellcheck disable=SC2086
                traced="$call$(printf ',%s' $refused)"       # an injection needs its call traced
                FAULT_ERRNO=$err FAULT_CALL=$call timeout 30 strace -k -qq -o "$log" -e trace="$traced" $base \
                    -e inject="$call":error="$err":when="$n" "$DRIVER" > "$OUT/run.out" 2> "$OUT/run.err"
                rc=$?
                caller=$(injected_caller "$call" < "$log")
                case $caller in
                evl*) ;;
                *)  # the occurrence drifted onto the program's own call in this run: not counted
                    echo "$config $call $err miss" >> "$OUT/tally"; continue ;;
                esac
                if grep -q '^made real' "$OUT/run.out"; then echo "$config $call $err" >> "$OUT/notes"; fi
                if [ $rc -ne 0 ]; then
                    failed=$((failed + 1))
                    { echo "FAIL $config: $call:error=$err:when=$n (in $caller), exit $rc"
                      cat "$OUT/run.out" "$OUT/run.err"; echo; } >> "$OUT/failures"
                    echo "$config $call $err fail" >> "$OUT/tally"
                elif grep -q '^reported' "$OUT/run.out"; then
                    echo "$config $call $err reported" >> "$OUT/tally"
                else
                    echo "$config $call $err absorbed" >> "$OUT/tally"
                fi
            done
        done
    done
done

echo "   faults injected into the library's system calls, by call and errno (first $K occurrences of each;"
echo "   absorbed: retried or fallen back, the driver saw nothing; reported: an API call returned the errno)"
printf "   %-16s %-7s %8s %9s %9s %5s\n" call errno injected absorbed reported fail
awk '$4 != "miss" { k = $2 " " $3; total[k]++; what[k, $4]++ }
     END { for (k in total) { split(k, p, " ")
               printf "   %-16s %-7s %8d %9d %9d %5d\n", p[1], p[2], total[k],
                      what[k, "absorbed"], what[k, "reported"], what[k, "fail"] } }' "$OUT/tally" | sort
awk '$4 != "miss" { n++ } $4 == "miss" { m++ }
     END { printf "   %d faults injected in all, in %d runs", n, NR
           printf " (%d more landed on the program'"'"'s own call and are not counted)\n", m }' "$OUT/tally"
echo "   of the EAGAIN wake-up writes, $(wc -l < "$OUT/notes") stalled the loop until the driver made the full counter"
echo "   that EAGAIN stands for real (see faults.c); the others were covered by a later wake-up"
if [ $failed -ne 0 ]; then
    echo "faults: $failed of $runs runs failed:"
    cat "$OUT/failures"
    exit 1
fi
