#!/bin/sh
# L2: the guest driver must refuse this vGPU, say why, and leave nothing behind.
ok() { echo "GVTPV-CHECK ok L2: $*"; }
notok() { echo "GVTPV-CHECK not-ok L2: $*"; rc=1; }
rc=0
if insmod /gvtpv_guest.ko; then ok "insmod gvtpv_guest.ko"; else notok "insmod gvtpv_guest.ko"; fi
if ls /sys/bus/pci/drivers/gvtpv_guest/ | grep -q '^0000:'; then notok "no device bound"; else ok "no device bound"; fi
dmesg | grep "not a usable gvtpv vGPU" | tail -n 1
dmesg | grep -q "probe.*failed with error -19\|not a usable gvtpv vGPU" && ok "probe failed with a message" || notok "probe failed with a message"
[ -e /sys/kernel/debug/gvtpv_guest ] && notok "no debugfs left" || ok "no debugfs left"
if rmmod gvtpv_guest; then ok "rmmod gvtpv_guest"; else notok "rmmod gvtpv_guest"; fi
exit $rc
