#!/usr/bin/env bash
# Builds the VM images from the built kernel and modules:
#   build/l2.cpio.gz  the L2 guest initramfs (busybox, gvtpv_guest.ko, tests/guest/)
#   build/l1.img      the L1 host disk (busybox, QEMU and its libraries and firmware,
#                     mdevctl, gvtpv_host.ko, the L2 kernel and initramfs, tests/scenarios/,
#                     /usr/bin/hostile-vfio built from tests/vfio/)
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

# tests/vfio/hostile-vfio.c, static, against the vfio and iommufd uAPI of the kernel
# under test (newer than the libc headers here); __user stripped as headers_install does.
step "images: hostile-vfio"
command -v gcc >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/libc.a ] ||
	die "gcc and a static libc are needed for tests/vfio/hostile-vfio.c" "apt-get install gcc libc6-dev"
inc=$B/hostile-inc/linux
mkdir -p "$inc"
for h in vfio iommufd; do
	sed -E 's/([[:space:](])(__user|__force|__iomem)[[:space:]]/\1/g' \
		"$KDIR/include/uapi/linux/$h.h" >"$inc/$h.h"
done
logged "$GVTPV_LOGDIR/hostile-vfio.log" gcc -static -O2 -Wall -Wextra -Werror \
	-pthread -I"$B/hostile-inc" -o "$B/hostile-vfio" "$GVTPV_TOP/tests/vfio/hostile-vfio.c"

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
install -D -m755 "$B/hostile-vfio" "$r/usr/bin/hostile-vfio"
cp "$GVTPV_TOP"/tests/scenarios/*.sh "$r/scenarios/"
size=$(( $(du -sm "$r" | cut -f1) + 64 ))
rm -f "$B/l1.img"
logged "$GVTPV_LOGDIR/images.log" mkfs.ext4 -q -F -L gvtpv-l1 -d "$r" "$B/l1.img" "${size}M"
step "images: ready (L1 disk ${size} MiB)"
