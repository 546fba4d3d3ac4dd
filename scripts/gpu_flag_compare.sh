#!/usr/bin/env bash
# A/B of one hylora flag on the GPU: runs `hylora bench` on CONFIG[:LAYERS] once per VALUE of FLAG (same seed, same
# workloads, bf16) and prints, per workload, the median step time of each value and its ratio to the first. Expects
# build-gpu/src/hylora (built by scripts/gpu_score_checks.sh or gpu_bench.sh) and the deps in LD_LIBRARY_PATH.
# Tables go to OUT (default .) as flag-FLAG-VALUE.md / .json.
#   bash scripts/gpu_flag_compare.sh CONFIG[:LAYERS] WORKLOADS FLAG VALUE [VALUE...]
# e.g. bash scripts/gpu_flag_compare.sh bench/configs/qwen3_5_4b.json:8 decode --lora-overlap on off
set -uo pipefail
cd "$(dirname "$0")/.."
spec=$1 workloads=$2 flag=$3
shift 3
out=${OUT:-.}
config=${spec%%:*} layers=${spec##*:}
[ "$layers" = "$spec" ] && layers=""
jsons=()
for v in "$@"; do
  name="$out/$(basename "$config" .json)${layers:+-${layers}layers}-flag${flag}-$v"
  build-gpu/src/hylora bench --config "$config" --random-weights --device cuda --dtype bfloat16 \
    ${layers:+--layers $layers} --workloads "$workloads" "$flag" "$v" --out "$name.md" --json "$name.json" \
    > /dev/null || exit 1
  jsons+=("$v=$name.json")
done
python3 - "$flag" "${jsons[@]}" <<'EOF'
import json, sys
flag, runs = sys.argv[1], [a.split('=', 1) for a in sys.argv[2:]]
tables = [(v, {r['name']: r['ms_median'] for r in json.load(open(p))['workloads']}) for v, p in runs]
print(f"| workload | " + " | ".join(f"{flag} {v} (ms)" for v, _ in tables) + " | ratios to the first |")
print("|---" * (len(tables) + 2) + "|")
for name, first in tables[0][1].items():
    ms = [t.get(name) for _, t in tables]
    ratios = " / ".join(f"{m / first:.3f}" if m else "-" for m in ms[1:])
    print(f"| {name} | " + " | ".join(f"{m:.3f}" if m else "-" for m in ms) + f" | {ratios} |")
EOF
