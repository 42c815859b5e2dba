#!/usr/bin/env bash
# Runs one scenario: boots L1 (QEMU TCG, -cpu max) on build/l1.img with the gvtpv kernel;
# L1 runs tests/scenarios/NAME.sh, which may boot L2 on a vGPU.
# Usage: run.sh KDIR NAME [kvm|tcg]   (default kvm: L2 runs on KVM inside L1; tcg: L2
# under TCG inside L1, slower, no KVM handle for the vGPU)
# Prints the console to build/logs/NAME.log; exits 0 only if the scenario passed and
# neither console shows a WARN, BUG, Oops, panic or KUnit failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

KDIR=$1 NAME=$2 L2ACCEL=${3:-kvm}
B=$GVTPV_TOP/build
mkdir -p "$B/logs"
log=$B/logs/$NAME.log
timeout_s=${GVTPV_VM_TIMEOUT:-600}

# L1 runs under TCG and cannot calibrate its TSC (no invariant TSC, no CPUID frequency
# leaf on the AMD vendor, PIT calibration fails), so KVM inside it would never enter L2.
# TCG passes L0's TSC through: tell L1 its rate. Documentation/testing.rst explains it.
l0_tsc_khz() {
	local mhz
	mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9]*\.[0-9]*\) MHz.*/\1/p' | head -n 1)
	[ -n "$mhz" ] || mhz=$(journalctl -k -b 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9]*\.[0-9]*\) MHz.*/\1/p' | head -n 1)
	if [ -z "$mhz" ] && grep -qw constant_tsc /proc/cpuinfo; then
		# The boot line rotated out of the log: with a constant TSC, cpu MHz is its rate.
		mhz=$(sed -n 's/^cpu MHz[[:space:]]*: *\([0-9.]*\)/\1/p' /proc/cpuinfo | head -n 1)
		[ -n "$mhz" ] && echo "gvtpv: no 'tsc: Detected' line in the kernel log; using cpu MHz $mhz" >&2
	fi
	[ -n "$mhz" ] || return 1
	awk -v m="$mhz" 'BEGIN { printf "%d\n", m * 1000 + 0.5 }'
}
if [ -n "${GVTPV_TSC_KHZ:-}" ]; then
	tsc_khz=$GVTPV_TSC_KHZ
elif ! tsc_khz=$(l0_tsc_khz); then
	if [ "$L2ACCEL" = kvm ]; then
		die "cannot find this machine's TSC rate (no 'tsc: Detected N MHz' line in the kernel log, no constant TSC in /proc/cpuinfo)" \
			"set GVTPV_TSC_KHZ=<kHz> by hand, or run L2 under TCG: GVTPV_L2_ACCEL=tcg"
	fi
	tsc_khz=
fi
# With two L1 vCPUs, nested KVM corrupts L1 and L2 memory in most runs (a QEMU nested-SVM
# defect, Documentation/status.rst): one vCPU whenever L2 runs on KVM.
if [ "$L2ACCEL" = kvm ]; then smp=${GVTPV_L1_SMP:-1}; else smp=${GVTPV_L1_SMP:-2}; fi

set +e
timeout --foreground -k 10 "$timeout_s" qemu-system-x86_64 \
	-accel "${GVTPV_L0_ACCEL:-tcg}" -cpu max -smp "$smp" -m 3072 \
	-nodefaults -nographic -no-reboot -serial stdio \
	-L /usr/share/qemu -bios qboot.rom \
	-kernel "$KDIR/arch/x86/boot/bzImage" \
	-append "console=ttyS0 root=/dev/vda rw rootfstype=ext4 init=/init panic=-1 oops=panic gvtpv_scenario=$NAME gvtpv_l2_accel=$L2ACCEL ${tsc_khz:+tsc_early_khz=$tsc_khz} ${GVTPV_L1_APPEND:-}" \
	-drive "file=$B/l1.img,format=raw,if=virtio,snapshot=on" \
	</dev/null >"$log" 2>&1
qrc=$?
set -e
tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"

fail=()
[ $qrc = 124 ] && fail+=("timed out after ${timeout_s}s")
grep -q "^GVTPV-SCENARIO $NAME PASS" "$log" || fail+=("scenario did not report PASS")
grep -nE "WARNING:|BUG:|Oops|Kernel panic|Call Trace:|general protection" "$log" | head -n 5 | sed 's/^/  /' >"$log.bad" || true
[ -s "$log.bad" ] && fail+=("kernel warnings on a console: $(head -n 1 "$log.bad")")
grep -E '^(\[L2\] )?\s*not ok' "$log" | head -n 5 >"$log.bad" || true
[ -s "$log.bad" ] && fail+=("a KUnit case failed: $(head -n 1 "$log.bad")")
rm -f "$log.bad"
if [ ${#fail[@]} -gt 0 ]; then
	for f in "${fail[@]}"; do echo "gvtpv: scenario $NAME: $f" >&2; done
	echo "gvtpv: last lines of $log:" >&2
	tail -n 40 "$log" >&2
	exit 1
fi
exit 0
