#!/usr/bin/env bash
# Builds the CUDA ops and their GPU checks (standalone CMake project tests/cuda, needs only the CUDA toolkit) and runs
# them: the full sweep + timings, then the small sweep under compute-sanitizer memcheck and racecheck.
# Log: $OUT/gpu-checks.log (or ./gpu-checks.log). Usage: scripts/gpu_checks.sh [build-dir]
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
LOG=${OUT:-.}/gpu-checks.log
exec > >(tee "$LOG") 2>&1
echo "# hylora CUDA op checks — $(date -u +%FT%TZ), commit $(cat COMMIT 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
nvcc --version | tail -1
cmake -S tests/cuda -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null && cmake --build "$BUILD" -j16 2>&1 | grep -E "error|warning: [^#]" ; true
BIN="$BUILD/hylora_cuda_checks"
[ -x "$BIN" ] || { echo "BUILD FAILED"; exit 1; }
rc=0
echo; echo "## full sweep + timings"
"$BIN" --bench || rc=1
for tool in memcheck racecheck; do
  echo; echo "## compute-sanitizer --tool $tool (small shapes)"
  compute-sanitizer --tool "$tool" --error-exitcode 3 "$BIN" --small 2>&1 | grep -vE "^PASS " | tail -40
  st=${PIPESTATUS[0]}
  echo "compute-sanitizer $tool exit status: $st"
  [ "$st" = 0 ] || rc=1
done
echo; echo "overall: $([ $rc = 0 ] && echo OK || echo FAILURES)"
exit $rc
