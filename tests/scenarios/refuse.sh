#!/bin/sh
# Scenario (c): the guest driver refuses a vGPU whose PVINFO is bad (wrong magic or
# ballooning ranges) with a clear message, and leaves nothing bound.
# The defects are injected by the host's debugfs pvinfo_fault knob.
. /scenarios/lib.sh
T=gvtpv-V5_8

load_host
u=$(new_uuid)
check "mdevctl start $T" mdevctl start -u "$u" -p "$PARENT" -t "$T"
# Two defects end to end (each is a guest boot); KUnit covers all four in both modules.
for f in magic ranges; do
	case $f in
	magic) want="PVINFO magic" ;;
	version) want="PVINFO version 2.0 is not supported" ;;
	ranges) want="invalid ballooning: bad hidden slice" ;;
	fences) want="invalid fence count 33" ;;
	esac
	check "inject $f" sh -c "echo $f > $DBG/$u/pvinfo_fault"
	expect_eq "fault reads back" "$(cat "$DBG/$u/pvinfo_fault")" "$f"
	check "L2 refuses a vGPU with bad $f" boot_l2 "$u" refuse "/tmp/l2-$f.log"
	check "refusal says: $want" grep -q "not a usable gvtpv vGPU: $want" "/tmp/l2-$f.log"
done
check "clear the fault" sh -c "echo none > $DBG/$u/pvinfo_fault"
check "bogus fault names are rejected" sh -c "! echo bogus > $DBG/$u/pvinfo_fault"
check "mdevctl stop" mdevctl stop -u "$u"
unload_host
exit $FAILED
