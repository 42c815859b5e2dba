#!/bin/sh
# `make demo`: load the mediator, create a vGPU, boot a guest on it that identifies it and
# runs GPU work on it (the live selftests without the hostile cases: a blitter fill and
# copy with a checksum among them), tear down, and print a summary with the trap counts
# and the time each stage took (seconds of L1 uptime).
. /scenarios/lib.sh
T=${GVTPV_DEMO_TYPE:-gvtpv-V5_4}
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
sum() { echo "GVTPV-SUMMARY $*"; }

t=$(now); load_host; t_load=$(since "$t")
types=$(ls /sys/class/mdev_bus/$PARENT/mdev_supported_types | tr '\n' ' ')
t=$(now); u=$(new_uuid)
check "mdevctl start $T" mdevctl start -u "$u" -p "$PARENT" -t "$T"
t_create=$(since "$t")
t=$(now)
check "guest boots on the vGPU, identifies it and runs GPU work" boot_l2 "$u" demo /tmp/l2.log
t_guest=$(since "$t")
t=$(now)
info=$(cat "$DBG/$u/info")
counters=$(grep -E '^(cfg_[a-z]+|mmio_[a-z]+|pvinfo_read|reg_[a-z]+|ggtt_window|elsp_submit|csb_update|irq_msi) ' "$DBG/$u/counters" | tr '\n' ' ')
gpu=$(grep -E '^(workloads_submitted|workloads_completed|workloads_refused|user_interrupts|ggtt_writes|ppgtt_roots|ppgtt_wp_faults|ppgtt_revalidations|sim_commands|sim_blit_bytes) ' "$DBG/$u/gpu" | tr '\n' ' ')
check "mdevctl stop" mdevctl stop -u "$u"
unload_host
t_down=$(since "$t")

sum "vGPU types offered:  $types"
sum "vGPU created:        $T ($(echo "$info" | sed -n 's/^type //p')) uuid $u"
sum "host view:           $(echo "$info" | grep -E '^(vgt_id|aperture|hidden|fences)' | tr '\n' ' ')"
sum "guest identified:    $(sed -n 's/.*GVTPV-GUEST-INFO //p' /tmp/l2.log)"
sum "GPU work in L2:      $(grep -c 'GVTPV-CHECK ok L2: selftest' /tmp/l2.log) selftests passed, $(grep -c 'GVTPV-CHECK not-ok L2: selftest' /tmp/l2.log) failed"
grep 'GVTPV-SELFTEST # blitter result' /tmp/l2.log | sed 's/.*# /GVTPV-SUMMARY GPU blits:           /'
grep 'GVTPV-SELFTEST # 1000 submissions' /tmp/l2.log | sed 's/.*# /GVTPV-SUMMARY GPU submissions:     /'
sum "host GPU counters:   $gpu"
sum "host trap counters:  $counters"
sum "stage times (s):     insmod $t_load, mdev create $t_create, guest boot+identify+exit $t_guest, teardown $t_down"
exit $FAILED
