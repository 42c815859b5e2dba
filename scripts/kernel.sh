#!/usr/bin/env bash
# Fetches Linux 7.2, applies the gvtpv patch set, configures and builds it (LLVM=1).
# Cached under $GVTPV_CACHE/kernel/<key>: a second run rebuilds nothing.
# Prints the path of the built tree on its last line of stdout.
# With KDIR set it only checks that KDIR is a built, Rust-enabled tree.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KDIR_LOG=$GVTPV_LOGDIR/kernel${GVTPV_KCONFIG:+-$GVTPV_KCONFIG}.log

check_tree() {
	local k=$1
	[ -f "$k/.config" ] || die "$k has no .config" "point KDIR at a configured and built Linux 7.2 tree"
	[ -f "$k/Module.symvers" ] || die "$k is not built (no Module.symvers)" "run 'make LLVM=1' in it first"
	grep -q '^CONFIG_RUST=y' "$k/.config" || die "$k is built without CONFIG_RUST" "use scripts/kernel/gvtpv.config"
	[ -f "$k/arch/x86/boot/bzImage" ] || die "$k has no arch/x86/boot/bzImage"
}

if [ -n "${KDIR:-}" ]; then
	check_tree "$KDIR"
	echo "$KDIR"
	exit 0
fi

SRC_PKG=linux-source-7.2
# GVTPV_KCONFIG=debug adds scripts/kernel/debug.config (KASAN) in a tree of its own.
flavour=${GVTPV_KCONFIG:-}
fragments=("$GVTPV_TOP/scripts/kernel/gvtpv.config")
case "$flavour" in
"") ;;
debug) fragments+=("$GVTPV_TOP/scripts/kernel/debug.config") ;;
*) die "unknown GVTPV_KCONFIG=$flavour" "use GVTPV_KCONFIG=debug or leave it unset" ;;
esac
# The source tree is keyed by the patch set; the build inside it by config and toolchain,
# so a config change rebuilds incrementally instead of from scratch.
key=$( { echo "$SRC_PKG"; cat "$GVTPV_TOP"/scripts/kernel/patches/*.patch; } | sha256sum | cut -c1-12)
key=$key${flavour:+-$flavour}
build_key=$( { cat "${fragments[@]}"; rustc --version; clang-19 --version | head -1; } |
	sha256sum | cut -c1-12)
tree=$GVTPV_CACHE/kernel/$key/linux
if [ "$(cat "$tree/.gvtpv-built" 2>/dev/null)" = "$build_key" ]; then
	step "kernel: cached build $key/$build_key" >&2
	echo "$tree"
	exit 0
fi

# 1. The source package, once.
dl=$GVTPV_CACHE/dl
mkdir -p "$dl"
deb=$(ls "$dl"/${SRC_PKG}_*_all.deb 2>/dev/null | tail -n 1 || true)
if [ -z "$deb" ]; then
	step "kernel: apt-get download $SRC_PKG (from sid)" >&2
	( cd "$dl" && apt-get download "$SRC_PKG" >>"$KDIR_LOG" 2>&1 ) ||
		die "could not download $SRC_PKG" \
			"check that sid is in the apt sources (scripts/setup-host-tools.sh adds it) and that the package is still in the archive: apt-cache policy $SRC_PKG; or build a Rust-enabled 7.2 tree yourself and pass KDIR=..."
	deb=$(ls "$dl"/${SRC_PKG}_*_all.deb | tail -n 1)
fi

# 2. A fresh tree for this key, patched.
if [ ! -f "$tree/.gvtpv-patched" ]; then
step "kernel: unpacking $(basename "$deb") into $GVTPV_CACHE/kernel/$key" >&2
rm -rf "$GVTPV_CACHE/kernel/$key"
mkdir -p "$GVTPV_CACHE/kernel/$key"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/$SRC_PKG.tar.xz | xz -dc -T0 |
	tar -x -C "$GVTPV_CACHE/kernel/$key"
mv "$GVTPV_CACHE/kernel/$key/$SRC_PKG" "$tree"
for p in "$GVTPV_TOP"/scripts/kernel/patches/*.patch; do
	step "kernel: applying $(basename "$p")" >&2
	patch -d "$tree" -p1 --forward --quiet <"$p" >>"$KDIR_LOG" 2>&1 ||
		die "patch $(basename "$p") does not apply" "the source package changed; see $KDIR_LOG"
done
touch "$tree/.gvtpv-patched"
fi

# 3. Config: tinyconfig plus our fragment, then check every symbol we asked for.
step "kernel: configuring (tinyconfig + ${fragments[*]##*/})" >&2
mk=(make -C "$tree" LLVM=1 -j"$(nproc)")
logged "$KDIR_LOG" "${mk[@]}" rustavailable
logged "$KDIR_LOG" "${mk[@]}" tinyconfig
( cd "$tree" && KCONFIG_CONFIG=.config scripts/kconfig/merge_config.sh -m .config \
	"${fragments[@]}" ) >>"$KDIR_LOG" 2>&1
logged "$KDIR_LOG" "${mk[@]}" olddefconfig
bad=0
while IFS= read -r line; do
	case "$line" in CONFIG_*=*) ;; *) continue ;; esac
	grep -qx "$line" "$tree/.config" || { echo "gvtpv: kernel config lacks $line" >&2; bad=1; }
done < <(cat "${fragments[@]}")
[ $bad = 0 ] || die "the kernel config did not take every symbol of gvtpv.config" \
	"a dependency is missing; see make menuconfig in $tree"

# 4. Build.
step "kernel: building bzImage and modules with LLVM=1 (about 7 min on 2 cores); log: $KDIR_LOG" >&2
logged "$KDIR_LOG" "${mk[@]}" bzImage modules
echo "$build_key" >"$tree/.gvtpv-built"
# Keep only this tree of this flavour: old keys are dead weight of about 2 GiB each.
for old in "$GVTPV_CACHE"/kernel/*; do
	[ "$old" = "$GVTPV_CACHE/kernel/$key" ] && continue
	case "${old##*/}" in *-*) [ -n "$flavour" ] || continue ;; *) [ -z "$flavour" ] || continue ;; esac
	rm -rf "$old"
done
step "kernel: built $key/$build_key" >&2
echo "$tree"
