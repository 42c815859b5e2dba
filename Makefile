# SPDX-License-Identifier: GPL-2.0
# gvtpv: `make demo` boots a host VM with the mediator and a guest on a vGPU;
# `make check` runs every test. Both install what they need first.
# KDIR=/path/to/built/linux-7.2 uses your own Rust-enabled tree instead of the cached one.

SHELL := /bin/bash
export KDIR

.PHONY: all setup kernel modules check demo test-abi clippy fmt fmt-check images scenario clean fuzz bench-abi

all: modules

setup:
	@scripts/setup-host-tools.sh

kernel: setup
	@scripts/kernel.sh >/dev/null

modules: setup
	@scripts/build.sh

check:
	@scripts/check.sh

demo:
	@scripts/demo.sh

# Run one scenario by name: make scenario NAME=identify [L2ACCEL=tcg] (L2 on KVM by default)
scenario: modules
	@scripts/vm/images.sh "$$(scripts/kernel.sh | tail -n 1)"
	@scripts/vm/run.sh "$$(scripts/kernel.sh | tail -n 1)" $(NAME) $(L2ACCEL)

test-abi:
	cargo test -p gvtpv_abi

# Fuzz the host's path over guest bytes (nightly + cargo-fuzz): make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 300
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# Criterion benchmarks of shared-abi (CTB push+pop, bind encode/decode).
bench-abi:
	cargo bench -p gvtpv_abi --bench abi

clippy:
	cargo clippy -p gvtpv_abi --all-targets -- -D warnings

fmt:
	cargo fmt
	rustfmt --edition 2021 --config-path .rustfmt.toml host/gvtpv_host.rs guest/gvtpv_guest.rs

fmt-check:
	cargo fmt --check
	rustfmt --check --edition 2021 --config-path .rustfmt.toml host/gvtpv_host.rs guest/gvtpv_guest.rs

clean:
	rm -rf build target
	find host guest \( -name '*.o' -o -name '*.ko' -o -name '*.mod' -o -name '*.mod.c' \
		-o -name '.*.cmd' -o -name '*.rmeta' -o -name '*.d' -o -name modules.order \
		-o -name Module.symvers \) -delete
