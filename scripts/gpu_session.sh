#!/usr/bin/env bash
# One device-tool call that checks the CUDA path end to end: the op checks (scripts/gpu_checks.sh: every kernel
# against double references, memcheck, racecheck) and the whole-model checks (scripts/gpu_score_checks.sh: every
# golden fixture in float32 and bfloat16, serve, --mem-fraction) side by side on the machine's cores.
# Needs the deps bundle (scripts/gpu_deps_bundle.sh) as ./hydeps.tar.xz; logs go to $OUT (default .).
#   bash scripts/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-.}
tar xJf hydeps.tar.xz -C /tmp || exit 1
bash scripts/gpu_checks.sh build-ops > /dev/null 2>&1 &
ops=$!
bash scripts/gpu_score_checks.sh --deps /tmp/hydeps --dtype float32 --dtype bfloat16 --log "$OUT/gpu_score_checks.log"
rc=$?
wait $ops || rc=1
echo "op checks: $(tail -1 "$OUT/gpu-checks.log" 2>/dev/null)"
exit $rc
