#!/usr/bin/env python3
"""Seed inputs for fuzz/targets/VirtioBlock.swift (committed in fuzz/seeds/VirtioBlock/): well-formed virtio-blk requests in the
target's default layout (queue of 8: table at 0, avail at 128, used at 152)."""
import os, struct, sys

out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/seeds"
os.makedirs(out, exist_ok=True)
N, AVAIL, USED = 8, 128, 152
W, NEXT, INDIRECT = 2, 1, 4

def image():
    return bytearray(4096)

def desc(img, i, addr, length, flags, nxt=0, table=0):
    struct.pack_into("<QIHH", img, table + 16 * i, addr, length, flags, nxt)

def publish(img, heads):
    for k, h in enumerate(heads):
        struct.pack_into("<H", img, AVAIL + 4 + 2 * k, h)
    struct.pack_into("<H", img, AVAIL + 2, len(heads))

def header(img, at, typ, sector=0):
    struct.pack_into("<IIQ", img, at, typ, 0, sector)

def chain(img, first, parts, table=0):
    for k, (addr, length, writable) in enumerate(parts):
        last = k == len(parts) - 1
        desc(img, first + k, addr, length, (W if writable else 0) | (0 if last else NEXT), first + k + 1, table)

def save(name, img, control=0x02):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([control, 0, 0, 0]) + bytes(12) + bytes(img))

img = image(); header(img, 512, 0, 1); chain(img, 0, [(512, 16, 0), (1024, 512, 1), (600, 1, 1)]); publish(img, [0])
save("read", img); save("read-eventidx", img, 0x0a)
img = image(); header(img, 512, 1, 3); chain(img, 0, [(512, 16, 0), (1024, 1024, 0), (600, 1, 1)]); publish(img, [0])
save("write", img); save("write-ro", img, 0x42)
img = image(); header(img, 512, 4); chain(img, 0, [(512, 16, 0), (600, 1, 1)])
header(img, 640, 8); chain(img, 2, [(640, 16, 0), (700, 20, 1), (601, 1, 1)]); publish(img, [0, 2])
save("flush-getid", img)
img = image(); header(img, 512, 11); struct.pack_into("<QII", img, 544, 2, 4, 0)
chain(img, 0, [(512, 16, 0), (544, 16, 0), (600, 1, 1)])
header(img, 640, 13); struct.pack_into("<QII", img, 672, 8, 8, 1)
chain(img, 3, [(640, 16, 0), (672, 16, 0), (601, 1, 1)]); publish(img, [0, 3])
save("discard-writezeroes", img)
img = image(); header(img, 512, 0, 0); chain(img, 0, [(512, 16, 0), (1024, 512, 1), (600, 1, 1)], table=2048)
desc(img, 0, 2048, 48, INDIRECT); publish(img, [0]); save("indirect-read", img)
img = image(); header(img, 512, 99); chain(img, 0, [(512, 16, 0), (600, 1, 1)]); publish(img, [0]); save("unsupported", img)
