#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run every CTest test (unit, golden HF/PEFT fixtures, text).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)"
