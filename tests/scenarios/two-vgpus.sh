#!/bin/sh
# Scenario (b): two vGPUs of different types at once, each driven by its own L2 guest at
# the same time; creating one more than available_instances is refused with a clear error.
. /scenarios/lib.sh
A=gvtpv-V5_8 B=gvtpv-V5_4 C=gvtpv-V5_2

load_host
ua=$(new_uuid) ub=$(new_uuid)
check "mdevctl start $A" mdevctl start -u "$ua" -p "$PARENT" -t "$A"
check "mdevctl start $B" mdevctl start -u "$ub" -p "$PARENT" -t "$B"
check "slices of $A and $B do not overlap" slices_disjoint "$ua" "$ub"

# Two guests at once.
boot_l2 "$ua" identify /tmp/l2a.log >/tmp/l2a.out &
pa=$!
boot_l2 "$ub" identify /tmp/l2b.log >/tmp/l2b.out &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
cat /tmp/l2a.out /tmp/l2b.out
expect_eq "guest on $A identified its vGPU" "$ra" 0
expect_eq "guest on $B identified its vGPU" "$rb" 0
expect_identified "guest on $A saw its own slice" "$ua" /tmp/l2a.log
expect_identified "guest on $B saw its own slice" "$ub" /tmp/l2b.log

# Fill type C, then one more must be refused.
n=$(available $C)
check "$C has room for at least one" test "$n" -ge 1
i=0
while [ $i -lt "$n" ]; do
	check "mdevctl start $C #$((i + 1)) of $n" mdevctl start -u "$(new_uuid)" -p "$PARENT" -t "$C"
	i=$((i + 1))
done
expect_eq "$C: none available" "$(available $C)" 0
check "no two slices of all $((n + 2)) vGPUs overlap" slices_disjoint $(ls /sys/bus/mdev/devices)
ux=$(new_uuid)
if mdevctl start -u "$ux" -p "$PARENT" -t "$C" 2>/tmp/err; then
	notok "one more $C than available is refused"
else
	ok "one more $C than available is refused"
fi
echo "mdevctl said: $(cat /tmp/err)"
# mdevctl checks available_instances itself; the kernel must refuse on its own too.
if echo "$ux" >"/sys/class/mdev_bus/$PARENT/mdev_supported_types/$C/create" 2>/tmp/err; then
	notok "the kernel refuses a create beyond available_instances"
else
	ok "the kernel refuses a create beyond available_instances ($(cat /tmp/err))"
fi
check "the kernel log says why" sh -c "dmesg | grep -q 'no room left for another vGPU'"
check "no device left behind" test ! -e "/sys/bus/mdev/devices/$ux"

for d in /sys/bus/mdev/devices/*; do
	check "mdevctl stop $(basename "$d")" mdevctl stop -u "$(basename "$d")"
done
expect_eq "$A: all instances back" "$(available $A)" 7
unload_host
exit $FAILED
