#!/bin/sh
# Cross-checks libcurl's SigV4 (as lib/http drives it) against botocore: runs test_sigv4 of
# test_http with a dump of the request the loopback server received, then recomputes the
# signature with botocore. Skips (77) when botocore is not installed.
# usage: sigv4_botocore.sh path/to/test_http path/to/sigv4_check.py
set -eu
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
python3 -c 'import botocore' 2>/dev/null || { echo "botocore not installed: skipped"; exit 77; }
PP_HTTP_TEST_FILTER=test_sigv4 PP_HTTP_SIGV4_DUMP="$d/req" "$1" >"$d/out" 2>&1 || { cat "$d/out"; exit 1; }
[ -s "$d/req" ] || { echo "test_sigv4 wrote no request dump"; cat "$d/out"; exit 1; }
python3 "$2" "$d/req"
