#!/bin/sh
# Scenario (c): the guest driver refuses a vGPU whose PVINFO is bad (wrong magic or
# ballooning ranges) with a clear message, and leaves nothing bound. The defects are
# injected by the host's debugfs pvinfo_fault knob, one per vGPU, and both guests run
# at once. (KUnit covers all four defects in both modules.)
. /scenarios/lib.sh
T=gvtpv-V5_8

load_host
for f in magic ranges; do
	u=$(new_uuid)
	eval "u_$f=$u"
	check "mdevctl start $T for the $f case" mdevctl start -u "$u" -p "$PARENT" -t "$T"
	check "inject $f" sh -c "echo $f > $DBG/$u/pvinfo_fault"
	expect_eq "fault reads back" "$(cat "$DBG/$u/pvinfo_fault")" "$f"
	boot_l2 "$u" refuse "/tmp/l2-$f.log" >"/tmp/l2-$f.out" &
	eval "p_$f=$!"
done
for f in magic ranges; do
	case $f in
	magic) want="PVINFO magic" ;;
	ranges) want="invalid ballooning: bad hidden slice" ;;
	esac
	eval "wait \$p_$f"; rc=$?
	cat "/tmp/l2-$f.out"
	expect_eq "L2 refuses a vGPU with bad $f" "$rc" 0
	check "refusal says: $want" grep -q "not a usable gvtpv vGPU: $want" "/tmp/l2-$f.log"
done
check "clear the fault" sh -c "echo none > $DBG/$u_magic/pvinfo_fault"
check "bogus fault names are rejected" sh -c "! echo bogus > $DBG/$u_magic/pvinfo_fault"
check "mdevctl stop" mdevctl stop -u "$u_magic"
check "mdevctl stop" mdevctl stop -u "$u_ranges"
unload_host
exit $FAILED
