#!/usr/bin/env bash
# `make demo`: installs what is missing, builds the kernel and both modules, boots the host
# VM (L1) with the mediator, creates a vGPU, boots a guest (L2) on it, loads the guest
# driver, and prints a summary.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$GVTPV_TOP"
L2ACCEL=${GVTPV_L2_ACCEL:-kvm}

t=$(date +%s)
step "demo: host tools"
scripts/setup-host-tools.sh
step "demo: kernel (cached after the first run)"
kdir=$(scripts/build.sh | tail -n 1)
scripts/vm/images.sh "$kdir"
t_build=$(( $(date +%s) - t ))
step "demo: booting L1 (TCG) with the mediator; L2 under $L2ACCEL (log: build/logs/demo.log)"
t=$(date +%s)
ok=0
scripts/vm/run.sh "$kdir" demo "$L2ACCEL" || ok=$?
t_vm=$(( $(date +%s) - t ))
echo
echo "== gvtpv demo =="
sed -n 's/^GVTPV-SUMMARY //p' build/logs/demo.log
echo "stage times (s):     setup+kernel+modules+images $t_build, whole VM run (L1 boot to power-off) $t_vm"
grep -E 'GVTPV-CHECK not-ok' build/logs/demo.log || true
[ $ok = 0 ] && echo "result: PASS" || { echo "result: FAIL (see build/logs/demo.log)"; exit 1; }
