#!/usr/bin/env python3
"""swiftvmm's benchmark suite: swiftvmm vs the C floor VMM vs QEMU microvm, one run, one table.

    bench/run.py [--reps N] [--quick] [--only startup,memory,exits,blk,linux] [--json PATH]

Every figure is a median over several repetitions (min–max alongside), and the VMMs take
turns within each repetition so that load from other processes on this shared machine
falls on all of them alike. Results go to bench/results/latest.json; BENCHMARKS.md
explains the method. Python 3 standard library only.
"""
import argparse
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWIFTVMM = os.environ.get("SWIFTVMM", os.path.join(ROOT, ".build/release/swiftvmm"))
FLOOR = os.path.join(ROOT, "bench/floor/out/floor")
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
PROBE_BZ = os.path.join(ROOT, "guests/out/probe.bzImage")
PROBE_ELF = os.path.join(ROOT, "guests/out/probe.elf")
NESTED_RUN = os.path.join(ROOT, "guests/nested/run")
LINUX_KERNEL = "guests/out/linux/vmlinuz"
LINUX_INITRD = "guests/out/linux/initramfs.cpio.gz"
MEM_MIB = 128
SCRATCH_MIB = 64  # the disk image; the block benchmark wraps around it
PEERS = ("swiftvmm", "floor", "qemu")
RESULTS = os.path.join(ROOT, "bench/results")

BANNER = b"swiftvmm probe "
PROMPT = b"probe> "


def now_ns():
    # CLOCK_MONOTONIC: the clock swiftvmm's --timings uses, so the two can be subtracted.
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# ---------------------------------------------------------------------------------------
# Commands for each VMM


def has_virtio():
    """swiftvmm has virtio-blk once `run --help` offers --disk."""
    try:
        out = subprocess.run([SWIFTVMM, "run", "--help"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--disk" in out


def command(vmm, cmdline, disk=None, rng=False, timings=False):
    if vmm == "swiftvmm":
        c = [SWIFTVMM, "run", "--kernel", PROBE_BZ, "--cmdline", cmdline, "--memory", str(MEM_MIB), "--cpus", "1"]
        if disk:
            c += ["--disk", disk]
        if rng:
            c += ["--rng"]
        if timings:
            c += ["--timings"]
        return c
    if vmm == "floor":
        return [FLOOR, PROBE_BZ, cmdline, str(MEM_MIB)]
    if vmm == "qemu":
        # acpi=off: QEMU then appends virtio_mmio.device= entries to the command line, and
        # the probe powers off by triple fault, which -no-reboot turns into an exit.
        c = [QEMU, "-M", "microvm,acpi=off", "-accel", "kvm", "-m", f"{MEM_MIB}M", "-smp", "1",
             "-nodefaults", "-no-user-config", "-no-reboot", "-nographic", "-serial", "stdio",
             "-kernel", PROBE_ELF, "-append", cmdline]
        if disk or rng:
            # microvm's virtio-mmio is legacy (version 1) by default; the probe and swiftvmm
            # speak version 2.
            c += ["-global", "virtio-mmio.force-legacy=false"]
        if disk:
            c += ["-drive", f"id=d0,file={disk},format=raw,if=none", "-device", "virtio-blk-device,drive=d0"]
        if rng:
            c += ["-device", "virtio-rng-device"]
        return c
    raise ValueError(vmm)


# ---------------------------------------------------------------------------------------
# Running a VMM and timing its serial output


class Run:
    """A VMM child whose stdout (the guest serial) is read in chunks, each stamped with the
    monotonic time it arrived, so the time of any output byte is known to one read."""

    def __init__(self, cmd, stdin_open=False, env=None):
        self.cmd = cmd
        self.out = bytearray()
        self.err = bytearray()
        self.stamps = []  # (offset of the chunk's first byte, ns since spawn)
        self.rusage = None
        self.status = None
        self.exit_ns = None
        self.t0 = now_ns()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_open else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, cwd=ROOT,
                                     env=env)
        self.fds = {self.proc.stdout.fileno(): self.out, self.proc.stderr.fileno(): self.err}

    @property
    def pid(self):
        return self.proc.pid

    def pump(self, until=None, timeout=60.0):
        """Read until EOF on both pipes, or until `until(self)` is true. False on timeout."""
        deadline = time.monotonic() + timeout
        while self.fds:
            if until is not None and until(self):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select(list(self.fds), [], [], left)
            for fd in ready:
                data = os.read(fd, 65536)
                t = now_ns() - self.t0
                buf = self.fds[fd]
                if not data:
                    del self.fds[fd]
                    continue
                if buf is self.out:
                    self.stamps.append((len(buf), t))
                buf += data
        return until is None or until(self)

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def finish(self, timeout=60.0):
        """Read to EOF and reap the child (wait4: its rusage covers all its threads)."""
        ok = self.pump(timeout=timeout)
        if not ok:
            self.kill()
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        _, status, ru = os.wait4(self.pid, 0)
        self.exit_ns = now_ns() - self.t0
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.status = self.proc.returncode
        self.rusage = ru
        return ok

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def time_of(self, offset):
        """ns since spawn at which the byte at `offset` of stdout arrived."""
        t = None
        for start, ts in self.stamps:
            if start > offset:
                break
            t = ts
        return t

    def find(self, needle, start=0):
        return bytes(self.out).find(needle, start)

    def cpu_s(self):
        return self.rusage.ru_utime + self.rusage.ru_stime if self.rusage else None


def run_to_exit(cmd, timeout=120.0):
    r = Run(cmd)
    ok = r.finish(timeout)
    if not ok:
        raise BenchError(f"timed out after {timeout} s: {' '.join(cmd)}\n{tail(r)}")
    return r


def tail(r):
    return (bytes(r.out[-600:]) + b"\n--- stderr ---\n" + bytes(r.err[-600:])).decode(errors="replace")


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------
# Statistics and the table


def summary(samples):
    s = [x for x in samples if x is not None]
    if not s:
        return None
    return {"median": statistics.median(s), "min": min(s), "max": max(s), "n": len(s), "samples": s}


def med(summ):
    return None if summ is None else summ["median"]


def fmt(summ, digits=1):
    if summ is None:
        return "—"
    f = f"{{:.{digits}f}}"
    if summ["n"] == 1:
        return f.format(summ["median"])
    return f"{f.format(summ['median'])} ({f.format(summ['min'])}–{f.format(summ['max'])})"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# 1. Startup


TIMINGS = re.compile(rb"timings: .*?main \xe2\x86\x92 first KVM_RUN ([0-9.]+) ms")
TIMINGS_ABS = re.compile(rb"monotonic ns main=(\d+) first-KVM_RUN=(\d+)")


def bench_startup(reps):
    cmdline = "console=ttyS0 probe.run=none"
    res = {p: {"first_byte": [], "banner": [], "exit": []} for p in PEERS}
    internal, exec_to_run, exec_to_main = [], [], []
    for i in range(reps):
        for p in PEERS:
            r = run_to_exit(command(p, cmdline, timings=(p == "swiftvmm")))
            if r.status != 0 or r.find(b"PROBE DONE") < 0:
                raise BenchError(f"{p}: startup run failed (status {r.status})\n{tail(r)}")
            res[p]["first_byte"].append(r.stamps[0][1] / 1e6)
            res[p]["banner"].append(r.time_of(r.find(BANNER)) / 1e6)
            res[p]["exit"].append(r.exit_ns / 1e6)
            if p == "swiftvmm":
                m = TIMINGS.search(r.err)
                internal.append(float(m.group(1)) if m else None)
                m = TIMINGS_ABS.search(r.err)
                exec_to_run.append((int(m.group(2)) - r.t0) / 1e6 if m else None)
                exec_to_main.append((int(m.group(1)) - r.t0) / 1e6 if m else None)
    out = {p: {k: summary(v) for k, v in res[p].items()} for p in PEERS}
    out["swiftvmm"]["main_to_first_kvm_run"] = summary(internal)
    out["swiftvmm"]["exec_to_first_kvm_run"] = summary(exec_to_run)
    out["swiftvmm"]["exec_to_main"] = summary(exec_to_main)
    return out


# ---------------------------------------------------------------------------------------
# 2. Memory overhead


def smaps_overhead(pid, guest_bytes):
    """(overhead KiB, guest RAM Rss KiB, anon KiB, file KiB) from /proc/PID/smaps: the
    guest-RAM mappings are those exactly the size of guest memory."""
    total = guest = anon = filed = 0
    size = rss = 0
    path = ""
    with open(f"/proc/{pid}/smaps") as f:
        lines = f.read().splitlines()

    def close_mapping():
        nonlocal total, guest, anon, filed
        if size == guest_bytes:
            guest += rss
            return
        total += rss
        if path.startswith("/"):
            filed += rss
        else:
            anon += rss

    have = False
    for line in lines:
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$", line)
        if m:
            if have:
                close_mapping()
            size = int(m.group(2), 16) - int(m.group(1), 16)
            path = m.group(3)
            rss = 0
            have = True
        elif line.startswith("Rss:"):
            rss = int(line.split()[1])
    if have:
        close_mapping()
    return total, guest, anon, filed


def bench_memory(reps, virtio, scratch):
    res = {p: [] for p in PEERS}
    detail = {p: [] for p in PEERS}
    for i in range(reps):
        for p in PEERS:
            dev = virtio and p != "floor"
            r = Run(command(p, "console=ttyS0", disk=scratch if dev else None, rng=dev), stdin_open=True)
            try:
                if not r.pump(until=lambda r: r.find(PROMPT) >= 0, timeout=60):
                    raise BenchError(f"{p}: no shell prompt\n{tail(r)}")
                time.sleep(0.3)  # let start-up threads settle
                total, guest, anon, filed = smaps_overhead(r.pid, MEM_MIB << 20)
                res[p].append(total)
                detail[p].append({"overhead_kib": total, "guest_rss_kib": guest, "anon_kib": anon, "file_kib": filed})
                if p == "floor":
                    r.kill()  # the floor's UART has no input path: it cannot be told to power off
                else:
                    r.send(b"poweroff\r")
                if not r.finish(timeout=30):
                    raise BenchError(f"{p}: did not power off\n{tail(r)}")
            finally:
                if r.status is None:
                    r.kill()
                    r.finish(timeout=10)
    out = {p: summary(res[p]) for p in PEERS}
    for p in PEERS:
        if out[p] is not None:
            last = detail[p][-1]
            out[p]["anon_kib"] = last["anon_kib"]
            out[p]["file_kib"] = last["file_kib"]
            out[p]["guest_rss_kib"] = last["guest_rss_kib"]
    return out


# ---------------------------------------------------------------------------------------
# 3. Exit cost


def bench_exits(kind, n, reps):
    res = {p: [] for p in PEERS}
    start_tag = f"BENCH {kind.upper()} START".encode()
    done_tag = f"BENCH {kind.upper()} DONE".encode()
    for i in range(reps):
        for p in PEERS:
            r = run_to_exit(command(p, f"console=ttyS0 probe.bench={kind}:{n}"))
            s, d = r.find(start_tag), r.find(done_tag)
            if s < 0 or d < 0:
                raise BenchError(f"{p}: no {kind} bench lines\n{tail(r)}")
            # From the START line's last byte to the DONE line's first byte.
            t_start = r.time_of(r.find(b"\n", s))
            t_done = r.time_of(d)
            res[p].append((t_done - t_start) / n)
    return {p: summary(res[p]) for p in PEERS}


# ---------------------------------------------------------------------------------------
# 4. Block I/O


def bench_blk(reps, scratch, mib):
    peers = ("swiftvmm", "qemu")
    out = {}
    for op in ("read", "write"):
        tput = {p: [] for p in peers}
        cpu = {p: [] for p in peers}
        for i in range(reps):
            for p in peers:
                r = run_to_exit(command(p, f"console=ttyS0 probe.bench=blk:{op}:{mib}", disk=scratch), timeout=300)
                s = r.find(b"BENCH BLK START")
                d = r.find(b"BENCH BLK DONE")
                if s < 0 or d < 0:
                    raise BenchError(f"{p}: blk {op} bench failed\n{tail(r)}")
                m = re.search(rb"BENCH BLK DONE op=\w+ bytes=(\d+)", r.out)
                nbytes = int(m.group(1)) if m else mib << 20
                secs = (r.time_of(d) - r.time_of(r.find(b"\n", s))) / 1e9
                tput[p].append(nbytes / (1 << 20) / secs)
                # Whole-process CPU (boot included, which is small next to the transfer).
                cpu[p].append(r.cpu_s() / (nbytes / (1 << 30)))
        out[op] = {p: summary(tput[p]) for p in peers}
        out[op + "_cpu_s_per_gib"] = {p: summary(cpu[p]) for p in peers}
    return out


# ---------------------------------------------------------------------------------------
# 5. Linux boot in the nested test bed


def bench_linux(reps, tmp):
    """guests/nested/run boots Debian's cloud kernel with the busybox initramfs under
    swiftvmm (1 vCPU, 256 MiB) on AMD-V KVM inside an L1 VM. Exec → SWIFTVMM-READY is the
    host-side arrival time of the READY line minus that of NESTED-BEGIN (printed by L1
    just before it execs swiftvmm; both lines take the same console path), and the VMM's
    own share is --timings' main → first KVM_RUN, measured inside L1."""
    script = os.path.join(tmp, "linux-boot.script")
    with open(script, "w") as f:
        f.write(f"run --kernel {LINUX_KERNEL} --initrd {LINUX_INITRD} --cpus 1 --memory 256 "
                "--cmdline \"console=ttyS0 quiet\" --timings\n? SWIFTVMM-READY\n< poweroff -f\n")
    env = dict(os.environ, SWIFTVMM_BIN=SWIFTVMM)
    times, setup, total, failures = [], [], [], []
    for i in range(reps):
        # A healthy run takes 7–15 s (75 s at load average 10); 180 s bounds a hung boot so
        # that make bench stays within its 15 minutes.
        r = Run([NESTED_RUN, "--timeout", "180", "--script", script], env=env)
        ok = r.finish(timeout=240)
        b, d = r.find(b"NESTED-BEGIN 1"), r.find(b"SWIFTVMM-READY")
        if not ok or r.status != 0 or b < 0 or d < 0:
            # Keep the whole console for the bug report, count it, and go on.
            path = os.path.join(RESULTS, f"linux-boot-failure-{i + 1}.log")
            with open(path, "wb") as f:
                f.write(bytes(r.out) + b"\n--- stderr ---\n" + bytes(r.err))
            failures.append(os.path.relpath(path, ROOT))
            log(f"bench: nested Linux boot {i + 1} failed (status {r.status}); console in {failures[-1]}")
            continue
        times.append((r.time_of(d) - r.time_of(b)) / 1e9)
        m = TIMINGS.search(r.out)
        setup.append(float(m.group(1)) if m else None)
        total.append(r.exit_ns / 1e9)
    if not times:
        raise BenchError(f"every nested Linux boot failed: {', '.join(failures)}")
    return {"swiftvmm": summary(times), "vmm_setup_ms": summary(setup), "harness_total_s": summary(total),
            "failures": failures}


# ---------------------------------------------------------------------------------------
# Budgets, table, JSON


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def budgets(R):
    b = []

    def add(name, measured, limit, detail, lower_is_better=True):
        if measured is None:
            b.append({"budget": name, "measured": None, "limit": limit, "pass": None, "detail": detail})
            return
        ok = measured <= limit if lower_is_better else measured >= limit
        b.append({"budget": name, "measured": measured, "limit": limit, "pass": ok, "detail": detail})

    st = R.get("startup")
    if st:
        sv = st["swiftvmm"]
        add("swiftvmm main → first KVM_RUN ≤ 5 ms", med(sv["main_to_first_kvm_run"]), 5.0, "ms (--timings)")
        add("exec → probe banner ≤ 2 × floor", ratio(med(sv["banner"]), med(st["floor"]["banner"])), 2.0, "× floor")
        add("exec → probe banner ≤ 0.5 × QEMU", ratio(med(sv["banner"]), med(st["qemu"]["banner"])), 0.5, "× QEMU")
    mem = R.get("memory")
    if mem:
        add("VMM memory overhead ≤ 5 MiB", med(mem["swiftvmm"]) / 1024 if mem["swiftvmm"] else None, 5.0, "MiB")
    for k in ("pio", "mmio"):
        e = R.get(k)
        if e:
            add(f"{k.upper()} exit ≤ 1.10 × floor", ratio(med(e["swiftvmm"]), med(e["floor"])), 1.10, "× floor")
    blk = R.get("blk")
    if blk:
        for op in ("read", "write"):
            add(f"virtio-blk {op} ≥ 1.0 × QEMU", ratio(med(blk[op]["swiftvmm"]), med(blk[op]["qemu"])), 1.0,
                "× QEMU", lower_is_better=False)
    lb = R.get("linux")
    if lb:
        add("Linux boot to SWIFTVMM-READY ≤ 10 s", med(lb["swiftvmm"]), 10.0, "s")
    return b


def table(R, B):
    rows = []
    st = R.get("startup")
    if st:
        rows.append(("exec → first serial byte (ms)", *(fmt(st[p]["first_byte"]) for p in PEERS)))
        rows.append(("exec → probe banner (ms)", *(fmt(st[p]["banner"]) for p in PEERS)))
        rows.append(("exec → exit, probe.run=none (ms)", *(fmt(st[p]["exit"]) for p in PEERS)))
        rows.append(("main → first KVM_RUN (ms, --timings)", fmt(st["swiftvmm"]["main_to_first_kvm_run"], 2), "", ""))
        rows.append(("exec → main (ms)", fmt(st["swiftvmm"]["exec_to_main"], 2), "", ""))
        rows.append(("exec → first KVM_RUN (ms)", fmt(st["swiftvmm"]["exec_to_first_kvm_run"], 2), "", ""))
    mem = R.get("memory")
    if mem:
        rows.append(("memory overhead (KiB)", *(fmt(mem[p], 0) for p in PEERS)))
        rows.append(("  of which anon / file-backed (KiB)",
                     *(f"{mem[p]['anon_kib']} / {mem[p]['file_kib']}" if mem[p] else "—" for p in PEERS)))
    for k in ("pio", "mmio"):
        e = R.get(k)
        if e:
            rows.append((f"{k.upper()} exit (ns)", *(fmt(e[p], 0) for p in PEERS)))
    blk = R.get("blk")
    if blk:
        for op in ("read", "write"):
            rows.append((f"virtio-blk {op} (MiB/s)", fmt(blk[op]["swiftvmm"]), "", fmt(blk[op]["qemu"])))
            rows.append((f"  host CPU s per GiB {op}", fmt(blk[op + "_cpu_s_per_gib"]["swiftvmm"], 2), "",
                         fmt(blk[op + "_cpu_s_per_gib"]["qemu"], 2)))
    lb = R.get("linux")
    if lb:
        rows.append(("Linux boot to SWIFTVMM-READY (s)", fmt(lb["swiftvmm"], 2), "", ""))
        rows.append(("  of which VMM set-up, main → first KVM_RUN (ms)", fmt(lb["vmm_setup_ms"], 2), "", ""))
        rows.append(("  whole test-bed run, L1 boot included (s)", fmt(lb["harness_total_s"], 1), "", ""))
        if lb["failures"]:
            rows.append(("  failed boots (console logs in bench/results/)", str(len(lb["failures"])), "", ""))

    head = ("measurement (median, min–max)", "swiftvmm", "floor", "qemu")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(4)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.append("")
    bw = max(len(b["budget"]) for b in B) if B else 10
    lines.append("| " + "budget".ljust(bw) + " | measured | result |")
    lines.append("|" + "-" * (bw + 2) + "|----------|--------|")
    for b in B:
        m = "—" if b["measured"] is None else f"{b['measured']:.2f} {b['detail'].split(' ')[0]}"
        res = "n/a" if b["pass"] is None else ("pass" if b["pass"] else "MISS")
        lines.append("| " + b["budget"].ljust(bw) + f" | {m} | {res} |")
    return "\n".join(lines)


def peer_values(summ_by_peer, peers=PEERS):
    return {p: med(summ_by_peer.get(p)) for p in peers}


def to_json(R, B, meta):
    j = {"meta": meta}
    if "startup" in R:
        st = R["startup"]
        j["startup_ms"] = {p: med(st[p]["banner"]) for p in PEERS}
        j["startup_first_byte_ms"] = {p: med(st[p]["first_byte"]) for p in PEERS}
        j["startup_exit_ms"] = {p: med(st[p]["exit"]) for p in PEERS}
        j["swiftvmm_main_to_first_kvm_run_ms"] = med(st["swiftvmm"]["main_to_first_kvm_run"])
        j["swiftvmm_exec_to_first_kvm_run_ms"] = med(st["swiftvmm"]["exec_to_first_kvm_run"])
        j["swiftvmm_exec_to_main_ms"] = med(st["swiftvmm"]["exec_to_main"])
    if "memory" in R:
        j["rss_overhead_kib"] = peer_values(R["memory"])
    if "pio" in R:
        j["pio_exit_ns"] = peer_values(R["pio"])
    if "mmio" in R:
        j["mmio_exit_ns"] = peer_values(R["mmio"])
    if "blk" in R:
        b = R["blk"]
        j["blk_read_mib_s"] = peer_values(b["read"], ("swiftvmm", "qemu"))
        j["blk_write_mib_s"] = peer_values(b["write"], ("swiftvmm", "qemu"))
        j["blk_read_cpu_s_per_gib"] = peer_values(b["read_cpu_s_per_gib"], ("swiftvmm", "qemu"))
        j["blk_write_cpu_s_per_gib"] = peer_values(b["write_cpu_s_per_gib"], ("swiftvmm", "qemu"))
    if "linux" in R:
        j["linux_boot_s"] = {"swiftvmm": med(R["linux"]["swiftvmm"])}
        j["linux_boot_vmm_setup_ms"] = {"swiftvmm": med(R["linux"]["vmm_setup_ms"])}
        j["linux_boot_failures"] = R["linux"]["failures"]
    j["budgets"] = B
    j["details"] = R
    return j


def machine_meta():
    def first(path, key):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip()
        except OSError:
            return None

    def cmd(c):
        try:
            return subprocess.run(c, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    kvm = "PVM" if os.path.exists("/sys/module/kvm_pvm") else ("kvm_intel" if os.path.exists("/sys/module/kvm_intel")
                                                               else "kvm_amd" if os.path.exists("/sys/module/kvm_amd") else "?")
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "mem_total": first("/proc/meminfo", "MemTotal"),
        "kernel": platform.release(),
        "kvm": kvm,
        "load_avg_at_start": os.getloadavg(),
        "qemu": cmd([QEMU, "--version"]),
        "swift": cmd(["swift", "--version"]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=0, help="repetitions per measurement (default: per measurement)")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and smaller N")
    ap.add_argument("--only", default="startup,memory,pio,mmio,blk,linux")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench/results/latest.json"))
    ap.add_argument("--exits", type=int, default=20000, help="N for probe.bench=pio:N / mmio:N")
    ap.add_argument("--blk-mib", type=int, default=1024, help="MiB per block benchmark run")
    ap.add_argument("--linux-reps", type=int, default=3, help="nested Linux boots (each 30–90 s)")
    a = ap.parse_args()
    only = set(a.only.split(","))

    def reps(default):
        return a.reps or (max(2, default // 3) if a.quick else default)

    for path in (SWIFTVMM, FLOOR, PROBE_BZ, PROBE_ELF):
        if not os.path.exists(path):
            sys.exit(f"bench: {path} is missing (make bench builds it)")
    if not shutil.which(QEMU):
        sys.exit(f"bench: {QEMU} not found (apt-get install qemu-system-x86)")

    os.makedirs(RESULTS, exist_ok=True)
    for old in os.listdir(RESULTS):
        if old.startswith("linux-boot-failure-"):
            os.remove(os.path.join(RESULTS, old))
    meta = machine_meta()
    virtio = has_virtio()
    meta["swiftvmm_virtio"] = virtio
    log(f"bench: {meta['cpu']}, {meta['cpus']} CPUs, {meta['kvm']}, load {meta['load_avg_at_start']}")
    R = {}
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="swiftvmm-bench-") as tmp:
        scratch = os.path.join(tmp, "scratch.img")
        # Written out (not sparse), so reads hit real data and writes overwrite allocated
        # blocks in the page cache for both VMMs alike.
        with open(scratch, "wb") as f:
            chunk = bytes(range(256)) * 4096
            for _ in range(SCRATCH_MIB):
                f.write(chunk)
        steps = [
            ("startup", lambda: bench_startup(reps(15))),
            ("memory", lambda: bench_memory(reps(3), virtio, scratch)),
            ("pio", lambda: bench_exits("pio", a.exits, reps(7))),
            ("mmio", lambda: bench_exits("mmio", a.exits, reps(7))),
        ]
        if virtio:
            steps.append(("blk", lambda: bench_blk(reps(5), scratch, a.blk_mib)))
        else:
            log("bench: swiftvmm has no --disk yet: block I/O skipped")
        if os.access(NESTED_RUN, os.X_OK) and all(os.path.exists(os.path.join(ROOT, f)) for f in (LINUX_KERNEL, LINUX_INITRD)):
            steps.append(("linux", lambda: bench_linux(a.linux_reps, tmp)))
        else:
            log("bench: guests/nested/run or guests/out/linux/* is missing (make linux): Linux boot skipped")
        for name, fn in steps:
            if name not in only:
                continue
            t = time.monotonic()
            log(f"bench: {name} …")
            try:
                R[name] = fn()
            except BenchError as e:
                log(f"bench: {name} FAILED: {e}")
                R[name + "_error"] = str(e)
            log(f"bench: {name} took {time.monotonic() - t:.1f} s")
    meta["duration_s"] = round(time.monotonic() - t_all, 1)
    meta["load_avg_at_end"] = os.getloadavg()
    B = budgets(R)
    print(table(R, B))
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(to_json(R, B, meta), f, indent=1, ensure_ascii=False)
        f.write("\n")
    log(f"bench: wrote {os.path.relpath(a.json, ROOT)} in {meta['duration_s']} s "
        f"(load average {meta['load_avg_at_start'][0]:.1f} at start, {meta['load_avg_at_end'][0]:.1f} at end)")
    return 1 if any(k.endswith("_error") for k in R) else 0


if __name__ == "__main__":
    sys.exit(main())
