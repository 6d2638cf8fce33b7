#!/usr/bin/env python3
"""Control-API latency: GET / and a PATCH /vm Paused + Resumed pair, each N times over one
keep-alive connection to a running probe VM; median and 99th percentile in microseconds.

    bench/api_latency.py SWIFTVMM PROBE_KERNEL [N]     -> JSON on stdout

Used by bench/run.py (keys api_get_us, api_pause_resume_us). Python standard library only.
"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def request(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError(f"{method} {path}: {r.status} {data!r}")
    return data


def percentiles(samples_ns):
    us = sorted(s / 1000 for s in samples_ns)
    return {"p50": round(statistics.median(us), 1), "p99": round(us[min(len(us) - 1, int(len(us) * 0.99))], 1),
            "n": len(us)}


def measure(swiftvmm, kernel, n=1000):
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "api.sock")
        vmm = subprocess.Popen([swiftvmm, "run", "--api-sock", sock, "--kernel", kernel, "--memory", "128",
                                "--serial", "none", "--cmdline", "console=ttyS0 probe.count=0:200"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 20
            while True:  # the socket file appears at bind(), connections work after listen()
                try:
                    conn = UnixHTTPConnection(sock)
                    request(conn, "GET", "/")
                    break
                except OSError:
                    if vmm.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"swiftvmm did not serve the API: {vmm.stderr.read().decode(errors='replace')}")
                    time.sleep(0.01)
            get, pair = [], []
            for _ in range(n):
                t = time.perf_counter_ns()
                request(conn, "GET", "/")
                get.append(time.perf_counter_ns() - t)
            for _ in range(n):
                t = time.perf_counter_ns()
                request(conn, "PATCH", "/vm", '{"state": "Paused"}')
                request(conn, "PATCH", "/vm", '{"state": "Resumed"}')
                pair.append(time.perf_counter_ns() - t)
            conn.close()
            if vmm.poll() is not None:
                raise RuntimeError(f"swiftvmm exited during the run (status {vmm.returncode})")
            return {"api_get_us": percentiles(get), "api_pause_resume_us": percentiles(pair)}
        finally:
            vmm.kill()
            vmm.wait()


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000), indent=2))
