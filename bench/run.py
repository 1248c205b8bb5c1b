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
import os
import platform
import re
import resource
import select
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "build")  # where the Makefile puts the programs
LIBS = ["evloop", "libev", "libevent", "libuv", "raw"]
PEERS = ["libev", "libevent", "libuv"]
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
    "fibers": ((1000000, 5), (200000, 1)),                           # (round trips, rounds)
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
    return res


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
    return lib if built_any(lib) else "%s (not built)" % lib


def built_any(lib):
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
            ["loop_us", "total_us"])

    headers = ["library"]
    for (n, a, w) in sets:
        headers += ["n=%d a=%d w=%d: loop µs" % (n, a, w), "total µs"]
    rows = []
    for lib in LIBS:
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


def bench_timers(rep, quick):
    churn_sets = cfg("churn", quick)
    churn = {}
    for (t, r, rounds) in churn_sets:
        churn[t] = interleaved("timers churn %d" % t, rounds,
                               lambda lib: ["./timers_" + lib, "churn", str(t), str(r)],
                               ["ns_per_op", "start_ns", "restart_ns", "stop_ns"])
    ft, frounds = cfg("fire", quick)
    fire = interleaved("timers fire", frounds, lambda lib: ["./timers_" + lib, "fire", str(ft)],
                       ["total_ms", "cpu_ms"])
    ln, lc, lrounds = cfg("late", quick)
    late = interleaved("timers late", lrounds, lambda lib: ["./timers_" + lib, "late", str(ln), str(lc)],
                       ["late_p50_us", "late_p99_us", "late_max_us", "late_min_us"])

    headers = ["library"]
    for (t, r, _) in churn_sets:
        headers += ["churn %s×(%d+2): ns/op" % ("{:,}".format(t), r), "start / restart / stop ns"]
    headers += ["fire %s in 0–10 ms: total ms" % "{:,}".format(ft), "CPU ms"]
    rows = []
    for lib in LIBS:
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
        ev, le = churn[t]["evloop"]["ns_per_op"], churn[t]["libev"]["ns_per_op"]
        ok = (ev <= le) if isinstance(ev, float) and isinstance(le, float) else None
        checks.append("%s timers: %s%s" % ("{:,}".format(t), verdict(ok),
                                           " (%.2f× libev)" % (ev / le) if ok is not None else ""))
    body = table(headers, rows)
    body += ("\n\nChurn: T timers started with pseudo-random 1–10 s timeouts, each restarted R times with "
             "a new one, then all stopped, all from inside one loop callback; ns per operation over all "
             "T×(R+2) operations, then per phase. Fire: total wall time from the first start until the "
             "loop returned with all timers fired, and the process CPU time over it. Medians of %s "
             "interleaved rounds; in brackets: ratio to evloop.\n\n"
             "**target** churn ns/op ≤ libev: %s"
             % ("/".join(str(x[2]) for x in churn_sets) + "/%d" % frounds, "; ".join(checks)))
    if quick:
        body += "\n\n(quick mode: the 1,000,000-timer churn is left out)"
    rep.section("timers: churn and fire", body)

    rows = []
    for lib in LIBS:
        l = late[lib]
        rows.append([lib_label(lib)] + [fmt(l[k]) for k in
                                        ("late_p50_us", "late_p99_us", "late_max_us", "late_min_us")])
    p99 = late["evloop"]["late_p99_us"]
    ok = (p99 <= 100.0) if isinstance(p99, float) else None
    body = table(["library", "p50 µs", "p99 µs", "max µs", "min µs"], rows)
    body += ("\n\n%d one-shot timers of 1–3 ms (whole µs), %d in flight at a time; lateness = time the "
             "callback ran − (clock read just before the start + timeout). Negative = fired early "
             "(libuv's whole-millisecond clock and timeouts, libevent's cached coarse clock). Each library "
             "in its default configuration. Median over %d interleaved rounds of each statistic.\n\n"
             "**target** evloop p99 ≤ 100 µs: %s%s"
             % (ln, lc, lrounds, verdict(ok), " (%.1f µs)" % p99 if ok is not None else ""))
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


def bench_fibers(rep, quick):
    n, rounds = cfg("fibers", quick)
    sw, ev, skipped = [], [], None
    if not built("fibers"):
        rep.section("fibers", "fibers program not built.")
        return
    for r in range(rounds):
        try:
            p = subprocess.run(["./fibers", str(n)], cwd=BIN, capture_output=True, text=True,
                               timeout=120, preexec_fn=pin_to(single_cpu()))
        except subprocess.TimeoutExpired:
            note_failure("fibers", "evloop", "timed out")
            break
        if p.returncode != 0:
            note_failure("fibers", "evloop", (p.stderr.strip().splitlines() or ["?"])[-1])
            break
        res, info = parse_output(p.stdout)
        sw.append(res["swapcontext_ns"])
        if "evl_yield_ns" in res:
            ev.append(res["evl_yield_ns"])
        skipped = info.get("evl_yield_skipped")
    s, e = median(sw), median(ev)
    rows = [["swapcontext (glibc)", fmt(s), ratio(s, e)],
            ["evl_yield (two fibers)", fmt(e) if e is not None else "skipped", "1.00" if e else "—"]]
    body = table(["switch", "ns per switch", "ratio to evl_yield"], rows)
    body += ("\n\nswapcontext: main and one coroutine swap %d times each way; evl_yield: two fibers "
             "yield %d times each, every yield going through the loop. Median of %d rounds."
             % (n, n, rounds))
    if skipped:
        body += "\n\nevl_yield skipped: " + skipped + ". Once evloop.h provides evl_fiber_start, " \
                "`make` detects it (probe_fibers.c) and this row fills in."
    rep.section("fibers", body)


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
            for lib in LIBS:
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
        for lib in LIBS:
            v = values.get((mi, lib))
            if isinstance(v, dict) and "lo" in v and "hi" in v:
                per[(mi, lib)] = (v["hi"] - v["lo"]) / m[4](lo, hi)
            elif v == "FAIL":
                per[(mi, lib)] = "FAIL"
            else:
                per[(mi, lib)] = None
    headers = ["library"] + [m[0] for m in metrics]
    rows = []
    for lib in LIBS:
        rows.append([lib_label(lib)] + [cell(per[(mi, lib)], per[(mi, "evloop")])
                                        for mi in range(len(metrics))])
    checks = []
    for mi, m in enumerate(metrics):
        if not m[0].startswith("pipes"):
            continue
        ev, le = per[(mi, "evloop")], per[(mi, "libev")]
        ok = (ev <= 0.8 * le) if isinstance(ev, float) and isinstance(le, float) else None
        checks.append("%s: %s%s" % (m[0].split(":")[0], verdict(ok),
                                    " (%.2f× libev)" % (ev / le) if ok is not None else ""))
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
    if VALGRIND_NOTES:
        body += ("\n\nvalgrind %s warned: %s. (Syscall 441 is epoll_pwait2, which valgrind learnt after "
                 "3.19: under callgrind evloop takes its epoll_wait + timerfd fallback, so these counts "
                 "are for that path; the pipes passes wait with timeout 0 either way.)"
                 % (sh(["valgrind", "--version"]), "; ".join(sorted(VALGRIND_NOTES))))
    rep.section("cost in instructions (callgrind)", body)
    for f in os.listdir(BIN):
        if f.startswith("callgrind.out."):
            os.unlink(os.path.join(BIN, f))
    return per


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
    for extra in ("echo_client", "fibers", "size_none"):
        if not built(extra):
            missing.add(extra)
    for prog in sorted(missing):
        note_failure("build", prog, "not built (see the make output)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (under a minute)")
    ap.add_argument("--out", default="results.md", help="markdown file to write (in bench/)")
    ap.add_argument("--only", default="", help="comma list: pipes,timers,echo,fibers,callgrind,size")
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
             ("fibers", bench_fibers), ("callgrind", bench_callgrind), ("size", bench_size)]
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
