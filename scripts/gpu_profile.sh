#!/usr/bin/env bash
# Where a step's GPU time goes: runs `hylora bench` under Nsight Compute with only WORKLOAD's timed steps recorded
# (bench --profile-workload brackets them with cudaProfilerStart/Stop; graphs off so every kernel is seen), and
# prints the kernels by total time (scripts/ncu_kernel_table.py). Expects build-gpu/src/hylora (built by
# scripts/gpu_score_checks.sh or gpu_bench.sh) and the deps in LD_LIBRARY_PATH.
#   bash scripts/gpu_profile.sh CONFIG[:LAYERS] WORKLOAD [--dtype bfloat16] [--repeats N] [--out FILE]
set -uo pipefail
cd "$(dirname "$0")/.."
spec=$1 workload=$2
shift 2
dtype=bfloat16 repeats=2 out=""
while [ $# -gt 0 ]; do
  case $1 in
    --dtype) dtype=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
done
config=${spec%%:*} layers=${spec##*:}
[ "$layers" = "$spec" ] && layers=""
csv=$(mktemp)
ncu --profile-from-start off --metrics gpu__time_duration.sum --csv --page raw \
  build-gpu/src/hylora bench --config "$config" --random-weights --device cuda --dtype "$dtype" \
  ${layers:+--layers $layers} --workloads "$workload" --warmup 1 --repeats "$repeats" --cuda-graphs off \
  --copy-mib 64 --gemm-n 2048 --profile-workload "$workload" > "$csv" 2>/dev/null
rc=$?
python3 scripts/ncu_kernel_table.py "$csv" --steps "$repeats" \
  --title "$(basename "$config" .json)${layers:+ ($layers layers)} $workload $dtype" ${out:+--out "$out"}
rm -f "$csv"
exit $rc
