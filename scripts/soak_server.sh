#!/usr/bin/env bash
# Soak test of `hylora serve` (not part of CI): 256 streaming clients, 16 adapters over 8 slots, an adapter loaded
# or unloaded every second, for SOAK_SECONDS (default 60). Prints a JSON summary; exit 1 on any lost or wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target hylora
export OMP_WAIT_POLICY=passive HYLORA_BINARY="$PWD/build/src/hylora" HYLORA_REPO="$PWD"
node tools/server_client/soak.mjs
