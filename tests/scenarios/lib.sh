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

# boot_l2 UUID SCRIPT LOG [MODE]: boots L2 on the mdev UUID running tests/guest/SCRIPT.sh.
# MODE says how QEMU opens the vGPU: legacy (the default: its group in a type1
# container) or iommufd (the device's vfio cdev bound to an iommufd object); the
# environment variable GVTPV_VFIO_MODE sets the default.
# The console goes to stdout tagged "[L2] " and to LOG; returns 0 if L2 said rc=0.
boot_l2() {
	uuid=$1 script=$2 log=$3 mode=${4:-${GVTPV_VFIO_MODE:-legacy}}
	accel=${GVTPV_L2_ACCEL:-kvm}
	cpu=host
	[ "$accel" = kvm ] || cpu=max
	case $mode in
	legacy) vfio_obj= vfio_dev="vfio-pci,sysfsdev=/sys/bus/mdev/devices/$uuid" ;;
	iommufd)
		vfio_obj="-object iommufd,id=iommufd0"
		vfio_dev="vfio-pci,sysfsdev=/sys/bus/mdev/devices/$uuid,iommufd=iommufd0" ;;
	*) notok "boot_l2: unknown vfio mode '$mode'"; return 1 ;;
	esac
	echo "boot_l2: $uuid, guest script $script, vfio $mode"
	timeout -s KILL "${GVTPV_L2_TIMEOUT:-240}" qemu-system-x86_64 \
		-accel "$accel" -cpu "$cpu" -m 256 -smp 1 \
		-nodefaults -nographic -no-reboot -serial stdio \
		-L /usr/share/qemu -bios qboot.rom \
		-kernel /boot/bzImage -initrd /boot/l2.cpio.gz \
		-append "console=ttyS0 panic=-1 oops=panic loglevel=7 gvtpv_script=$script" \
		$vfio_obj -device "$vfio_dev" \
		</dev/null 2>&1 | tr -d '\r' | tee "$log" | sed 's/^/[L2] /'
	grep -q "GVTPV-L2-DONE rc=0" "$log"
}

# field FILE KEY: the value after "KEY " in a debugfs file of "key value" lines.
field() { sed -n "s/^$2 //p" "$1"; }

# expect_identified DESC UUID L2LOG: the guest's GVTPV-GUEST-INFO line in L2LOG names
# the vGPU exactly as the host's debugfs info says (id, version, caps, both slices, fence
# count). Fails when either side is empty or a field is missing.
expect_identified() {
	d=$1 u=$2
	guest=$(sed -n 's/.*GVTPV-GUEST-INFO //p' "$3" | head -n 1)
	h_id=$(field "$DBG/$u/info" vgt_id)
	h_ver=$(field "$DBG/$u/info" version)
	h_caps=$(field "$DBG/$u/info" caps)
	h_ap=$(field "$DBG/$u/info" aperture)
	h_hid=$(field "$DBG/$u/info" hidden)
	h_fences=$(field "$DBG/$u/info" fences)
	h_fences=${h_fences#*+}
	want="vGPU $h_id PVINFO $h_ver caps $h_caps GGTT 4096 MiB aperture $h_ap hidden $h_hid fences $h_fences"
	echo "host: $want"
	echo "guest: $guest"
	for v in "$guest" "$h_id" "$h_ver" "$h_caps" "$h_ap" "$h_hid" "$h_fences"; do
		if [ -z "$v" ]; then
			notok "$d (an empty field: guest '$guest', host '$want')"
			return 1
		fi
	done
	case "$guest" in
	*"$want"*) ok "$d" ;;
	*) notok "$d (guest '$guest', host '$want')"; return 1 ;;
	esac
}

# slice_range UUID KEY: "BASE END" in decimal of a "KEY BASE+SIZE" debugfs info line;
# fails unless both are hex numbers and SIZE > 0.
slice_range() {
	v=$(field "$DBG/$1/info" "$2")
	case $v in
	0x*+0x*) ;;
	*) echo "$1: no '$2 BASE+SIZE' line (got '$v')" >&2; return 1 ;;
	esac
	b=$((${v%%+*})) s=$((${v#*+}))
	[ "$s" -gt 0 ] || { echo "$1: empty $2 slice" >&2; return 1; }
	echo "$b $((b + s))"
}

# slices_disjoint UUID...: every aperture and hidden slice of these vGPUs, [base,
# base+size) compared numerically with every other one: no two overlap.
slices_disjoint() {
	all=
	for u in "$@"; do
		for k in aperture hidden; do
			r=$(slice_range "$u" "$k") || return 1
			all="$all $u:$k:${r% *}:${r#* }"
		done
	done
	bad=0 i=0
	for a in $all; do
		i=$((i + 1)) j=0
		for b in $all; do
			j=$((j + 1))
			[ $j -gt $i ] || continue
			ab=${a#*:*:} ae=${ab#*:} ab=${ab%:*}
			bb=${b#*:*:} be=${bb#*:} bb=${bb%:*}
			if [ "$ab" -lt "$be" ] && [ "$bb" -lt "$ae" ]; then
				echo "overlap: ${a%:*:*} [$ab,$ae) and ${b%:*:*} [$bb,$be)" >&2
				bad=1
			fi
		done
	done
	return $bad
}

# qemu_opened PATH: a running qemu-system-x86_64 has PATH open.
qemu_opened() {
	for q_pid in $(pidof qemu-system-x86_64); do
		for q_fd in /proc/"$q_pid"/fd/*; do
			[ "$(readlink "$q_fd" 2>/dev/null)" = "$1" ] && return 0
		done
	done
	return 1
}

# boot_l2_watching UUID SCRIPT LOG MODE PATH...: boot_l2 in the background while noting
# which of the PATHs the L2 QEMU holds open (in OPENED, space-separated); returns
# boot_l2's status. The L2 console is printed when L2 is done.
boot_l2_watching() {
	w_u=$1 w_s=$2 w_log=$3 w_mode=$4
	shift 4
	boot_l2 "$w_u" "$w_s" "$w_log" "$w_mode" >"$w_log.out" 2>&1 &
	w_pid=$!
	OPENED=
	while kill -0 "$w_pid" 2>/dev/null; do
		for w_path in "$@"; do
			case " $OPENED " in *" $w_path "*) continue ;; esac
			qemu_opened "$w_path" && OPENED="$OPENED $w_path"
		done
		sleep 1
	done
	wait "$w_pid"
	w_rc=$?
	cat "$w_log.out"
	OPENED=${OPENED# }
	echo "L2 QEMU had open: ${OPENED:-none of $*}"
	return $w_rc
}

# was_open PATH: boot_l2_watching saw the L2 QEMU hold PATH.
was_open() { case " $OPENED " in *" $1 "*) return 0 ;; esac; return 1; }

# expect_guest_traps UUID: after one guest identified the vGPU, its PVINFO reads were
# trapped and counted, and nothing was refused.
expect_guest_traps() {
	cat "$DBG/$1/counters"
	reads=$(field "$DBG/$1/counters" pvinfo_read)
	check "PVINFO reads were trapped and counted ($reads)" test "${reads:-0}" -ge 1024
	expect_eq "no refused accesses" "$(field "$DBG/$1/counters" bad_access)" 0
}
