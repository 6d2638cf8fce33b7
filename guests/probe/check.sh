#!/bin/sh
# Boot the probe kernel on this host with the C floor VMM (bzImage, 64-bit boot protocol)
# and with QEMU microvm (probe.elf through PVH, virtio-blk/rng/console); fail unless every
# run prints PROBE DONE with fail=0.   Usage: guests/probe/check.sh
set -eu
cd "$(dirname "$0")/../.."
make -s -C guests probe
make -s -C bench/floor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
crc32() { gzip -c | tail -c8 | od -An -tx4 -N4 | tr -d ' \n'; }  # gzip's trailer holds the CRC32
# The probe's cmdline test wants the CRC32 of the line before its probe.cmdline_crc32= token.
with_crc() { printf '%s probe.cmdline_crc32=%s' "$1" "$(printf '%s' "$1" | crc32)"; }

head -c 50000 /dev/urandom > "$tmp/initrd"
icrc=$(crc32 < "$tmp/initrd")
truncate -s 8M "$tmp/disk.img"
head -c 65536 /dev/urandom | dd of="$tmp/disk.img" conv=notrunc status=none
bcrc=$(head -c 65536 "$tmp/disk.img" | crc32)

status=0
check() { # name, log
	if grep -q "^PROBE DONE pass=[0-9]* fail=0" "$2"; then echo "ok   $1"; else echo "FAIL $1"; cat "$2"; status=1; fi
}

timeout 20 bench/floor/out/floor guests/out/probe.bzImage \
	"$(with_crc "console=ttyS0 probe.run=all probe.initrd_crc32=$icrc")" 128 "$tmp/initrd" > "$tmp/floor.log" 2>&1 || true
check "floor: probe.bzImage probe.run=all" "$tmp/floor.log"

if command -v qemu-system-x86_64 > /dev/null && [ -w /dev/kvm ]; then
	timeout 30 qemu-system-x86_64 -M microvm,acpi=off -accel kvm -m 128 -nodefaults -no-user-config \
		-nographic -no-reboot -serial stdio -kernel guests/out/probe.elf -initrd "$tmp/initrd" \
		-append "$(with_crc "console=ttyS0 probe.run=serial,e820,initrd,cmdline,virtio,blk,rng,console probe.initrd_crc32=$icrc probe.blk_crc32=$bcrc")" \
		-global virtio-mmio.force-legacy=false \
		-drive id=d0,file="$tmp/disk.img",format=raw,if=none -device virtio-blk-device,drive=d0 \
		-device virtio-rng-device -device virtio-serial-device -device virtconsole,chardev=c0 \
		-chardev file,id=c0,path="$tmp/vcons.out" < /dev/null > "$tmp/qemu.log" 2>&1 || true
	check "qemu microvm: probe.elf (PVH) with virtio devices" "$tmp/qemu.log"
fi
exit $status
