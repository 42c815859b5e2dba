#!/bin/sh
# Scenario: QEMU opens the vGPU the legacy way (its IOMMU group in a type1 container,
# vfio-pci's default) and the guest driver identifies it as the host describes it.
. /scenarios/lib.sh
T=gvtpv-V5_8

load_host
u=$(new_uuid)
check "mdevctl start $T" mdevctl start -u "$u" -p "$PARENT" -t "$T"
grp=$(basename "$(readlink "/sys/bus/mdev/devices/$u/iommu_group")")
check "the vGPU has an IOMMU group ($grp)" test -n "$grp" -a -c "/dev/vfio/$grp"
cdev=$(ls "/sys/bus/mdev/devices/$u/vfio-dev" 2>/dev/null | head -n 1)

boot_l2_watching "$u" identify /tmp/l2.log legacy /dev/vfio/vfio "/dev/vfio/$grp" /dev/iommu \
	"/dev/vfio/devices/${cdev:-none}"
expect_eq "L2 boots on the vGPU opened through a type1 container and identifies it" "$?" 0
d="QEMU held the container and the group (it had: $OPENED)"
if was_open /dev/vfio/vfio && was_open "/dev/vfio/$grp"; then ok "$d"; else notok "$d"; fi
d="QEMU did not use iommufd (it had: $OPENED)"
if was_open /dev/iommu || was_open "/dev/vfio/devices/$cdev"; then notok "$d"; else ok "$d"; fi
expect_identified "guest identification matches the host's vGPU" "$u" /tmp/l2.log
expect_guest_traps "$u"

check "mdevctl stop" mdevctl stop -u "$u"
unload_host
exit $FAILED
