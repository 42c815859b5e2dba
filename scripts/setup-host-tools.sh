#!/usr/bin/env bash
# Installs the build and VM tools gvtpv needs on a Debian 12 machine. Idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BINDGEN_VERSION=0.72.1
PKGS=(clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev libssl-dev
      cpio xz-utils busybox-static e2fsprogs mdevctl make git python3 rsync kmod gcc libc6-dev)
LOG=$GVTPV_LOGDIR/setup.log

need_root() {
	[ "$(id -u)" = 0 ] || die "installing packages needs root" "run as root or install: $*"
}

apt_sources() {
	local changed=0
	if [ ! -f /etc/apt/sources.list.d/gvtpv-backports.sources ]; then
		cat >/etc/apt/sources.list.d/gvtpv-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		changed=1
	fi
	if [ ! -f /etc/apt/preferences.d/gvtpv ]; then
		cat >/etc/apt/preferences.d/gvtpv <<'PIN'
# gvtpv: bookworm stays the default; sid is only used to download linux-source-7.2.
Package: *
Pin: release n=sid
Pin-Priority: 100

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100

Package: qemu-system-x86 qemu-system-common qemu-system-data qemu-system-gui qemu-utils qemu-block-extra seabios ipxe-qemu libslirp0 libfdt1
Pin: release n=bookworm-backports
Pin-Priority: 600
PIN
		changed=1
	fi
	if [ $changed = 1 ] || [ ! -f "$GVTPV_CACHE/.apt-updated" ]; then
		step "apt-get update"
		logged "$LOG" apt-get update
		touch "$GVTPV_CACHE/.apt-updated"
	fi
}

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null &&
	qemu-system-x86_64 --version | grep -qE 'version (9|[1-9][0-9])\.'; then
	qemu_ok=1
fi
if [ ${#missing[@]} -gt 0 ] || [ $qemu_ok = 0 ]; then
	need_root "${missing[@]}" qemu-system-x86
	apt_sources
	step "apt-get install ${missing[*]} qemu-system-x86 (backports)"
	DEBIAN_FRONTEND=noninteractive logged "$LOG" apt-get install -y --no-install-recommends \
		"${missing[@]}" qemu-system-x86/bookworm-backports qemu-utils/bookworm-backports
fi
# mdevctl refuses to run without its callout directories.
mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers 2>/dev/null || true

if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	step "rustup component add rust-src"
	logged "$LOG" rustup component add rust-src
fi
if ! command -v bindgen >/dev/null || ! bindgen --version | grep -q "$BINDGEN_VERSION"; then
	step "cargo install bindgen-cli $BINDGEN_VERSION (about 1 min)"
	logged "$LOG" cargo install --locked bindgen-cli --version "$BINDGEN_VERSION"
fi
step "host tools ready"
