#!/usr/bin/env bash
# Builds the VM images from the built kernel and modules:
#   build/l2.cpio.gz  the L2 guest initramfs (busybox, gvtpv_guest.ko, tests/guest/)
#   build/l1.img      the L1 host disk (busybox, QEMU and its libraries and firmware,
#                     mdevctl, gvtpv_host.ko, the L2 kernel and initramfs, tests/scenarios/)
# Usage: images.sh KDIR
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

KDIR=$1
B=$GVTPV_TOP/build
mkdir -p "$B"

# Copies a binary and the shared libraries ldd lists into root $1.
copy_with_libs() {
	local root=$1 bin=$2 lib
	install -D -m755 "$bin" "$root$bin"
	for lib in $(ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\/lib/{print $1}'); do
		[ -e "$root$lib" ] || install -D -m755 "$(readlink -f "$lib")" "$root$lib"
	done
}

busybox_root() {
	local root=$1
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,etc}
	install -m755 /bin/busybox "$root/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
	done
}

step "images: L2 initramfs"
r=$B/l2-root
rm -rf "$r"
busybox_root "$r"
install -m755 "$GVTPV_TOP/scripts/vm/l2-init" "$r/init"
install -m644 "$GVTPV_TOP/guest/gvtpv_guest.ko" "$r/gvtpv_guest.ko"
mkdir -p "$r/tests"
cp "$GVTPV_TOP"/tests/guest/*.sh "$r/tests/"
( cd "$r" && find . | cpio -o -H newc --quiet | gzip -1 ) >"$B/l2.cpio.gz"

step "images: L1 disk"
r=$B/l1-root
rm -rf "$r"
busybox_root "$r"
install -m755 "$GVTPV_TOP/scripts/vm/l1-init" "$r/init"
copy_with_libs "$r" "$(command -v qemu-system-x86_64)"
copy_with_libs "$r" "$(command -v mdevctl)"
mkdir -p "$r/usr/share/qemu" "$r/etc/mdevctl.d/scripts.d/callouts" "$r/etc/mdevctl.d/scripts.d/notifiers"
cp /usr/share/qemu/{qboot.rom,linuxboot_dma.bin,linuxboot.bin,kvmvapic.bin} /usr/share/seabios/bios-256k.bin "$r/usr/share/qemu/"
mkdir -p "$r/boot" "$r/lib/gvtpv" "$r/scenarios"
cp "$KDIR/arch/x86/boot/bzImage" "$r/boot/bzImage"
cp "$B/l2.cpio.gz" "$r/boot/l2.cpio.gz"
cp "$GVTPV_TOP/host/gvtpv_host.ko" "$r/lib/gvtpv/"
cp "$GVTPV_TOP"/tests/scenarios/*.sh "$r/scenarios/"
size=$(( $(du -sm "$r" | cut -f1) + 64 ))
rm -f "$B/l1.img"
logged "$GVTPV_LOGDIR/images.log" mkfs.ext4 -q -F -L gvtpv-l1 -d "$r" "$B/l1.img" "${size}M"
step "images: ready (L1 disk ${size} MiB)"
