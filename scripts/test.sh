#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run every CTest test (unit, golden HF/PEFT fixtures, text);
# then the same tests again in a clang ASan + UBSan build (build-asan), and every fuzz harness for a bounded time
# (HYLORA_FUZZ_SECONDS each, default 15; HYLORA_SKIP_SANITIZERS=1 skips both).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
# OpenMP threads that spin while OpenBLAS's own threads work slow a 2-core machine down 20x; sleep instead.
export OMP_WAIT_POLICY=passive
ctest --output-on-failure -j"$(nproc)"
cd ..
[ "${HYLORA_SKIP_SANITIZERS:-0}" = 1 ] && exit 0

# Sanitizer build: every unit/golden/text test under AddressSanitizer + UndefinedBehaviorSanitizer (any report
# fails the test), then the fuzzers (which share this build).
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DHYLORA_FUZZ=ON -DHYLORA_NO_CUDA=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
# (The encode-speed tests time the tokenizer against a wall-clock budget, which an instrumented build cannot meet.)
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   OMP_WAIT_POLICY=passive ctest --output-on-failure -j"$(nproc)" -E '^EncodeSpeed\.')
bash scripts/fuzz.sh "${HYLORA_FUZZ_SECONDS:-15}"
