#!/bin/sh
# Helpers for scenarios that run in L1 (the host VM). Source it.
# Each check prints one "GVTPV-CHECK ok|not-ok DESCRIPTION" line; the L0 runner counts them.

FAILED=0
PARENT=gvtpv
DBG=/sys/kernel/debug/gvtpv_host

ok() { echo "GVTPV-CHECK ok $*"; }
notok() { echo "GVTPV-CHECK not-ok $*"; FAILED=1; }

# check DESC CMD...: passes if CMD exits 0.
check() {
	d=$1; shift
	if "$@"; then ok "$d"; else notok "$d (command: $*)"; fi
}

# expect_eq DESC GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else notok "$1 (got '$2', want '$3')"; fi
}

# available TYPE: available_instances of an mdev type.
available() {
	cat "/sys/class/mdev_bus/$PARENT/mdev_supported_types/$1/available_instances"
}

new_uuid() { cat /proc/sys/kernel/random/uuid; }

load_host() {
	check "insmod gvtpv_host.ko" insmod /lib/gvtpv/gvtpv_host.ko
	check "mdev parent $PARENT registered" test -d "/sys/class/mdev_bus/$PARENT"
}

unload_host() {
	check "rmmod gvtpv_host" rmmod gvtpv_host
	check "mdev parent gone after rmmod" test ! -e "/sys/class/mdev_bus/$PARENT"
}

# boot_l2 UUID SCRIPT LOG: boots L2 on the mdev UUID running tests/guest/SCRIPT.sh.
# The console goes to stdout tagged "[L2] " and to LOG; returns 0 if L2 said rc=0.
boot_l2() {
	uuid=$1 script=$2 log=$3
	accel=${GVTPV_L2_ACCEL:-kvm}
	cpu=host
	[ "$accel" = kvm ] || cpu=max
	timeout -s KILL "${GVTPV_L2_TIMEOUT:-240}" qemu-system-x86_64 \
		-accel "$accel" -cpu "$cpu" -m 256 -smp 1 \
		-nodefaults -nographic -no-reboot -serial stdio \
		-L /usr/share/qemu -bios qboot.rom \
		-kernel /boot/bzImage -initrd /boot/l2.cpio.gz \
		-append "console=ttyS0 panic=-1 oops=panic loglevel=7 gvtpv_script=$script" \
		-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$uuid" \
		</dev/null 2>&1 | tr -d '\r' | tee "$log" | sed 's/^/[L2] /'
	grep -q "GVTPV-L2-DONE rc=0" "$log"
}

# field FILE KEY: the value after "KEY " in a debugfs file of "key value" lines.
field() { sed -n "s/^$2 //p" "$1"; }
