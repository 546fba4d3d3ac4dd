#!/usr/bin/env bash
# One device call for the CUDA-graph decode path: builds hylora + the op checks (deps bundle ./hydeps.tar.xz, as
# scripts/gpu_score_checks.sh), runs `hylora graph-check` (graph replay == padded eager, bit for bit; float32 and
# bfloat16), the op checks under compute-sanitizer racecheck (small shapes, FAIL lines shown), then the decode
# workloads of `hylora bench` with --cuda-graphs off and on (same card, same run). Logs to $OUT.
#   bash scripts/gpu_graph_bench.sh [CONFIG[:LAYERS]]   (default bench/configs/qwen3_5_4b.json:8)
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-.}
spec=${1:-bench/configs/qwen3_5_4b.json:8}
config=${spec%%:*} layers=${spec##*:}
[ "$layers" = "$spec" ] && layers=""
tar xJf hydeps.tar.xz -C /tmp || exit 1
deps=/tmp/hydeps
export PKG_CONFIG_PATH=$deps/lib/pkgconfig PKG_CONFIG_LIBDIR=$deps/lib/pkgconfig LD_LIBRARY_PATH=$deps/lib:${LD_LIBRARY_PATH:-}
flags=""
g++ -dumpversion 2>/dev/null | grep -qE '^1[3-9]' && flags="-Wno-dangling-reference"  # see gpu_score_checks.sh
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DHYLORA_BUILD_TESTS=OFF -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_PREFIX_PATH=$deps -DPKG_CONFIG_EXECUTABLE=$deps/bin/pkg-config >/dev/null || exit 1
cmake --build build-gpu -j "$(nproc)" --target hylora hylora_cuda_checks 2>&1 | tail -2
bin=build-gpu/src/hylora checks=build-gpu/tests/hylora_cuda_checks
rc=0
for dt in float32 bfloat16; do
  "$bin" graph-check tests/fixtures --dtype $dt 2>&1 | tee "$OUT/graph_check_$dt.log" | grep -vE "^PASS" | tail -30
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
done
compute-sanitizer --tool racecheck --error-exitcode 3 "$checks" --small 2>&1 | grep -vE "^PASS " | tail -30 \
  > "$OUT/racecheck.log"
echo "racecheck exit ${PIPESTATUS[0]}"; grep -E "^FAIL|passed," "$OUT/racecheck.log"
for g in off on; do
  "$bin" bench --config "$config" --random-weights --device cuda --dtype bfloat16 ${layers:+--layers $layers} \
    --workloads decode --cuda-graphs $g --commit "$(cat COMMIT 2>/dev/null || echo unknown)" \
    --out "$OUT/bench_graphs_$g.md" --json "$OUT/bench_graphs_$g.json" 2>&1 | grep -E "^hylora bench: (decode|copy)" || rc=1
done
exit $rc
