#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Fails when a function of a built module has a stack frame above a limit.

C code in the kernel has -Wframe-larger-than for this; Rust code has nothing, and large
values built on the stack and moved by value (a 4 KiB page, a device model) can overrun a
16 KiB kernel stack. This reads the frame size of every function from its prologue in
`objdump -d` (`sub $N,%rsp`, or `add $-N,%rsp` for small N) and checks it.

Usage: stack-check.py [--limit BYTES] [--top N] MODULE.ko...
Prints the largest frames; exits 1 if any is above the limit (default 2048).
"""
import argparse
import re
import subprocess
import sys

FUNC = re.compile(r"^[0-9a-f]+ <(.+)>:$")
SUB = re.compile(r"\bsub\s+\$0x([0-9a-f]+),%rsp$")
ADD = re.compile(r"\badd\s+\$0x([0-9a-f]+),%rsp$")


def frames(path):
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-C", path],
        check=True, capture_output=True, text=True).stdout
    func, seen = None, 0
    for line in out.splitlines():
        m = FUNC.match(line.strip())
        if m:
            func, seen = m.group(1), 0
            continue
        if func is None:
            continue
        seen += 1
        # The frame is set up within the first instructions of the prologue.
        if seen > 24:
            continue
        text = line.strip()
        m = SUB.search(text)
        if m:
            yield func, int(m.group(1), 16)
            func = None
            continue
        m = ADD.search(text)
        if m and int(m.group(1), 16) >= 1 << 63:
            yield func, (1 << 64) - int(m.group(1), 16)
            func = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=2048)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("modules", nargs="+")
    a = ap.parse_args()
    bad = 0
    for mod in a.modules:
        fs = sorted(frames(mod), key=lambda f: -f[1])
        print(f"{mod}: {len(fs)} functions with a stack frame; largest:")
        for name, size in fs[:a.top]:
            print(f"  {size:6d} {name[:150]}")
        over = [f for f in fs if f[1] > a.limit]
        for name, size in over:
            print(f"  OVER {a.limit}: {size} bytes in {name[:200]}")
        bad += len(over)
    if bad:
        print(f"{bad} function(s) have a stack frame above {a.limit} bytes")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
