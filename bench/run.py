#!/usr/bin/env python3
"""swiftvmm's benchmark suite: swiftvmm vs the C floor VMM vs QEMU microvm, one run, one table.

    bench/run.py [--reps N] [--quick] [--only startup,memory,density,pio,mmio,blk,churn,api,snapshot,qcow2,linux,net] [--json PATH]

Every figure is a median over several repetitions (min–max alongside), and the VMMs take
turns within each repetition so that load from other processes on this shared machine
falls on all of them alike. Results go to bench/results/latest.json; BENCHMARKS.md
explains the method. Python 3 standard library only.

Features that swiftvmm may not have yet (the API socket, net, vsock, snapshots, migration,
qcow2) are found by probing the binary; their keys are reported as not available until
then. Exit status: 0 every budget met; 1 a step failed or swiftvmm crashed (a crash stops
the run); 3 a budget missed. The last two lines, `STEPS: …` and `BUDGETS: N passed, M
missed`, say the same for scripts.
"""
import argparse
import http.client
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
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
NESTED_LOCK = "/tmp/swiftvmm-nested.lock"  # one nested test bed at a time on this machine
LOCK_BUSY = 75  # flock's status when other nested runs held the lock for LOCK_WAIT s
LOCK_WAIT = 600  # --lock-wait
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


def command(vmm, cmdline, disk=None, rng=False, timings=False, disk_format="raw"):
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
            c += ["-drive", f"id=d0,file={disk},format={disk_format},if=none", "-device", "virtio-blk-device,drive=d0"]
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
        self.killed = False  # the bench sent SIGKILL (a timeout, the floor's end)
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
        self.killed = True
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


def run_to_exit(cmd, timeout=120.0, vmm=None):
    r = Run(cmd)
    ok = r.finish(timeout)
    check_crash(vmm, r, " ".join(cmd[1:4]))
    if not ok:
        raise BenchError(f"timed out after {timeout} s: {' '.join(cmd)}\n{tail(r)}")
    return r


def tail(r):
    return (bytes(r.out[-600:]) + b"\n--- stderr ---\n" + bytes(r.err[-600:])).decode(errors="replace")


class BenchError(Exception):
    """A step could not produce its figure: the step is reported FAILED, the run exits 1."""


class BenchCrash(BenchError):
    """swiftvmm crashed (killed by a signal, a Swift runtime trap): the whole run stops, exit 1."""


CRASH_TEXT = (b"Fatal error", b"Segmentation fault", b"Illegal instruction", b"Aborted", b"Trace/breakpoint trap")


def check_crash(vmm, r, what):
    """Raise BenchCrash when swiftvmm died of a signal or printed a runtime trap. A VMM killed
    by the bench itself (r.killed) is not a crash."""
    if vmm != "swiftvmm":
        return
    died = r.status is not None and r.status < 0 and not r.killed
    trap = any(t in bytes(r.err) for t in CRASH_TEXT)
    if died or trap:
        raise BenchCrash(f"swiftvmm crashed in {what} (status {r.status})\n{tail(r)}")


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
            r = run_to_exit(command(p, cmdline, timings=(p == "swiftvmm")), vmm=p)
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


def smaps(pid):
    """The mappings of /proc/PID/smaps: size in bytes, path, and its KiB fields (Rss, Pss, …)."""
    maps = []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                maps.append({"size": int(m.group(2), 16) - int(m.group(1), 16), "path": m.group(3).strip()})
            elif maps and re.match(r"^\w+:\s+\d+ kB", line):
                k, v = line.split()[:2]
                maps[-1][k.rstrip(":")] = int(v)
    return maps


def vmm_mappings(pid, guest_bytes):
    """Every mapping except guest RAM (the mapping exactly the size of guest memory), and the
    guest RAM mappings."""
    maps = smaps(pid)
    return [m for m in maps if m["size"] != guest_bytes], [m for m in maps if m["size"] == guest_bytes]


def smaps_overhead(pid, guest_bytes):
    """(overhead KiB, guest RAM Rss KiB, anon KiB, file KiB): Firecracker's metric, the Rss of
    every mapping but guest RAM."""
    vmm, guest = vmm_mappings(pid, guest_bytes)
    filed = sum(m.get("Rss", 0) for m in vmm if m["path"].startswith("/"))
    total = sum(m.get("Rss", 0) for m in vmm)
    return total, sum(m.get("Rss", 0) for m in guest), total - filed, filed


def swiftvmm_extra_args(feat, tmp, i):
    """What the memory and density measurements add to the probe VM beyond disk and rng:
    issue 14's configuration — the API socket (open and idle), vsock, and a network
    interface on a tap swiftvmm creates (non-persistent: it goes with the process; needs
    CAP_NET_ADMIN, so only as root) — plus SWIFTVMM_BENCH_EXTRA."""
    extra = []
    if feat.get("api_sock"):
        extra += ["--api-sock", os.path.join(tmp, f"api-{i}.sock")]
    if feat.get("vsock"):
        extra += ["--vsock", f"cid={3 + i},uds={os.path.join(tmp, f'v-{i}.sock')}"]
    if feat.get("net") and os.geteuid() == 0:
        extra += ["--net", f"tap=svbench{os.getpid() % 10000}x{i}"]
    extra += os.environ.get("SWIFTVMM_BENCH_EXTRA", "").split()
    return extra


def start_idle_vm(p, scratch, dev, extra):
    """Start a VMM on the probe's shell (stdin kept open) and wait for its prompt."""
    cmd = command(p, "console=ttyS0", disk=scratch if dev else None, rng=dev)
    if p == "swiftvmm":
        cmd += extra
    r = Run(cmd, stdin_open=True)
    if not r.pump(until=lambda r: r.find(PROMPT) >= 0, timeout=60):
        r.kill()
        r.finish(timeout=10)
        check_crash(p, r, "an idle VM")
        raise BenchError(f"{p}: no shell prompt\n{tail(r)}")
    return r


def stop_idle_vm(p, r):
    if p == "floor":
        r.kill()  # the floor's UART has no input path: it cannot be told to power off
    else:
        try:
            r.send(b"poweroff\r")
        except BrokenPipeError:
            r.finish(timeout=10)
            check_crash(p, r, "an idle VM")
            raise BenchError(f"{p}: exited (status {r.status}) before it was told to power off\n{tail(r)}")
    ok = r.finish(timeout=30)
    check_crash(p, r, "an idle VM's power-off")
    if not ok:
        raise BenchError(f"{p}: did not power off\n{tail(r)}")
    if p != "floor" and r.status != 0:
        raise BenchError(f"{p}: power-off ended with status {r.status}\n{tail(r)}")


def bench_memory(reps, virtio, scratch, feat, tmp):
    res = {p: [] for p in PEERS}
    detail = {p: [] for p in PEERS}
    for i in range(reps):
        for p in PEERS:
            dev = virtio and p != "floor"
            r = start_idle_vm(p, scratch, dev, swiftvmm_extra_args(feat, tmp, i))
            try:
                time.sleep(0.3)  # let start-up threads settle
                total, guest, anon, filed = smaps_overhead(r.pid, MEM_MIB << 20)
                res[p].append(total)
                detail[p].append({"overhead_kib": total, "guest_rss_kib": guest, "anon_kib": anon, "file_kib": filed})
                stop_idle_vm(p, r)
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
    out["config"] = ["disk", "rng"] + swiftvmm_extra_args(feat, tmp, 0)
    return out


def bench_density(n, virtio, tmp, feat):
    """What an operator pays per VM: n identical idle VMs of each VMM at once (each with its
    own disk image, rng, and the extras of the memory measurement), then per VM the
    proportional set size (Pss: shared pages divided among their users, e.g. the executable's
    text) and the unique set size (Uss: Private_Clean + Private_Dirty) of every mapping but
    guest RAM."""
    out = {}
    for p in ("swiftvmm", "qemu"):
        images = []
        for i in range(n):
            img = os.path.join(tmp, f"density-{i}.img")
            with open(img, "wb") as f:
                f.truncate(1 << 20)
            images.append(img)
        runs = []
        try:
            for i in range(n):
                runs.append(start_idle_vm(p, images[i], virtio, swiftvmm_extra_args(feat, tmp, 100 + i)))
            time.sleep(0.3)
            pss, uss, rss = [], [], []
            for r in runs:
                vmm, _ = vmm_mappings(r.pid, MEM_MIB << 20)
                pss.append(sum(m.get("Pss", 0) for m in vmm))
                uss.append(sum(m.get("Private_Clean", 0) + m.get("Private_Dirty", 0) for m in vmm))
                rss.append(sum(m.get("Rss", 0) for m in vmm))
            for r in runs:
                stop_idle_vm(p, r)
        finally:
            for r in runs:
                if r.status is None:
                    r.kill()
                    r.finish(timeout=10)
        out[p] = {"pss": summary(pss), "uss": summary(uss), "rss": summary(rss), "vms": n}
    return out


# ---------------------------------------------------------------------------------------
# 3. Exit cost


def bench_exits(kind, n, reps):
    res = {p: [] for p in PEERS}
    start_tag = f"BENCH {kind.upper()} START".encode()
    done_tag = f"BENCH {kind.upper()} DONE".encode()
    for i in range(reps):
        for p in PEERS:
            r = run_to_exit(command(p, f"console=ttyS0 probe.bench={kind}:{n}"), vmm=p)
            s, d = r.find(start_tag), r.find(done_tag)
            if s < 0 or d < 0:
                raise BenchError(f"{p}: no {kind} bench lines\n{tail(r)}")
            # From the START line's last byte to the DONE line's first byte.
            t_start = r.time_of(r.find(b"\n", s))
            t_done = r.time_of(d)
            res[p].append((t_done - t_start) / n)
    return {p: summary(res[p]) for p in PEERS}


# ---------------------------------------------------------------------------------------
# Churn: VMs created, booted to the probe banner and destroyed


def bench_churn(count, parallel):
    """`count` VMs of each VMM, `parallel` at a time: each boots the probe to its banner with
    probe.run=none, which then powers off, and the process exits (VM destroyed). Figure:
    VMs per second of wall time per host core, and host CPU seconds per VM (the children's
    rusage, robust to other load on the machine)."""
    out = {}
    cores = os.cpu_count() or 1
    for p in ("swiftvmm", "qemu"):
        t0 = now_ns()
        cpu = 0.0
        started = done = 0
        live = []
        while done < count:
            while len(live) < parallel and started < count:
                live.append(Run(command(p, "console=ttyS0 probe.run=none")))
                started += 1
            r = live.pop(0)
            ok = r.finish(timeout=60)
            check_crash(p, r, "churn")
            if not ok or r.status != 0 or r.find(BANNER) < 0:
                raise BenchError(f"{p}: churn VM {done + 1} failed (status {r.status})\n{tail(r)}")
            cpu += r.cpu_s()
            done += 1
        wall = (now_ns() - t0) / 1e9
        out[p] = {"vms": count, "parallel": parallel, "wall_s": wall, "vms_per_s": count / wall,
                  "vms_per_core_s": count / wall / cores, "cpu_s_per_vm": cpu / count}
    return out


# ---------------------------------------------------------------------------------------
# The control API: socket ready, InstanceStart → banner, request latency. swiftvmm's
# Firecracker-compatible HTTP API on `run --api-sock`; QEMU's QMP beside it.


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def api_request(conn, method, path, body=None):
    """One request on a kept-alive connection: (status, body bytes)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def api_ok(conn, method, path, body=None):
    status, data = api_request(conn, method, path, body)
    if status // 100 != 2:
        raise BenchError(f"API {method} {path} {json.dumps(body) if body else ''}: HTTP {status} {data[:300]!r}")
    return data


def task_cpu_ns(pid):
    """CPU time of every thread of a process so far (schedstat: ns, not 10 ms ticks)."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def wait_socket_accepting(r, path, timeout=10.0):
    """Poll connect() every 0.1 ms: (ns from exec to the first accepted connection, CPU ns
    of the VMM by then, the connected socket)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if r.proc.poll() is not None:
            raise BenchError(f"{' '.join(r.cmd[:3])} exited (status {r.proc.returncode}) before its socket accepted")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            t = now_ns() - r.t0
            return t, task_cpu_ns(r.pid), s
        except OSError:
            s.close()
            time.sleep(0.0001)
    raise BenchError(f"{path}: not accepting after {timeout} s")


def qmp_command(f, cmd):
    f.write(json.dumps({"execute": cmd}).encode() + b"\n")
    f.flush()
    while True:
        line = f.readline()
        if not line:
            raise BenchError(f"QMP closed on {cmd}")
        msg = json.loads(line)
        if "return" in msg:
            return msg["return"]
        if "error" in msg:
            raise BenchError(f"QMP {cmd}: {msg['error']}")
        # an asynchronous event (STOP, RESUME): read on


def percentiles(samples_us):
    s = sorted(samples_us)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return {"p50": pick(0.50), "p99": pick(0.99), "n": len(s), "min": s[0], "max": s[-1]}


def bench_api(reps, requests, feat, tmp):
    """Per VMM: exec → control socket accepting (and the VMM's CPU time by then), swiftvmm's
    InstanceStart → probe banner, and request round trips on an idle VM: swiftvmm GET / and
    PATCH /vm Paused/Resumed, QEMU query-status and stop/cont."""
    out = {"swiftvmm": {}, "qemu": {}}
    if feat.get("api_sock"):
        ready, ready_cpu, start = [], [], []
        for i in range(reps):
            sock = os.path.join(tmp, f"api-bench-{i}.sock")
            r = Run([SWIFTVMM, "run", "--api-sock", sock], stdin_open=True)
            try:
                t, cpu, s = wait_socket_accepting(r, sock)
                s.close()
                ready.append(t / 1e6)
                ready_cpu.append(cpu / 1e6)
                conn = UnixHTTP(sock)
                api_ok(conn, "PUT", "/boot-source", {"kernel_image_path": PROBE_BZ, "boot_args": "console=ttyS0"})
                api_ok(conn, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": MEM_MIB})
                t_start = now_ns() - r.t0
                api_ok(conn, "PUT", "/actions", {"action_type": "InstanceStart"})
                if not r.pump(until=lambda r: r.find(BANNER) >= 0 and r.find(PROMPT) >= 0, timeout=30):
                    raise BenchError(f"swiftvmm: no probe banner after InstanceStart\n{tail(r)}")
                start.append((r.time_of(r.find(BANNER)) - t_start) / 1e6)
                if i == reps - 1:
                    get = []
                    for _ in range(requests):
                        t0 = now_ns()
                        api_ok(conn, "GET", "/")
                        get.append((now_ns() - t0) / 1e3)
                    pr = []
                    for _ in range(requests // 2):
                        t0 = now_ns()
                        api_ok(conn, "PATCH", "/vm", {"state": "Paused"})
                        api_ok(conn, "PATCH", "/vm", {"state": "Resumed"})
                        pr.append((now_ns() - t0) / 2e3)
                    out["swiftvmm"]["get_us"] = percentiles(get)
                    out["swiftvmm"]["pause_resume_us"] = percentiles(pr)
                conn.close()
                r.send(b"poweroff\r")
                ok = r.finish(timeout=30)
                check_crash("swiftvmm", r, "the API benchmark")
                if not ok or r.status != 0:
                    raise BenchError(f"swiftvmm: API VM did not power off (status {r.status})\n{tail(r)}")
            finally:
                if r.status is None:
                    r.kill()
                    r.finish(timeout=10)
        out["swiftvmm"]["ready_ms"] = summary(ready)
        out["swiftvmm"]["ready_cpu_ms"] = summary(ready_cpu)
        out["swiftvmm"]["instance_start_to_banner_ms"] = summary(start)
    ready, ready_cpu = [], []
    for i in range(reps):
        sock = os.path.join(tmp, f"qmp-{i}.sock")
        r = Run(command("qemu", "console=ttyS0") + ["-qmp", f"unix:{sock},server=on,wait=off"], stdin_open=True)
        try:
            t, cpu, s = wait_socket_accepting(r, sock)
            ready.append(t / 1e6)
            ready_cpu.append(cpu / 1e6)
            f = s.makefile("rwb")
            f.readline()  # greeting
            qmp_command(f, "qmp_capabilities")
            if not r.pump(until=lambda r: r.find(PROMPT) >= 0, timeout=30):
                raise BenchError(f"qemu: no probe prompt\n{tail(r)}")
            if i == reps - 1:
                get, pr = [], []
                for _ in range(requests):
                    t0 = now_ns()
                    qmp_command(f, "query-status")
                    get.append((now_ns() - t0) / 1e3)
                for _ in range(requests // 2):
                    t0 = now_ns()
                    qmp_command(f, "stop")
                    qmp_command(f, "cont")
                    pr.append((now_ns() - t0) / 2e3)
                out["qemu"]["get_us"] = percentiles(get)
                out["qemu"]["pause_resume_us"] = percentiles(pr)
            s.close()
            r.send(b"poweroff\r")
            r.finish(timeout=30)
        finally:
            if r.status is None:
                r.kill()
                r.finish(timeout=10)
    out["qemu"]["ready_ms"] = summary(ready)
    out["qemu"]["ready_cpu_ms"] = summary(ready_cpu)
    return out


# ---------------------------------------------------------------------------------------
# 4. Block I/O


BLK_OPS = ("read", "write", "randread", "randwrite")


def bench_blk(reps, scratch, mib, ops=BLK_OPS, disk_format="raw"):
    """The probe's block benchmark: read/write are sequential 1 MiB requests (MiB/s);
    randread/randwrite are 4 KiB requests at random aligned offsets (IOPS), over a
    quarter of the bytes. Depth 4 in both (the probe's limit). A sequential run moves its
    bytes in a fraction of a second (page cache to guest RAM at 4-7 GB/s on this host),
    so one run's figure swings by ±30 %: those ops take twice the repetitions."""
    peers = ("swiftvmm", "qemu")
    out = {}
    for op in ops:
        random = op.startswith("rand")
        op_mib = max(16, mib // 4) if random else mib
        tput = {p: [] for p in peers}
        cpu = {p: [] for p in peers}
        for i in range(reps if random else 2 * reps):
            for p in peers:
                r = run_to_exit(command(p, f"console=ttyS0 probe.bench=blk:{op}:{op_mib}", disk=scratch, disk_format=disk_format),
                                timeout=300, vmm=p)
                s = r.find(b"BENCH BLK START")
                d = r.find(b"BENCH BLK DONE")
                if s < 0 or d < 0:
                    raise BenchError(f"{p}: blk {op} bench failed\n{tail(r)}")
                m = re.search(rb"BENCH BLK DONE op=\w+ bytes=(\d+)", r.out)
                nbytes = int(m.group(1)) if m else op_mib << 20
                secs = (r.time_of(d) - r.time_of(r.find(b"\n", s))) / 1e9
                tput[p].append(nbytes / 4096 / secs if random else nbytes / (1 << 20) / secs)
                # Whole-process CPU (boot included, which is small next to the transfer).
                cpu[p].append(r.cpu_s() / (nbytes / (1 << 30)))
        out[op] = {p: summary(tput[p]) for p in peers}
        out[op + "_cpu_s_per_gib"] = {p: summary(cpu[p]) for p in peers}
    return out


def bench_qcow2(reps, scratch, tmp, mib):
    """bench_blk on a qcow2 copy of the scratch image (qemu-img convert, 64 KiB clusters,
    all allocated: writes go in place), swiftvmm vs QEMU's qcow2 driver; qemu-img check
    must find the image clean afterwards."""
    img = os.path.join(tmp, "scratch.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", scratch, img], check=True, timeout=120)
    out = bench_blk(reps, img, mib, disk_format="qcow2")
    check = subprocess.run(["qemu-img", "check", img], capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        raise BenchError(f"qemu-img check after the qcow2 benchmark (exit {check.returncode}): {check.stdout}{check.stderr}")
    return out


def bench_snapshot(reps, tmp):
    """Issue 11's figures on this host with the probe (bench/snapshot.py): Full snapshot
    creation, restore → first KVM_RUN and restore → responsive for a 128 MiB and a 1 GiB
    guest, live migration of a 256 MiB guest over a Unix socket, idle and dirtying."""
    import snapshot
    d = os.path.join(tmp, "snapshot")
    os.makedirs(d, exist_ok=True)
    try:
        return snapshot.measure(reps, SNAPSHOT_SIZES, d, log=log)
    except RuntimeError as e:
        raise BenchError(str(e))
    finally:
        shutil.rmtree(d, ignore_errors=True)


SNAPSHOT_SIZES = (128, 1024)

# ---------------------------------------------------------------------------------------
# 5. Linux boot in the nested test bed


NESTED_EXIT = re.compile(rb"NESTED-EXIT (\d+) (\d+)")


def nested_failure_cause(r, finished):
    """Why a nested boot failed, from the harness's status (guests/nested/run: swiftvmm's
    own status, 124 timeout, 125 test bed) and L1's NESTED-EXIT line (swiftvmm's status)."""
    out = bytes(r.out)
    m = NESTED_EXIT.search(out)
    vmm_status = int(m.group(2)) if m else None
    if any(t in out for t in CRASH_TEXT) or (vmm_status is not None and vmm_status >= 128):
        return f"swiftvmm crashed (status {vmm_status} in L1)"
    if not finished:
        return "the harness did not end in time (killed)"
    if r.status == LOCK_BUSY and out.find(b"NESTED-BEGIN") < 0:
        return f"test bed busy: other nested runs held {NESTED_LOCK} for {LOCK_WAIT} s"
    if r.status == 124:
        return "timeout: no SWIFTVMM-READY within 180 s" + ("" if out.find(b"NESTED-BEGIN") >= 0 else " (L1 never started swiftvmm)")
    if r.status == 125:
        return "test bed failure (harness status 125): " + out.strip().splitlines()[-1].decode(errors="replace")[:200] if out.strip() else "test bed failure (harness status 125)"
    g = re.search(rb"swiftvmm: guest crashed: ([^\r\n]*)", out)
    if g:
        return "guest crashed under swiftvmm: " + g.group(1).decode(errors="replace")
    return f"harness status {r.status}, swiftvmm status {vmm_status}, READY {'seen' if out.find(b'SWIFTVMM-READY') >= 0 else 'missing'}"


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
        # that make bench stays within its 15 minutes. No retries: a failed boot is counted
        # with its cause, and swiftvmm crashing stops the benchmark.
        r = Run(["flock", "-w", str(LOCK_WAIT), "-E", str(LOCK_BUSY), NESTED_LOCK, NESTED_RUN, "--timeout", "180", "--script", script], env=env)
        ok = r.finish(timeout=LOCK_WAIT + 240)  # waiting for other test beds, then a 180 s boot
        b, d = r.find(b"NESTED-BEGIN 1"), r.find(b"SWIFTVMM-READY")
        if ok and r.status == 0 and b >= 0 and d >= 0:
            times.append((r.time_of(d) - r.time_of(b)) / 1e9)
            m = TIMINGS.search(r.out)
            setup.append(float(m.group(1)) if m else None)
            total.append(r.exit_ns / 1e9)
            continue
        path = os.path.join(RESULTS, f"linux-boot-failure-{i + 1}.log")
        with open(path, "wb") as f:
            f.write(bytes(r.out) + b"\n--- stderr ---\n" + bytes(r.err))
        cause = nested_failure_cause(r, ok)
        failures.append({"log": os.path.relpath(path, ROOT), "status": r.status, "cause": cause})
        log(f"bench: nested Linux boot {i + 1} FAILED: {cause}; console in {failures[-1]['log']}")
        if cause.startswith("swiftvmm crashed"):
            raise BenchCrash(f"nested Linux boot {i + 1}: {cause} (console in {failures[-1]['log']})")
        if cause.startswith("test bed busy"):
            break  # the next boots would wait as long for the same lock
    if not times:
        raise BenchError("every nested Linux boot failed: " + "; ".join(f["cause"] for f in failures))
    return {"swiftvmm": summary(times), "vmm_setup_ms": summary(setup), "harness_total_s": summary(total),
            "failures": failures}


# ---------------------------------------------------------------------------------------
# 6. Network and vsock in the nested test bed, side by side with QEMU


NET_PEER = "guests/out/net/peer"
NET_INITRD = "guests/out/net/l2-initramfs.cpio.gz"
NET_CMDLINE = "console=ttyS0 quiet"
NET_L2_CPUS, NET_L2_MIB = 1, 512
QEMU_MICROVM_BIOS = "/usr/share/qemu/bios-microvm.bin"

# Run in L1 by `$` lines around each transfer: the counters of the VMM process (/run/pid:
# the invocation's process, swiftvmm or QEMU), of each of its threads, and of L1 as a whole.
NET_CPU_SH = """\
# netcpu.sh TAG PHASE: print the L1 CPU counters of the running VMM (/run/pid).
pid=$(cat /run/pid)
echo "NETPROC $1 $2 $(cut -d' ' -f1 /proc/uptime) $(cat /proc/$pid/stat)"
for t in /proc/$pid/task/*; do echo "NETTASK $1 $2 $(cat $t/stat 2>/dev/null)"; done
echo "NETL1 $1 $2 $(head -n 1 /proc/stat)"
"""


def qemu_net_invocation(tap):
    """QEMU in L1 on the same terms as swiftvmm: microvm on nested KVM, the same kernel,
    initramfs, command line, vCPUs and memory; virtio-net-device (virtio 1.x over MMIO) on
    a tap QEMU creates, its user-space backend (no vhost-net). debug-threads names its
    threads (`CPU 0/KVM`, …) for the per-thread CPU figures."""
    qemu = shutil.which(QEMU)
    return (f"{qemu} -M microvm,acpi=on -accel kvm -cpu host -m {NET_L2_MIB} -smp {NET_L2_CPUS} "
            f"-nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot "
            f"-name l2,debug-threads=on -bios {QEMU_MICROVM_BIOS} -kernel {LINUX_KERNEL} -initrd {NET_INITRD} -append \"{NET_CMDLINE}\" "
            f"-global virtio-mmio.force-legacy=false "
            f"-netdev tap,ifname={tap},script=no,downscript=no,id=n0 -device virtio-net-device,netdev=n0")


def net_script(plan, mib, cpu_sh):
    """One nested-bed script: for each (vmm, tap, subnet) an invocation that brings up eth0
    on the tap, sends `mib` MiB L2 → L1 (tx) and L1 → L2 (rx) over TCP, and for swiftvmm
    `mib` MiB over vsock L2 → L1; netcpu.sh samples the VMM's CPU around each transfer."""
    lines = []
    for i, (vmm, tap, net) in enumerate(plan):
        if vmm == "swiftvmm":
            inv = (f"run --kernel {LINUX_KERNEL} --initrd {NET_INITRD} --memory {NET_L2_MIB} --cpus {NET_L2_CPUS} "
                   f"--net tap={tap} --vsock cid=3,uds=/run/nb{i}.sock --cmdline \"{NET_CMDLINE}\"")
        else:
            inv = qemu_net_invocation(tap)
        l1, l2 = f"10.0.{net}.1", f"10.0.{net}.2"
        lines += [
            inv,
            "? SWIFTVMM-READY",
            f"$ ip addr add {l1}/24 dev {tap} && ip link set {tap} up && "
            f"{{ [ -f /tmp/nb-l1 ] || dd if=/dev/zero of=/tmp/nb-l1 bs=1M count={mib} 2>/dev/null; }} && echo l1-\"ready\"",
            "? l1-ready",
            f"< ip addr add {l2}/24 dev eth0 && ip link set eth0 up && ping -c 2 -W 10 {l1} >/dev/null && "
            f"dd if=/dev/zero of=/tmp/nb bs=1M count={mib} 2>/dev/null && echo l2-\"ready\"",
            "? l2-ready",
            # tx: the guest sends, L1's peer receives (and times it)
            f"$ {NET_PEER} tcp-listen 5001 </dev/null >/dev/null 2>/tmp/nb-tx.err & sleep 0.5; sh {cpu_sh} tx begin",
            f"< peer tcp-connect {l1} 5001 </tmp/nb >/dev/null 2>&1; echo tx-\"sent\"",
            "? tx-sent",
            f"$ while pidof peer >/dev/null; do sleep 0.1; done; sh {cpu_sh} tx end; echo NETPEER tx $(cat /tmp/nb-tx.err)",
            # rx: L1 sends, the guest's peer receives
            "< peer tcp-listen 5002 </dev/null >/dev/null 2>/tmp/nb-rx.err & sleep 1; echo rx-\"listening\"",
            "? rx-listening",
            f"$ sh {cpu_sh} rx begin; {NET_PEER} tcp-connect {l2} 5002 </tmp/nb-l1 >/dev/null 2>/tmp/nb-rxs.err; "
            f"sh {cpu_sh} rx end; cat /tmp/nb-rxs.err",
            "< while pidof peer >/dev/null; do sleep 0.2; done; echo NETPEER-\"rx\" $(cat /tmp/nb-rx.err)",
            "? NETPEER-rx",
        ]
        if vmm == "swiftvmm":
            lines += [
                "< while read m; do insmod $m; done </etc/net-modules.order; echo vsock-\"loaded\"",
                "? vsock-loaded",
                f"$ {NET_PEER} unix-listen /run/nb{i}.sock_6000 </dev/null >/dev/null 2>/tmp/nb-vs.err & sleep 0.5; "
                f"sh {cpu_sh} vsock begin",
                "< peer vsock-connect 2 6000 </tmp/nb >/dev/null 2>&1; echo vsock-\"sent\"",
                "? vsock-sent",
                f"$ while pidof peer >/dev/null; do sleep 0.1; done; sh {cpu_sh} vsock end; "
                "echo NETPEER vsock $(cat /tmp/nb-vs.err)",
            ]
        lines.append("< poweroff -f")
    return "\n".join(lines) + "\n"


NET_PEER_LINE = re.compile(r"NETPEER[- ](tx|rx|vsock) peer: received (\d+) bytes in ([0-9.]+) s")
NET_COUNTERS = re.compile(r"(NETPROC|NETTASK|NETL1) (tx|rx|vsock) (begin|end) (.*)")


def stat_fields(text):
    """/proc/PID/stat → (comm, fields after the comm: index 0 is field 3, `state`)."""
    open_, close = text.find("("), text.rfind(")")
    if open_ < 0 or close < 0:
        return None, []
    return text[open_ + 1:close], text[close + 1:].split()


def parse_net_segment(text):
    """The NET… lines of one invocation's output → per transfer tag: bytes, receiver's
    seconds, and the CPU counters' differences (clock ticks)."""
    out = {}
    counters = {}
    for line in text.splitlines():
        m = NET_PEER_LINE.search(line)
        if m:
            out.setdefault(m.group(1), {})["bytes"] = int(m.group(2))
            out[m.group(1)]["seconds"] = float(m.group(3))
            continue
        m = NET_COUNTERS.search(line)
        if not m:
            continue
        kind, tag, phase, rest = m.groups()
        c = counters.setdefault(tag, {}).setdefault(phase, {"tasks": {}})
        if kind == "NETPROC":
            up, _, stat = rest.partition(" ")
            _, f = stat_fields(stat)
            if len(f) > 40:
                c["uptime"] = float(up)
                c["cpu"] = int(f[11]) + int(f[12])
                c["guest"] = int(f[40])
        elif kind == "NETTASK":
            tid = rest.split(" ", 1)[0]
            comm, f = stat_fields(rest)
            if len(f) > 40:
                c["tasks"][tid] = (comm, int(f[11]) + int(f[12]), int(f[40]))
        else:
            f = rest.split()
            if f and f[0] == "cpu" and len(f) >= 6:
                ticks = [int(x) for x in f[1:9]]
                c["l1_busy"] = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    hz = os.sysconf("SC_CLK_TCK")  # USER_HZ, the same in L1 (a Linux constant on x86)
    for tag, ph in counters.items():
        b, e = ph.get("begin"), ph.get("end")
        if not b or not e or "cpu" not in b or "cpu" not in e:
            continue
        d = out.setdefault(tag, {})
        d["vmm_cpu_s"] = (e["cpu"] - b["cpu"]) / hz
        d["vmm_guest_s"] = (e["guest"] - b["guest"]) / hz
        d["l1_wall_s"] = e["uptime"] - b["uptime"]
        if "l1_busy" in b and "l1_busy" in e:
            d["l1_busy_s"] = (e["l1_busy"] - b["l1_busy"]) / hz
        threads = {}
        for tid, (comm, cpu, guest) in e["tasks"].items():
            if tid in b["tasks"]:
                _, cpu0, guest0 = b["tasks"][tid]
                t = threads.setdefault(comm, {"cpu_s": 0.0, "guest_s": 0.0, "threads": 0})
                t["cpu_s"] += (cpu - cpu0) / hz
                t["guest_s"] += (guest - guest0) / hz
                t["threads"] += 1
        d["threads"] = threads
    return out


def run_net_bed(script_text, tmp, timeout, env):
    script = os.path.join(tmp, "net.script")
    with open(script, "w") as f:
        f.write(script_text)
    r = Run(["flock", "-w", str(LOCK_WAIT), "-E", str(LOCK_BUSY), NESTED_LOCK, NESTED_RUN, "--timeout", str(timeout),
             "--script", script], env=env)
    ok = r.finish(timeout=LOCK_WAIT + timeout + 60)
    path = os.path.join(RESULTS, "net-console.log")
    with open(path, "wb") as f:
        f.write(bytes(r.out) + b"\n--- stderr ---\n" + bytes(r.err))
    out = bytes(r.out).decode(errors="replace").replace("\r", "")
    if not ok or "NESTED-DONE" not in out:
        cause = nested_failure_cause(r, ok)
        raise BenchError(f"nested net bed: {cause} (console in {os.path.relpath(path, ROOT)})")
    return out


def bench_net(mib, reps, tmp, feat):
    """guests/nested/run, one L1 boot: per repetition swiftvmm (--net tap, --vsock) and
    QEMU in L1 boot the same Debian kernel and initramfs as L2, and move `mib` MiB over TCP
    each way between L2 and L1 (and over vsock for swiftvmm). Throughput is the
    receiver's (peer: first to last byte); CPU is the VMM process's utime+stime in L1
    around each transfer (/proc/PID/stat, clock ticks), per GiB moved."""
    if not (feat.get("net") and feat.get("vsock")):
        raise BenchError("swiftvmm run has no --net or --vsock")
    b = subprocess.run([os.path.join(ROOT, "guests/net/build")], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if b.returncode != 0:
        raise BenchError(f"guests/net/build failed: {b.stderr[-1000:]}")
    qemu_ok = os.path.exists(QEMU_MICROVM_BIOS) and shutil.which(QEMU) is not None
    plan = []
    for i in range(reps):
        plan.append(("swiftvmm", f"tap{2 * i}", 10 + 2 * i))
        if qemu_ok:
            plan.append(("qemu", f"tap{2 * i + 1}", 11 + 2 * i))
    cpu_sh = os.path.join(tmp, "netcpu.sh")
    with open(cpu_sh, "w") as f:
        f.write(NET_CPU_SH)
    env = dict(os.environ, SWIFTVMM_BIN=SWIFTVMM, NESTED_EXPECT_TIMEOUT="600")
    # An L2 boot takes 15–90 s in the bed, a 128 MiB transfer 5–60 s: 10 minutes per
    # invocation bounds a hung one without cutting a slow machine short.
    out = run_net_bed(net_script(plan, mib, cpu_sh), tmp, 600 * len(plan), env)
    segments = re.split(r"NESTED-BEGIN \d+", out)[1:]
    exits = [int(x) for x in re.findall(r"NESTED-EXIT \d+ (\d+)", out)]
    res = {"swiftvmm": [], "qemu": []}
    problems = {"swiftvmm": [], "qemu": []}
    for i, (vmm, tap, _) in enumerate(plan):
        seg = segments[i] if i < len(segments) else ""
        failed = re.search(r"NESTED-(?:EXPECT-FAILED|HOST-TIMEOUT) \d+ (.*)", seg)
        status = exits[i] if i < len(exits) else None
        tags = ("tx", "rx", "vsock") if vmm == "swiftvmm" else ("tx", "rx")
        if vmm == "swiftvmm" and (any(t.decode() in seg for t in CRASH_TEXT)
                                  or (status is not None and status >= 128 and not failed)):
            raise BenchCrash(f"swiftvmm crashed in the nested net benchmark, invocation {i + 1} (status {status} in L1; "
                             "console in bench/results/net-console.log)")
        parsed = parse_net_segment(seg)
        missing = [t for t in tags if "bytes" not in parsed.get(t, {}) or "vmm_cpu_s" not in parsed.get(t, {})]
        short = [t for t in tags if t not in missing and parsed[t]["bytes"] != mib << 20]
        if failed or status != 0 or missing or short:
            problems[vmm].append(f"invocation {i + 1} ({vmm}, {tap}): exit {status}"
                                 + (f", waited in vain for: {failed.group(1).strip()}" if failed else "")
                                 + (f", no figures for {','.join(missing)}" if missing else "")
                                 + (f", short transfer in {','.join(short)}" if short else ""))
            continue
        res[vmm].append(parsed)
    if problems["swiftvmm"]:
        raise BenchError("; ".join(problems["swiftvmm"]) + f" (console in bench/results/net-console.log)")
    out = {"mib": mib, "reps": reps, "l2": f"{NET_L2_CPUS} vCPU, {NET_L2_MIB} MiB, {LINUX_KERNEL}, {NET_INITRD}"}
    for vmm in ("swiftvmm", "qemu"):
        runs = res[vmm]
        if not runs:
            out[vmm] = None
            out[vmm + "_unavailable"] = ("; ".join(problems[vmm]) if problems[vmm] else
                                         f"{QEMU_MICROVM_BIOS} or {QEMU} missing on this host")
            continue
        v = {}
        for tag in ("tx", "rx", "vsock"):
            if tag not in runs[0]:
                continue
            rs = [r[tag] for r in runs]
            v[tag + "_mbit_s"] = summary([r["bytes"] * 8 / r["seconds"] / 1e6 for r in rs])
            v[tag + "_mib_s"] = summary([r["bytes"] / (1 << 20) / r["seconds"] for r in rs])
            v[tag + "_cpu_s_per_gib"] = summary([r["vmm_cpu_s"] / (r["bytes"] / (1 << 30)) for r in rs])
            v[tag + "_vmm_only_cpu_s_per_gib"] = summary([(r["vmm_cpu_s"] - r["vmm_guest_s"]) / (r["bytes"] / (1 << 30)) for r in rs])
            v[tag + "_l1_busy_s_per_gib"] = summary([r["l1_busy_s"] / (r["bytes"] / (1 << 30)) for r in rs if "l1_busy_s" in r])
            v[tag + "_runs"] = rs
        # TCP both ways together: the VMM's CPU over the bytes it moved.
        v["cpu_s_per_gib"] = summary([(r["tx"]["vmm_cpu_s"] + r["rx"]["vmm_cpu_s"])
                                      / ((r["tx"]["bytes"] + r["rx"]["bytes"]) / (1 << 30)) for r in runs])
        v["vmm_only_cpu_s_per_gib"] = summary([(r["tx"]["vmm_cpu_s"] - r["tx"]["vmm_guest_s"] + r["rx"]["vmm_cpu_s"]
                                                - r["rx"]["vmm_guest_s"]) / ((r["tx"]["bytes"] + r["rx"]["bytes"]) / (1 << 30))
                                               for r in runs])
        # What costs what: each thread (by name) over TCP both ways, summed over the runs.
        threads, gib = {}, 0.0
        for r in runs:
            for tag in ("tx", "rx"):
                gib += r[tag]["bytes"] / (1 << 30)
                for comm, t in r[tag]["threads"].items():
                    threads[comm] = threads.get(comm, 0.0) + t["cpu_s"]
        v["threads_cpu_s_per_gib"] = {c: round(t / gib, 3) for c, t in sorted(threads.items(), key=lambda x: -x[1])}
        out[vmm] = v
    return out


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
        add("swiftvmm main → first KVM_RUN ≤ 3 ms", med(sv["main_to_first_kvm_run"]), 3.0, "ms (--timings)")
        add("exec → probe banner ≤ 1.5 × floor", ratio(med(sv["banner"]), med(st["floor"]["banner"])), 1.5, "× floor")
        add("exec → probe banner ≤ 0.5 × QEMU", ratio(med(sv["banner"]), med(st["qemu"]["banner"])), 0.5, "× QEMU")
    mem = R.get("memory")
    if mem:
        add("VMM memory overhead ≤ 5 MiB", med(mem["swiftvmm"]) / 1024 if mem["swiftvmm"] else None, 5.0, "MiB")
    for k in ("pio", "mmio"):
        e = R.get(k)
        if e:
            add(f"{k.upper()} exit ≤ 1.05 × floor", ratio(med(e["swiftvmm"]), med(e["floor"])), 1.05, "× floor")
    blk = R.get("blk")
    if blk:
        for op in ("read", "write"):
            add(f"virtio-blk {op} ≥ 1.0 × QEMU", ratio(med(blk[op]["swiftvmm"]), med(blk[op]["qemu"])), 1.0,
                "× QEMU", lower_is_better=False)
        for op in BLK_OPS:
            add(f"raw {op} ≥ 1.1 × QEMU raw", ratio(med(blk[op]["swiftvmm"]), med(blk[op]["qemu"])), 1.1,
                "× QEMU", lower_is_better=False)
            cpu = blk[op + "_cpu_s_per_gib"]
            add(f"raw {op} CPU per GiB ≤ 0.8 × QEMU", ratio(med(cpu["swiftvmm"]), med(cpu["qemu"])), 0.8, "× QEMU")
    q = R.get("qcow2")
    if q:
        for op in BLK_OPS:
            add(f"qcow2 {op} ≥ 1.0 × QEMU qcow2", ratio(med(q[op]["swiftvmm"]), med(q[op]["qemu"])), 1.0,
                "× QEMU", lower_is_better=False)
            if blk:
                add(f"qcow2 {op} ≥ 0.9 × swiftvmm raw", ratio(med(q[op]["swiftvmm"]), med(blk[op]["swiftvmm"])), 0.9,
                    "× raw", lower_is_better=False)
    ch = R.get("churn")
    if ch:
        add("churn, sequential ≥ 5 VMs/s per core", ch["sequential"]["swiftvmm"]["vms_per_core_s"], 5.0, "VMs/s/core",
            lower_is_better=False)
    api = R.get("api")
    if api and "ready_cpu_ms" in api["swiftvmm"]:
        add("API socket ready ≤ 8 CPU-ms", med(api["swiftvmm"]["ready_cpu_ms"]), 8.0, "CPU-ms")
    net = R.get("net")
    if net and net.get("swiftvmm"):
        sv, q = net["swiftvmm"], net.get("qemu") or {}
        for d in ("tx", "rx"):
            add(f"nested TCP {d} ≥ 1.0 × QEMU", ratio(med(sv[d + "_mbit_s"]), med(q.get(d + "_mbit_s"))), 1.0, "× QEMU",
                lower_is_better=False)
        add("nested TCP VMM CPU per GiB ≤ 0.8 × QEMU", ratio(med(sv["cpu_s_per_gib"]), med(q.get("cpu_s_per_gib"))), 0.8,
            "× QEMU")
    sn = R.get("snapshot")
    if sn:
        for size in SNAPSHOT_SIZES:
            add(f"restore → first KVM_RUN ≤ 5 ms, {size} MiB", sn["restore_to_first_run_ms"][str(size)], 5.0, "ms")
        add("migration downtime ≤ 50 ms, idle 256 MiB", sn["migration_downtime_ms"]["idle"], 50.0, "ms")
    lb = R.get("linux")
    if lb:
        add("Linux boot to SWIFTVMM-READY ≤ 10 s", med(lb["swiftvmm"]), 10.0, "s")
        add("nested Linux boots failed = 0", len(lb["failures"]), 0, "failed")
    return b


def table(R, B, feat):
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
        rows.append(("memory overhead, Rss (KiB)", *(fmt(mem[p], 0) for p in PEERS)))
        rows.append(("  of which anon / file-backed (KiB)",
                     *(f"{mem[p]['anon_kib']} / {mem[p]['file_kib']}" if mem[p] else "—" for p in PEERS)))
    den = R.get("density")
    if den:
        n = den["swiftvmm"]["vms"]
        rows.append((f"per VM of {n} running: Pss (KiB)", fmt(den["swiftvmm"]["pss"], 0), "", fmt(den["qemu"]["pss"], 0)))
        rows.append((f"per VM of {n} running: Uss (KiB)", fmt(den["swiftvmm"]["uss"], 0), "", fmt(den["qemu"]["uss"], 0)))
    for k in ("pio", "mmio"):
        e = R.get(k)
        if e:
            rows.append((f"{k.upper()} exit (ns)", *(fmt(e[p], 0) for p in PEERS)))
    for name, blk in (("virtio-blk", R.get("blk")), ("qcow2", R.get("qcow2"))):
        if not blk:
            continue
        for op in BLK_OPS:
            unit = "IOPS, 4 KiB" if op.startswith("rand") else "MiB/s"
            rows.append((f"{name} {op} ({unit})", fmt(blk[op]["swiftvmm"]), "", fmt(blk[op]["qemu"])))
            rows.append((f"  host CPU s per GiB {op}", fmt(blk[op + "_cpu_s_per_gib"]["swiftvmm"], 2), "",
                         fmt(blk[op + "_cpu_s_per_gib"]["qemu"], 2)))
    ch = R.get("churn")
    if ch:
        for mode in ("sequential", "two_at_a_time"):
            c = ch[mode]
            rows.append((f"churn, {mode.replace('_', ' ')} (VMs/s per core)", f"{c['swiftvmm']['vms_per_core_s']:.1f}", "",
                         f"{c['qemu']['vms_per_core_s']:.1f}"))
            rows.append(("  host CPU ms per VM", f"{c['swiftvmm']['cpu_s_per_vm'] * 1e3:.1f}", "",
                         f"{c['qemu']['cpu_s_per_vm'] * 1e3:.1f}"))
    api = R.get("api")
    if api:
        sv, q = api["swiftvmm"], api["qemu"]
        na = "n/a" if not feat.get("api_sock") else "—"
        rows.append(("control socket ready: exec → accepting (ms)", fmt(sv.get("ready_ms"), 2) if "ready_ms" in sv else na, "",
                     fmt(q["ready_ms"], 2)))
        rows.append(("  VMM CPU by then (ms)", fmt(sv.get("ready_cpu_ms"), 2) if "ready_cpu_ms" in sv else na, "",
                     fmt(q["ready_cpu_ms"], 2)))
        rows.append(("InstanceStart → probe banner (ms)",
                     fmt(sv["instance_start_to_banner_ms"], 2) if "instance_start_to_banner_ms" in sv else na, "", ""))
        for key, label in (("get_us", "API GET / QMP query-status (µs p50 / p99)"),
                           ("pause_resume_us", "API pause, resume / QMP stop, cont (µs p50 / p99)")):
            cell = lambda d: f"{d[key]['p50']:.0f} / {d[key]['p99']:.0f}" if key in d else na
            rows.append((label, cell(sv), "", cell(q)))
    sn = R.get("snapshot")
    if sn:
        for size in SNAPSHOT_SIZES:
            k = str(size)
            rows.append((f"{size} MiB: snapshot create / restore → first KVM_RUN / → responsive (ms)",
                         f"{sn['snapshot_create_ms'][k]:.1f} / {sn['restore_to_first_run_ms'][k]:.2f} / "
                         f"{sn['restore_to_responsive_ms'][k]:.1f}", "", ""))
        for w in ("idle", "dirtying"):
            rows.append((f"migration, 256 MiB {w}: total / downtime (ms)",
                         f"{sn['migration_total_ms'][w]:.1f} / {sn['migration_downtime_ms'][w]:.2f}", "", ""))
    lb = R.get("linux")
    if lb:
        rows.append(("Linux boot to SWIFTVMM-READY (s)", fmt(lb["swiftvmm"], 2), "", ""))
        rows.append(("  of which VMM set-up, main → first KVM_RUN (ms)", fmt(lb["vmm_setup_ms"], 2), "", ""))
        rows.append(("  whole test-bed run, L1 boot included (s)", fmt(lb["harness_total_s"], 1), "", ""))
        rows.append(("  failed boots (causes in the JSON, logs in bench/results/)", str(len(lb["failures"])), "", ""))
    net = R.get("net")
    if net and net.get("swiftvmm"):
        sv, q = net["swiftvmm"], net.get("qemu") or {}
        qf = lambda key, digits=1: fmt(q.get(key), digits) if q else "n/a"
        for d, label in (("tx", "L2 → L1"), ("rx", "L1 → L2")):
            rows.append((f"nested TCP {label}, {net['mib']} MiB (Mbit/s)", fmt(sv[d + "_mbit_s"]), "", qf(d + "_mbit_s")))
            rows.append((f"  VMM CPU s per GiB (of which guest)",
                         f"{fmt(sv[d + '_cpu_s_per_gib'], 2)} ({med(sv[d + '_cpu_s_per_gib']) - med(sv[d + '_vmm_only_cpu_s_per_gib']):.2f})",
                         "", f"{qf(d + '_cpu_s_per_gib', 2)} ({med(q[d + '_cpu_s_per_gib']) - med(q[d + '_vmm_only_cpu_s_per_gib']):.2f})"
                         if q else "n/a"))
        rows.append(("  VMM CPU s per GiB, TCP both ways", fmt(sv["cpu_s_per_gib"], 2), "", qf("cpu_s_per_gib", 2)))
        top = lambda v: ", ".join(f"{c} {t:.2f}" for c, t in list(v["threads_cpu_s_per_gib"].items())[:3])
        rows.append(("  of which the busiest threads (s/GiB)", top(sv), "", top(q) if q else "n/a"))
        rows.append((f"nested vsock L2 → L1, {net['mib']} MiB (MiB/s)", fmt(sv["vsock_mib_s"]), "", ""))
        if not q:
            rows.append(("  qemu: not available", (net.get("qemu_unavailable") or "")[:60], "", ""))
    for key, why in sorted(R.get("not_available", {}).items()):
        rows.append((f"{key}: not available", why[:60], "", ""))

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
        j["rss_overhead_config"] = R["memory"]["config"]
    if "density" in R:
        d = R["density"]
        j["pss_per_vm_kib"] = {p: med(d[p]["pss"]) for p in ("swiftvmm", "qemu")}
        j["uss_per_vm_kib"] = {p: med(d[p]["uss"]) for p in ("swiftvmm", "qemu")}
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
    # The names: raw_/qcow2_ + read/write MiB/s, randread/randwrite IOPS, CPU per GiB.
    for fmt_name in ("raw", "qcow2"):
        b = R.get("blk" if fmt_name == "raw" else "qcow2")
        if not b:
            continue
        for op in BLK_OPS:
            unit = "iops" if op.startswith("rand") else "mib_s"
            j[f"{fmt_name}_{op}_{unit}"] = peer_values(b[op], ("swiftvmm", "qemu"))
            j[f"{fmt_name}_{op}_cpu_s_per_gib"] = peer_values(b[op + "_cpu_s_per_gib"], ("swiftvmm", "qemu"))
    if "churn" in R:
        c = R["churn"]
        j["churn_vms_per_core_s"] = {p: c["sequential"][p]["vms_per_core_s"] for p in ("swiftvmm", "qemu")}
        j["churn_two_at_a_time_vms_per_core_s"] = {p: c["two_at_a_time"][p]["vms_per_core_s"] for p in ("swiftvmm", "qemu")}
        j["churn_cpu_ms_per_vm"] = {p: c["sequential"][p]["cpu_s_per_vm"] * 1e3 for p in ("swiftvmm", "qemu")}
    if "api" in R:
        a = R["api"]
        j["api_sock_ready_ms"] = {p: med(a[p].get("ready_ms")) for p in ("swiftvmm", "qemu")}
        j["api_sock_ready_cpu_ms"] = {p: med(a[p].get("ready_cpu_ms")) for p in ("swiftvmm", "qemu")}
        j["instance_start_to_banner_ms"] = {"swiftvmm": med(a["swiftvmm"].get("instance_start_to_banner_ms"))}
        j["api_get_us"] = {p: a[p].get("get_us") for p in ("swiftvmm", "qemu")}
        j["api_pause_resume_us"] = {p: a[p].get("pause_resume_us") for p in ("swiftvmm", "qemu")}
    if "snapshot" in R:
        j.update(R["snapshot"])  # issue 11's keys as they are: by guest size, by workload
    if "net" in R:
        n = R["net"]
        sv, q = n.get("swiftvmm") or {}, n.get("qemu") or {}
        j["net_tx_mbit_s"] = {p: med(v.get("tx_mbit_s")) for p, v in (("swiftvmm", sv), ("qemu", q))}
        j["net_rx_mbit_s"] = {p: med(v.get("rx_mbit_s")) for p, v in (("swiftvmm", sv), ("qemu", q))}
        j["net_cpu_s_per_gib"] = {p: med(v.get("cpu_s_per_gib")) for p, v in (("swiftvmm", sv), ("qemu", q))}
        j["vsock_mib_s"] = {"swiftvmm": med(sv.get("vsock_mib_s"))}
        if n.get("qemu_unavailable"):
            j["net_qemu_unavailable"] = n["qemu_unavailable"]
    if "linux" in R:
        j["linux_boot_s"] = {"swiftvmm": med(R["linux"]["swiftvmm"])}
        j["linux_boot_vmm_setup_ms"] = {"swiftvmm": med(R["linux"]["vmm_setup_ms"])}
        j["linux_boot_failures"] = R["linux"]["failures"]
    # The keys of features not in this swiftvmm yet: null, with the reason.
    for key, why in R.get("not_available", {}).items():
        j.setdefault(key, None)
    j["not_available"] = R.get("not_available", {})
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


# ---------------------------------------------------------------------------------------
# What this swiftvmm can do, found by probing the binary (never assumed)


def help_text(*args):
    try:
        r = subprocess.run([SWIFTVMM, *args, "--help"], capture_output=True, text=True, timeout=20)
        return r.stdout + r.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def features(tmp):
    run_help, top_help = help_text("run"), help_text()
    f = {
        "virtio": "--disk" in run_help,
        "api_sock": "--api-sock" in run_help,
        "net": "--net" in run_help,
        "vsock": "--vsock" in run_help,
        "snapshot": "snapshot" in (run_help + top_help).lower(),
        "migration": "migrat" in (run_help + top_help).lower(),
    }
    # qcow2: ask swiftvmm to open a real qcow2 image (made by qemu-img) and see whether it
    # boots the probe off it or refuses the format.
    f["qcow2"] = False
    if f["virtio"] and shutil.which("qemu-img"):
        img = os.path.join(tmp, "probe-format.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", img, "16M"], check=True, timeout=30)
        r = run_to_exit(command("swiftvmm", "console=ttyS0 probe.run=none", disk=img), timeout=30, vmm="swiftvmm")
        f["qcow2"] = r.status == 0
        f["qcow2_refusal"] = bytes(r.err).decode(errors="replace").strip()[:200]
    return f


# Figures of other issues: key → (feature, what measuring it needs). A key whose feature
# this swiftvmm lacks is reported as not available, never estimated.
PENDING = {
    "api_get_us": ("api_sock", "swiftvmm run has no --api-sock"),
    "api_pause_resume_us": ("api_sock", "swiftvmm run has no --api-sock"),
    "api_sock_ready_ms": ("api_sock", "swiftvmm run has no --api-sock"),
    "instance_start_to_banner_ms": ("api_sock", "swiftvmm run has no --api-sock"),
    "net_tx_mbit_s": ("net", "swiftvmm run has no --net"),
    "net_rx_mbit_s": ("net", "swiftvmm run has no --net"),
    "net_cpu_s_per_gib": ("net", "swiftvmm run has no --net"),
    "vsock_mib_s": ("vsock", "swiftvmm run has no --vsock"),
    "snapshot_create_ms": ("snapshot", "no snapshot command or option in swiftvmm --help"),
    "restore_to_first_run_ms": ("snapshot", "no snapshot command or option in swiftvmm --help"),
    "restore_to_responsive_ms": ("snapshot", "no snapshot command or option in swiftvmm --help"),
    "migration_total_ms": ("migration", "no migration command or option in swiftvmm --help"),
    "migration_downtime_ms": ("migration", "no migration command or option in swiftvmm --help"),
    "qcow2_read_mib_s": ("qcow2", "swiftvmm refuses a qcow2 disk"),
    "qcow2_write_mib_s": ("qcow2", "swiftvmm refuses a qcow2 disk"),
    "qcow2_randread_iops": ("qcow2", "swiftvmm refuses a qcow2 disk"),
    "qcow2_randwrite_iops": ("qcow2", "swiftvmm refuses a qcow2 disk"),
}
# Measured by this driver once the feature exists (the others need their harness here).
MEASURED = {"api_get_us", "api_pause_resume_us", "api_sock_ready_ms", "instance_start_to_banner_ms", "qcow2_read_mib_s",
            "qcow2_write_mib_s", "qcow2_randread_iops", "qcow2_randwrite_iops",
            "net_tx_mbit_s", "net_rx_mbit_s", "net_cpu_s_per_gib", "vsock_mib_s", "snapshot_create_ms",
            "restore_to_first_run_ms", "restore_to_responsive_ms", "migration_total_ms", "migration_downtime_ms"}


def not_available(feat):
    out = {}
    for key, (need, why) in PENDING.items():
        if not feat.get(need):
            out[key] = why
        elif key not in MEASURED:
            out[key] = f"swiftvmm has {need}, but bench/run.py does not measure it yet"
    return out


def main():
    global LOCK_WAIT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=0, help="repetitions per measurement (default: per measurement)")
    ap.add_argument("--quick", action="store_true", help="the 2-minute subset: fewer repetitions, no nested Linux boot")
    ap.add_argument("--only", default=None, help="comma-separated steps (default: all; with --quick all but linux and net)")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench/results/latest.json"))
    ap.add_argument("--exits", type=int, default=20000, help="N for probe.bench=pio:N / mmio:N")
    ap.add_argument("--blk-mib", type=int, default=1024, help="MiB per block benchmark run")
    ap.add_argument("--linux-reps", type=int, default=3, help="nested Linux boots (each 30–90 s)")
    ap.add_argument("--density-vms", type=int, default=10, help="VMs running at once for Pss/Uss")
    ap.add_argument("--churn-vms", type=int, default=40, help="VMs per churn measurement")
    ap.add_argument("--api-requests", type=int, default=1000, help="requests for each API latency figure")
    ap.add_argument("--net-mib", type=int, default=128, help="MiB per nested TCP/vsock transfer (--quick: 32)")
    ap.add_argument("--net-reps", type=int, default=2, help="swiftvmm + QEMU pairs in the nested net run (--quick: 1)")
    ap.add_argument("--lock-wait", type=int, default=LOCK_WAIT, help="seconds to wait for the nested test bed's lock")
    a = ap.parse_args()
    LOCK_WAIT = a.lock_wait
    only = set((a.only or "startup,memory,density,pio,mmio,blk,churn,api,snapshot,qcow2,linux,net").split(","))
    if a.quick:
        only.discard("linux")
        if a.only is None:
            only.discard("net")  # nested, minutes: only when asked for by name
        a.net_mib = min(a.net_mib, 32)
        a.net_reps = 1
        a.blk_mib = min(a.blk_mib, 256)
        a.churn_vms = min(a.churn_vms, 20)

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
    log(f"bench: {meta['cpu']}, {meta['cpus']} CPUs, {meta['kvm']}, load {meta['load_avg_at_start']}")
    R = {}
    crashed = False
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="swiftvmm-bench-") as tmp:
        try:
            feat = features(tmp)
        except BenchError as e:
            log(f"bench: probing swiftvmm's features FAILED: {e}")
            print("STEPS: 0 ok, 1 failed (features)" + (", swiftvmm CRASHED" if isinstance(e, BenchCrash) else ""))
            return 1
        meta["swiftvmm_features"] = feat
        virtio = feat["virtio"]
        scratch = os.path.join(tmp, "scratch.img")
        # Written out (not sparse), so reads hit real data and writes overwrite allocated
        # blocks in the page cache for both VMMs alike.
        with open(scratch, "wb") as f:
            chunk = bytes(range(256)) * 4096
            for _ in range(SCRATCH_MIB):
                f.write(chunk)
        steps = [
            ("startup", lambda: bench_startup(reps(15))),
            ("memory", lambda: bench_memory(reps(3), virtio, scratch, feat, tmp)),
            ("density", lambda: bench_density(a.density_vms, virtio, tmp, feat)),
            ("pio", lambda: bench_exits("pio", a.exits, reps(7))),
            ("mmio", lambda: bench_exits("mmio", a.exits, reps(7))),
            ("churn", lambda: {"sequential": bench_churn(a.churn_vms, 1), "two_at_a_time": bench_churn(a.churn_vms, 2)}),
            ("api", lambda: bench_api(reps(5), a.api_requests, feat, tmp)),
        ]
        if feat["snapshot"] and feat["migration"]:
            steps.append(("snapshot", lambda: bench_snapshot(reps(7), tmp)))
        if virtio:
            steps.append(("blk", lambda: bench_blk(reps(5), scratch, a.blk_mib)))
        if feat["qcow2"]:
            steps.append(("qcow2", lambda: bench_qcow2(reps(3), scratch, tmp, a.blk_mib)))
        if os.access(NESTED_RUN, os.X_OK) and all(os.path.exists(os.path.join(ROOT, f)) for f in (LINUX_KERNEL, LINUX_INITRD)):
            steps.append(("linux", lambda: bench_linux(a.linux_reps, tmp)))
            if feat["net"] and feat["vsock"]:
                steps.append(("net", lambda: bench_net(a.net_mib, a.net_reps, tmp, feat)))
        else:
            for name in ("linux", "net"):
                if name in only:
                    R[name + "_error"] = "guests/nested/run or guests/out/linux/* is missing (make linux)"
                    log(f"bench: {name} FAILED: {R[name + '_error']}")
        for name, fn in steps:
            if name not in only:
                continue
            t = time.monotonic()
            log(f"bench: {name} …")
            try:
                R[name] = fn()
            except BenchCrash as e:
                log(f"bench: {name} CRASH: {e}")
                R[name + "_error"] = str(e)
                crashed = True
                break
            except BenchError as e:
                log(f"bench: {name} FAILED: {e}")
                R[name + "_error"] = str(e)
            log(f"bench: {name} took {time.monotonic() - t:.1f} s")
        R["not_available"] = not_available(feat)
    meta["duration_s"] = round(time.monotonic() - t_all, 1)
    meta["load_avg_at_end"] = os.getloadavg()
    B = budgets(R)
    print(table(R, B, feat))
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(to_json(R, B, meta), f, indent=1, ensure_ascii=False)
        f.write("\n")
    log(f"bench: wrote {os.path.relpath(a.json, ROOT)} in {meta['duration_s']} s "
        f"(load average {meta['load_avg_at_start'][0]:.1f} at start, {meta['load_avg_at_end'][0]:.1f} at end)")
    failed = [k[:-len("_error")] for k in R if k.endswith("_error")]
    passed = sum(1 for b in B if b["pass"] is True)
    missed = [b["budget"] for b in B if b["pass"] is False]
    # The two lines a script reads; the exit status says the same (README of BENCHMARKS.md).
    not_run = [n for n, _ in steps if n in only and n not in R and n + "_error" not in R]
    print(f"STEPS: {sum(1 for n, _ in steps if n in R)} ok, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else "") + (", swiftvmm CRASHED" if crashed else "")
          + (f", {len(not_run)} not run ({', '.join(not_run)})" if not_run else ""))
    print(f"BUDGETS: {passed} passed, {len(missed)} missed" + (f" ({'; '.join(missed)})" if missed else ""))
    if failed or crashed:
        return 1
    return 3 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
