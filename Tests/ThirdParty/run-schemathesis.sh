#!/bin/sh
# Property-based test of the control API against docs/api.json: schemathesis (PyPI)
# generates requests from the document, valid and not, and checks every answer: no 5xx,
# status codes and bodies as documented. swiftvmm serves a Unix socket; socat bridges a
# loopback TCP port to it (schemathesis speaks TCP only).
# Usage: run-schemathesis.sh SCHEMATHESIS SWIFTVMM SECONDS
set -eu
st=$1 swiftvmm=$2 seconds=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'kill $vmm $bridge 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir"   # files the run makes (schemathesis's cache) stay in the scratch directory
"$swiftvmm" --api-sock "$dir/api.sock" --id schemathesis >"$dir/vmm.log" 2>&1 </dev/null &
vmm=$!
i=0
while [ ! -S "$dir/api.sock" ]; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "no API socket"; cat "$dir/vmm.log"; exit 1; }
    sleep 0.05
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$dir/api.sock" &
bridge=$!
sleep 0.3
status=0
"$st" run "$root/docs/api.json" --url "http://127.0.0.1:$port" -w 1 --max-time "$seconds" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --no-color || status=$?
kill -0 $vmm 2>/dev/null || { echo "swiftvmm died during the run:"; cat "$dir/vmm.log"; exit 1; }
echo "swiftvmm still serving after the run"
exit $status
