#!/bin/sh
# Scenario (a): one vGPU, end to end. The host module loads and lists the four types;
# mdevctl creates a vGPU; L2 boots on it and the guest driver identifies it with the
# values of its type; the vGPU is removed and the module unloads.
. /scenarios/lib.sh
T=gvtpv-V5_8

load_host
n=$(mdevctl types | grep -c "gvtpv-V5_")
expect_eq "mdevctl types lists the four types" "$n" 4
check "type description names the aperture size" grep -q "low_gm_size: 64MB" \
	"/sys/class/mdev_bus/$PARENT/mdev_supported_types/$T/description"
expect_eq "$T: 7 instances available" "$(available $T)" 7

u=$(new_uuid)
check "mdevctl start $T" mdevctl start -u "$u" -p "$PARENT" -t "$T"
check "mdev device exists" test -e "/sys/bus/mdev/devices/$u"
expect_eq "$T: one fewer available" "$(available $T)" 6
check "per-vGPU debugfs directory" test -r "$DBG/$u/info"
cat "$DBG/$u/info"

check "L2 boots on the vGPU and identifies it" boot_l2 "$u" identify /tmp/l2.log
expect_identified "guest identification matches the host's vGPU" "$u" /tmp/l2.log
expect_guest_traps "$u"

check "mdevctl stop" mdevctl stop -u "$u"
check "mdev device gone" test ! -e "/sys/bus/mdev/devices/$u"
expect_eq "$T: instance returned" "$(available $T)" 7
unload_host
exit $FAILED
