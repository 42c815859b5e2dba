#!/bin/sh
# Diagnostic (not in make check): does an L2 without a vGPU run under KVM inside L1?
# Run: make scenario NAME=nested-kvm. Samples KVM's exit counters while L2 is alive (it
# idles for a few seconds after booting), so they tell whether L2 ever ran.
. /scenarios/lib.sh
timeout -s KILL 90 qemu-system-x86_64 -accel kvm -cpu host -m 256 -smp 1 \
	-nodefaults -nographic -no-reboot -serial stdio -L /usr/share/qemu -bios qboot.rom \
	-kernel /boot/bzImage -initrd /boot/l2.cpio.gz \
	-append "console=ttyS0 panic=-1 gvtpv_script=idle" </dev/null 2>&1 | tr -d '\r' >/tmp/l2.log &
pid=$!
# Wait (bounded) until L2 is idling, then sample while it is still alive.
i=0
while [ $i -lt 60 ] && ! grep -q "GVTPV-L2-IDLE" /tmp/l2.log 2>/dev/null; do sleep 1; i=$((i + 1)); done
for f in exits io_exits irq_exits halt_exits; do echo "kvm $f $(cat /sys/kernel/debug/kvm/$f)"; done
exits=$(cat /sys/kernel/debug/kvm/exits)
for t in /proc/[0-9]*/task/*; do
	case "$(cat $t/comm 2>/dev/null)" in qemu*|CPU*|*KVM*) echo "thread $(cat $t/comm): $(cut -d' ' -f3 $t/stat) wchan=$(cat $t/wchan 2>/dev/null) syscall=$(cut -d' ' -f1-3 $t/syscall 2>/dev/null)";; esac
done
wait $pid
check "KVM counted exits while L2 ran ($exits)" test "$exits" -gt 0
grep -q "GVTPV-L2-BOOTED" /tmp/l2.log && ok "L2 reached init under nested KVM" || notok "L2 reached init under nested KVM"
head -n 3 /tmp/l2.log
exit $FAILED
