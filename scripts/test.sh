#!/usr/bin/env bash
# The whole test suite, and exactly what CI runs (.ci/run): install dependencies, build, run every CTest test (unit,
# golden HF/PEFT fixtures, text, server); then the model tests again under other OpenBLAS kernel sets; then the
# sanitizer stage: a clang build with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan) that runs every CTest
# test again (any report fails the test), then every libFuzzer harness of fuzz/ for HYLORA_FUZZ_SECONDS each
# (default 15; docs/hostile_input.md). Each stage prints its start time in seconds ("== [123s] ...").
#   HYLORA_SANITIZERS=0 - skip the sanitizer stage (a quick local run).
# Measured from a clean clone on the 2-core development machine while three other builds shared it (load 8-10):
#   setup 24 s, build 19 min (cold ccache, CUDA files included), CTest 2.5 min, the two core-type passes 4.4 min,
#   sanitizer build 41 min (15 of them beside a second sanitizer build), the suite under ASan + UBSan 11.6 min,
#   the fuzzers 2 min: 81 min in all (2026-12-01). The non-sanitizer part takes 12 min on CI's own 2 cores against
#   26 min here, so expect about 40 min in CI, inside its 90-minute limit.
# OpenBLAS picks its kernels (and blocking) by CPU, so float32 rounding differs between machines (issue 9 item 0:
# Haswell kernels on AMD EPYC). Running under several OPENBLAS_CORETYPE values on one machine checks that no test
# depends on one CPU's rounding: the golden limits (tests/fixtures/*/limits.json) were measured under each of them.
#   HYLORA_TEST_CORETYPES="Haswell Prescott" (default) - the extra core types; "" to skip.
#   HYLORA_TEST_MUTATE=1 - at the end, mutation testing (tools/mutate, docs/testing.md): every mutation must be
#                          caught. Not part of CI (it does not fit beside the sanitizer build on 2 cores): run it
#                          with HYLORA_TEST_MUTATE=1 bash scripts/test.sh (10-17 minutes); last result in docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys objects by paths relative to the checkout (the sanitizer build's too), so clones share them.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd)}"
t0=$(date +%s)
stage() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }
stage "setup"
bash scripts/setup.sh
stage "build"
bash scripts/build.sh
cd build
# OpenMP threads that spin while OpenBLAS's own threads work slow a 2-core machine down 20x; sleep instead.
export OMP_WAIT_POLICY=passive
stage "all tests, OpenBLAS kernels for this CPU ($(tests/hylora_openblas_core))"
ctest --output-on-failure -j"$(nproc)"
for core in ${HYLORA_TEST_CORETYPES-Haswell Prescott}; do
  got=$(OPENBLAS_CORETYPE=$core tests/hylora_openblas_core)
  if [ "$got" != "$core" ]; then
    echo "OPENBLAS_CORETYPE=$core is not available in this OpenBLAS (it runs $got): fix HYLORA_TEST_CORETYPES" >&2
    exit 1
  fi
  stage "model tests under OPENBLAS_CORETYPE=$core"
  # Everything but the text front end's tests (they use no BLAS; a new text suite missing here just runs again).
  OPENBLAS_CORETYPE=$core ctest --output-on-failure -j"$(nproc)" \
    -E '^(AddedTokens|Bpe|ByteLevel|ChatTemplateReference|HandWrittenTemplate|JinjaEscape|JinjaLoad|JinjaPython|PreTokenizer|Qwen3Reference|Regex|StreamDecoder|TinyTokenizerHf|Tokenizer|Utf8)\.'
done
cd ..

if [ "${HYLORA_SANITIZERS:-1}" = 1 ]; then
  # Sanitizer build: every unit/golden/text test under AddressSanitizer + UndefinedBehaviorSanitizer (any report
  # fails the test), then the fuzzers (which share this build). (Tokenizer speed is a benchmark program now, not a
  # timed test, so nothing needs excluding for the instrumented build.)
  stage "sanitizer build (clang, ASan + UBSan, build-asan)"
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DHYLORA_FUZZ=ON -DHYLORA_NO_CUDA=ON >/dev/null
  cmake --build build-asan -j"$(nproc)"
  stage "all tests under ASan + UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     OMP_WAIT_POLICY=passive ctest --output-on-failure -j"$(nproc)")
  stage "fuzz harnesses, ${HYLORA_FUZZ_SECONDS:-15}s each"
  HYLORA_FUZZ_NO_BUILD=1 bash scripts/fuzz.sh "${HYLORA_FUZZ_SECONDS:-15}"
fi

if [ "${HYLORA_TEST_MUTATE:-0}" = 1 ]; then
  stage "mutation testing"
  command -v python3 >/dev/null || { echo "mutation testing needs python3 (apt-get install python3)" >&2; exit 1; }
  python3 tools/mutate/mutate.py --skip-stale --json build/mutate-results.json
fi
stage "done"
