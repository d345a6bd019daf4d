#!/usr/bin/python3
"""Summarise the raw data bench/run.sh collected: medians per workload, a
markdown table (printed, and written to OUT/bench.md) and all of it as JSON
(OUT/bench.json).

Usage: report.py --raw DIR --out DIR --reps N [--jailtrace TEXT] -- WORKLOAD...

RAW/WORKLOAD/argv holds the command line (NUL-terminated arguments); RAW/WORKLOAD/REP/ holds,
per repetition: native.time.json, jailtrace.time.json, baseline.time.json,
strong.time.json ({"ms", "status"} measured by run.sh), jailtrace.json
(jailtrace's --json summary), manifest.json (jailtrace's manifest),
baseline.json and strong.json (the summary lines of strace_loop.sh and
strace_loop.sh --strong) with their stderr in baseline.err and strong.err.
A missing or unreadable file counts as a failed run, never as a crash.

The two loops are reported the same way, each under its own key prefix:
"baseline" (today's loop) and "strong" (the strong loop).
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import sys

MIB = 1024 * 1024
# The strace loops run.sh measures: key prefix (and raw file stem), and
# the name the table gives it.
LOOPS = {"baseline": "baseline", "strong": "strong loop"}


def load(path):
    """The JSON in PATH, or None if it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_lines(path):
    """PATH's lines (undecodable bytes replaced: for display only), or []."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def manifest_stats(manifest):
    """Per-role run counts and times, and the files placed split by whether
    they are directory-listing placeholders (reason cause `listed`)."""
    stats = {
        "discover_runs": 0, "verify_runs": 0, "retry_runs": 0,
        "discover_ms": 0, "verify_ms": 0, "retry_ms": 0,
        "discover_stops": 0, "verify_stops": 0, "retry_stops": 0,
        "discover_handler_us": 0, "verify_handler_us": 0, "retry_handler_us": 0,
        "files_not_listed": 0, "bytes_not_listed": 0,
        "files_listed": 0, "bytes_listed": 0, "entries_listed": 0,
    }
    for run in manifest.get("runs", []):
        role = run.get("role")
        if role in ("discover", "verify", "retry"):
            stats[f"{role}_runs"] += 1
            stats[f"{role}_ms"] += run.get("wall_ms", 0)
            stats[f"{role}_stops"] += run.get("stops", 0)
            stats[f"{role}_handler_us"] += run.get("handler_us", 0)
    for entry in manifest.get("entries", []):
        listed = entry.get("reason", {}).get("cause") == "listed"
        stats["entries_listed"] += listed
        if entry.get("kind") != "file":
            continue
        key = "listed" if listed else "not_listed"
        stats[f"files_{key}"] += 1
        stats[f"bytes_{key}"] += entry.get("size", 0)
    return stats


def loop_repetition(d, loop):
    """What one strace loop (a LOOPS key) measured in one repetition."""
    time = load(os.path.join(d, f"{loop}.time.json")) or {}
    summary = load(os.path.join(d, f"{loop}.json")) or {}
    why = [line.strip() for line in read_lines(os.path.join(d, f"{loop}.err"))
           if line.startswith("strace_loop: ")]
    return {
        f"{loop}_ms": time.get("ms"),
        f"{loop}_ok": summary.get("ok") is True,
        f"{loop}_runs": summary.get("runs"),
        f"{loop}_files": summary.get("files"),
        f"{loop}_bytes": summary.get("bytes"),
        f"{loop}_self_ms": summary.get("wall_ms"),
        f"{loop}_why": why[-1] if why else None,
    }


def repetition(d):
    """Everything measured in one repetition directory."""
    native = load(os.path.join(d, "native.time.json")) or {}
    jt_time = load(os.path.join(d, "jailtrace.time.json")) or {}
    jt = load(os.path.join(d, "jailtrace.json")) or {}
    manifest = load(os.path.join(d, "manifest.json"))
    jt_why = [line.strip() for line in read_lines(os.path.join(d, "jailtrace.err"))
              if line.startswith("error:")]
    rep = {
        "native_ms": native.get("ms"),
        "native_status": native.get("status"),
        "jailtrace_ms": jt_time.get("ms"),
        "jailtrace_status": jt_time.get("status"),
        "jailtrace_ok": jt.get("ok") is True and jt_time.get("status") == 0,
        "jailtrace_runs": jt.get("runs"),
        "jailtrace_roles": jt.get("roles"),
        "jailtrace_files": jt.get("files"),
        "jailtrace_bytes": jt.get("bytes"),
        "jailtrace_self_ms": jt.get("wall_ms"),
        "jailtrace_why": jt_why[-1] if jt_why else None,
    }
    for loop in LOOPS:
        rep.update(loop_repetition(d, loop))
    if manifest is not None:
        rep.update(manifest_stats(manifest))
        # The verifying run's wall time over its stops: the cost of one stop
        # (tracer work and the wake-ups) plus the program's own time spread
        # over them.
        if rep["verify_stops"]:
            rep["verify_us_per_stop"] = 1000 * rep["verify_ms"] / rep["verify_stops"]
            # Of that, jailtrace's handler (manifests that record it).
            rep["verify_handler_us_per_stop"] = rep["verify_handler_us"] / rep["verify_stops"]
    return rep


def median(reps, key):
    values = [r[key] for r in reps if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def workload(raw, name, reps_wanted):
    wdir = os.path.join(raw, name)
    try:
        with open(os.path.join(wdir, "argv"), "rb") as f:
            argv = [os.fsdecode(a) for a in f.read().split(b"\0")[:-1]]
        command = shlex.join(argv)
    except OSError:
        command = "?"
    reps = [repetition(os.path.join(wdir, str(i)))
            for i in range(1, reps_wanted + 1)
            if os.path.isdir(os.path.join(wdir, str(i)))]
    keys = ["native_ms", "jailtrace_ms", "discover_ms", "verify_ms", "retry_ms",
            "discover_runs", "verify_runs", "retry_runs",
            "discover_stops", "verify_stops", "verify_us_per_stop",
            "verify_handler_us_per_stop",
            "jailtrace_files", "jailtrace_bytes",
            "files_not_listed", "bytes_not_listed", "files_listed",
            "bytes_listed", "entries_listed",
            "baseline_ms", "baseline_runs", "baseline_files", "baseline_bytes",
            "strong_ms", "strong_runs", "strong_files", "strong_bytes"]
    med = {k: median(reps, k) for k in keys}
    w = {
        "name": name,
        "command": command,
        "reps": len(reps),
        "median": med,
        "native_ok_all": all(r["native_status"] == 0 for r in reps),
        "jailtrace_ok_all": all(r["jailtrace_ok"] for r in reps),
        "baseline_ok_count": sum(r["baseline_ok"] for r in reps),
        "strong_ok_count": sum(r["strong_ok"] for r in reps),
        "one_discover_one_verify_all": bool(reps) and all(
            r.get("discover_runs") == 1 and r.get("verify_runs") == 1
            and r.get("retry_runs") == 0 for r in reps),
        "repetitions": reps,
    }
    for loop in LOOPS:
        w[f"{loop}_ok_all"] = bool(reps) and w[f"{loop}_ok_count"] == len(reps)
    # Loop ms / jailtrace ms: above 1 means jailtrace is faster.
    w["speedup"] = ratio(med["baseline_ms"], med["jailtrace_ms"]) if w["jailtrace_ok_all"] else None
    w["speedup_strong"] = ratio(med["strong_ms"], med["jailtrace_ms"]) if w["jailtrace_ok_all"] else None
    w["discover_over_native"] = ratio(med["discover_ms"], med["native_ms"])
    return w


def ratio(a, b):
    return a / b if a is not None and b else None


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ---- formatting -----------------------------------------------------------

def ms(v):
    if v is None:
        return "?"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def num(v):
    return "?" if v is None else f"{v:g}"


def size(files, nbytes):
    if files is None or nbytes is None:
        return "?"
    if nbytes >= MIB:
        return f"{files:g} / {nbytes / MIB:.1f} MiB"
    if nbytes >= 1024:
        return f"{files:g} / {nbytes / 1024:.0f} KiB"
    return f"{files:g} / {nbytes:g} B"


def times(v):
    return "?" if v is None else f"{v:.1f}×"


def runs(med):
    d, v, r = med["discover_runs"], med["verify_runs"], med["retry_runs"]
    if d is None:
        return "?"
    text = f"{d:g}+{v:g}"
    return text + f" +{r:g} retry" if r else text


def loop_ok(w, loop):
    if w[f"{loop}_ok_all"]:
        return "yes"
    if w[f"{loop}_ok_count"] == 0:
        return "**no**"
    return f"{w[f'{loop}_ok_count']}/{w['reps']}"


def loop_speedup(w, loop, key):
    text = times(w[key])
    return text if w[f"{loop}_ok_all"] else f"({text})"


def markdown(result):
    ws = result["workloads"]
    s = result["summary"]
    m = result["machine"]
    out = []
    out.append("| workload | native ms | jailtrace ms | discover ms | verify ms "
               "| verify stops | µs / stop | handler µs / stop | jailtrace runs | jailtrace files / bytes | baseline ms "
               "| baseline runs | baseline files / bytes | baseline ok? "
               "| speedup | strong loop ms | strong loop runs | strong loop ok? "
               "| jailtrace vs strong loop | discover / native |")
    out.append("|---|--:|--:|--:|--:|--:|--:|--:|:-:|--:|--:|--:|--:|:-:|--:|--:|--:|:-:|--:|--:|")
    for w in ws:
        med = w["median"]
        name = w["name"] if w["jailtrace_ok_all"] else f"{w['name']} (**jailtrace failed**)"
        out.append(" | ".join([
            f"| {name}", ms(med["native_ms"]), ms(med["jailtrace_ms"]),
            ms(med["discover_ms"]), ms(med["verify_ms"]), num(med["verify_stops"]),
            ms(med["verify_us_per_stop"]), ms(med["verify_handler_us_per_stop"]), runs(med),
            size(med["jailtrace_files"], med["jailtrace_bytes"]),
            ms(med["baseline_ms"]), num(med["baseline_runs"]),
            size(med["baseline_files"], med["baseline_bytes"]),
            loop_ok(w, "baseline"), loop_speedup(w, "baseline", "speedup"),
            ms(med["strong_ms"]), num(med["strong_runs"]), loop_ok(w, "strong"),
            loop_speedup(w, "strong", "speedup_strong"), times(w["discover_over_native"]),
        ]) + " |")
    out.append("")
    out.append(f"Medians of {result['reps']} repetition(s) per workload, run interleaved "
               "(native, jailtrace, baseline, strong loop). Times are wall clock around the whole "
               "command; discover/verify are jailtrace's own per-run times from the "
               "manifest; µs / stop is the verifying run's wall time over its stops "
               "(the tracer's work and wake-ups per stop, plus the program's own time), and handler µs / stop "
               "the part of it spent in jailtrace's handler (the rest is the kernel's stops and "
               "wake-ups, and the program). Speedup = baseline ms / jailtrace ms, "
               "jailtrace vs strong loop = strong loop ms / jailtrace ms (above 1×: jailtrace is faster); "
               "in parentheses where that loop gave up (its time is the time to failure). Baseline = "
               "`bench/strace_loop.sh` (strace -f -e trace=%file + cp -a --parents loop); strong loop = "
               "`bench/strace_loop.sh --strong` (the same with strace --seccomp-bpf, the ldd closure of every "
               "ELF file it copies, relative paths resolved).")
    out.append("")
    sp = s["median_speedup_baseline_ok"]
    out.append(f"- Median speedup where the baseline succeeds: **{times(sp)}** "
               f"(over {len(s['baseline_ok_workloads'])} workloads: "
               f"{', '.join(s['baseline_ok_workloads']) or 'none'}).")
    sp = s["median_speedup_strong_ok"]
    out.append(f"- Median jailtrace vs strong loop where the strong loop succeeds: **{times(sp)}** "
               f"(over {len(s['strong_ok_workloads'])} workloads: "
               f"{', '.join(s['strong_ok_workloads']) or 'none'}).")
    for loop, title in LOOPS.items():
        for w in ws:
            if not w[f"{loop}_ok_all"]:
                whys = sorted({r[f"{loop}_why"] or "no reason given" for r in w["repetitions"]
                               if not r[f"{loop}_ok"]})
                out.append(f"- {title.capitalize()} failed on {w['name']}: " + "; ".join(
                    why.removeprefix("strace_loop: ") for why in whys) + ".")
    if "dd_discover_over_native" in s:
        out.append(f"- dd (syscall-heavy) discover / native: **{times(s['dd_discover_over_native'])}**.")
    conv = s["all_one_discover_one_verify"]
    line = f"- Every workload converged in exactly 1 discover + 1 verify in every repetition: **{'yes' if conv else 'no'}**"
    if not conv:
        line += f" (not: {', '.join(s['not_one_discover_one_verify'])})"
    out.append(line + ".")
    for w in ws:
        if not w["jailtrace_ok_all"]:
            whys = sorted({f"exit {r['jailtrace_status']}: {r['jailtrace_why'] or 'no error line'}"
                           for r in w["repetitions"] if not r["jailtrace_ok"]})
            out.append(f"- **jailtrace failed** on {w['name']}: " + "; ".join(whys) + ".")
    if s["native_failed_workloads"]:
        out.append(f"- The program itself failed natively on: {', '.join(s['native_failed_workloads'])}.")
    out.append(f"- jailtrace: {result['jailtrace']}.")
    out.append(f"- Machine: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}, {m['date']}.")
    out.append("")
    out.append("Root size: jailtrace's files split by whether they are directory-listing "
               "placeholders the program then used (reason cause `listed`), next to the two loops.")
    out.append("")
    out.append("| workload | jailtrace files / bytes | not `listed` | `listed` | baseline files / bytes "
               "| strong loop files / bytes |")
    out.append("|---|--:|--:|--:|--:|--:|")
    for w in ws:
        med = w["median"]
        out.append(" | ".join([
            f"| {w['name']}", size(med["jailtrace_files"], med["jailtrace_bytes"]),
            size(med["files_not_listed"], med["bytes_not_listed"]),
            size(med["files_listed"], med["bytes_listed"]),
            size(med["baseline_files"], med["baseline_bytes"]),
            size(med["strong_files"], med["strong_bytes"]),
        ]) + " |")
    out.append("")
    out.append("Commands:")
    out.append("")
    for w in ws:
        out.append(f"- `{w['name']}`: `{w['command']}`")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--raw", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--reps", type=int, required=True)
    p.add_argument("--jailtrace", default="?", help="which jailtrace was measured")
    p.add_argument("workloads", nargs="+")
    a = p.parse_args()

    ws = [workload(a.raw, name, a.reps) for name in a.workloads]
    ok = [w for w in ws if w["baseline_ok_all"] and w["speedup"] is not None]
    strong_ok = [w for w in ws if w["strong_ok_all"] and w["speedup_strong"] is not None]
    summary = {
        "median_speedup_baseline_ok": statistics.median(w["speedup"] for w in ok) if ok else None,
        "baseline_ok_workloads": [w["name"] for w in ok],
        "baseline_failed_workloads": [w["name"] for w in ws if not w["baseline_ok_all"]],
        "median_speedup_strong_ok": (statistics.median(w["speedup_strong"] for w in strong_ok)
                                     if strong_ok else None),
        "strong_ok_workloads": [w["name"] for w in strong_ok],
        "strong_failed_workloads": [w["name"] for w in ws if not w["strong_ok_all"]],
        "all_one_discover_one_verify": all(w["one_discover_one_verify_all"] for w in ws),
        "not_one_discover_one_verify": [w["name"] for w in ws if not w["one_discover_one_verify_all"]],
        "jailtrace_failed_workloads": [w["name"] for w in ws if not w["jailtrace_ok_all"]],
        "native_failed_workloads": [w["name"] for w in ws if not w["native_ok_all"]],
    }
    for w in ws:
        if w["name"] == "dd":
            summary["dd_discover_over_native"] = w["discover_over_native"]
    result = {"reps": a.reps, "jailtrace": a.jailtrace, "machine": machine(), "summary": summary, "workloads": ws}

    text = markdown(result)
    with open(os.path.join(a.out, "bench.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    with open(os.path.join(a.out, "bench.md"), "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
