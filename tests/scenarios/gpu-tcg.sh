#!/bin/sh
# Scenario (gpu-tcg): the gpu scenario with L2 under TCG (make check runs it with
# L2ACCEL=tcg): no KVM, so the shadow PPGTT is kept in sync by re-validating the guest's
# tables before each submission; one guest only.
GVTPV_L2_TIMEOUT=${GVTPV_L2_TIMEOUT:-480}
export GVTPV_L2_TIMEOUT
. /scenarios/gpu.sh
