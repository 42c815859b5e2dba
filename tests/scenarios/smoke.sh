#!/bin/sh
# Debug scenario: L2 without a vGPU, KVM stats after a while.
. /scenarios/lib.sh
qemu-system-x86_64 -accel kvm -cpu host -m 256 -smp 1 -nodefaults -nographic -no-reboot -serial file:/tmp/l2.out \
  -L /usr/share/qemu -bios qboot.rom -kernel /boot/bzImage -initrd /boot/l2.cpio.gz \
  -append "console=ttyS0 panic=-1 earlyprintk=serial gvtpv_script=none" </dev/null >/tmp/q.out 2>&1 &
sleep 10
cd /sys/kernel/debug/kvm && for f in exits halt_exits irq_exits io_exits mmio_exits signal_exits request_irq_exits nmi_window_exits irq_window_exits hypercalls pf_taken pf_fixed; do [ -f $f ] && echo "$f $(cat $f)"; done
ls /sys/kernel/debug/kvm | head -50 | tr '\n' ' '
sleep 5
for f in exits irq_exits io_exits signal_exits; do [ -f $f ] && echo "$f $(cat $f)"; done
cat /proc/interrupts | head -20
dmesg | tail -5
exit 0
