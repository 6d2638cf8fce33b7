#!/usr/bin/env python3
"""Snapshot benchmarks on this host with the probe kernel (standard library only).

    bench/snapshot.py [--reps N] [--sizes 128,1024] [--json PATH]

`make bench` runs the same measurement as its `snapshot` step (bench/run.py imports
`measure`) and puts the figures into bench/results/latest.json with their budgets; this
script alone prints them (and writes them to --json PATH if asked).

For each guest size: boot the probe to its prompt, suspend it to a Full snapshot
(`run --snapshot-on-signal STATE,MEM,exit`, SIGUSR1) and time the snapshot; then restore
it REPS times (`run --restore`) and time restore → first KVM_RUN (swiftvmm's --timings:
from main to the first KVM_RUN) and restore → responsive (from spawning the process to
the guest echoing a line typed before the restore). Then live migration of a 256 MiB
guest over a Unix socket, idle (at its prompt) and dirtying (`dirty 64`: a word per page
of 64 MiB, sweep after sweep). Medians; JSON keys as issue 11 asks: snapshot_create_ms,
restore_to_first_run_ms, restore_to_responsive_ms (by size in MiB), migration_total_ms,
migration_downtime_ms (idle, dirtying).
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWIFTVMM = os.environ.get("SWIFTVMM", os.path.join(ROOT, ".build/release/swiftvmm"))
PROBE = os.path.join(ROOT, "guests/out/probe.bzImage")


def read_until(p, needle, timeout):
    """Read p's stdout until `needle` appears; returns (bytes, time of arrival in ns)."""
    buf = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(p.stdout.fileno(), False)
    while time.monotonic() < deadline:
        try:
            chunk = p.stdout.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            buf += chunk
            if needle in buf:
                return buf, time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        elif p.poll() is not None:
            break
        else:
            time.sleep(0.0005)
    raise RuntimeError(f"no {needle!r} within {timeout} s; output: {buf[-300:]!r}")


def snapshot(size, state, mem):
    p = subprocess.Popen([SWIFTVMM, "run", "--kernel", PROBE, "--memory", str(size),
                          "--snapshot-on-signal", f"{state},{mem},exit"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"echo ready\n")
    p.stdin.flush()
    read_until(p, b"ready\r\n", 60)
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=120)
    m = re.search(rb"snapshot \(Full\) written to .* in ([0-9.]+) ms", err)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"snapshot of {size} MiB failed: {err.decode(errors='replace')}")
    return float(m.group(1))


def restore(state, mem):
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    p = subprocess.Popen([SWIFTVMM, "run", "--restore", f"{state},{mem}", "--timings"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"echo back\npoweroff\n")
    p.stdin.flush()
    _, t = read_until(p, b"back\r\n", 60)
    _, err = p.communicate(timeout=60)
    m = re.search(rb"main=(\d+) first-KVM_RUN=(\d+)", err)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"restore failed: {err.decode(errors='replace')}")
    return (int(m.group(2)) - int(m.group(1))) / 1e6, (t - t0) / 1e6


def migrate(tmp, workload):
    sock = os.path.join(tmp, "mig.sock")
    dst = subprocess.Popen([SWIFTVMM, "run", "--migrate-from", f"unix:{sock}"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.01)
    src = subprocess.Popen([SWIFTVMM, "run", "--kernel", PROBE, "--memory", "256", "--migrate-on-signal", f"unix:{sock}"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    src.stdin.write(b"echo ready\n" + (b"dirty 64\n" if workload == "dirtying" else b""))
    src.stdin.flush()
    read_until(src, b"dirty sweep=3" if workload == "dirtying" else b"ready\r\n", 60)
    src.send_signal(signal.SIGUSR1)
    _, err = src.communicate(timeout=120)
    dst.kill()
    dst.communicate()
    m = re.search(rb"total ([0-9.]+) ms, downtime ([0-9.]+) ms", err)
    if src.returncode != 0 or not m:
        raise RuntimeError(f"migration ({workload}) failed: {err.decode(errors='replace')}")
    return float(m.group(1)), float(m.group(2))


def measure(reps, sizes, tmp, log=print):
    """All of issue 11's figures, in `tmp`. The guest sizes take turns within each
    repetition (load on this shared machine falls on both alike), after one unmeasured
    restore of each: the first restore of a fresh snapshot also pays for reading the
    state and memory files into the page cache, which every later one finds there."""
    R = {"snapshot_create_ms": {}, "restore_to_first_run_ms": {}, "restore_to_responsive_ms": {}}
    files = {}
    for size in sizes:
        state, mem = os.path.join(tmp, f"{size}.state"), os.path.join(tmp, f"{size}.mem")
        create = [snapshot(size, state, mem) for _ in range(max(1, reps // 2))]
        R["snapshot_create_ms"][str(size)] = round(statistics.median(create), 2)
        files[size] = (state, mem)
        restore(state, mem)
    runs = {size: [] for size in sizes}
    for _ in range(reps):
        for size in sizes:
            runs[size].append(restore(*files[size]))
    for size in sizes:
        R["restore_to_first_run_ms"][str(size)] = round(statistics.median(r[0] for r in runs[size]), 3)
        R["restore_to_responsive_ms"][str(size)] = round(statistics.median(r[1] for r in runs[size]), 2)
        log(f"{size:5} MiB: snapshot {R['snapshot_create_ms'][str(size)]} ms, restore → first KVM_RUN "
            f"{R['restore_to_first_run_ms'][str(size)]} ms (min {min(r[0] for r in runs[size]):.3f}), "
            f"restore → responsive {R['restore_to_responsive_ms'][str(size)]} ms")
    R["migration_total_ms"], R["migration_downtime_ms"] = {}, {}
    for workload in ("idle", "dirtying"):
        runs = [migrate(tmp, workload) for _ in range(reps)]
        R["migration_total_ms"][workload] = round(statistics.median(r[0] for r in runs), 2)
        R["migration_downtime_ms"][workload] = round(statistics.median(r[1] for r in runs), 2)
        log(f"migration, 256 MiB, {workload}: total {R['migration_total_ms'][workload]} ms, "
            f"downtime {R['migration_downtime_ms'][workload]} ms (min {min(r[1] for r in runs):.2f})")
    return R


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sizes", default="128,1024")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    for path in (SWIFTVMM, PROBE):
        if not os.path.exists(path):
            sys.exit(f"bench: {path} is missing")
    with tempfile.TemporaryDirectory(prefix="swiftvmm-snapbench-") as tmp:
        R = measure(a.reps, [int(s) for s in a.sizes.split(",")], tmp, log=lambda m: print(m, flush=True))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(R, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
