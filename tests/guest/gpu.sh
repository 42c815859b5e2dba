#!/bin/sh
# L2: load the guest driver with the live selftests; each KTAP result becomes a check.
# SELFTESTS=2 (tests/guest/gpu-good.sh) runs them without the hostile cases.
ok() { echo "GVTPV-CHECK ok L2: $*"; }
notok() { echo "GVTPV-CHECK not-ok L2: $*"; rc=1; }
rc=0
m=${SELFTESTS:-1}
if insmod /gvtpv_guest.ko selftests=$m; then ok "insmod gvtpv_guest.ko selftests=$m"; else notok "insmod gvtpv_guest.ko selftests=$m"; fi
echo "GVTPV-GUEST-INFO $(cat /sys/kernel/debug/gvtpv_guest/info 2>/dev/null)"
# The KTAP block, without the log prefix ("[time] gvtpv_guest: ").
dmesg | sed -n 's/^.*gvtpv_guest: //p' | sed -n '/^KTAP version 1$/,$p' >/tmp/ktap
plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' /tmp/ktap | head -n 1)
[ -n "$plan" ] && ok "KTAP plan 1..$plan" || notok "KTAP plan in dmesg"
n=0
while read -r line; do
	case "$line" in
	"ok "*) n=$((n + 1)); ok "selftest ${line#ok [0-9]* }" ;;
	"not ok "*) n=$((n + 1)); notok "selftest ${line#not ok [0-9]* }" ;;
	"# "*) echo "GVTPV-SELFTEST $line" ;;
	esac
done </tmp/ktap
[ "$n" = "$plan" ] && ok "all $plan results reported" || notok "results reported ($n of $plan)"
dmesg | grep -q "gvtpv: GPU up" && ok "GPU up" || notok "GPU up ($(dmesg | grep 'GPU bring-up failed' | tail -n 1))"
if rmmod gvtpv_guest; then ok "rmmod gvtpv_guest"; else notok "rmmod gvtpv_guest"; fi
exit $rc
