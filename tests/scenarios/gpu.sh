#!/bin/sh
# Scenario (gpu): two vGPUs at once. L2 A loads the guest driver with selftests=1: it
# brings the GPU up and runs every live selftest (KTAP), hostile cases included; L2 B
# runs the good ones only, at the same time, and must be unaffected. Afterwards the
# host's debugfs counters are checked against what the tests did. With L2 on KVM the
# shadow PPGTT is kept in sync by write tracking, under TCG by re-validation
# (gpu-tcg.sh: L2 under TCG, guest A alone: two TCG guests in one L1 are too slow).
. /scenarios/lib.sh
T=gvtpv-V5_8
accel=${GVTPV_L2_ACCEL:-kvm}

load_host
ua=$(new_uuid) ub=
check "mdevctl start $T (A)" mdevctl start -u "$ua" -p "$PARENT" -t "$T"
if [ "$accel" = kvm ]; then
	ub=$(new_uuid)
	check "mdevctl start $T (B)" mdevctl start -u "$ub" -p "$PARENT" -t "$T"
fi

boot_l2 "$ua" gpu /tmp/l2a.log >/tmp/l2a.out &
pa=$!
if [ -n "$ub" ]; then
	boot_l2 "$ub" gpu-good /tmp/l2b.log >/tmp/l2b.out &
	pb=$!
fi
wait $pa; ra=$?
sed 's/^\[L2\] /[L2 A] /' /tmp/l2a.out
expect_eq "L2 A passed every live selftest, hostile ones included" "$ra" 0
if [ -n "$ub" ]; then
	wait $pb; rb=$?
	sed 's/^\[L2\] /[L2 B] /' /tmp/l2b.out
	expect_eq "L2 B passed the good selftests next to it" "$rb" 0
fi

for u in $ua $ub; do
	echo "== $u counters"; cat "$DBG/$u/counters"
	echo "== $u gpu"; cat "$DBG/$u/gpu"
done
g() { field "$DBG/$1/gpu" "$2"; }
c() { field "$DBG/$1/counters" "$2"; }
# ge DESC GOT MIN
ge() { if [ -n "$2" ] && [ "$2" -ge "$3" ]; then ok "$1 ($2 >= $3)"; else notok "$1 (got '$2', want >= $3)"; fi; }

# A: what its tests did.
ge "A: workloads completed (1000 tiny submissions and the rest)" "$(g "$ua" workloads_completed)" 1000
ge "A: user interrupts relayed" "$(g "$ua" user_interrupts)" 1000
ge "A: interrupts through MSI" "$(c "$ua" irq_msi)" 2000
expect_eq "A: no interrupt dropped" "$(c "$ua" irq_dropped)" 0
ge "A: a privileged LRI refused by the parser" "$(g "$ua" refused_parser_register)" 1
ge "A: a batch that starts itself refused" "$(($(g "$ua" refused_parser_too_many_batches) + $(g "$ua" workloads_hung)))" 1
ge "A: a store outside the balloon refused" "$(g "$ua" refused_parser_address)" 1
ge "A: a frame outside guest RAM faulted or was refused" "$(($(g "$ua" workloads_faulted) + $(g "$ua" ppgtt_invalid)))" 1
ge "A: a descriptor outside the vGPU refused" "$(c "$ua" elsp_refused_range)" 1
ge "A: a GGTT entry outside the balloon dropped" "$(g "$ua" ggtt_dropped)" 1
ge "A: PPGTT roots created by g2v" "$(g "$ua" g2v_create)" 10
expect_eq "A: every root destroyed" "$(g "$ua" g2v_create)" "$(g "$ua" g2v_destroy)"
expect_eq "A: not in failsafe" "$(c "$ua" failsafe)" 0
# B: good work only, unaffected.
if [ -n "$ub" ]; then
	ge "B: workloads completed" "$(g "$ub" workloads_completed)" 1000
	expect_eq "B: nothing refused" "$(g "$ub" workloads_refused)" 0
	expect_eq "B: nothing faulted" "$(g "$ub" workloads_faulted)" 0
	expect_eq "B: nothing hung" "$(g "$ub" workloads_hung)" 0
fi
# How the shadow PPGTT stayed in sync.
for u in $ua $ub; do
	# (debugfs ppgtt_sync shows the mode of the open device; after close it is
	# revalidate, so the counters of the run tell.)
	if [ "$accel" = kvm ]; then
		expect_eq "$u: KVM write tracking registered at open" "$(c "$u" kvm_track)" 1
		ge "$u: write-protect faults seen" "$(g "$u" ppgtt_wp_faults)" 1
		expect_eq "$u: no re-validation needed" "$(g "$u" ppgtt_revalidations)" 0
	else
		expect_eq "$u: no KVM write tracking without KVM" "$(c "$u" kvm_track)" 0
		expect_eq "$u: no write-protect faults" "$(g "$u" ppgtt_wp_faults)" 0
		ge "$u: re-validations done" "$(g "$u" ppgtt_revalidations)" 1000
	fi
done
# Traps per submission, over A's whole run (for Documentation/performance.rst).
subs=$(c "$ua" elsp_submit)
traps=$(($(c "$ua" mmio_read) + $(c "$ua" mmio_write)))
echo "GVTPV-PERF $accel A: $subs ELSP submissions, $traps BAR0 traps, $((traps / subs)) per submission; GGTT entry traps $(c "$ua" ggtt_window) for $(g "$ua" ggtt_writes) entries; wp faults $(g "$ua" ppgtt_wp_faults), revalidations $(g "$ua" ppgtt_revalidations)"
for f in /tmp/l2a.out /tmp/l2b.out; do
	[ -f "$f" ] && grep -h "GVTPV-SELFTEST # 1000" "$f" | sed "s/^.*# /GVTPV-PERF $accel $(basename "$f" .out): /"
done

for u in $ua $ub; do
	check "mdevctl stop $u" mdevctl stop -u "$u"
done
unload_host
exit $FAILED
