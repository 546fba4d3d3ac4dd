#!/usr/bin/env bash
# Sets up (Debian packages), builds, and runs the main job on the bundled tiny model: score token sequences with
# the base model and with a LoRA adapter, mixed in one batch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
model=tests/fixtures/qwen3_5_causal_bf16/model
echo "== hylora score --model $model < examples/requests.jsonl"
./build/src/hylora score --model "$model" < examples/requests.jsonl
