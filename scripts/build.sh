#!/usr/bin/env bash
# Builds both modules against the gvtpv kernel (or KDIR) with LLVM=1 and clippy; any
# warning is an error. Prints the kernel tree on its last line.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir=$("$GVTPV_TOP/scripts/kernel.sh" | tail -n 1)
step "modules: building gvtpv_host.ko and gvtpv_guest.ko (CLIPPY=1, -Dwarnings)" >&2
logged "$GVTPV_LOGDIR/modules.log" make -C "$kdir" M="$GVTPV_TOP" LLVM=1 CLIPPY=1 modules
step "modules: built" >&2
echo "$kdir"
