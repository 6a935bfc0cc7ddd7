#!/bin/sh
# Pod networking benchmark: Setup/Teardown times, and TCP throughput and round-trip latency
# through the VXLAN tunnel against the bare veth underlay, in network namespaces it creates
# and deletes (root; iproute2, iptables). Prints "name value unit" lines.
#
# usage: bench/podnet/run.sh [BUILD_DIR]     (default /tmp/b-bench, RelWithDebInfo)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-/tmp/b-bench}
if [ ! -x "$build/bin/podnet-bench" ]; then
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$build" -j2 --target podnet-bench >/dev/null
fi
"$build/bin/podnet-bench" 2>&1 | grep -v "^time="
