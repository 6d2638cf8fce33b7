#!/usr/bin/env python3
"""Write well-formed seeds for fuzz/targets/NetFuzz.swift and VsockFuzz.swift into
fuzz/seeds/NetFuzz and fuzz/seeds/VsockFuzz (layouts described in each target)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MEM = 64 * 1024


class Mem:
    def __init__(self):
        self.b = bytearray(MEM)
        self.data = 0x1000

    def put(self, at, blob):
        self.b[at:at + len(blob)] = blob

    def alloc(self, blob):
        at = self.data
        self.put(at, blob)
        self.data += (len(blob) + 15) & ~15
        return at

    def desc(self, table, i, addr, length, flags, nxt=0):
        self.put(table + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def avail(self, ring, heads):
        self.put(ring, struct.pack("<HH", 0, len(heads)) + b"".join(struct.pack("<H", h) for h in heads))


def rx_buffers(m, count, size):
    for i in range(count):
        m.desc(0, i, m.alloc(bytes(size)), size, 2)
    m.avail(0x80, list(range(count)))


def tx_chains(m, packets):
    heads, d = [], 0
    for parts in packets:
        heads.append(d)
        for k, p in enumerate(parts):
            last = k == len(parts) - 1
            m.desc(0x400, d, m.alloc(p), len(p), 0 if last else 1, d + 1)
            d += 1
    m.avail(0x480, heads)


def net_seeds():
    frame = bytes(12) + bytes([0xff] * 6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x06" + bytes(46)
    out = {}
    for name, flags, mrg_size in [("mergeable", 0x07, 1526), ("single", 0x02, 1526), ("small-buffers", 0x01, 256)]:
        m = Mem()
        rx_buffers(m, 6, mrg_size)
        tx_chains(m, [[frame[:12], frame[12:]], [frame]])
        out[name] = bytes([flags, 2, 1, 20, 0x83]) + bytes(m.b[: m.data])
    return out


def vsock_hdr(op, src, dst, length=0, flags=0, buf_alloc=65536, fwd=0):
    return struct.pack("<QQIIIHHIII", 3, 2, src, dst, length, 1, op, flags, buf_alloc, fwd)


def vsock_seeds():
    out = {}
    m = Mem()
    rx_buffers(m, 6, 44 + 256)
    payload = b"hello host"
    tx_chains(m, [[vsock_hdr(1, 1000, 5)], [vsock_hdr(5, 1000, 5, len(payload)), payload],
                  [vsock_hdr(4, 1000, 5, flags=3)], [vsock_hdr(1, 1001, 6)]])
    out["connect-send-shutdown"] = bytes([3, 0b010]) + bytes(m.b[: m.data])
    m = Mem()
    rx_buffers(m, 6, 44 + 256)
    tx_chains(m, [[vsock_hdr(1, 1000, 5)], [vsock_hdr(7, 1000, 5)], [vsock_hdr(5, 1000, 5, 70000), b"x" * 16],
                  [vsock_hdr(3, 1000, 5)]])
    out["credit-request-oversize-reset"] = bytes([3, 0b1010]) + bytes(m.b[: m.data])
    return out


for target, seeds in [("NetFuzz", net_seeds()), ("VsockFuzz", vsock_seeds())]:
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    for name, blob in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(blob)
