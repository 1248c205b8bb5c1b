#!/usr/bin/env python3
"""run.py - runs the evloop benchmark suite and writes the tables (README.md explains the benchmarks).

    python3 run.py [--quick] [--out results.md] [--only pipes,timers,...]

Every wall-time measurement is interleaved: round r runs each library once, in an order rotated by r
(A B C D E, B C D E A, ...), so slow drifts of a noisy machine touch every library alike; each table
shows the median over rounds. Any program that exits non-zero (its own checks failed) or times out is
shown as FAIL and makes this script exit 1, so a broken run can never pass for a fast one.
Only the Python standard library is used.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "build")  # where the Makefile puts the programs
LIBS = ["evloop", "libev", "libevent", "libuv", "raw"]
PEERS = ["libev", "libevent", "libuv"]
# The timer benchmarks have a second evloop program: the same one with loop-time deadlines
# (evl_timer_start_at(loop, t, evl_now(loop) + after, 0)) instead of evl_timer_start.
TIMER_LIBS = ["evloop", "evloop_cached", "evloop_poll", "libev", "libevent", "libuv", "raw"]
# The same evloop programs built on the poll backend (evloop_poll.h), in the pipes and timer runs.
PIPES_LIBS = ["evloop", "evloop_poll", "libev", "libevent", "libuv", "raw"]
LABELS = {"evloop_cached": "evloop (loop time)", "evloop_poll": "evloop (poll backend)", "floor_1": "kernel floor, 1 sleep at a time",
          "floor_c": "kernel floor, C at a time (threads)"}
PIPES_FD_MARGIN = 32  # the same margin as pipes.h

# name: (full, quick)
CONFIG = {
    "pipes_sets": ([(100, 1, 100), (1000, 100, 1000), (10000, 1000, 10000)],) * 2,
    "pipes_runs": (25, 5),
    "pipes_rounds": (11, 3),
    "churn": ([(100000, 5, 7), (1000000, 2, 5)], [(100000, 2, 3)]),  # (timers, restarts, rounds)
    "fire": ((100000, 11), (100000, 3)),                              # (timers, rounds)
    "late": ((1000, 10, 9), (1000, 10, 3)),                          # (timers, chains, rounds)
    "echo": ((100, 64, 1500, 8), (100, 64, 500, 2)),                 # (conns, bytes, ms, rounds)
    "fibers": ((1000000, 9), (200000, 3)),                           # (yields per fiber, rounds)
    "files": ((1 << 30, 2000, 5), (256 << 20, 500, 3)),               # (file bytes, ms per run, rounds)
}


def cfg(name, quick):
    full, short = CONFIG[name]
    return short if quick else full


class ProgramFailed(Exception):
    pass


FAILURES = []


def note_failure(bench, lib, err):
    FAILURES.append("%s / %s: %s" % (bench, lib, err))
    print("  FAIL %s / %s: %s" % (bench, lib, err), file=sys.stderr)


def parse_output(text):
    res, info = {}, {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] == "RESULT":
            res[parts[1]] = float(parts[2])
        elif len(parts) == 3 and parts[0] == "INFO":
            info[parts[1]] = parts[2]
    return res, info


def pin_to(cpu):
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def single_cpu():
    """The CPU single-process benchmarks are pinned to (the last one), or None on a 1-CPU machine."""
    n = os.cpu_count() or 1
    return n - 1 if n > 1 else None


INFO = {}  # library -> its INFO lines (versions, backend)


def run(lib, argv, timeout=300, cpu=None):
    """Runs one program; returns its RESULT values, raises ProgramFailed."""
    return run_with_info(lib, argv, timeout, cpu)[0]


def run_with_info(lib, argv, timeout=300, cpu=None):
    """run(), also returning the program's INFO lines."""
    try:
        p = subprocess.run(argv, cwd=BIN, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=pin_to(cpu))
    except subprocess.TimeoutExpired:
        raise ProgramFailed("timed out after %d s: %s" % (timeout, " ".join(argv)))
    if p.returncode != 0:
        msg = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ProgramFailed("exit %d: %s" % (p.returncode, msg))
    res, info = parse_output(p.stdout)
    if lib and "library" in info:
        INFO.setdefault(lib, [])
        if info["library"] not in INFO[lib]:
            INFO[lib].append(info["library"])
    return res, info


def built(prog):
    return os.path.exists(os.path.join(BIN, prog))


def rotated(libs, r):
    k = r % len(libs)
    return libs[k:] + libs[:k]


def median(values):
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------------------------
# formatting

def fmt(v, unit_digits=None):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    a = abs(v)
    if unit_digits is not None:
        return "%.*f" % (unit_digits, v)
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def ratio(v, ref):
    if v is None or ref is None or isinstance(v, str) or isinstance(ref, str) or ref == 0:
        return "—"
    return "%.2f" % (v / ref)


def cell(v, ref):
    """value and its ratio to evloop's value."""
    if v is None or isinstance(v, str):
        return fmt(v)
    if ref is None or isinstance(ref, str):
        return fmt(v)
    return "%s (%s)" % (fmt(v), ratio(v, ref))


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def verdict(ok):
    if ok is None:
        return "n/a"
    return "**met**" if ok else "**missed**"


class Report:
    def __init__(self):
        self.parts = []

    def section(self, title, body):
        text = "## %s\n\n%s\n" % (title, body.rstrip())
        self.parts.append(text)
        print(text, flush=True)


def lib_label(lib):
    name = LABELS.get(lib, lib)
    return name if built_any(lib) else "%s (not built)" % name


def built_any(lib):
    if lib.startswith("floor"):
        return built("late_floor")
    return any(built("%s_%s" % (b, lib)) for b in ("pipes", "timers", "echo", "size"))


# ---------------------------------------------------------------------------------------------
# benchmarks

def interleaved(bench, rounds, make_argv, keys, libs=LIBS, cpu="single", timeout=300):
    """Runs make_argv(lib) for every built library, `rounds` times interleaved.
    Returns {lib: {key: median over rounds}} with "FAIL" for a library that failed."""
    samples = {lib: {k: [] for k in keys} for lib in libs}
    failed = set()
    pin = single_cpu() if cpu == "single" else None
    for r in range(rounds):
        for lib in rotated(libs, r):
            argv = make_argv(lib)
            if lib in failed or not built(argv[0][2:]):
                continue
            try:
                res = run(lib, argv, timeout=timeout, cpu=pin)
            except ProgramFailed as e:
                note_failure(bench, lib, e)
                failed.add(lib)
                continue
            for k in keys:
                samples[lib][k].append(res.get(k))
    out = {}
    for lib in libs:
        if lib in failed:
            out[lib] = {k: "FAIL" for k in keys}
        else:
            out[lib] = {k: median([v for v in samples[lib][k] if v is not None]) for k in keys}
    return out


def bench_pipes(rep, quick):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    sets, notes = [], []
    for n, a, w in cfg("pipes_sets", quick):
        need = 2 * n + PIPES_FD_MARGIN
        if hard != resource.RLIM_INFINITY and need > hard:
            try:  # only works with CAP_SYS_RESOURCE
                resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
                hard = need
            except (ValueError, OSError):
                n_fit = (hard - PIPES_FD_MARGIN) // 2
                notes.append("n=%d needs %d descriptors, but this machine's hard RLIMIT_NOFILE is %d "
                             "and cannot be raised here (no CAP_SYS_RESOURCE): ran n=%d instead."
                             % (n, need, hard, n_fit))
                n = n_fit
        sets.append((n, a, w))
    runs = cfg("pipes_runs", quick)
    rounds = cfg("pipes_rounds", quick)
    results = {}
    for (n, a, w) in sets:
        results[(n, a, w)] = interleaved(
            "pipes n=%d" % n, rounds,
            lambda lib: ["./pipes_" + lib, "-n", str(n), "-a", str(a), "-w", str(w), "-r", str(runs)],
            ["loop_us", "total_us"], libs=PIPES_LIBS)

    headers = ["library"]
    for (n, a, w) in sets:
        headers += ["n=%d a=%d w=%d: loop µs" % (n, a, w), "total µs"]
    rows = []
    for lib in PIPES_LIBS:
        row = [lib_label(lib)]
        for s in sets:
            ev = results[s]["evloop"]
            row += [cell(results[s][lib]["loop_us"], ev["loop_us"]),
                    cell(results[s][lib]["total_us"], ev["total_us"])]
        rows.append(row)
    checks = []
    for s in sets:
        r = results[s]
        ev, le, raw = r["evloop"]["loop_us"], r["libev"]["loop_us"], r["raw"]["loop_us"]
        if all(isinstance(x, float) for x in (ev, le, raw)):
            ok = ev <= le and ev <= 1.05 * raw
            checks.append("n=%d: %s (%.2f× libev, %.2f× raw)" % (s[0], verdict(ok), ev / le, ev / raw))
        else:
            checks.append("n=%d: %s" % (s[0], verdict(None)))
    body = table(headers, rows)
    body += ("\n\nMedian over %d interleaved rounds of each program's median of %d runs; in brackets: "
             "ratio to evloop (below 1 = faster than evloop). \"loop\" is the passes only, \"total\" "
             "adds the re-registration of all n watchers that starts every run.\n\n"
             "**target** evloop loop time ≤ libev and ≤ 1.05 × raw epoll at every set: %s"
             % (rounds, runs, "; ".join(checks)))
    for note in notes:
        body += "\n\nNote: " + note
    rep.section("pipes (libevent test/bench.c)", body)
    return results


def ratio_check(label, ev, ref, limit=1.0, ref_name="libev"):
    """'label: met/missed (x.xx× ref)' for ev <= limit * ref, or n/a when either failed."""
    if isinstance(ev, float) and isinstance(ref, float) and ref > 0:
        return "%s: %s (%.2f× %s)" % (label, verdict(ev <= limit * ref), ev / ref, ref_name)
    return "%s: %s" % (label, verdict(None))


def bench_timers(rep, quick):
    churn_sets = cfg("churn", quick)
    churn = {}
    for (t, r, rounds) in churn_sets:
        churn[t] = interleaved("timers churn %d" % t, rounds,
                               lambda lib: ["./timers_" + lib, "churn", str(t), str(r)],
                               ["ns_per_op", "start_ns", "restart_ns", "stop_ns"], libs=TIMER_LIBS)
    ft, frounds = cfg("fire", quick)
    fire = interleaved("timers fire", frounds, lambda lib: ["./timers_" + lib, "fire", str(ft)],
                       ["total_ms", "cpu_ms"], libs=TIMER_LIBS)
    ln, lc, lrounds = cfg("late", quick)
    # The kernel floor: the same sleeps with no loop, one at a time and lc at a time (lc threads).
    LABELS["floor_c"] = "kernel floor, %d at a time (threads)" % lc
    late_libs = LIBS + ["evloop_poll", "floor_1", "floor_c"]
    late = interleaved("timers late", lrounds,
                       lambda lib: (["./late_floor", str(ln), "1" if lib == "floor_1" else str(lc),
                                     "epoll_pwait2"] if lib.startswith("floor") else
                                    ["./timers_" + lib, "late", str(ln), str(lc)]),
                       ["late_p50_us", "late_p99_us", "late_max_us", "late_min_us"], libs=late_libs)

    headers = ["library"]
    for (t, r, _) in churn_sets:
        headers += ["churn %s×(%d+2): ns/op" % ("{:,}".format(t), r), "start / restart / stop ns"]
    headers += ["fire %s in 0–10 ms: total ms" % "{:,}".format(ft), "CPU ms"]
    rows = []
    for lib in TIMER_LIBS:
        row = [lib_label(lib)]
        for (t, r, _) in churn_sets:
            c, e = churn[t][lib], churn[t]["evloop"]
            row.append(cell(c["ns_per_op"], e["ns_per_op"]))
            row.append(" / ".join(fmt(c[k]) for k in ("start_ns", "restart_ns", "stop_ns")))
        row.append(cell(fire[lib]["total_ms"], fire["evloop"]["total_ms"]))
        row.append(cell(fire[lib]["cpu_ms"], fire["evloop"]["cpu_ms"]))
        rows.append(row)
    checks = []
    for (t, r, _) in churn_sets:
        le = churn[t]["libev"]["ns_per_op"]
        checks.append("%s timers: %s" % ("{:,}".format(t), "; ".join(
            ratio_check(lib_label(lib), churn[t][lib]["ns_per_op"], le) for lib in ("evloop", "evloop_cached"))))
    body = table(headers, rows)
    body += ("\n\nChurn: T timers started with pseudo-random 1–10 s timeouts, each restarted R times with "
             "a new one, then all stopped, all from inside one loop callback; ns per operation over all "
             "T×(R+2) operations, then per phase. Fire: total wall time from the first start until the "
             "loop returned with all timers fired, and the process CPU time over it. Medians of %s "
             "interleaved rounds; in brackets: ratio to evloop.\n\n"
             "evloop starts and restarts with `evl_timer_start`, which reads the clock on every call so "
             "that a timer never fires early even when the loop time is stale, while evloop (loop time) "
             "uses the documented `evl_timer_start_at(loop, t, evl_now(loop) + after, 0)`, which, like "
             "libev and libuv, counts the timeout from the cached loop time and reads no clock; the "
             "difference between the two rows is that clock read.\n\n"
             "**target** churn ns/op ≤ libev: %s"
             % ("/".join(str(x[2]) for x in churn_sets) + "/%d" % frounds, " — ".join(checks)))
    if quick:
        body += "\n\n(quick mode: the 1,000,000-timer churn is left out)"
    rep.section("timers: churn and fire", body)

    fl = late["floor_c"]
    rows = []
    for lib in late_libs:
        l = late[lib]
        above = []
        for k in ("late_p50_us", "late_p99_us"):
            if not lib.startswith("floor") and isinstance(l[k], float) and isinstance(fl[k], float):
                d = round(l[k] - fl[k])
                above.append("%+d" % d if d else "0")
            else:
                above.append("—")
        rows.append([lib_label(lib)] + [fmt(l[k]) for k in
                                        ("late_p50_us", "late_p99_us", "late_max_us", "late_min_us")]
                    + [" / ".join(above)])
    p99, p50 = late["evloop"]["late_p99_us"], late["evloop"]["late_p50_us"]
    ok = (p99 <= 100.0) if isinstance(p99, float) else None
    body = table(["library", "p50 µs", "p99 µs", "max µs", "min µs",
                  "p50 / p99 − floor (%d at a time) µs" % lc], rows)
    body += ("\n\n%d one-shot timers of 1–3 ms (whole µs), %d in flight at a time; lateness = time the "
             "callback ran − (clock read just before the start + timeout). Negative = fired early "
             "(libuv's whole-millisecond clock and timeouts, libevent's cached coarse clock). Each library "
             "in its default configuration. Median over %d interleaved rounds of each statistic.\n\n"
             "The kernel floor rows are the same %d sleeps (same durations, same clock reads around "
             "them) with no loop at all: a bare `epoll_pwait2` on an empty epoll instance, the wait "
             "evloop uses (`late_floor`), made one at a time, and %d at a time from %d threads on the "
             "same CPU, the libraries' density; the last column subtracts the latter. This machine "
             "wakes later after a longer idle stretch, hence two rows. Both floors include the kernel's "
             "default 50 µs timer slack, which it adds to every poll-style and nanosleep timeout (raw "
             "sleeps on a timerfd, which has none); a loop can land below the floor because one wake-up "
             "serves every timer that has come due by then, while each bare sleep waits out its own "
             "slack.\n\n"
             "**target** evloop p99 ≤ 100 µs: %s%s"
             % (ln, lc, lrounds, ln, lc, lc, verdict(ok),
                " (%.1f µs; p50 %.1f µs; kernel floor %d at a time: p99 %s µs, p50 %s µs; 1 at a time: "
                "p99 %s µs, p50 %s µs)"
                % (p99, p50, lc, fmt(fl["late_p99_us"]), fmt(fl["late_p50_us"]),
                   fmt(late["floor_1"]["late_p99_us"]), fmt(late["floor_1"]["late_p50_us"]))
                if ok is not None else ""))
    rep.section("timers: lateness", body)
    return churn, fire, late


def read_port(proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.match(r"PORT (\d+)", line)
            if m:
                return int(m.group(1))
        if proc.poll() is not None:
            break
    raise ProgramFailed("server did not announce its port")


def echo_once(lib, conns, size, ms):
    ncpu = os.cpu_count() or 1
    server_cpu, client_cpu = (0, 1) if ncpu > 1 else (-1, -1)
    srv = subprocess.Popen(["./echo_" + lib, "-c", str(conns), "-C", str(server_cpu)], cwd=BIN,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = read_port(srv)
        cres = run(None, ["./echo_client", "-p", str(port), "-c", str(conns), "-s", str(size),
                          "-d", str(ms), "-C", str(client_cpu)], timeout=ms / 1000 + 60)
        out, err = srv.communicate(timeout=30)
    except (ProgramFailed, subprocess.TimeoutExpired) as e:
        srv.kill()
        srv.communicate()
        raise ProgramFailed(str(e))
    if srv.returncode != 0:
        raise ProgramFailed("server exit %d: %s" % (srv.returncode,
                                                    (err.strip().splitlines() or [""])[-1]))
    sres, _ = parse_output(out)
    if sres.get("bytes") != cres.get("bytes"):
        raise ProgramFailed("server echoed %s bytes, client counted %s" % (sres.get("bytes"),
                                                                          cres.get("bytes")))
    cres["server_cpu_us_per_msg"] = sres["cpu_s"] * 1e6 / cres["msgs"]
    return cres


def bench_echo(rep, quick):
    conns, size, ms, rounds = cfg("echo", quick)
    keys = ["msgs_per_s", "rtt_p50_us", "rtt_p99_us", "server_cpu_us_per_msg"]
    samples = {lib: {k: [] for k in keys} for lib in LIBS}
    failed = set()
    for r in range(rounds):
        for lib in rotated(LIBS, r):
            if lib in failed or not built("echo_" + lib):
                continue
            try:
                res = echo_once(lib, conns, size, ms)
            except ProgramFailed as e:
                note_failure("echo", lib, e)
                failed.add(lib)
                continue
            for k in keys:
                samples[lib][k].append(res[k])
    res = {lib: ({k: "FAIL" for k in keys} if lib in failed else
                 {k: median(samples[lib][k]) for k in keys}) for lib in LIBS}
    rows = []
    for lib in LIBS:
        rows.append([lib_label(lib), cell(res[lib]["msgs_per_s"], res["evloop"]["msgs_per_s"]),
                     fmt(res[lib]["rtt_p50_us"]),
                     cell(res[lib]["rtt_p99_us"], res["evloop"]["rtt_p99_us"]),
                     cell(res[lib]["server_cpu_us_per_msg"], res["evloop"]["server_cpu_us_per_msg"])])
    ev = res["evloop"]["msgs_per_s"]
    peers = [res[p]["msgs_per_s"] for p in PEERS if isinstance(res[p]["msgs_per_s"], float)]
    ok = (ev >= max(peers)) if isinstance(ev, float) and peers else None
    body = table(["library", "msgs/s", "RTT p50 µs", "RTT p99 µs", "server CPU µs/msg"], rows)
    body += ("\n\nOne echo_client (plain epoll, pinned to CPU 1) against each server (pinned to CPU 0): "
             "%d connections, one %d-byte message in flight on each, %d ms; every echo is checked "
             "byte for byte and the server's byte count must match the client's. \"server CPU\" is the "
             "server's user + system time divided by the messages echoed: it includes the kernel's TCP "
             "work, and unlike msgs/s it is not lowered when another process takes a core. Median of %d "
             "interleaved rounds; in brackets: ratio to evloop.\n\n"
             "**target** evloop msgs/s ≥ best peer (libev, libevent, libuv): %s%s"
             % (conns, size, ms, rounds, verdict(ok),
                " (%.2f× the best peer)" % (ev / max(peers)) if ok is not None else ""))
    rep.section("echo (TCP loopback)", body)
    return res


FIBER_PROGS = ["fibers", "fibers_ucontext"]  # the same fibers.c: evloop's asm switch, its ucontext fallback
FIBER_LABELS = {"fibers": "evl_yield (asm)", "fibers_ucontext": "evl_yield (ucontext fallback)"}


def cachegrind(tag, argv):
    """Instructions per file:function (by instruction address, so exact even across stack switches,
    where callgrind's call tracking blurs function boundaries) and the total."""
    out = os.path.join(BIN, "cachegrind.out.%s" % tag)
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=" + out] + argv
    try:
        p = subprocess.run(cmd, cwd=BIN, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise ProgramFailed("cachegrind timed out: " + " ".join(argv))
    if p.returncode != 0:
        raise ProgramFailed("under cachegrind, exit %d: %s" % (
            p.returncode, (p.stderr.strip().splitlines() or ["?"])[-1]))
    funcs, fl, fn, total = {}, "?", "?", None
    with open(out) as f:
        for line in f:
            if line.startswith("fl="):
                fl = os.path.basename(line[3:].strip())
            elif line.startswith("fn="):
                fn = line[3:].strip()
                funcs.setdefault((fl, fn), 0)
            elif line.startswith("summary:"):
                total = int(line.split()[1])
            elif line[:1].isdigit():
                parts = line.split()
                if len(parts) >= 2:
                    funcs[(fl, fn)] = funcs.get((fl, fn), 0) + int(parts[1])
    os.unlink(out)
    if total is None:
        raise ProgramFailed("no summary in cachegrind output of " + " ".join(argv))
    return total, funcs


def fiber_part(fl, fn):
    """Which part of a yield an instruction belongs to, for the breakdown."""
    if fn.startswith("evl__ctx_swap") or "swapcontext" in fn or "sigprocmask" in fn:
        return "context switch"
    if fl == "fibers.c":
        return "benchmark loop"
    if fl == "evloop.h" and fn != "evl_run":
        return "scheduler"
    return "loop pass (1 per 128 resumes)"


def bench_fibers(rep, quick):
    n, rounds = cfg("fibers", quick)
    progs = [p for p in FIBER_PROGS if built(p)]
    if "fibers" not in progs:
        rep.section("fibers", "fibers program not built.")
        return None
    sw, ev = [], {p: [] for p in progs}
    switch_name, skipped, failed = {}, None, set()
    for r in range(rounds):
        for prog in rotated(progs, r):
            if prog in failed:
                continue
            try:
                p = subprocess.run(["./" + prog, str(n)], cwd=BIN, capture_output=True, text=True,
                                   timeout=120, preexec_fn=pin_to(single_cpu()))
            except subprocess.TimeoutExpired:
                note_failure("fibers", prog, "timed out")
                failed.add(prog)
                continue
            if p.returncode != 0:
                note_failure("fibers", prog, (p.stderr.strip().splitlines() or ["?"])[-1])
                failed.add(prog)
                continue
            res, info = parse_output(p.stdout)
            sw.append(res["swapcontext_ns"])
            if "evl_yield_ns" in res:
                ev[prog].append(res["evl_yield_ns"])
            if "fiber_switch" in info:
                switch_name[prog] = info["fiber_switch"]
            skipped = info.get("evl_yield_skipped")

    # Instructions per switch: runs with lo and hi yields per fiber; the difference cancels start-up.
    lo, hi = (50000, 100000) if quick else (100000, 200000)
    ir, parts, funcs_asm = {}, {}, {}
    if shutil.which("valgrind"):
        jobs = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            for prog, mode in [(p, "yield") for p in progs if p not in failed and not skipped] + \
                              [("fibers", "swap")]:
                for which, k in (("lo", lo), ("hi", hi)):
                    jobs[(prog, mode, which)] = pool.submit(
                        cachegrind, "%s.%s.%s" % (prog, mode, which), ["./" + prog, str(k), mode])
        got = {}
        for key, fut in jobs.items():
            try:
                got[key] = fut.result()
            except ProgramFailed as e:
                note_failure("fibers cachegrind", key[0], e)
        switches = 2.0 * (hi - lo)
        for prog, mode in set((k[0], k[1]) for k in jobs):
            if (prog, mode, "lo") not in got or (prog, mode, "hi") not in got:
                continue
            (t_lo, f_lo), (t_hi, f_hi) = got[(prog, mode, "lo")], got[(prog, mode, "hi")]
            ir[(prog, mode)] = (t_hi - t_lo) / switches
            if mode == "yield":
                per = {k: (f_hi.get(k, 0) - f_lo.get(k, 0)) / switches for k in set(f_lo) | set(f_hi)}
                parts[prog] = {}
                for (fl, fn), v in per.items():
                    parts[prog][fiber_part(fl, fn)] = parts[prog].get(fiber_part(fl, fn), 0.0) + v
                if prog == "fibers":
                    funcs_asm = per

    s = median(sw)
    e = {p: median(ev[p]) if p not in failed else "FAIL" for p in progs}
    for p in FIBER_PROGS:
        e.setdefault(p, None)
    ref = e["fibers"] if isinstance(e["fibers"], float) else None
    ref_ir = ir.get(("fibers", "yield"))
    rows = []
    for p in FIBER_PROGS:
        label = FIBER_LABELS[p] + (" — %s" % switch_name[p] if p in switch_name else "")
        if skipped:
            rows.append([label, "skipped", "—", "—"])
            continue
        rows.append([label if built(p) else label + " (not built)", cell(e[p], ref),
                     cell(ir.get((p, "yield")), ref_ir), fmt(s / e[p]) + "×" if isinstance(e[p], float) and s else "—"])
    rows.append(["swapcontext (glibc), raw", cell(s, ref), cell(ir.get(("fibers", "swap")), ref_ir), "1.00×"])
    body = table(["switch", "ns per switch", "instructions per switch", "swapcontext ÷ this"], rows)
    body += ("\n\nevl_yield: two fibers on one loop each call `evl_yield()` %s times; the scheduler "
             "switches from the yielding fiber straight to the other one and returns to the loop (one "
             "non-blocking poll) every 128 resumes; ns per switch = wall time of `evl_run` ÷ all yields. "
             "The same `fibers.c` is built twice: with evloop's assembly context switch (the default on "
             "x86_64) and with `-DEVLOOP_FIBER_UCONTEXT`, evloop's portable makecontext/swapcontext "
             "fallback. swapcontext, raw: glibc `swapcontext` ping-pong between main and one coroutine "
             "in the same programs, %s round trips, ns per switch (each also saves and restores the "
             "signal mask with a system call). Each program checks the counts, that the loop made one "
             "pass per 128 resumes, and (in an untimed run) that the fibers strictly alternate. Median "
             "of %d interleaved rounds of both programs (swapcontext: all %d samples); in brackets: "
             "ratio to evl_yield (asm). Instructions (cachegrind `Ir`, user space: swapcontext's "
             "system call is not in it) per switch from runs with %s and %s yields per fiber, "
             "difference ÷ difference."
             % ("{:,}".format(n), "{:,}".format(n), rounds, len(sw), "{:,}".format(lo), "{:,}".format(hi)))
    if skipped:
        body += "\n\nevl_yield skipped: " + skipped + "."
    checks = []
    if isinstance(ref, float) and s:
        checks.append("evl_yield (asm) ≤ 15 ns: %s (%.1f ns; fastest round %.1f ns)"
                      % (verdict(ref <= 15.0), ref, min(ev["fibers"])))
        checks.append("≥ 10× faster than swapcontext: %s (%.1f×)" % (verdict(s >= 10 * ref), s / ref))
    else:
        checks.append(verdict(None))
    body += "\n\n**target** " + "; ".join(checks)
    if funcs_asm:
        top = sorted(((k, v) for k, v in funcs_asm.items() if abs(v) >= 0.05), key=lambda kv: -kv[1])
        body += ("\n\nWhere the instructions of one evl_yield (asm) go, by function (exact: counted by "
                 "instruction address; evloop's helpers that the compiler inlined count in their "
                 "caller):\n\n"
                 + table(["function", "Ir/yield", "part"],
                         [["`%s:%s`" % k, "%.1f" % v, fiber_part(*k)] for k, v in top]))
        body += ("\n\nBy part: " + "; ".join("%s %.1f" % (k, v) for k, v in
                                            sorted(parts["fibers"].items(), key=lambda kv: -kv[1])
                                            if abs(v) >= 0.05) + " (Ir per yield).")
        if "fibers_ucontext" in parts:
            body += (" ucontext fallback: " + "; ".join("%s %.1f" % (k, v) for k, v in
                                                       sorted(parts["fibers_ucontext"].items(),
                                                              key=lambda kv: -kv[1]) if abs(v) >= 0.05)
                     + ".")
    rep.section("fibers", body)
    return e, s, ir


# ---------------------------------------------------------------------------------------------
# callgrind

VALGRIND_NOTES = set()


def callgrind(tag, argv):
    out = os.path.join(BIN, "callgrind.out.%s" % tag)
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv
    try:
        p = subprocess.run(cmd, cwd=BIN, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise ProgramFailed("callgrind timed out: " + " ".join(argv))
    if p.returncode != 0:
        raise ProgramFailed("under callgrind, exit %d: %s" % (
            p.returncode, (p.stderr.strip().splitlines() or ["?"])[-1]))
    for m in re.finditer(r"unhandled [\w-]+ syscall: (\d+)", p.stderr):
        VALGRIND_NOTES.add("%s: valgrind does not know syscall %s" % (os.path.basename(argv[0]), m.group(1)))
    total = None
    with open(out) as f:
        for line in f:
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                total = int(m.group(1))
    if total is None:
        raise ProgramFailed("no total in " + out)
    return total, out


def functions(outfile):
    """Self instruction counts per file:function (source file of the code, so inlined backend code
    shows up under the backend header), from callgrind_annotate."""
    p = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", "--inclusive=no", outfile],
                       capture_output=True, text=True)
    funcs = {}
    for line in p.stdout.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.+?)(?:\s+\[[^\]]*\])?\s*$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = m.group(2)
        if ":" in name:
            src, fn = name.rsplit(":", 1)
            name = "%s:%s" % (os.path.basename(src), fn)
        funcs[name] = funcs.get(name, 0) + int(m.group(1).replace(",", ""))
    return funcs


def bench_callgrind(rep, quick):
    if not shutil.which("valgrind"):
        rep.section("cost in instructions (callgrind)", "valgrind not installed: skipped.")
        return None
    if quick:
        metrics = [
            ("pipes n=1000 a=100: Ir/event", "pipes", lambda w: ["-n", "1000", "-a", "100", "-w", str(w), "-r", "1"],
             (1000, 3000), lambda lo, hi: (hi - lo) * 1),
            ("churn: Ir/restart", "timers", lambda r: ["churn", "5000", str(r)], (1, 5),
             lambda lo, hi: (hi - lo) * 5000),
        ]
    else:
        metrics = [
            ("pipes n=100 a=1: Ir/event", "pipes", lambda w: ["-n", "100", "-a", "1", "-w", str(w), "-r", "2"],
             (1000, 5000), lambda lo, hi: (hi - lo) * 2),
            ("pipes n=1000 a=100: Ir/event", "pipes", lambda w: ["-n", "1000", "-a", "100", "-w", str(w), "-r", "2"],
             (2000, 10000), lambda lo, hi: (hi - lo) * 2),
            ("churn: Ir/restart", "timers", lambda r: ["churn", "10000", str(r)], (2, 10),
             lambda lo, hi: (hi - lo) * 10000),
            ("churn: Ir/(start+stop)", "timers", lambda t: ["churn", str(t), "0"], (10000, 20000),
             lambda lo, hi: (hi - lo)),
            ("fire: Ir/timer (start+fire)", "timers", lambda t: ["fire", str(t)], (5000, 10000),
             lambda lo, hi: (hi - lo)),
        ]
    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for mi, (label, prog, args, (lo, hi), units) in enumerate(metrics):
            for lib in TIMER_LIBS:
                if not built("%s_%s" % (prog, lib)):
                    continue
                for which, param in (("lo", lo), ("hi", hi)):
                    tag = "%d.%s.%s" % (mi, lib, which)
                    jobs[(mi, lib, which)] = pool.submit(callgrind, tag, ["./%s_%s" % (prog, lib)] + args(param))
    values = {}
    outfiles = {}
    for (mi, lib, which), fut in jobs.items():
        try:
            total, out = fut.result()
        except ProgramFailed as e:
            if (mi, lib) not in values or values[(mi, lib)] != "FAIL":
                note_failure("callgrind " + metrics[mi][0], lib, e)
            values[(mi, lib)] = "FAIL"
            continue
        outfiles[(mi, lib, which)] = out
        values.setdefault((mi, lib), {})
        if isinstance(values[(mi, lib)], dict):
            values[(mi, lib)][which] = total
    per = {}
    for mi, m in enumerate(metrics):
        lo, hi = m[3]
        for lib in TIMER_LIBS:
            v = values.get((mi, lib))
            if isinstance(v, dict) and "lo" in v and "hi" in v:
                per[(mi, lib)] = (v["hi"] - v["lo"]) / m[4](lo, hi)
            elif v == "FAIL":
                per[(mi, lib)] = "FAIL"
            else:
                per[(mi, lib)] = None
    headers = ["library"] + [m[0] for m in metrics]
    rows = []
    for lib in TIMER_LIBS:
        rows.append([lib_label(lib)] + [cell(per[(mi, lib)], per[(mi, "evloop")])
                                        for mi in range(len(metrics))])
    checks, timer_checks = [], []
    for mi, m in enumerate(metrics):
        ev, le = per[(mi, "evloop")], per[(mi, "libev")]
        if m[0].startswith("pipes"):
            ok = (ev <= 0.8 * le) if isinstance(ev, float) and isinstance(le, float) else None
            checks.append("%s: %s%s" % (m[0].split(":")[0], verdict(ok),
                                        " (%.2f× libev)" % (ev / le) if ok is not None else ""))
        elif m[1] == "timers" and "churn" in m[0]:
            timer_checks.append("%s: %s" % (m[0].split(": ")[1], "; ".join(
                ratio_check(lib_label(lib), per[(mi, lib)], le) for lib in ("evloop", "evloop_cached"))))
    body = table(headers, rows)
    desc = []
    for m in metrics:
        lo, hi = m[3]
        desc.append("%s: `%s` with %s vs %s" % (m[0], m[1] + "_X " + " ".join(m[2]("P")), lo, hi))
    body += ("\n\nUser-space instructions (callgrind `Ir`, libc and the library's shared object "
             "included, kernel excluded) per unit of work. Each figure is the difference between two "
             "runs that differ only in the amount of work, divided by the difference in work, so "
             "start-up, loop creation, descriptor setup and registration cancel out:\n\n- "
             + "\n- ".join(desc) +
             "\n\nA pipes event is one read callback (recv of one byte + send of one byte to the next "
             "pair). These counts are reproducible on a noisy machine; in brackets: ratio to evloop.\n\n"
             "**target** evloop instructions/event ≤ 0.8 × libev: " + "; ".join(checks))
    if timer_checks:
        body += ("\n\n**target** instructions per timer operation ≤ libev (the churn target, counted in "
                 "instructions): " + " — ".join(timer_checks))

    # Where the instructions go: per-function difference for the busiest pipes set.
    mi_pipes = max(i for i, m in enumerate(metrics) if m[1] == "pipes")
    m = metrics[mi_pipes]
    events = m[4](*m[3])
    for lib in ("evloop", "libev"):
        lo_f, hi_f = outfiles.get((mi_pipes, lib, "lo")), outfiles.get((mi_pipes, lib, "hi"))
        if not lo_f or not hi_f:
            continue
        f_lo, f_hi = functions(lo_f), functions(hi_f)
        diff = {k: (f_hi.get(k, 0) - f_lo.get(k, 0)) / events for k in set(f_lo) | set(f_hi)}
        top = sorted(diff.items(), key=lambda kv: -kv[1])[:12]
        body += ("\n\n%s, %s, instructions per event by function (self cost, top 12):\n\n" % (lib, m[0].split(":")[0])
                 + table(["function", "Ir/event"], [[f"`{k}`", "%.1f" % v] for k, v in top]))
    # The same for a timer restart, both evloop variants side by side: the clock read is the gap.
    mi_restart = [i for i, m in enumerate(metrics) if m[0] == "churn: Ir/restart"]
    if mi_restart:
        mi = mi_restart[0]
        m = metrics[mi]
        ops = m[4](*m[3])
        diffs = {}
        for lib in ("evloop", "evloop_cached", "libev"):
            lo_f, hi_f = outfiles.get((mi, lib, "lo")), outfiles.get((mi, lib, "hi"))
            if lo_f and hi_f:
                f_lo, f_hi = functions(lo_f), functions(hi_f)
                diffs[lib] = {k: (f_hi.get(k, 0) - f_lo.get(k, 0)) / ops for k in set(f_lo) | set(f_hi)}
        if diffs:
            keys = set()
            for d in diffs.values():
                keys |= set(k for k, v in d.items() if v >= 1.0)
            libs = [l for l in ("evloop", "evloop_cached", "libev") if l in diffs]
            order = sorted(keys, key=lambda k: -max(diffs[l].get(k, 0) for l in libs))
            body += ("\n\nInstructions per timer restart by function (self cost, ≥ 1 in any column), "
                     "same difference as the table:\n\n"
                     + table(["function"] + [lib_label(l) for l in libs],
                             [[f"`{k}`"] + ["%.1f" % diffs[l].get(k, 0) if diffs[l].get(k, 0) >= 0.05
                                            else "·" for l in libs] for k in order]))
    if VALGRIND_NOTES:
        body += ("\n\nvalgrind %s warned: %s. (Syscall 441 is epoll_pwait2, which valgrind learnt after "
                 "3.19: under callgrind evloop takes its epoll_wait + timerfd fallback, so these counts "
                 "are for that path; the pipes passes wait with timeout 0 either way.%s)"
                 % (sh(["valgrind", "--version"]), "; ".join(sorted(VALGRIND_NOTES)),
                    " Syscall 434 is pidfd_open, which evloop probes once at the first evl_init; "
                    "without it child watchers use SIGCHLD, which no benchmark here uses."
                    if any("syscall 434" in n for n in VALGRIND_NOTES) else ""))
    rep.section("cost in instructions (callgrind)", body)
    for f in os.listdir(BIN):
        if f.startswith("callgrind.out."):
            os.unlink(os.path.join(BIN, f))
    return per


# ---------------------------------------------------------------------------------------------
# files

# Who reads in the random-read table: (label, program); fio is run separately.
FILE_READERS = [("evloop io_uring", "files_evloop"),
                ("evloop workers (4 threads)", "files_evloop_workers"),
                ("libuv uv_fs_read (thread pool)", "files_libuv"),
                ("fio io_uring (no loop: the anchor)", "fio")]
FILE_DEPTHS = [1, 32]
# The loop-responsiveness comparison: 4 readers on a 256 MiB file.
# (label, program, mode)
FIBER_READERS = [("4 fibers, evl_pread (io_uring)", "files_evloop", "fibers"),
                 ("4 fibers, evl_pread (workers)", "files_evloop_workers", "fibers"),
                 ("4 callbacks, blocking pread()", "files_evloop", "blocking")]
FIBER_FILE_BYTES = 256 << 20


def make_block_file(path, size):
    """size bytes of random data, each 4 KiB block starting with its block number (little endian),
    which is how files.h checks every read; flushed to the disk and dropped from the page cache."""
    block = 0
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            chunk = bytearray(os.urandom(1 << 20))
            for i in range(256):
                struct.pack_into("<Q", chunk, i * 4096, block)
                block += 1
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def direct_io_works(path):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        return True
    except OSError:
        return False


def fio_once(path, depth, ms, direct):
    """fio's io_uring engine on the same file, depth and duration: IOPS and latency percentiles."""
    argv = ["fio", "--name=randread", "--filename=" + path, "--rw=randread", "--bs=4k",
            "--direct=%d" % direct, "--ioengine=io_uring", "--iodepth=%d" % depth,
            "--runtime=%dms" % ms, "--time_based", "--norandommap", "--randrepeat=0",
            "--lat_percentiles=1", "--percentile_list=50:99", "--output-format=json"]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=ms / 1000 + 60)
    except subprocess.TimeoutExpired:
        raise ProgramFailed("fio timed out")
    try:
        job = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    except (ValueError, KeyError, IndexError):
        job = None
    if p.returncode != 0 or job is None or job.get("error") or job["read"]["total_ios"] == 0:
        raise ProgramFailed("fio exit %d: %s" % (p.returncode, (p.stderr.strip().splitlines() or ["?"])[-1]))
    pct = job["read"]["lat_ns"]["percentile"]
    return {"iops": job["read"]["iops"], "lat_p50_us": pct["50.000000"] / 1e3,
            "lat_p99_us": pct["99.000000"] / 1e3}


def machine_busy_during(fn):
    """Runs fn(); returns its value and the CPU-seconds other processes used meanwhile."""
    busy0, own0, t0 = busy_jiffies(), own_cpu(), time.monotonic()
    value = fn()
    if busy0 is None:
        return value, None, time.monotonic() - t0
    return value, max(0.0, busy_jiffies() - busy0 - (own_cpu() - own0)), time.monotonic() - t0


def bench_files(rep, quick):
    size, ms, rounds = cfg("files", quick)
    data = os.path.join(BIN, "files-random.dat")
    small = os.path.join(BIN, "files-256m.dat")
    t0 = time.monotonic()
    make_block_file(data, size)
    if size != FIBER_FILE_BYTES:
        make_block_file(small, FIBER_FILE_BYTES)
    else:
        small = data
    made_s = time.monotonic() - t0
    direct = direct_io_works(data)
    have_fio = shutil.which("fio") is not None
    try:
        (samples, engines, failed), others, wall = machine_busy_during(
            lambda: files_rounds(data, small, ms, rounds, direct, have_fio))
    finally:
        for f in {data, small}:
            os.unlink(f)
    return files_report(rep, size, ms, rounds, direct, have_fio, samples, engines, failed, others,
                        wall, made_s)


def files_jobs(data, small, ms):
    """Every job of one round, (key, program, arguments): reads per reader and depth, the idle
    timers, the four readers of the 256 MiB file."""
    jobs = [(("read", label, d), prog, ["read", data, str(d), str(ms)]) for d in FILE_DEPTHS
            for label, prog in FILE_READERS]
    jobs += [(("idle", "evloop"), "files_evloop", ["idle", str(ms)]),
             (("idle", "libuv"), "files_libuv", ["idle", str(ms)])]
    jobs += [(("fibers", label), prog, [mode, small, "4", str(ms)]) for label, prog, mode in FIBER_READERS]
    return jobs


def files_rounds(data, small, ms, rounds, direct, have_fio):
    """Interleaved rounds of every job; returns samples {key: {result: [values]}}, the engine each
    evloop job really used {key: engine}, and {key: error} for the jobs that failed."""
    jobs = files_jobs(data, small, ms)
    samples = {key: {} for key, _, _ in jobs}
    engines, failed = {}, {}
    for r in range(rounds):
        for key, prog, args in rotated(jobs, r):
            if key in failed:
                continue
            try:
                if prog == "fio":
                    if not have_fio:
                        continue
                    res, info = fio_once(data, key[2], ms, int(direct)), {}
                else:
                    if not built(prog):
                        continue
                    res, info = run_with_info(prog.split("_")[1], ["./" + prog] + args,
                                              timeout=ms / 1000 + 60)
            except ProgramFailed as e:
                failed[key] = str(e)
                continue
            if "engine" in info:
                engines[key] = info["engine"]
            for k, v in res.items():
                samples[key].setdefault(k, []).append(v)
    return samples, engines, failed


def files_report(rep, size, ms, rounds, direct, have_fio, samples, engines, failed, others, wall, made_s):
    med = {key: {k: median(v) for k, v in vals.items()} for key, vals in samples.items()}
    # io_uring refused (old kernel, seccomp): evloop reports the engine it fell back to, and fio
    # cannot run either; that is a property of the machine, not a failure.
    uring_engine = engines.get(("read", FILE_READERS[0][0], 32))
    no_uring = uring_engine is not None and uring_engine != "io_uring"
    fio_refused = no_uring and any(key[1] == FILE_READERS[3][0] for key in failed)
    for key, err in failed.items():
        if not (fio_refused and key[1] == FILE_READERS[3][0]):
            note_failure("files " + " ".join(str(k) for k in key), "", err)

    def value(key, k):
        if key[1] == FILE_READERS[3][0] and fio_refused:
            return "n/a"
        if key in failed:
            return "FAIL"
        if no_uring and (key[1] == FILE_READERS[0][0] or key[1] == FIBER_READERS[0][0]):
            return "n/a"
        return med.get(key, {}).get(k)

    ref = {d: value(("read", FILE_READERS[0][0], d), "iops") for d in FILE_DEPTHS}
    rows = []
    for label, prog in FILE_READERS:
        row = [label if (prog == "fio" and have_fio) or built(prog) else
               "%s (%s)" % (label, "not installed" if prog == "fio" else "not built")]
        for d in FILE_DEPTHS:
            key = ("read", label, d)
            row += [cell(value(key, "iops"), ref[d]),
                    "%s / %s" % (fmt(value(key, "lat_p50_us")), fmt(value(key, "lat_p99_us")))]
        row.append(" / ".join(fmt(value(("read", label, d), "late_p99_us")) if prog != "fio" else "—"
                              for d in FILE_DEPTHS))
        rows.append(row)
    headers = ["reads done by"]
    for d in FILE_DEPTHS:
        headers += ["depth %d: IOPS" % d, "read p50 / p99 µs"]
    headers.append("1 ms timer late p99 µs (depth 1 / 32)")
    body = table(headers, rows)
    body += ("\n\nRandom 4 KiB reads (pseudo-random 4 KiB-aligned offsets) of a %d MiB file%s, "
             "a fixed number in flight (the depth): each completion starts the next read; %d ms per "
             "run, median of %d interleaved rounds (fio's run is one more program in the rotation). "
             "Latency is from the call that starts a read to its completion callback (fio: its total "
             "latency, submission included). Every read the programs make is checked: 4096 bytes, and "
             "the block asked for (each block of the file starts with its number). A 1 ms repeating "
             "timer runs in the loop during every run (not in fio). evloop workers: 4 threads from "
             "`evl_workers_start`, as many as libuv's default pool, with the ring off; libuv: "
             "`uv_fs_read` with a callback, Debian's libuv 1.44 (thread pool, 4 threads). In brackets: "
             "ratio to evloop io_uring. The processes are not pinned (worker threads and the kernel's "
             "completion work need the second core)."
             % (size >> 20, " opened with O_DIRECT (the virtual disk is measured, not the page cache)"
                if direct else ", read through the page cache: this file system refuses O_DIRECT, so "
                "these are memory figures once the file is cached", ms, rounds))
    if no_uring:
        body += ("\n\nevloop's reads did not run on io_uring here (evl_op_engine said %s)%s: the "
                 "evloop io_uring rows are n/a." % (uring_engine, ", and fio's io_uring engine failed too"
                                                    if fio_refused else ""))

    # Timer lateness: idle, and under the depth-1 and depth-32 reads above.
    late_rows = []
    late_of = {}
    for label, prog in FILE_READERS[:3]:
        lib = "evloop" if prog.startswith("files_evloop") else "libuv"
        idle = value(("idle", lib), "late_p99_us")
        loaded = [value(("read", label, d), "late_p99_us") for d in FILE_DEPTHS]
        late_of[label] = (idle, loaded)
        late_rows.append([label, "%s / %s" % (fmt(value(("idle", lib), "late_p50_us")), fmt(idle))] +
                         ["%s / %s" % (fmt(value(("read", label, d), "late_p50_us")), fmt(v))
                          for d, v in zip(FILE_DEPTHS, loaded)] +
                         [" / ".join(ratio(v, idle) for v in loaded)])
    body2 = table(["loop", "idle: p50 / p99 µs"] + ["under depth %d: p50 / p99 µs" % d for d in FILE_DEPTHS]
                  + ["p99 under load ÷ idle (depth 1 / 32)"], late_rows)
    body2 += ("\n\nA 1 ms repeating timer (evloop: `evl_timer` with repeat, which keeps its phase; libuv: "
              "`uv_timer_t` with repeat 1, re-armed from the loop time): lateness = time its callback ran − "
              "the deadline the library had scheduled for that tick (read from the library after the "
              "previous tick). Idle: the timer alone for %d ms; under load: during the reads of the table "
              "above. libuv counts in whole milliseconds, so its ticks land anywhere in the millisecond "
              "(negative values are ticks that ran before the nanosecond deadline but after libuv's own)."
              % ms)

    # The responsiveness comparison: the same reads from fibers, or blocking in callbacks.
    idle = value(("idle", "evloop"), "late_p99_us")
    fib_rows = []
    for label, _, _ in FIBER_READERS:
        key = ("fibers", label)
        fib_rows.append([label, fmt(value(key, "iops")), fmt(value(key, "lat_p99_us"))] +
                        [fmt(value(key, k)) for k in ("late_p50_us", "late_p99_us", "late_max_us")] +
                        [ratio(value(key, "late_p99_us"), idle)])
    fib_rows.append(["(no reads: idle)", "—", "—"] + [fmt(value(("idle", "evloop"), k)) for k in
                                                      ("late_p50_us", "late_p99_us", "late_max_us")] + ["1.00"])
    body3 = table(["evloop, 4 readers", "reads/s", "read p99 µs", "timer late p50 µs", "p99 µs",
                   "max µs", "p99 ÷ idle"], fib_rows)
    body3 += ("\n\nFour readers, each reading one random 4 KiB block of a 256 MiB file at a time (O_DIRECT "
              "as above), %d ms, while the same 1 ms timer ticks: four fibers calling `evl_pread`, "
              "against four timer callbacks that each do one blocking `pread()` and re-arm themselves for "
              "the next iteration (what a program without file operations does: every read stops the "
              "loop). Median of %d interleaved rounds." % (ms, rounds))

    # Goals.
    def ok_ratio(a, b, limit):
        if isinstance(a, float) and isinstance(b, float) and b > 0:
            return "%s (%.2f×)" % (verdict(a >= limit * b), a / b)
        return verdict(None)
    ev = {d: value(("read", FILE_READERS[0][0], d), "iops") for d in FILE_DEPTHS}
    fio32 = value(("read", FILE_READERS[3][0], 32), "iops")
    uv = {d: value(("read", FILE_READERS[2][0], d), "iops") for d in FILE_DEPTHS}
    checks = ["evloop io_uring IOPS at depth 32 ≥ 0.9 × fio: " + ok_ratio(ev[32], fio32, 0.9),
              "≥ libuv at depth 1: " + ok_ratio(ev[1], uv[1], 1.0),
              "≥ libuv at depth 32: " + ok_ratio(ev[32], uv[32], 1.0)]
    lat_checks = []
    for label in (FILE_READERS[0][0], FILE_READERS[1][0]):
        idle_p99, loaded = late_of[label]
        for d, v in zip(FILE_DEPTHS, loaded):
            if isinstance(v, float) and isinstance(idle_p99, float):
                lat_checks.append("%s depth %d: %s (%.0f µs vs idle %.0f µs, %.2f×)"
                                  % (label, d, verdict(v <= 2 * idle_p99), v, idle_p99, v / idle_p99))
            else:
                lat_checks.append("%s depth %d: %s" % (label, d, verdict(None)))
    noise = ("other processes used %.0f CPU-seconds during the %.0f s of measuring (%.0f%% of the "
             "machine)" % (others, wall, 100.0 * others / (wall * (os.cpu_count() or 1)))
             if others is not None else "unknown machine load")
    body += ("\n\n**target** %s\n\n**target** timer lateness p99 under load ≤ 2 × idle: %s\n\n"
             "Machine load: %s. The anchor: %s. (The data files took %.1f s to write.)"
             % ("; ".join(checks), "; ".join(lat_checks), noise,
                sh(["fio", "--version"]) if have_fio else "fio not installed", made_s))
    rep.section("files: random 4 KiB reads", body)
    rep.section("files: timer lateness under disk load", body2)
    rep.section("files: fibers vs blocking reads", body3)
    return med


# ---------------------------------------------------------------------------------------------
# size

def text_bytes(path):
    """Sum of .text* sections (size -A), for a program, an object or every member of an archive."""
    p = subprocess.run(["size", "-A", path], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    total = 0
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and (parts[0] == ".text" or parts[0].startswith(".text.")):
            total += int(parts[1])
    return total


def lib_archives(lib):
    def find(name):
        p = subprocess.run([os.environ.get("CC", "cc"), "-print-file-name=" + name],
                           capture_output=True, text=True)
        path = p.stdout.strip()
        return path if os.path.isabs(path) and os.path.exists(path) else None
    if lib == "libev":
        return [find("libev.a")]
    if lib == "libevent":
        return [find("libevent_core.a"), find("libevent_pthreads.a")]
    if lib == "libuv":
        return [find("libuv_a.a")]
    if lib == "evloop":
        return [os.path.join(BIN, "evloop_lib.o")] if built("evloop_lib.o") else [None]
    return []


def bench_size(rep, quick):
    base = text_bytes(os.path.join(BIN, "size_none")) if built("size_none") else None
    res = {}
    for lib in LIBS:
        prog = "size_" + lib
        if not built(prog):
            res[lib] = None
            continue
        try:
            out = run(lib, ["./" + prog], timeout=30)
        except ProgramFailed as e:
            note_failure("size", lib, e)
            res[lib] = "FAIL"
            continue
        archives = lib_archives(lib)
        lib_text = sum(text_bytes(a) or 0 for a in archives) if archives and all(archives) else None
        out["text"] = text_bytes(os.path.join(BIN, prog))
        out["lib_text"] = lib_text
        res[lib] = out
    rows = []
    evt = res["evloop"]["text"] if isinstance(res.get("evloop"), dict) else None
    for lib in LIBS:
        r = res[lib]
        if not isinstance(r, dict):
            rows.append([lib_label(lib)] + [fmt(r)] * 9)
            continue
        sizes = []
        for k in ("sizeof_io", "sizeof_timer", "sizeof_signal", "sizeof_async", "sizeof_loop"):
            sizes.append(str(int(r[k])) if k in r else ("opaque" if k == "sizeof_loop" and lib != "raw" else "—"))
        rows.append([lib_label(lib), cell(float(r["text"]), float(evt) if evt else None),
                     fmt(float(r["text"] - base)) if base is not None else "—",
                     fmt(float(r["lib_text"])) if r.get("lib_text") else "—"] + sizes +
                    ["%d / %d" % (r.get("heap_after_init", 0), r.get("heap_with_watchers", 0))
                     if "heap_after_init" in r else "—"])
    checks = []
    ev, le = res.get("evloop"), res.get("libev")
    if isinstance(ev, dict) and isinstance(le, dict):
        checks.append("program .text ≤ 50%% of libev's: %s (%.0f%%)" % (
            verdict(ev["text"] <= 0.5 * le["text"]), 100.0 * ev["text"] / le["text"]))
        checks.append("sizeof(evl_io) ≤ 40: %s (%d)" % (verdict(ev["sizeof_io"] <= 40), ev["sizeof_io"]))
        checks.append("sizeof(evl_timer) ≤ 48: %s (%d)" % (verdict(ev["sizeof_timer"] <= 48),
                                                             ev["sizeof_timer"]))
    else:
        checks.append(verdict(None))
    body = table(["library", ".text of program", "minus baseline", "library's own .text",
                  "sizeof io", "timer", "signal", "async", "loop", "heap bytes: init / 4 watchers"], rows)
    body += ("\n\nThe program (size_*.c) uses one io, timer, signal and async watcher and checks all four "
             "ran; it is built with -O2, the peers linked statically from Debian's archives (libev.a; "
             "libevent_core.a + libevent_pthreads.a, needed for cross-thread activation; libuv_a.a), "
             "libc dynamically. \"minus baseline\" subtracts size_none (the same helpers, no library: "
             "%s bytes). \"library's own .text\" is the whole archive (or evloop_lib.o, the "
             "implementation compiled alone), used or not. Watchers in bytes on x86-64; libevent uses "
             "one `struct event` for everything; opaque loops show up in the heap column instead "
             "(glibc mallinfo2, bytes in use after creating the loop / after starting the watchers). "
             "In brackets: ratio to evloop.\n\n**target** %s" % (fmt(float(base)) if base else "?",
                                                                 "; ".join(checks)))
    nofib = text_bytes(os.path.join(BIN, "size_evloop_nofibers")) if built("size_evloop_nofibers") else None
    if nofib and isinstance(ev, dict) and isinstance(le, dict):
        body += ("\n\nFibers are compiled into every evloop program unless `EVLOOP_NO_FIBERS` is defined, "
                 "used or not: the same size_evloop.c built with it has %s bytes of .text (%.0f%% of "
                 "libev's program), so the fibers account for %s of the %s bytes above."
                 % (fmt(float(nofib)), 100.0 * nofib / le["text"], fmt(float(ev["text"] - nofib)),
                    fmt(float(ev["text"]))))
    rep.section("size", body)
    return res


# ---------------------------------------------------------------------------------------------
# machine

def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def busy_jiffies():
    """Non-idle CPU time of the whole machine so far, in seconds (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    guest = sum(fields[8:10]) if len(fields) > 9 else 0  # already counted in user/nice
    return (sum(fields) - idle - guest) / float(os.sysconf("SC_CLK_TCK"))


def own_cpu():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


NOISE = {}


def noise_line():
    """How busy the rest of the machine was while we measured: the tables mean little if it was."""
    if NOISE.get("busy0") is None:
        return "?"
    busy = busy_jiffies() - NOISE["busy0"]
    ours = own_cpu() - NOISE["own0"]
    wall = time.monotonic() - NOISE["t0"]
    others = max(0.0, busy - ours)
    ncpu = os.cpu_count() or 1
    return ("%.0f CPU-seconds used by other processes during the %.0f s run (%.0f%% of the machine; "
            "valgrind runs included in ours)" % (others, wall, 100.0 * others / (wall * ncpu)))


def machine_description():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cc = os.environ.get("CC", "cc")
    versions = []
    for pkg in ("libev-dev", "libevent-dev", "libuv1-dev", "valgrind"):
        v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
        if v:
            versions.append("%s %s" % (pkg, v))
    evl = "?"
    try:
        with open(os.path.join(HERE, "..", "evloop.h")) as f:
            m = re.search(r"v(\d+\.\d+\.\d+)", f.readline())
            evl = "v" + m.group(1) if m else "present"
        commit = sh(["git", "-C", os.path.join(HERE, ".."), "log", "-1", "--format=%h", "--", "evloop.h"])
        dirty = sh(["git", "-C", os.path.join(HERE, ".."), "status", "--porcelain", "--", "evloop.h",
                    "evloop_epoll.h"])
        evl += " (commit %s%s)" % (commit or "none", ", with uncommitted changes" if dirty else "")
    except OSError:
        evl = "missing (../evloop.h does not exist)"
    lines = [
        "- CPU: %s, %d cores online" % (cpu, os.cpu_count() or 0),
        "- kernel: %s %s" % (platform.system(), platform.release()),
        "- compiler: %s, flags `-O2 -g -std=gnu11` for every program" % (sh([cc, "--version"]).splitlines() or ["?"])[0],
        "- evloop: %s" % evl,
        "- packages: %s" % (", ".join(versions) or "?"),
        "- libraries as they reported themselves: %s" % ("; ".join("%s = %s" % (k, ", ".join(v)) for k, v in sorted(INFO.items())) or "?"),
        "- RLIMIT_NOFILE (soft/hard): %s / %s" % resource.getrlimit(resource.RLIMIT_NOFILE),
        "- load average at the start: %s, at the end: %s" % (
            NOISE.get("load0", "?"), " ".join("%.2f" % x for x in os.getloadavg())),
        "- noise: %s" % noise_line(),
    ]
    return "\n".join(lines)


def check_built(only):
    """A program that should exist but does not (a failed build) is a failure, not a blank cell."""
    want_evloop = os.path.exists(os.path.join(HERE, "..", "evloop.h"))
    progs = {"pipes": ["pipes"], "timers": ["timers"], "echo": ["echo"], "size": ["size"],
             "callgrind": ["pipes", "timers"]}
    missing = set()
    for bench, kinds in progs.items():
        if only and bench not in only:
            continue
        for kind in kinds:
            for lib in LIBS:
                if lib == "evloop" and not want_evloop:
                    continue
                if not built("%s_%s" % (kind, lib)):
                    missing.add("%s_%s" % (kind, lib))
    extras = {"echo": ["echo_client"], "fibers": ["fibers"], "size": ["size_none"],
              "timers": ["late_floor"], "files": ["files_libuv"]}
    if want_evloop:
        extras["timers"].append("timers_evloop_cached")
        extras["callgrind"] = ["timers_evloop_cached"]
        extras["fibers"].append("fibers_ucontext")
        extras["size"].append("size_evloop_nofibers")
        with open(os.path.join(HERE, "..", "evloop.h")) as f:
            if "evl_op_read" in f.read():  # the Makefile builds files_evloop only then
                extras["files"] += ["files_evloop", "files_evloop_workers"]
    for bench, names in extras.items():
        if only and bench not in only:
            continue
        missing.update(name for name in names if not built(name))
    for prog in sorted(missing):
        note_failure("build", prog, "not built (see the make output)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (under two minutes)")
    ap.add_argument("--out", default="results.md", help="markdown file to write (in bench/)")
    ap.add_argument("--only", default="", help="comma list: pipes,timers,echo,fibers,callgrind,size,files")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    started = time.monotonic()
    NOISE.update(busy0=busy_jiffies(), own0=own_cpu(), t0=started,
                 load0=" ".join("%.2f" % x for x in os.getloadavg()))
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rep = Report()
    if not built_any("evloop"):
        print("note: evloop programs are not built (../evloop.h missing): evloop columns stay empty\n")
    steps = [("pipes", bench_pipes), ("timers", bench_timers), ("echo", bench_echo),
             ("fibers", bench_fibers), ("callgrind", bench_callgrind), ("size", bench_size),
             ("files", bench_files)]
    check_built(only)
    for name, fn in steps:
        if only and name not in only:
            continue
        t0 = time.monotonic()
        fn(rep, args.quick)
        rep.parts[-1] = rep.parts[-1].rstrip("\n") + "\n\n(%s took %.0f s)\n" % (name, time.monotonic() - t0)
        print("(%s took %.0f s)\n" % (name, time.monotonic() - t0), flush=True)
    elapsed = time.monotonic() - started
    header = ("# evloop benchmarks (%s run, %s)\n\nGenerated by `make %s` (bench/run.py) in %.0f s. "
              "Ratios in brackets are library ÷ evloop, so for times below 1 means faster than evloop and "
              "for msgs/s above 1 means more than evloop. See bench/README.md for how each benchmark is "
              "made fair.\n\n## machine\n\n%s\n"
              % ("quick" if args.quick else "full", stamp, "bench-quick" if args.quick else "bench",
                 elapsed, machine_description()))
    print(header)
    text = header + "\n" + "\n".join(rep.parts)
    if FAILURES:
        text += "\n## failures\n\n" + "\n".join("- " + f for f in FAILURES) + "\n"
    with open(os.path.join(HERE, args.out), "w") as f:
        f.write(text)
    print("wrote %s (%.0f s)" % (os.path.join("bench", args.out), elapsed))
    if FAILURES:
        print("\n%d FAILURES:\n  %s" % (len(FAILURES), "\n  ".join(FAILURES)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
