#!/usr/bin/env bash
# One device-tool call for a kernel change: builds the CUDA op checks (tests/cuda) and `hylora` side by side, runs
# the named check sections with their own timings and under compute-sanitizer memcheck + racecheck (small shapes),
# then `hylora bench` on the given configs (scripts/gpu_bench.sh, no HF peer). Needs ./hydeps.tar.xz
# (scripts/gpu_deps_bundle.sh). Logs: $OUT/sections.log and $OUT/bench/.
#   bash scripts/gpu_section_bench.sh --sections "sampling lora" [--dtype bfloat16] [--bench-args "..."] CONFIG[:LAYERS]...
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-.}
sections="" dtype=bfloat16 bench_args="" configs=()
while [ $# -gt 0 ]; do
  case $1 in
    --sections) sections=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --bench-args) bench_args=$2; shift 2 ;;
    -*) echo "unknown argument $1"; exit 2 ;;
    *) configs+=("$1"); shift ;;
  esac
done
tar xJf hydeps.tar.xz -C /tmp || exit 1
export PKG_CONFIG_PATH=/tmp/hydeps/lib/pkgconfig PKG_CONFIG_LIBDIR=/tmp/hydeps/lib/pkgconfig
export LD_LIBRARY_PATH=/tmp/hydeps/lib:${LD_LIBRARY_PATH:-}
log=$OUT/sections.log
{ cmake -S tests/cuda -B build-ops -DCMAKE_BUILD_TYPE=Release > /dev/null && cmake --build build-ops -j8 2>&1 | grep -E "error" ; } > "$log" 2>&1 &
ops=$!
# hylora's build (gpu_bench.sh's own commands, so that its build step below finds everything built)
flags=""
g++ -dumpversion 2>/dev/null | grep -qE '^1[3-9]' && flags="-Wno-dangling-reference"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DHYLORA_BUILD_TESTS=OFF -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_PREFIX_PATH=/tmp/hydeps -DPKG_CONFIG_EXECUTABLE=/tmp/hydeps/bin/pkg-config > /dev/null &&
  cmake --build build-gpu -j 8 --target hylora 2>&1 | tail -2 &
main=$!
wait $ops
rc=0
bin=build-ops/hylora_cuda_checks
[ -x $bin ] || { echo "op checks: BUILD FAILED" | tee -a "$log"; rc=1; }
for s in $sections; do
  [ -x $bin ] || break
  echo "## section $s (--bench)" >> "$log"
  $bin --only "$s" --bench >> "$log" 2>&1 || rc=1
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 3 $bin --only "$s" --small 2>&1 | grep -vE "^PASS " | tail -6 >> "$log"
    st=${PIPESTATUS[0]}
    echo "compute-sanitizer $tool ($s) exit status: $st" >> "$log"
    [ "$st" = 0 ] || rc=1
  done
done
wait $main
if [ ${#configs[@]} -gt 0 ]; then
  bash scripts/gpu_bench.sh --deps /tmp/hydeps --dtype "$dtype" --no-hf --out "$OUT/bench" --bench-args "$bench_args" \
    "${configs[@]}" > /dev/null 2>&1 || rc=1
fi
grep -E "^(FAIL|TIME)|exit status|failed|passed|BUILD" "$log" | tail -60
for f in "$OUT"/bench/*.md; do [ -f "$f" ] && head -30 "$f"; done
exit $rc
