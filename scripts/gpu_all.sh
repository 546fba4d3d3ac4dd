#!/usr/bin/env bash
# Everything the GPU machine checks and measures, in one device-tool call (GPU time is scarce: one machine start):
# the op checks and whole-model checks side by side (scripts/gpu_session.sh), then — alone on the GPU, so that
# nothing else skews the timings — hylora bench beside HF + PEFT (scripts/gpu_bench.sh) for each CONFIG[:LAYERS]
# while time is left. Needs ./hydeps.tar.xz (scripts/gpu_deps_bundle.sh). Logs and results go to $OUT.
#   bash scripts/gpu_all.sh [--budget-s S] [--dtype bfloat16|float32] CONFIG[:LAYERS]...
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-.}
budget=540 dtype=bfloat16 configs=()
while [ $# -gt 0 ]; do
  case $1 in
    --budget-s) budget=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    *) configs+=("$1"); shift ;;
  esac
done
start=$(date +%s)
bash scripts/gpu_session.sh
checks=$?
echo "== checks done in $(( $(date +%s) - start )) s (status $checks)"
left=$(( budget - ($(date +%s) - start) ))
if [ ${#configs[@]} -gt 0 ] && [ $left -gt 60 ]; then
  bash scripts/gpu_bench.sh --deps /tmp/hydeps --dtype "$dtype" --out "$OUT/bench" --budget-s $(( left - 30 )) \
    "${configs[@]}"
  echo "== bench status $?"
fi
echo "== all done in $(( $(date +%s) - start )) s"
exit $checks
