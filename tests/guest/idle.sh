#!/bin/sh
# L2: do nothing for a few seconds, so that L1 can look at KVM while L2 runs.
echo "GVTPV-L2-IDLE"
sleep "${GVTPV_IDLE_SECONDS:-8}"
exit 0
