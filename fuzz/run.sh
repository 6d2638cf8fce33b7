#!/bin/bash
# Build every libFuzzer target in fuzz/targets/ (a Swift file exporting
# LLVMFuzzerTestOneInput) against the KVMKit, VirtioDevices and VMMCore sources
# (swiftc -sanitize=fuzzer,address), then run each from its committed seeds.
#
#   fuzz/run.sh [RUNS] [SECONDS] [TARGET...]
#     RUNS     executions per target (default 1,000,000)
#     SECONDS  time bound per target (libFuzzer -max_total_time; default 60; 0 = none)
#     TARGET   only these targets (file names without .swift); default all
#
# Seeds: fuzz/seeds/<Target>/. The corpus grows in .build/fuzz/corpus/<Target>/.
# A target's extra libFuzzer flags: a "// libfuzzer: FLAGS" line in its source.
# Prints one line per target with its executions; findings (crash-*, timeout-*, oom-*)
# land in .build/fuzz/findings/<Target>/ and make the script exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-1000000}
SECONDS_PER_TARGET=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
OUT=.build/fuzz
ROOT=$(pwd)
mkdir -p "$OUT/obj"

cat > "$OUT/module.modulemap.new" <<MAP
module CKVM {
    umbrella "$ROOT/Sources/CKVM/include"
    export *
}
MAP
cmp -s "$OUT/module.modulemap.new" "$OUT/module.modulemap" 2>/dev/null || mv "$OUT/module.modulemap.new" "$OUT/module.modulemap"
rm -f "$OUT/module.modulemap.new"

SAN="-sanitize=fuzzer,address"
SWIFT_FLAGS="-g -O -wmo -parse-as-library -enable-testing -swift-version 5 $SAN -Xcc -fmodule-map-file=$OUT/module.modulemap -I $OUT/obj"

# Rebuild a module only when one of its inputs is newer than its object.
stale() { # object, inputs...
    local obj=$1; shift
    [ ! -e "$obj" ] && return 0
    [ -n "$(find "$@" -newer "$obj" -print -quit)" ]
}
for c in Sources/CKVM/*.c; do
    o="$OUT/obj/$(basename "$c" .c).c.o"
    if stale "$o" "$c" Sources/CKVM/include; then
        clang -c -g -O1 -fsanitize=fuzzer-no-link,address "$c" -I Sources/CKVM/include -o "$o"
    fi
done
built=""
for m in KVMKit VirtioDevices VMMCore; do
    # A module is rebuilt when its sources or a module it imports changed.
    if stale "$OUT/obj/$m.o" "Sources/$m" Sources/CKVM $built; then
        echo "fuzz: building $m" >&2
        # shellcheck disable=SC2046
        swiftc $SWIFT_FLAGS -module-name "$m" -emit-module -emit-module-path "$OUT/obj/$m.swiftmodule" \
            -c $(find "Sources/$m" -name '*.swift' | sort) -o "$OUT/obj/$m.o"
    fi
    built="$built $OUT/obj/$m.o"
done

if [ $# -gt 0 ]; then targets=("$@"); else targets=(); for f in fuzz/targets/*.swift; do targets+=("$(basename "$f" .swift)"); done; fi
failed=0
for t in "${targets[@]}"; do
    src=fuzz/targets/$t.swift
    [ -f "$src" ] || { echo "fuzz: no target $src" >&2; exit 2; }
    bin=$OUT/bin/$t
    rm -rf "$OUT/findings/$t"
    mkdir -p "$OUT/bin" "$OUT/corpus/$t" "$OUT/findings/$t" "fuzz/seeds/$t"
    if stale "$bin" "$src" $built "$OUT"/obj/*.c.o; then
        # -lz: qcow2's compressed clusters (ckvm_inflate.c). ld.gold lists every ASan
        # helper it cannot export: noise, not a problem.
        if ! swiftc $SWIFT_FLAGS -module-name "Fuzz$t" "$src" $built "$OUT"/obj/*.c.o -lz -o "$bin" 2>&1 \
            | { grep -v "Cannot export local symbol" || true; } >&2; then
            echo "fuzz: $t does not build" >&2
            exit 2
        fi
    fi
    # shellcheck disable=SC2207
    extra=($(sed -n 's|^// libfuzzer: ||p' "$src"))
    log=$OUT/$t.log
    set +e
    "$bin" -runs="$RUNS" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$OUT/findings/$t/" "${extra[@]}" "$OUT/corpus/$t" "fuzz/seeds/$t" > "$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    if [ $rc -ne 0 ] || ls "$OUT/findings/$t/" | grep -q .; then
        echo "fuzz: $t: FINDING after ${execs:-?} executions (exit $rc); see $log and $OUT/findings/$t/"
        grep -m3 -E "ERROR|Fatal|fatal error|deadly signal" "$log" || tail -5 "$log"
        failed=1
    else
        echo "fuzz: $t: ${execs:-?} executions in ${secs:-?} s, no finding"
    fi
done
exit $failed
