#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarises the KUnit (KTAP) results of gvtpv suites found in VM console logs.

A suite runs at every insmod, so it may appear several times; each suite is reported once,
from its worst run (most failures; the first such), so that passes and failures come
from the same run. Test lines are read one by one (KUnit prints no per-suite totals line
for a suite of one case). A suite whose run was cut off (no closing line) counts as one
failure.

Usage: kunit-summary.py LOG... ; prints "SUITE PASS FAIL SKIP" lines, sorted.
"""
import re
import sys

PREFIX = re.compile(r"^(\[L2\] )?")
SUBTEST = re.compile(r"^\s+# Subtest: (gvtpv_\w+)$")
CASE = re.compile(r"^\s{4}(ok|not ok) \d+ \S+(.*)$")
END = re.compile(r"^(ok|not ok) \d+ (gvtpv_\w+)")


def runs(lines):
    cur = None
    for raw in lines:
        line = PREFIX.sub("", raw.rstrip("\n"))
        m = SUBTEST.match(line)
        if m:
            if cur:
                yield cur[0], cur[1], cur[2] + 1, cur[3]  # cut off
            cur = [m.group(1), 0, 0, 0]
            continue
        if cur is None:
            continue
        m = CASE.match(line)
        if m:
            if "# SKIP" in m.group(2):
                cur[3] += 1
            elif m.group(1) == "ok":
                cur[1] += 1
            else:
                cur[2] += 1
            continue
        m = END.match(line)
        if m and m.group(2) == cur[0]:
            yield tuple(cur)
            cur = None
    if cur:
        yield cur[0], cur[1], cur[2] + 1, cur[3]


def main():
    worst = {}
    for path in sys.argv[1:]:
        with open(path, errors="replace") as f:
            for suite, p, fl, sk in runs(f):
                if suite not in worst or fl > worst[suite][1]:
                    worst[suite] = (p, fl, sk)
    for suite in sorted(worst):
        p, fl, sk = worst[suite]
        print(suite, p, fl, sk)


if __name__ == "__main__":
    main()
