#!/usr/bin/env python3
"""Write bench/run-path.order: the functions `swiftvmm run` executes, for the linker's
--symbol-ordering-file, so that they sit together in the binary's text and the kernel's
64 KiB fault-around windows map run-path code instead of whatever lies next to it
(BENCHMARKS.md, "Memory").

    bench/order-file.py [SWIFTVMM]     (default .build/release/swiftvmm; needs valgrind)

The executed functions come from valgrind's callgrind (every function entered, not a
sample) over runs of the probe with the memory benchmark's exact command line (one disk,
rng, the API socket open, vsock and a network interface): its self-tests
(probe.run=all); its shell idling, then `poweroff` typed in; and a start with the seccomp
filters, which valgrind cannot install, for the code that builds them. A stale file
costs memory, not correctness: functions missing from it are laid out as usual.
"""
import os
import re
import subprocess
import sys
import tempfile

import run as bench  # bench/run.py: the memory benchmark's command line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench/run-path.order")


def executed(binary, cmdline, stdin, tmp, n, seccomp=False):
    """The functions one callgrind run of `binary` enters. The command line is the memory
    benchmark's own (bench/run.py: `command` and `swiftvmm_extra_args`: 128 MiB, one vCPU,
    one disk, rng, the API socket, vsock, a network interface as root), so that the order
    covers what that run executes, option parsing included."""
    out = os.path.join(tmp, f"callgrind.{n}")
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    saved = bench.SWIFTVMM
    bench.SWIFTVMM = binary
    try:
        vm = bench.command("swiftvmm", cmdline, disk=img, rng=True)
        run_help = subprocess.run([binary, "run", "--help"], capture_output=True, text=True).stdout
        feat = {"api_sock": "--api-sock" in run_help, "vsock": "--vsock" in run_help, "net": "--net" in run_help}
        vm += bench.swiftvmm_extra_args(feat, tmp, n)
    finally:
        bench.SWIFTVMM = saved
    # valgrind does not implement seccomp(2). Without filters the VM runs its course; with
    # them swiftvmm builds its policy (code the real run executes) and then stops where
    # valgrind refuses to install it, which is all this run is for.
    if not seccomp and "--no-seccomp" in run_help:
        vm += ["--no-seccomp"]
    # --demangle=no: the names as nm prints them (the C++ runtime's included).
    cmd = ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}"] + vm
    p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=600)
    if p.returncode != 0 and not seccomp:
        sys.exit(f"order-file: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr.decode(errors='replace')[-2000:]}")
    names = set()
    with open(out, errors="replace") as f:
        for line in f:
            m = re.match(r"^c?fn=\(\d+\)(?: (.*))?$", line)
            if m and m.group(1):
                names.add(re.sub(r"'\d+$", "", m.group(1).strip()))
    return names


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/swiftvmm")
    with tempfile.TemporaryDirectory(prefix="swiftvmm-order-") as tmp:
        # valgrind cannot read the DWARF of Swift 6 binaries: give it the symbols only.
        stripped = os.path.join(tmp, "swiftvmm")
        subprocess.run(["strip", "--strip-debug", "-o", stripped, binary], check=True)
        names = executed(stripped, "console=ttyS0 probe.run=all", b"", tmp, 1)
        # The shell's prompt needs a moment before it reads; valgrind is ~50x slower.
        shell = subprocess.run(["sh", "-c", "sleep 15; printf 'help\\r'; sleep 5; printf 'poweroff\\r'"],
                               capture_output=True).stdout
        names |= executed(stripped, "console=ttyS0", shell, tmp, 2)
        names |= executed(stripped, "console=ttyS0", b"", tmp, 3, seccomp=True)
    symbols = set(subprocess.run(["nm", "--defined-only", "--format=just-symbols", binary], capture_output=True,
                                 text=True, check=True).stdout.split())
    hot = {n for n in names if n in symbols}
    # glibc picks memcpy, strlen, … variants by CPU (IFUNC), and valgrind's emulated CPU is
    # not this host's: order every variant of a string function that ran in any variant.
    variant = re.compile(r"^(__(?:mem|str|stp|wmem|wcs|raw)\w*?)_(?:sse2|ssse3|sse4|avx|evex|erms)\w*$")
    bases = {m.group(1) for n in hot if (m := variant.match(n))} | {"__" + n for n in hot}
    hot |= {n for n in symbols if (m := variant.match(n)) and m.group(1) in bases}
    # Run before main by the static start-up code, outside what callgrind names: the
    # entry point and glibc's IFUNC resolvers.
    hot |= {n for n in symbols if n == "_start"}
    # Lock slow paths run only when threads contend, which they never do under valgrind
    # (it runs one thread at a time); the Synchronization module is a few KiB.
    hot |= {n for n in symbols if n.startswith("$s15Synchronization")}
    hot = sorted(hot)
    with open(OUT, "w") as f:
        f.write("".join(s + "\n" for s in hot))
    print(f"order-file: {len(hot)} functions → {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
