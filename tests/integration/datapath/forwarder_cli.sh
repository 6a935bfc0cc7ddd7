#!/bin/sh
# agent-protocol-forwarder's command line and start-up failures, as an operator meets them:
# -version, -h, an unknown flag (exit 2 as Go's flag package), a missing config file (exit 1,
# systemd retries), a config without server certificate, a corrupt tls-client-ca,
# a missing -ca-cert-file, -tls-skip-verify together with a client CA, a bad -listen address;
# and the libraries it links.
# usage: forwarder_cli.sh FORWARDER_BINARY
set -u
fwd=$1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*"; [ -f "$d/err" ] && cat "$d/err"; exit 1; }

# expect STATUS PATTERN args...: exit status and a line of output matching PATTERN
expect() {
	want=$1; pat=$2; shift 2
	"$fwd" "$@" >"$d/err" 2>&1 </dev/null
	got=$?
	[ "$got" -eq "$want" ] || fail "$* exited $got, want $want"
	grep -q -- "$pat" "$d/err" || fail "$*: no line matching '$pat'"
}

expect 0 'agent-protocol-forwarder version ' -version
expect 0 '-kata-agent-socket string' -h
expect 2 'flag provided but not defined: -nope' -nope
expect 2 'flag needs an argument: -listen' -listen
expect 1 "no such file\|No such file" -config "$d/missing.json"

printf '{"pod-network":{},"pod-namespace":"/run/netns/podns","unknown-key":1}' >"$d/plain.json"
expect 1 'no server certificate' -config "$d/plain.json" -listen 127.0.0.1:0
expect 1 'listen address' -config "$d/plain.json" -disable-tls -listen 'nope'

printf '{"pod-network":{},"tls-client-ca":"garbage"}' >"$d/badca.json"
expect 1 'tls-client-ca' -config "$d/badca.json" -listen 127.0.0.1:0

expect 1 'nonexistent.crt' -config "$d/plain.json" -ca-cert-file "$d/nonexistent.crt" -listen 127.0.0.1:0

if command -v openssl >/dev/null 2>&1; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /O=test \
		-keyout "$d/ca.key" -out "$d/ca.crt" -days 1 >/dev/null 2>&1 || fail "openssl req"
	expect 1 'together with -tls-skip-verify' -config "$d/plain.json" -ca-cert-file "$d/ca.crt" \
		-tls-skip-verify -listen 127.0.0.1:0
fi
# DESIGN idea 5: the forwarder links few libraries (libc, OpenSSL, jansson, protobuf-c, and
# libnl for the pod network; no libcurl, sqlite, libxml2, libyaml)
if command -v ldd >/dev/null 2>&1; then
	ldd "$fwd" >"$d/err" 2>&1 || fail "ldd"
	if grep -E 'libcurl|libsqlite|libxml2|libyaml' "$d/err"; then fail "forwarder links too much"; fi
fi
echo ok
