#!/bin/sh
# L2 for `make demo`: the live selftests without the hostile cases: stores on RCS and
# BCS, a blitter fill and copy checked byte by byte, huge pages, 1,000 submissions.
SELFTESTS=2
. /tests/gpu.sh
