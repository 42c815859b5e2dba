#!/bin/sh
# Scenario (gpu-tcg): the gpu scenario with L2 under TCG: no KVM, so the shadow PPGTT is
# kept in sync by re-validating the guest's tables before each submission.
GVTPV_L2_ACCEL=tcg
export GVTPV_L2_ACCEL
. /scenarios/gpu.sh
