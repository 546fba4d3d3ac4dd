#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run every CTest test (unit, golden HF/PEFT fixtures, text).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
# OpenMP threads that spin while OpenBLAS's own threads work slow a 2-core machine down 20x; sleep instead.
export OMP_WAIT_POLICY=passive
ctest --output-on-failure -j"$(nproc)"
