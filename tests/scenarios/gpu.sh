#!/bin/sh
# Scenario (gpu): one vGPU; L2 loads the guest driver with selftests=1, which brings the
# GPU up and runs the live selftests (KTAP); every selftest must pass.
. /scenarios/lib.sh
T=gvtpv-V5_8

load_host
u=$(new_uuid)
check "mdevctl start $T" mdevctl start -u "$u" -p "$PARENT" -t "$T"
check "L2 boots and passes the live selftests" boot_l2 "$u" gpu /tmp/l2.log
cat "$DBG/$u/counters"
check "mdevctl stop" mdevctl stop -u "$u"
unload_host
exit $FAILED
