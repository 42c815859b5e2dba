# Common helpers for gvtpv scripts. Source it; do not run it.
# shellcheck shell=bash

GVTPV_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GVTPV_CACHE=${GVTPV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gvtpv}
GVTPV_LOGDIR=${GVTPV_LOGDIR:-$GVTPV_CACHE/logs}
LLVM_BIN=/usr/lib/llvm-19/bin
mkdir -p "$GVTPV_CACHE" "$GVTPV_LOGDIR"

# Toolchain environment used by every kernel and module build.
export PATH="$LLVM_BIN:$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib

_t0=$(date +%s)

# Prints a progress line with the seconds since the script started.
step() {
	printf '[gvtpv %4ss] %s\n' "$(( $(date +%s) - _t0 ))" "$*"
}

# Prints an error with a hint and exits.
die() {
	printf 'gvtpv: error: %s\n' "$1" >&2
	[ $# -gt 1 ] && printf 'gvtpv: hint: %s\n' "$2" >&2
	exit 1
}

# Runs a command with its output in a log file; on failure prints the tail and exits.
logged() {
	local log=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		printf 'gvtpv: command failed: %s\n' "$*" >&2
		printf 'gvtpv: last lines of %s:\n' "$log" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
}
