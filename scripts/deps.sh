#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and the demo need. Idempotent: asks apt
# only for what is missing, and runs `apt-get update` only when something is.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  protobuf-c-compiler libprotobuf-c-dev
  libssl-dev libjansson-dev libcurl4-openssl-dev libxml2-dev libsqlite3-dev
  zlib1g-dev libyaml-dev libcmocka-dev
  sqlite3 iproute2 procps python3
  libvirt-dev libvirt-clients libisofs-dev genisoimage
  libnl-3-dev libnl-route-3-dev iptables iputils-ping
  python3-botocore libmicrohttpd-dev python3-yaml
  qemu-system-x86 qemu-utils libvirt-daemon-system dnsmasq-base busybox-static cpio xz-utils
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
