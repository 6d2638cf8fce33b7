#!/bin/sh
# Build the virtio libFuzzer target (swiftc -sanitize=fuzzer,address over the KVMKit and
# VirtioDevices sources) and run it. Usage: fuzz/run.sh [RUNS] [extra libFuzzer flags...]
# Default 1,000,000 executions. Findings (crash-*, timeout-*) land in .build/fuzz/.
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-1000000}
[ $# -gt 0 ] && shift
OUT=.build/fuzz
ROOT=$(pwd)
mkdir -p "$OUT/corpus"
python3 fuzz/make_seeds.py "$OUT/seeds"
cat > "$OUT/module.modulemap" <<MAP
module CKVM {
    umbrella "$ROOT/Sources/CKVM/include"
    export *
}
MAP
SAN="-sanitize=fuzzer,address"
for c in Sources/CKVM/*.c; do
    clang -c -g -O1 -fsanitize=fuzzer-no-link,address "$c" -I Sources/CKVM/include -o "$OUT/$(basename "$c" .c).o"
done
SWIFT_FLAGS="-g -O -wmo -parse-as-library -enable-testing -swift-version 5 $SAN -Xcc -fmodule-map-file=$OUT/module.modulemap -I $OUT"
# shellcheck disable=SC2046
swiftc $SWIFT_FLAGS -module-name KVMKit -emit-module -emit-module-path "$OUT/KVMKit.swiftmodule" \
    -c $(find Sources/KVMKit -name '*.swift') -o "$OUT/KVMKit.o"
# shellcheck disable=SC2046
swiftc $SWIFT_FLAGS -module-name VirtioDevices -emit-module -emit-module-path "$OUT/VirtioDevices.swiftmodule" \
    -c $(find Sources/VirtioDevices -name '*.swift') -o "$OUT/VirtioDevices.o"
swiftc $SWIFT_FLAGS -module-name VirtioFuzz fuzz/VirtioFuzz.swift "$OUT"/*.o -lz -o "$OUT/virtio-fuzz"
echo "fuzz: running $RUNS executions" >&2
"$OUT/virtio-fuzz" -runs="$RUNS" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/" "$@" "$OUT/corpus" "$OUT/seeds"
