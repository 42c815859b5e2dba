#!/usr/bin/env bash
# Runs the cargo-fuzz target host_path for N seconds (default 300). Needs nightly;
# installs a pinned cargo-fuzz if missing. A crash leaves its input in fuzz/artifacts/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
secs=${1:-300}
if ! rustup toolchain list | grep -q '^nightly'; then
	step "fuzz: rustup toolchain install nightly (cargo fuzz needs it)"
	logged "$GVTPV_LOGDIR/nightly.log" rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
	step "fuzz: cargo install cargo-fuzz 0.13.2"
	logged "$GVTPV_LOGDIR/cargo-fuzz.log" cargo install --locked cargo-fuzz --version 0.13.2
fi
cd "$GVTPV_TOP/fuzz"
step "fuzz: host_path for ${secs}s"
cargo +nightly fuzz run host_path -- -max_total_time="$secs" 2>&1 | tail -n 5
