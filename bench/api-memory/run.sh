#!/bin/sh
# Build bench/api-memory/main.swift statically (release, -static-stdlib) against KVMKit
# and the API sources only, and run it: prints the resident memory the control API adds.
set -eu
cd "$(dirname "$0")/../.."
OUT=.build/api-memory
ROOT=$(pwd)
mkdir -p "$OUT"
cat > "$OUT/module.modulemap" <<MAP
module CKVM {
    umbrella "$ROOT/Sources/CKVM/include"
    export *
}
MAP
for c in Sources/CKVM/*.c; do clang -c -O2 "$c" -I Sources/CKVM/include -o "$OUT/$(basename "$c" .c).o"; done
FLAGS="-O -wmo -swift-version 5 -Xcc -fmodule-map-file=$OUT/module.modulemap -I $OUT"
# shellcheck disable=SC2046
swiftc $FLAGS -parse-as-library -module-name KVMKit -emit-module -emit-module-path "$OUT/KVMKit.swiftmodule" \
    -c $(find Sources/KVMKit -name '*.swift') -o "$OUT/KVMKit.o"
# shellcheck disable=SC2046
swiftc $FLAGS -static-stdlib -module-name main bench/api-memory/main.swift Sources/VMMCore/VMState.swift \
    $(find Sources/VMMCore/API -name '*.swift' ! -name 'APIController.swift' ! -name 'APIClient.swift') \
    "$OUT"/*.o -o "$OUT/api-memory"
"$OUT/api-memory"
