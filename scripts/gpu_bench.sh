#!/usr/bin/env bash
# Issue 7, item 5 on the GPU machine: builds `hylora` with the CUDA backend (as scripts/gpu_score_checks.sh does),
# then for each CONFIG[:LAYERS] runs `hylora bench` (random weights, --device cuda), the HF transformers + PEFT peer
# (bench/hf_peer.py, same layers, same workload sizes) and the chart (bench/plot_bench.py). Everything goes to
# OUT (default bench/results/<date>-bench-<card>/): per config NAME.md (table + HF comparison), NAME.json,
# NAME.hf.json, NAME.png, and the whole log.
#   scripts/gpu_bench.sh [--deps PREFIX] [--dtype float32|bfloat16] [--out DIR] [--hf-dtype bfloat16|float32]
#                        [--no-hf] [--budget-s S] [--bench-args "..."] CONFIG[:LAYERS]...
# e.g. scripts/gpu_bench.sh --deps /tmp/hydeps bench/configs/qwen3_5_4b.json:8
# --budget-s: configs are not started after this many seconds (the device call's limit); --bench-args: extra
# flags for hylora bench (e.g. "--workloads decode --repeats 10").
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="" dtype=float32 hf_dtype=bfloat16 out="" hf=1 budget=100000 bench_args="" configs=()
while [ $# -gt 0 ]; do
  case $1 in
    --deps) deps=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --hf-dtype) hf_dtype=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-hf) hf=0; shift ;;
    --budget-s) budget=$2; shift 2 ;;
    --bench-args) bench_args=$2; shift 2 ;;
    -*) echo "unknown argument $1"; exit 2 ;;
    *) configs+=("$1"); shift ;;
  esac
done
[ ${#configs[@]} -gt 0 ] || configs=("$root/bench/configs/qwen3_5_4b.json:8")
start=$(date +%s)
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr ' ' '-' | tr -cd 'A-Za-z0-9-')
commit=$(cat "$root/COMMIT" 2>/dev/null || git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
out=${out:-$root/bench/results/$(date -u +%Y-%m-%d)-bench-${card:-gpu}}
mkdir -p "$out"
exec > >(tee "$out/gpu_bench.log") 2>&1
echo "== $(date -u) commit $commit on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
args=()
if [ -n "$deps" ]; then
  export PKG_CONFIG_PATH=$deps/lib/pkgconfig PKG_CONFIG_LIBDIR=$deps/lib/pkgconfig
  export LD_LIBRARY_PATH=$deps/lib:${LD_LIBRARY_PATH:-}
  args+=(-DCMAKE_PREFIX_PATH="$deps" -DPKG_CONFIG_EXECUTABLE="$deps/bin/pkg-config")
fi
build=$root/build-gpu
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
flags=""
g++ -dumpversion 2>/dev/null | grep -qE '^1[3-9]' && flags="-Wno-dangling-reference"  # see gpu_score_checks.sh
cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DHYLORA_BUILD_TESTS=OFF \
  -DCMAKE_CXX_FLAGS="$flags" "${args[@]}" >/dev/null || exit 1
cmake --build "$build" -j "$(nproc)" --target hylora 2>&1 | tail -3 || exit 1
bin=$(find "$build" -name hylora -type f -perm -u+x | head -1)
echo "== built in $(( $(date +%s) - start )) s: $bin"
status=0
for spec in "${configs[@]}"; do
  if [ $(( $(date +%s) - start )) -gt "$budget" ]; then echo "== skipped $spec: over --budget-s $budget"; continue; fi
  config=${spec%%:*}
  layers=""
  [ "$spec" != "$config" ] && layers=${spec##*:}
  name=$(basename "$config" .json)${layers:+-${layers}layers}-$dtype
  echo "== hylora bench $config ${layers:+--layers $layers} ($(( $(date +%s) - start )) s)"
  # shellcheck disable=SC2086
  "$bin" bench --config "$config" --random-weights --device cuda --dtype "$dtype" ${layers:+--layers $layers} \
    --commit "$commit" --out "$out/$name.md" --json "$out/$name.json" $bench_args || { status=1; continue; }
  hf_json=""
  if [ $hf = 1 ]; then
    echo "== HF + PEFT peer ($(( $(date +%s) - start )) s)"
    left=$(( budget - ($(date +%s) - start) - 20 ))
    [ $left -lt 30 ] && left=30
    if python3 "$root/bench/hf_peer.py" --config "$config" --hylora-json "$out/$name.json" --out "$out/$name.hf.json" \
         --dtype "$hf_dtype" --time-budget-s "$left"; then
      hf_json="--hf $out/$name.hf.json"
    else
      status=1
    fi
  fi
  # shellcheck disable=SC2086
  python3 "$root/bench/plot_bench.py" --hylora "$out/$name.json" $hf_json --png "$out/$name.png" \
    --append "$out/$name.md" || status=1
done
echo "== done in $(( $(date +%s) - start )) s, status $status"
exit $status
