#!/usr/bin/env python3
"""raw vs qcow2 virtio-blk throughput, swiftvmm vs QEMU microvm, on the same images.

    bench/blk_qcow2.py [--reps N] [--mib N] [--json PATH]

The probe kernel's sequential block benchmark (probe.bench=blk:read|write:MiB, 1 MiB
requests, depth 4) runs against a 64 MiB raw image and a qcow2 image with the same
contents (64 KiB clusters, fully allocated, so reads hit data clusters and writes go
in place), under swiftvmm and under QEMU (-drive format=raw|qcow2). VMMs alternate
within each repetition. Reports MiB/s and host CPU seconds per GiB (whole process).
4 KiB random I/O is not measured: the probe has no random benchmark yet.

For bench/run.py (owned by the benchmark helper): import `bench_blk_formats` and add its
result under the JSON keys it returns (raw_/qcow2_ + read_mib_s/write_mib_s, each
{swiftvmm, qemu}). Uses run.py's runner and statistics; Python standard library only.
"""
import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("benchrun", os.path.join(HERE, "run.py"))
br = importlib.util.module_from_spec(spec)
spec.loader.exec_module(br)


def command(vmm, cmdline, disk, fmt):
    c = br.command(vmm, cmdline, disk=disk)
    if vmm == "swiftvmm":
        i = c.index("--disk")
        c[i + 1] = f"{disk},format={fmt}"
    else:
        c = [x.replace(",format=raw,", f",format={fmt},") for x in c]
    return c


def bench_blk_formats(reps, mib, scratch_dir):
    raw = os.path.join(scratch_dir, "disk.raw")
    qcow2 = os.path.join(scratch_dir, "disk.qcow2")
    with open(raw, "wb") as f:
        f.write(bytes(range(256)) * (br.SCRATCH_MIB << 12))
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=65536", raw, qcow2], check=True)
    peers = ("swiftvmm", "qemu")
    results = {}
    for fmt, disk in (("raw", raw), ("qcow2", qcow2)):
        for op in ("read", "write"):
            tput = {p: [] for p in peers}
            cpu = {p: [] for p in peers}
            for _ in range(reps):
                for p in peers:
                    r = br.run_to_exit(command(p, f"console=ttyS0 probe.bench=blk:{op}:{mib}", disk, fmt), timeout=300)
                    s, d = r.find(b"BENCH BLK START"), r.find(b"BENCH BLK DONE")
                    if s < 0 or d < 0:
                        raise br.BenchError(f"{p} {fmt}: blk {op} failed\n{br.tail(r)}")
                    m = re.search(rb"BENCH BLK DONE op=\w+ bytes=(\d+)", r.out)
                    nbytes = int(m.group(1)) if m else mib << 20
                    secs = (r.time_of(d) - r.time_of(r.find(b"\n", s))) / 1e9
                    tput[p].append(nbytes / (1 << 20) / secs)
                    cpu[p].append(r.cpu_s() / (nbytes / (1 << 30)))
            results[f"{fmt}_{op}_mib_s"] = {p: br.summary(tput[p]) for p in peers}
            results[f"{fmt}_{op}_cpu_s_per_gib"] = {p: br.summary(cpu[p]) for p in peers}
    check = subprocess.run(["qemu-img", "check", qcow2], capture_output=True, text=True)
    if check.returncode != 0:
        raise br.BenchError(f"qemu-img check after the benchmark: {check.stdout}{check.stderr}")
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="blk-qcow2-") as tmp:
        res = bench_blk_formats(a.reps, a.mib, tmp)
    print(f"{'measurement (median, min-max)':40} {'swiftvmm':>24} {'qemu':>24}")
    for k, v in res.items():
        cells = [f"{br.med(v[p]):.1f} ({v[p]['min']:.1f}-{v[p]['max']:.1f})" for p in ("swiftvmm", "qemu")]
        print(f"{k:40} {cells[0]:>24} {cells[1]:>24}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
