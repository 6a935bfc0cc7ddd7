#!/usr/bin/env bash
# Builds the minimal pod VM that the libvirt tests and demo boot: a Debian kernel as an
# uncompressed vmlinux (QEMU boots it through PVH, skipping the XZ decompression that costs
# ~3.5 s under TCG) and an initramfs with busybox-static, the project's process-user-data,
# agent-protocol-forwarder and mock-agent, the shared libraries they need (from ldd) and the
# kernel modules for the CD and the NIC. See docs/podvm.md.
#
#   podvm/build.sh --bin-dir DIR [--out DIR] [--quiet]
#     --bin-dir DIR   where the three programs are (a build's bin/)
#     --out DIR       output and cache directory (default: DIR/../podvm, i.e. <build>/podvm)
#   env PODVM_KERNEL_PKG=linux-image-6.1.0-NN-amd64 pins the kernel package (default: what
#   linux-image-amd64 depends on).
#
# Output (in --out): vmlinux, initramfs.cpio.gz, cmdline (the kernel command line to boot with),
# kernel.version. On stdout, the last lines are KEY=VALUE: PODVM_KERNEL, PODVM_INITRD,
# PODVM_CMDLINE, PODVM_BUILT (1 when the initramfs was rebuilt, 0 when the cache was used).
#
# One idea: each output has a stamp holding the hash of everything it is made from (this
# script, /init, the programs, their libraries, busybox, the kernel package name). When the stamp
# matches, nothing is done, so a rebuild with nothing changed takes well under a second; the
# initramfs is byte-for-byte reproducible (sorted cpio, fixed times and owners, gzip -n).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin_dir= out= quiet=
while [ $# -gt 0 ]; do
	case "$1" in
	--bin-dir) bin_dir=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--quiet) quiet=1; shift ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "podvm/build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
[ -n "$bin_dir" ] || { echo "podvm/build.sh: --bin-dir DIR is required" >&2; exit 2; }
bin_dir=$(cd "$bin_dir" && pwd)
out=${out:-$(dirname "$bin_dir")/podvm}
mkdir -p "$out"
out=$(cd "$out" && pwd)

PROGRAMS=(process-user-data agent-protocol-forwarder mock-agent)
# What the domain the libvirt provider defines needs (q35: AHCI for the SATA CD and disk, a
# virtio NIC), plus IDE and virtio-scsi/blk so other machine types and CD buses boot too (no
# e1000: the provider's NIC is always virtio, and every MiB of initramfs costs ~0.1 s under TCG).
# Their dependencies are added from the modules' own `depends=`.
MODULES=(virtio_pci virtio_net virtio_blk virtio_scsi ata_piix ahci sr_mod isofs)
CMDLINE="console=ttyS0 panic=-1 quiet cryptomgr.notests"
BUSYBOX=/bin/busybox

log() { [ -n "$quiet" ] || echo "podvm: $*" >&2; }
die() { echo "podvm/build.sh: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
t_start=$(now_ms)

for p in "${PROGRAMS[@]}"; do
	[ -x "$bin_dir/$p" ] || die "$bin_dir/$p is missing: build the project first (cmake --build)"
done
[ -x "$BUSYBOX" ] && "$BUSYBOX" --list | grep -x udhcpc >/dev/null ||
	die "$BUSYBOX is missing or not busybox-static: apt-get install busybox-static"
for t in cpio gzip xz readelf dpkg-deb apt-get; do
	command -v "$t" >/dev/null || die "$t is missing (apt-get install cpio xz-utils binutils)"
done

# ------------------------------------------------------------------ kernel
kernel_pkg() {
	local p=${PODVM_KERNEL_PKG:-}
	if [ -z "$p" ] && [ -s "$out/kernel.pkg" ] && [ "$out/kernel.pkg" -nt /var/lib/apt/lists ]; then
		p=$(cat "$out/kernel.pkg")           # apt's lists did not change since we asked
	fi
	if [ -z "$p" ]; then
		p=$(apt-cache depends --important linux-image-amd64 2>/dev/null |
		    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	fi
	if [ -z "$p" ] && [ -s "$out/kernel.pkg" ]; then
		p=$(cat "$out/kernel.pkg")           # no apt lists: keep the kernel we have
	fi
	if [ -z "$p" ]; then
		log "apt-get update (to find the kernel package)"
		apt-get update -qq >&2
		p=$(apt-cache depends --important linux-image-amd64 2>/dev/null |
		    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	fi
	[ -n "$p" ] || die "cannot find the kernel package (apt-cache depends linux-image-amd64)"
	echo "$p"
}

# The uncompressed ELF inside a bzImage: the XZ stream at the first offset that decompresses
# to an ELF file (what the kernel's scripts/extract-vmlinux does).
extract_vmlinux() {
	local bz=$1 dst=$2 off
	for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | cut -d: -f1); do
		tail -c +$((off + 1)) "$bz" | xz -dc >"$dst.tmp" 2>/dev/null || true
		if readelf -h "$dst.tmp" >/dev/null 2>&1; then
			mv "$dst.tmp" "$dst"
			return 0
		fi
	done
	rm -f "$dst.tmp"
	return 1
}

# Copies the wanted modules and everything they depend on from tree $1 (a lib/modules/KVER)
# to $2 (same layout).
copy_modules() {
	local src=$1 dst=$2 queue=("${MODULES[@]}") seen=" " m f dep
	while [ ${#queue[@]} -gt 0 ]; do
		m=${queue[0]}
		queue=("${queue[@]:1}")
		case "$seen" in *" $m "*) continue ;; esac
		seen="$seen$m "
		f=$(find "$src/kernel" -name "$m.ko" -o -name "${m//_/-}.ko" | head -n 1)
		if [ -z "$f" ]; then
			grep -q "/$m.ko\$" "$src/modules.builtin" 2>/dev/null && continue   # built in
			die "kernel module $m not found in $src"
		fi
		mkdir -p "$dst/$(dirname "${f#"$src"/}")"
		cp "$f" "$dst/${f#"$src"/}"
		for dep in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr ',' ' '); do
			queue+=("$dep")
		done
	done
	cp "$src/modules.builtin" "$dst/" 2>/dev/null || true
}

kernel_build() {
	local pkg=$1 work
	if [ -s "$out/vmlinux" ] && [ -d "$out/modules" ] && [ "$(cat "$out/kernel.pkg" 2>/dev/null)" = "$pkg" ]; then
		return 0
	fi
	log "kernel: fetching $pkg (apt-get download, unpacked with dpkg -x, not installed)"
	work=$(mktemp -d "$out/kernel.XXXXXX")
	(cd "$work" && apt-get download "$pkg" >/dev/null 2>"$work/apt.log") ||
		{ cat "$work/apt.log" >&2; rm -rf "$work"; die "apt-get download $pkg failed"; }
	dpkg -x "$work"/*.deb "$work/x"
	local kver
	kver=$(ls "$work/x/lib/modules" | head -n 1)
	[ -n "$kver" ] && [ -f "$work/x/boot/vmlinuz-$kver" ] || { rm -rf "$work"; die "$pkg has no vmlinuz"; }
	extract_vmlinux "$work/x/boot/vmlinuz-$kver" "$work/vmlinux" ||
		{ rm -rf "$work"; die "no XZ-compressed ELF kernel inside vmlinuz-$kver"; }
	readelf -n "$work/vmlinux" | grep 'Xen.*0x00000008' >/dev/null ||
		log "warning: $pkg's vmlinux has no PVH entry note; QEMU may not boot it directly"
	rm -rf "$out/modules"
	copy_modules "$work/x/lib/modules/$kver" "$work/modules/$kver"
	mv "$work/modules" "$out/modules"
	mv "$work/vmlinux" "$out/vmlinux"
	echo "$kver" >"$out/kernel.version"
	echo "$pkg" >"$out/kernel.pkg"
	rm -rf "$work"
	log "kernel: $kver ($(du -k "$out/vmlinux" | cut -f1) KiB vmlinux, $(find "$out/modules" -name '*.ko' | wc -l) modules)"
}

# ------------------------------------------------------------------ initramfs

# Every shared library a program loads (ldd), resolved to the file.
libs_of() {
	ldd "$@" | awk '/=>/ && $3 ~ /^\// { print $3 } !/=>/ && $1 ~ /^\/.*[^:]$/ { print $1 }' | sort -u
}

inputs_hash() {
	{
		echo "kernel=$(cat "$out/kernel.pkg")"
		echo "cmdline=$CMDLINE modules=${MODULES[*]}"
		sha256sum "$here/build.sh" "$here/init" "$here/udhcpc.script" "$BUSYBOX"
		for p in "${PROGRAMS[@]}"; do sha256sum "$bin_dir/$p"; done
		# shellcheck disable=SC2046
		sha256sum $(libs_of "${PROGRAMS[@]/#/$bin_dir/}")
	} | sha256sum | cut -d' ' -f1
}

initramfs_build() {
	local root=$1 kver p f
	kver=$(cat "$out/kernel.version")
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,media,var,root,lib/modules}
	cp "$BUSYBOX" "$root/bin/busybox"
	for p in $("$BUSYBOX" --list); do
		[ -e "$root/bin/$p" ] || ln -s busybox "$root/bin/$p"
	done
	install -m 0755 "$here/init" "$root/init"
	install -m 0755 "$here/udhcpc.script" "$root/etc/udhcpc.script"
	for p in "${PROGRAMS[@]}"; do
		cp "$bin_dir/$p" "$root/usr/bin/$p"
		strip --strip-debug "$root/usr/bin/$p" 2>/dev/null || true
	done
	for f in $(libs_of "${PROGRAMS[@]/#/$bin_dir/}"); do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
	done
	cp -a "$out/modules/$kver" "$root/lib/modules/$kver"
	"$BUSYBOX" depmod -b "$root" "$kver"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\n' >"$root/etc/group"
	printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
	: >"$root/etc/resolv.conf"
	echo "$CMDLINE" >"$root/etc/podvm.cmdline"
	# reproducible archive: sorted names, fixed owner and times, no gzip name/time
	find "$root" -exec touch -h -d @0 {} +
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -n -6 >"$out/initramfs.cpio.gz.tmp"
	mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
}

pkg=$(kernel_pkg)
kernel_build "$pkg"
hash=$(inputs_hash)
built=0
if [ ! -s "$out/initramfs.cpio.gz" ] || [ "$(cat "$out/initramfs.stamp" 2>/dev/null)" != "$hash" ]; then
	stage=$(mktemp -d "$out/root.XXXXXX")
	trap 'rm -rf "$stage"' EXIT
	initramfs_build "$stage"
	rm -rf "$stage"
	trap - EXIT
	echo "$hash" >"$out/initramfs.stamp"
	built=1
	log "initramfs: $(du -k "$out/initramfs.cpio.gz" | cut -f1) KiB ($(cat "$out/kernel.version"), $((${#PROGRAMS[@]})) programs from $bin_dir)"
else
	log "initramfs: up to date"
fi
echo "$CMDLINE" >"$out/cmdline"
log "done in $(( $(now_ms) - t_start )) ms"
echo "PODVM_KERNEL=$out/vmlinux"
echo "PODVM_INITRD=$out/initramfs.cpio.gz"
echo "PODVM_CMDLINE=$CMDLINE"
echo "PODVM_BUILT=$built"
