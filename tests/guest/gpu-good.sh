#!/bin/sh
# L2: the live selftests without the hostile cases (good work only).
SELFTESTS=2
. /tests/gpu.sh
