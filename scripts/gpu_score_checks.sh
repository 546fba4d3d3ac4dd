#!/usr/bin/env bash
# Issue 7, items 4 and 7 on the GPU machine: builds `hylora` with the CUDA backend (CMake + Ninja, no unit tests:
# that machine has no GoogleTest), scores every golden fixture with --device cuda in each --dtype
# (scripts/gpu_score_compare.py: float32 max |Δ| ≤ 1e-3, bfloat16 kl_v2 ≤ 2.5e-4), scores them with --tp 2 against
# --tp 1 and the references (scripts/gpu_tp_compare.py; --tp-only runs only that stage after the build), runs
# `hylora serve --device cuda` against HF's greedy generations (scripts/gpu_serve_check.py) and checks that a too-small --mem-fraction is a clear
# start-up error. Exits non-zero when any part fails.
# The log goes to LOG (default bench/results/gpu_score_checks_<date>.log).
#   scripts/gpu_score_checks.sh [--deps PREFIX] [--dtype float32|bfloat16]... [--log FILE] [--tp-only]
# --deps PREFIX: a prefix holding what the GPU machine lacks (bin/pkg-config, lib/pkgconfig/{openblas,libpcre2-8,
# libutf8proc,cpp-httplib}.pc with their libraries, include/{nlohmann,CLI}, share/cmake/{nlohmann_json,CLI11}), made
# on the CPU machine by scripts/gpu_deps_bundle.sh. With the device tool: copy the worktree and PREFIX.tar.xz into an
# ignored folder of the checkout, carry it, unpack both there and run this script.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="" log="" dtypes=() tp_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --deps) deps=$2; shift 2 ;;
    --dtype) dtypes+=("$2"); shift 2 ;;
    --log) log=$2; shift 2 ;;
    --tp-only) tp_only=1; shift ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
done
[ ${#dtypes[@]} -gt 0 ] || dtypes=(float32)
log=${log:-$root/bench/results/gpu_score_checks_$(date -u +%Y%m%d_%H%M).log}
mkdir -p "$(dirname "$log")"
exec > >(tee "$log") 2>&1
args=()
if [ -n "$deps" ]; then
  export PKG_CONFIG_PATH=$deps/lib/pkgconfig PKG_CONFIG_LIBDIR=$deps/lib/pkgconfig
  export LD_LIBRARY_PATH=$deps/lib:${LD_LIBRARY_PATH:-}
  args+=(-DCMAKE_PREFIX_PATH="$deps" -DPKG_CONFIG_EXECUTABLE="$deps/bin/pkg-config")
fi
echo "== $(date -u) $(cat "$root/COMMIT" 2>/dev/null || git -C "$root" rev-parse --short HEAD 2>/dev/null || echo no-git) on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
build=$root/build-gpu
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# GCC 13 (the GPU image's) flags the text library's `const std::string& x = need_string(...)` (a reference into a
# long-lived Value) as possibly dangling: a false positive that -Werror would turn into a failed build.
flags=""
g++ -dumpversion 2>/dev/null | grep -qE '^1[3-9]' && flags="-Wno-dangling-reference"
cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DHYLORA_BUILD_TESTS=OFF \
  -DCMAKE_CXX_FLAGS="$flags" "${args[@]}" || exit 1
cmake --build "$build" -j "$(nproc)" --target hylora || exit 1
bin=$(find "$build" -name hylora -type f -perm -u+x | head -1)
rc=0
if [ "$tp_only" = 1 ]; then
  python3 "$root/scripts/gpu_tp_compare.py" "$bin" "$root/tests/fixtures" || rc=1
  echo "[gpu-checks] tensor-parallel stage: $([ $rc = 0 ] && echo OK || echo FAILURES)"
  exit $rc
fi
python3 "$root/scripts/gpu_score_compare.py" "$bin" "$root/tests/fixtures" "${dtypes[@]}" || rc=1
# Tensor parallel on the one GPU (--tp 2: rank threads sharing the device, docs/multi_gpu.md §6): float32 vs --tp 1
# (≤ 1e-4) and vs the references (≤ 1e-3) on every fixture, base and every adapter; bfloat16 per family.
python3 "$root/scripts/gpu_tp_compare.py" "$bin" "$root/tests/fixtures" || rc=1
for case in qwen3_5_causal_lora nemotron_h_latent_lora; do
  python3 "$root/scripts/gpu_serve_check.py" "$bin" "$root/tests/fixtures/$case" "${dtypes[@]}" || rc=1
done
# CUDA-graph decode steps (--cuda-graphs on, the default) vs eager, padded and unpadded, on golden fixtures.
for dt in "${dtypes[@]}"; do
  "$bin" graph-check "$root/tests/fixtures" --dtype "$dt" || rc=1
done
# --mem-fraction: far below what the CUDA context alone holds -> one clear error before any request is read.
out=$(echo '{"id": "a", "input_ids": [1, 2]}' | "$bin" score --model "$root/tests/fixtures/qwen3_5_causal_lora/model" \
  --device cuda --mem-fraction 0.001 2>&1)
st=$?
echo "$out" | tail -3
if [ $st -ne 0 ] && echo "$out" | grep -q "does not fit in GPU memory"; then
  echo "[gpu-mem] --mem-fraction 0.001: clear start-up error (exit $st) ok"
else
  echo "[gpu-mem] --mem-fraction 0.001: FAIL (exit $st)"; rc=1
fi
echo "[gpu-checks] overall: $([ $rc = 0 ] && echo OK || echo FAILURES)"
exit $rc
