#!/bin/sh
# Cross-checks the SigV4 signatures of the EC2 requests the aws provider really sent: runs two
# tests of test_aws_provider (static keys; temporary keys with a session token) with the fake
# dumping every signed request, then recomputes each signature with botocore's SigV4Auth, its
# clock pinned to the request's X-Amz-Date. Skips (77) when botocore is not installed
# (Debian: apt-get install python3-botocore).
# usage: sigv4_botocore.sh path/to/test_aws_provider path/to/sigv4_check.py
set -eu
python3 -c 'import botocore' 2>/dev/null || { echo "botocore not installed: skipped"; exit 77; }
d=$(mktemp -d /tmp/pp.XXXXXX)
trap 'rm -rf "$d"' EXIT
for t in test_init_and_create test_session_token; do
	PP_AWS_TEST_FILTER=$t PP_AWS_FAKE_DUMP="$d/requests" "$1" >"$d/out" 2>&1 || { cat "$d/out"; exit 1; }
done
python3 "$2" "$d/requests"
