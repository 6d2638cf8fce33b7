#!/bin/sh
# Run firecracker_python_client.py in private mount and network namespaces (root only):
# the client's fixed paths are scratch space (/usr/local/bin/firecracker is a link to
# swiftvmm, /var/lib an empty tmpfs holding its data_path /var/lib/firecracker), and the tap
# and nftables rules it makes live in a network of its own with a default route of its own.
# Nothing on the host is touched. Usage: run-firecracker-python.sh PYTHON SWIFTVMM PROBE_KERNEL DISK
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec unshare --mount --net --propagation private sh -euc '
    python=$1 swiftvmm=$2 kernel=$3 disk=$4 here=$5
    bin=$(mktemp -d)
    ln -s "$swiftvmm" "$bin/firecracker"
    mount --bind "$bin" /usr/local/bin
    mount -t tmpfs tmpfs /var/lib
    mkdir -p /var/lib/firecracker
    ip link set lo up
    ip link add uplink0 type veth peer name uplink1   # (no dummy module on every kernel)
    ip addr add 10.213.0.1/24 dev uplink0
    ip link set uplink0 up
    ip route add default dev uplink0
    exec "$python" "$here/firecracker_python_client.py" "$kernel" "$disk"
' sh "$1" "$2" "$3" "$4" "$here"
