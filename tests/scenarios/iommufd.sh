#!/bin/sh
# Scenario: QEMU opens the vGPU through iommufd (-object iommufd + the device's vfio cdev,
# no type1 container) and the guest driver identifies it as the host describes it.
. /scenarios/lib.sh
T=gvtpv-V5_8

load_host
u=$(new_uuid)
check "mdevctl start $T" mdevctl start -u "$u" -p "$PARENT" -t "$T"
cdev=$(ls "/sys/bus/mdev/devices/$u/vfio-dev" 2>/dev/null | head -n 1)
check "the vGPU has a vfio cdev ($cdev)" test -n "$cdev" -a -c "/dev/vfio/devices/$cdev"
check "/dev/iommu exists" test -c /dev/iommu
grp=$(basename "$(readlink "/sys/bus/mdev/devices/$u/iommu_group")")

boot_l2_watching "$u" identify /tmp/l2.log iommufd /dev/iommu "/dev/vfio/devices/$cdev" \
	/dev/vfio/vfio "/dev/vfio/$grp"
expect_eq "L2 boots on the vGPU opened through iommufd and identifies it" "$?" 0
d="QEMU held /dev/iommu and the cdev (it had: $OPENED)"
if was_open /dev/iommu && was_open "/dev/vfio/devices/$cdev"; then ok "$d"; else notok "$d"; fi
d="QEMU used no container or group (it had: $OPENED)"
if was_open /dev/vfio/vfio || was_open "/dev/vfio/$grp"; then notok "$d"; else ok "$d"; fi
expect_identified "guest identification matches the host's vGPU" "$u" /tmp/l2.log
expect_guest_traps "$u"

check "mdevctl stop" mdevctl stop -u "$u"
unload_host
exit $FAILED
