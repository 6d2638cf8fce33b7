#!/bin/sh
# Seeds for fuzz/targets/Qcow2Fuzz.swift: small qcow2 images qemu-img makes (v2 and v3,
# several cluster sizes, data, zero and compressed clusters, a backing name, lazy
# refcounts). Usage: fuzz/make_qcow2_seeds.sh DIR (the committed seeds: fuzz/seeds/Qcow2Fuzz).
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
for cs in 512 4096; do
    for compat in 0.10 1.1; do
        f=$tmp/c$cs-$compat.qcow2
        qemu-img create -q -f qcow2 -o cluster_size=$cs,compat=$compat "$f" 1M
        qemu-io -f qcow2 -c "write -P 0x5a 0 4k" -c "write -P 0xa5 512k 1k" "$f" >/dev/null
        [ $compat = 1.1 ] && qemu-io -f qcow2 -c "write -z 64k 64k" "$f" >/dev/null
        cp "$f" "$out/c$cs-v$compat.qcow2"
    done
done
qemu-img create -q -f qcow2 -o cluster_size=512 "$tmp/base.qcow2" 1M
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 "$tmp/overlay.qcow2" 1M
cp "$tmp/overlay.qcow2" "$out/overlay.qcow2"
qemu-img create -q -f qcow2 -o cluster_size=512,lazy_refcounts=on "$out/lazy.qcow2" 256k
head -c 65536 /dev/zero | tr '\0' 'a' > "$tmp/a.raw"
qemu-img convert -c -f raw -O qcow2 -o cluster_size=4096 "$tmp/a.raw" "$out/compressed.qcow2"
ls -l "$out"
