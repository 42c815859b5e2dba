#!/usr/bin/env bash
# `make check`: installs what is missing, builds everything and runs every test:
#   cargo tests and clippy of shared-abi, rustfmt, a bounded fuzz run, both modules under
#   clippy with warnings as errors, the stack-frame check of both modules, and the VM
#   scenarios (KUnit suites of both modules run at insmod in L1 and L2; L2 on KVM inside
#   L1 unless GVTPV_L2_ACCEL=tcg). Ends with "N passed, N failed" and exits non-zero on
#   any failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$GVTPV_TOP"

SCENARIOS=(${GVTPV_SCENARIOS:-identify two-vgpus refuse legacy iommufd hostile-vfio gpu gpu-tcg})
L2ACCEL=${GVTPV_L2_ACCEL:-kvm}
passed=0 failed=0 skipped=0
R=$GVTPV_TOP/build/check
rm -rf "$R" && mkdir -p "$R"

result() { # result ok|fail NAME
	if [ "$1" = ok ]; then passed=$((passed + 1)); echo "  PASS $2"; else failed=$((failed + 1)); echo "  FAIL $2"; fi
}

step "check: host tools"
scripts/setup-host-tools.sh
step "check: kernel (cached after the first run)"
kdir=$(scripts/kernel.sh | tail -n 1)

step "check: shared-abi cargo tests"
if cargo test -p gvtpv_abi >"$R/cargo.log" 2>&1; then
	result ok "cargo test exit status"
else
	result fail "cargo test exit status (see $R/cargo.log)"; tail -n 30 "$R/cargo.log"
fi
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
	sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$R/cargo.log")
grep -q '^test result:' "$R/cargo.log" || result fail "cargo test ran"
echo "  cargo: $(grep -c '^test .* ok$' "$R/cargo.log") tests ok"

step "check: clippy and rustfmt"
if cargo clippy -p gvtpv_abi --all-targets -- -D warnings >"$R/clippy.log" 2>&1; then result ok "cargo clippy -D warnings"; else result fail "cargo clippy -D warnings"; tail -n 30 "$R/clippy.log"; fi
if make -s fmt-check >"$R/fmt.log" 2>&1; then result ok "rustfmt"; else result fail "rustfmt (run make fmt)"; head -n 30 "$R/fmt.log"; fi

step "check: bounded fuzz run of the host path (10 s)"
# A fuzz run that cannot run (no nightly, no cargo-fuzz) fails the check: fuzz.sh installs
# what it needs first.
if scripts/fuzz.sh 10 >"$R/fuzz.log" 2>&1 && runs=$(grep -o 'Done [0-9]* runs' "$R/fuzz.log" | tail -n 1) &&
	[ -n "$runs" ]; then
	result ok "fuzz host_path 10 s ($runs)"
else
	result fail "fuzz host_path did not run to completion (see $R/fuzz.log)"; tail -n 30 "$R/fuzz.log"
fi

step "check: modules"
if scripts/build.sh >/dev/null 2>"$R/modules.err"; then result ok "modules build clean under the kernel lints"; else
	result fail "modules build"; cat "$R/modules.err"
	echo "$passed passed, $failed failed"; exit 1
fi
step "check: stack frames of both modules (at most 2048 bytes each)"
if scripts/stack-check.py --limit 2048 host/gvtpv_host.ko guest/gvtpv_guest.ko >"$R/stack.log" 2>&1; then
	result ok "no stack frame above 2 KiB ($(grep -m1 -A1 'gvtpv_host.ko' "$R/stack.log" | tail -n 1 | awk '{print $1}') bytes at most in the host)"
else
	result fail "stack frames above 2 KiB"
fi
cat "$R/stack.log"
scripts/vm/images.sh "$kdir"

for s in "${SCENARIOS[@]}"; do
	acc=$L2ACCEL
	# A *-tcg scenario runs its L2 under TCG whatever the default.
	case $s in *-tcg) acc=tcg ;; esac
	step "check: scenario $s (L2 under $acc)"
	if scripts/vm/run.sh "$kdir" "$s" "$acc"; then result ok "scenario $s"; else result fail "scenario $s"; fi
	log=build/logs/$s.log
	cp "$log" "$R/" 2>/dev/null || true
	p=$(grep -c 'GVTPV-CHECK ok ' "$log" || true)
	f=$(grep -c 'GVTPV-CHECK not-ok ' "$log" || true)
	grep 'GVTPV-CHECK not-ok ' "$log" | sed 's/^/    /' || true
	echo "  $s: $p checks ok, $f not ok"
	passed=$((passed + p)); failed=$((failed + f))
done

# KUnit: a suite runs at every insmod; kunit-summary.py counts each suite once, from its
# worst run, so a case that fails in any run fails the check and passes and failures come
# from the same run.
step "check: KUnit results"
scripts/kunit-summary.py "$R"/*.log >"$R/kunit.txt"
while read -r suite p f s; do
	echo "  KUnit $suite: $p passed, $f failed, $s skipped"
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done <"$R/kunit.txt"
for want in gvtpv_host_partition gvtpv_host_cfg gvtpv_host_mmio gvtpv_host_access gvtpv_host_irq \
	gvtpv_host_region gvtpv_host_vfio_irqset gvtpv_host_guest_memory gvtpv_host_ggtt gvtpv_host_ppgtt gvtpv_host_kvm_track gvtpv_host_host_ggtt gvtpv_host_workload gvtpv_host_cmd_parser gvtpv_host_sim gvtpv_host_sched gvtpv_host_regs gvtpv_host_intr gvtpv_host_execlist gvtpv_host_store gvtpv_host_e2e gvtpv_host_vgpu gvtpv_guest_pvinfo \
	gvtpv_guest_core gvtpv_guest_csb gvtpv_guest_ggtt gvtpv_guest_ktap gvtpv_guest_ppgtt gvtpv_guest_ring; do
	grep -q "^$want " "$R/kunit.txt" || result fail "KUnit suite $want ran"
done

echo
echo "logs: $R"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
