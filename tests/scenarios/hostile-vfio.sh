#!/bin/sh
# Scenario: a hostile vfio client (tests/vfio/hostile-vfio.c) opens one vGPU as QEMU
# would, through a type1 container and then through iommufd, and sends each time 200000
# random and edge-case operations (about 3 s under TCG): region accesses anywhere, every
# vfio device ioctl with good and bad arguments, config-space, PVINFO and g2v_notify
# sequences, DMA map and unmap, re-opens. The kernel must stay healthy (the L0 runner
# fails the scenario on any WARNING, lockdep's included, BUG or Oops), the device must
# still answer sanely, and a guest booted on the same vGPU afterwards must identify it;
# while that guest's QEMU holds the vGPU, the client must not get in by either path.
. /scenarios/lib.sh
T=gvtpv-V5_8
# L1 kernel arguments (GVTPV_L1_APPEND on L0) override the count and fix the seed to
# replay a run: gvtpv_hostile_ops=N gvtpv_hostile_seed=S (the client prints its seed).
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
OPS=$(arg gvtpv_hostile_ops)
OPS=${OPS:-200000}
SEED=$(arg gvtpv_hostile_seed)

load_host
u=$(new_uuid)
check "mdevctl start $T" mdevctl start -u "$u" -p "$PARENT" -t "$T"
for mode in legacy iommufd; do
	t0=$(date +%s)
	# -j: a second thread makes the host pin the upper buffers while the run unmaps them.
	timeout -s KILL 150 hostile-vfio -j -n "$OPS" ${SEED:+-s "$SEED"} "$mode" "$u" >"/tmp/hostile-$mode.out" 2>&1
	rc=$?
	t=$(($(date +%s) - t0))
	sed "s/^/[$mode] /" "/tmp/hostile-$mode.out"
	grep '^hostile client: [0-9]* operations$' "/tmp/hostile-$mode.out"
	n=$(sed -n 's/^hostile client: \([0-9]*\) operations$/\1/p' "/tmp/hostile-$mode.out")
	expect_eq "hostile client ($mode) ran to the end and found the device healthy" "$rc" 0
	check "hostile client ($mode): re-open powers the vGPU on" \
		grep -q '^lifecycle self-test: ok' "/tmp/hostile-$mode.out"
	check "hostile client ($mode): the host reaches and lets go of its DMA memory" \
		grep -q '^probe self-test: ok' "/tmp/hostile-$mode.out"
	racing=$(sed -n 's/^  racing host probes (second thread): \([0-9]*\) ok.*/\1/p' "/tmp/hostile-$mode.out")
	check "hostile client ($mode): host pins raced the unmaps (${racing:-0} probes succeeded)" \
		test "${racing:-0}" -gt 0
	check "hostile client ($mode) issued at least $OPS operations (${n:-none}, ${t} s)" \
		test "${n:-0}" -ge "$OPS"
done
echo "counters of $u after both clients:"
cat "$DBG/$u/counters"
for c in cfg_write mmio_read mmio_write pvinfo_read pvinfo_write g2v_notify bad_access resets \
	unpinned_by_unmap aperture_outside; do
	v=$(field "$DBG/$u/counters" $c)
	check "counter $c moved ($v)" test "${v:-0}" -gt 0
done
check "vGPU still listed" test -e "/sys/bus/mdev/devices/$u"

grp=$(basename "$(readlink "/sys/bus/mdev/devices/$u/iommu_group")")
boot_l2 "$u" identify /tmp/l2.log >/tmp/l2.out 2>&1 &
l2pid=$!
i=0
while [ $i -lt 60 ] && ! qemu_opened "/dev/vfio/$grp"; do
	sleep 1
	i=$((i + 1))
done
for mode in legacy iommufd; do
	timeout -s KILL 60 hostile-vfio -n 1000 "$mode" "$u" >"/tmp/busy-$mode.out" 2>&1
	rc=$?
	sed "s/^/[busy $mode] /" "/tmp/busy-$mode.out"
	expect_eq "while QEMU holds the vGPU, the client cannot open it ($mode)" "$rc" 2
done
wait $l2pid
rc=$?
cat /tmp/l2.out
expect_eq "L2 boots on the same vGPU afterwards and identifies it" "$rc" 0
expect_identified "guest identification matches the host's vGPU" "$u" /tmp/l2.log

cat "$DBG/$u/mem_probe"

# Removal while a VM holds the vGPU: the host relays a device request to QEMU (the
# VFIO_PCI_REQ_IRQ_INDEX eventfd), and the removal completes once QEMU lets go.
boot_l2 "$u" idle /tmp/l2-idle.log >/tmp/l2-idle.out 2>&1 &
l2pid=$!
i=0
while [ $i -lt 60 ] && ! grep -q "GVTPV-L2-IDLE" /tmp/l2-idle.log 2>/dev/null; do
	sleep 1
	i=$((i + 1))
done
n0=$(dmesg | grep -c "asking the user to release the device")
echo 1 >"/sys/bus/mdev/devices/$u/remove" &
rmpid=$!
sleep 3
n1=$(dmesg | grep -c "asking the user to release the device")
check "removing the vGPU while QEMU holds it asks QEMU to let go ($((n1 - n0)) requests)" \
	test "$n1" -gt "$n0"
dmesg | grep "asking the user to release the device" | tail -n 1
# The bus link goes at once; the vGPU itself (its debugfs directory) lives until QEMU
# lets go, and the removal blocks until then.
check "the removal waits for QEMU (still blocked, vGPU still there)" \
	sh -c "kill -0 $rmpid && test -d $DBG/$u"
wait $l2pid
wait $rmpid
cat /tmp/l2-idle.out
check "the vGPU is gone once QEMU has let go" sh -c "test ! -e /sys/bus/mdev/devices/$u && test ! -d $DBG/$u"
expect_eq "$T: instance returned" "$(available $T)" 7
unload_host
exit $FAILED
