#!/usr/bin/env python3
"""Where swiftvmm's resident memory goes: every KiB of the memory benchmark's figure (Rss
of every mapping but guest RAM), by mapping, and for the executable's own mappings by the
code or data the resident pages hold.

    bench/residency.py [--pid PID] [--binary PATH]

Without --pid it starts swiftvmm as `make bench` does for memory (probe shell idling,
128 MiB, one disk, rng, the API socket, vsock, a network interface as root, and
SWIFTVMM_BENCH_EXTRA), waits for the prompt and 0.3 s, reads,
then powers the VM off. Resident pages come from /proc/PID/pagemap (root: present bit);
each page's bytes are split among the symbols (nm, with sizes) that overlap it; bytes no
symbol covers (alignment, unnamed tables) are listed as such.
"""
import argparse
import bisect
import collections
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the benchmark driver: Run, command, smaps)

PAGE = 4096


def component(sym):
    """Which part of the binary a symbol belongs to, from its name."""
    if sym.startswith("$s"):
        m = re.match(r"\$s(\d+)", sym)
        if m:
            n = int(m.group(1))
            mod = sym[len(m.group(0)):len(m.group(0)) + n]
            return {"KVMKit": "KVMKit", "VirtioDevices": "VirtioDevices", "VMMCore": "VMMCore",
                    "swiftvmm": "swiftvmm (CLI)", "Synchronization": "Swift Synchronization", "Glibc": "Swift Glibc overlay",
                    "_StringProcessing": "Swift _StringProcessing", "_RegexParser": "Swift _RegexParser",
                    "_Concurrency": "Swift _Concurrency"}.get(mod, "Swift standard library")
        return "Swift standard library"
    if sym.startswith("ckvm_"):
        return "CKVM (C shim)"
    if sym.startswith(("swift_", "_swift_", "_ZN5swift", "_ZL", "$", "_ZNK5swift", "__swift")):
        return "Swift runtime (C++)"
    if sym.startswith(("_ZNSt", "_ZSt", "_ZN9__gnu_cxx", "__cxa_", "_ZTV", "_ZTI", "_ZTS", "_Zn", "_Zd", "__gxx")):
        return "libstdc++"
    if "dispatch" in sym:
        return "libdispatch"
    return "glibc and other C"


def symbols(binary):
    """Sorted (start, end, name) of every symbol with a size."""
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[1] != "0" * len(parts[1]):
            start, size = int(parts[0], 16), int(parts[1], 16)
            syms.append((start, start + size, parts[3]))
    syms.sort()
    return syms


def resident_pages(pid, start, end):
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        data = f.read((end - start) // PAGE * 8)
    return [start + i * PAGE for i, (e,) in enumerate(struct.iter_unpack("<Q", data)) if e >> 63]


def attribute(pages, syms):
    starts = [s[0] for s in syms]
    by = collections.Counter()
    for p in pages:
        covered = 0
        i = max(0, bisect.bisect_right(starts, p) - 1)
        # Symbols may overlap (aliases): count each byte once, for the first symbol.
        cursor = p
        while i < len(syms) and syms[i][0] < p + PAGE:
            s, e, name = syms[i]
            lo, hi = max(s, cursor), min(e, p + PAGE)
            if hi > lo:
                by[component(name)] += hi - lo
                covered += hi - lo
                cursor = hi
            i += 1
        by["(no symbol: alignment, unnamed tables)"] += PAGE - covered
    return by


def report(pid, binary):
    exe = os.path.realpath(f"/proc/{pid}/exe")
    binary = binary or exe
    syms = symbols(binary)
    maps = bench.smaps(pid)
    guest_bytes = bench.MEM_MIB << 20
    lines = [f"swiftvmm pid {pid}: {exe}", "", "| mapping | perms | size KiB | Rss KiB |", "|---|---|---|---|"]
    ranges = {}
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            a, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in a.split("-"))
            ranges[lo] = (hi, perms)
    total = 0
    for m, (lo, (hi, perms)) in zip(maps, sorted(ranges.items())):
        if m["size"] == guest_bytes:
            name = "guest RAM (excluded)"
        else:
            total += m.get("Rss", 0)
            name = m["path"] or "[anonymous]"
            if m["path"] == exe:
                name = {"r-xp": "swiftvmm text", "r--p": "swiftvmm read-only data",
                        "rw-p": "swiftvmm data (Swift metadata, globals)"}.get(perms, "swiftvmm " + perms)
        if m.get("Rss", 0):
            lines.append(f"| {name} | {perms} | {m['size'] // 1024} | {m.get('Rss', 0)} |")
    lines.append(f"| **overhead (all but guest RAM)** | | | **{total}** |")
    exe_ranges = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == exe:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                exe_ranges.append((fields[1], lo, hi))
    for perms, lo, hi in exe_ranges:
        pages = resident_pages(pid, lo, hi)
        by = attribute(pages, syms)
        lines += ["", f"{perms} {lo:#x}-{hi:#x}: {len(pages) * 4} KiB resident", "", "| part | resident KiB |", "|---|---|"]
        for k, v in sorted(by.items(), key=lambda kv: -kv[1]):
            if v >= 512:
                lines.append(f"| {k} | {v / 1024:.0f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--binary", help="the executable, if /proc/PID/exe is not it (default: /proc/PID/exe)")
    a = ap.parse_args()
    if a.pid:
        print(report(a.pid, a.binary))
        return
    with tempfile.TemporaryDirectory(prefix="swiftvmm-residency-") as tmp:
        img = os.path.join(tmp, "disk.img")
        with open(img, "wb") as f:
            f.truncate(bench.SCRATCH_MIB << 20)
        run_help = bench.help_text("run")
        feat = {k: f"--{k.replace('_', '-')}" in run_help for k in ("api_sock", "net", "vsock")}
        r = bench.start_idle_vm("swiftvmm", img, True, bench.swiftvmm_extra_args(feat, tmp, 0))
        try:
            time.sleep(0.3)
            print(report(r.pid, a.binary))
            bench.stop_idle_vm("swiftvmm", r)
        finally:
            if r.status is None:
                r.kill()
                r.finish(timeout=10)


if __name__ == "__main__":
    main()
