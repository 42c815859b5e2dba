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
echo "GVTPV-GUEST-INFO $info"
# Every field present and non-empty ("vGPU ID PVINFO MAJ.MIN caps CAPS GGTT N MiB aperture
# BASE+SIZE hidden BASE+SIZE fences N"); an empty or partial line must fail here.
case "$info" in
"vGPU "[0-9]*" PVINFO "[0-9]*.[0-9]*" caps 0x"*" GGTT "[0-9]*" MiB aperture 0x"*+0x*" hidden 0x"*+0x*" fences "[0-9]*)
	ok "identification in debugfs: $info" ;;
*) notok "identification in debugfs is complete (got '$info')" ;;
esac
if [ -n "$info" ] && [ -n "$line" ]; then
	case "$line" in *"$info"*) ok "dmesg and debugfs agree" ;; *) notok "dmesg and debugfs agree" ;; esac
else
	notok "dmesg and debugfs agree (dmesg '$line', debugfs '$info')"
fi
if rmmod gvtpv_guest; then ok "rmmod gvtpv_guest"; else notok "rmmod gvtpv_guest"; fi
exit $rc
