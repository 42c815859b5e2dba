#!/usr/bin/env bash
# Runs one scenario: boots L1 (QEMU TCG, -cpu max) on build/l1.img with the gvtpv kernel;
# L1 runs tests/scenarios/NAME.sh, which may boot L2 on a vGPU.
# Usage: run.sh KDIR NAME [tcg]   (tcg: run L2 under TCG instead of KVM inside L1)
# Prints the console to build/logs/NAME.log; exits 0 only if the scenario passed and
# neither console shows a WARN, BUG, Oops, panic or KUnit failure.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

KDIR=$1 NAME=$2 L2ACCEL=${3:-kvm}
B=$GVTPV_TOP/build
mkdir -p "$B/logs"
log=$B/logs/$NAME.log
timeout_s=${GVTPV_VM_TIMEOUT:-600}

set +e
timeout --foreground -k 10 "$timeout_s" qemu-system-x86_64 \
	-accel "${GVTPV_L0_ACCEL:-tcg}" -cpu max -smp ${GVTPV_L1_SMP:-2} -m 3072 \
	-nodefaults -nographic -no-reboot -serial stdio \
	-L /usr/share/qemu -bios qboot.rom \
	-kernel "$KDIR/arch/x86/boot/bzImage" \
	-append "console=ttyS0 root=/dev/vda rw rootfstype=ext4 init=/init panic=-1 oops=panic gvtpv_scenario=$NAME gvtpv_l2_accel=$L2ACCEL ${GVTPV_L1_APPEND:-}" \
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
