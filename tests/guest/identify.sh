#!/bin/sh
# L2: load the guest driver on a good vGPU and report what it identified.
ok() { echo "GVTPV-CHECK ok L2: $*"; }
notok() { echo "GVTPV-CHECK not-ok L2: $*"; rc=1; }
rc=0
if insmod /gvtpv_guest.ko; then ok "insmod gvtpv_guest.ko"; else notok "insmod gvtpv_guest.ko"; fi
if ls /sys/bus/pci/drivers/gvtpv_guest/ | grep -q '^0000:'; then ok "driver bound to the vGPU"; else notok "driver bound to the vGPU"; fi
line=$(dmesg | grep "gvtpv: vGPU" | tail -n 1)
[ -n "$line" ] && ok "identification line in dmesg" || notok "identification line in dmesg"
info=$(cat /sys/kernel/debug/gvtpv_guest/info 2>/dev/null)
[ -n "$info" ] && ok "identification in debugfs" || notok "identification in debugfs"
echo "GVTPV-GUEST-INFO $info"
case "$line" in *"$info"*) ok "dmesg and debugfs agree" ;; *) notok "dmesg and debugfs agree" ;; esac
if rmmod gvtpv_guest; then ok "rmmod gvtpv_guest"; else notok "rmmod gvtpv_guest"; fi
exit $rc
