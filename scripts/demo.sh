#!/usr/bin/env bash
# Sets up (Debian packages), builds, and runs the main job:
# 1. `hylora serve` on the bundled demo model (examples/demo_model: a tiny Qwen3.5 trained to COPY a short string,
#    plus two PEFT LoRA adapters trained to REVERSE and to SORT it; tools/demo/train_demo.py), and the same chat
#    message sent to the base model and to each adapter: each answers with its own task.
# 2. The scoring path on the random fixture model (tests/fixtures/qwen3_5_causal_bf16): render a chat, tokenize it,
#    and score it with the base model and two adapters, all three requests in one mixed batch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
export OMP_WAIT_POLICY=passive
hylora=./build/src/hylora

demo=examples/demo_model
echo "== hylora serve --model $demo/model --lora reverse=... --lora sort=..."
"$hylora" serve --model "$demo/model" --lora reverse="$demo/adapters/reverse" --lora sort="$demo/adapters/sort" \
    --port 0 > /tmp/hylora-demo-serve.out 2> /tmp/hylora-demo-serve.err &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q '^listening on ' /tmp/hylora-demo-serve.out 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' /tmp/hylora-demo-serve.out)
[ -n "$url" ] || { cat /tmp/hylora-demo-serve.err; exit 1; }
echo "   $(cat /tmp/hylora-demo-serve.out)"
for word in hylora banana; do
  echo "== POST $url/v1/chat/completions  {\"messages\": [{\"role\": \"user\", \"content\": \"$word\"}]}"
  node tools/demo/ask.mjs "$url" "$word" demo_model reverse sort
done
kill $server; wait $server 2>/dev/null || true; trap - EXIT
echo
model=tests/fixtures/qwen3_5_causal_bf16/model
adapters=tests/fixtures/qwen3_5_causal_lora/adapters

chat='{"messages": [{"role": "user", "content": "What does hylora serve?"}, {"role": "assistant", "content": "Many LoRA adapters over one base model."}]}'
echo "== chat request: $chat"
text_line=$(echo "$chat" | "$hylora" chat-template --model "$model")
echo "== hylora chat-template: $text_line"
ids_line=$(echo "$text_line" | "$hylora" tokenize --model "$model")
echo "== hylora tokenize: $ids_line"
ids=$(echo "$ids_line" | sed -E 's/.*"ids":\[([^]]*)\].*/\1/')

requests=$(printf '{"id": "base", "input_ids": [%s], "lora": null}\n{"id": "full_r16", "input_ids": [%s], "lora": "full_r16"}\n{"id": "mixed_r4", "input_ids": [%s], "lora": "mixed_r4"}\n' "$ids" "$ids" "$ids")
echo "== hylora score (base + 2 adapters in one batch); total log-probability per request:"
echo "$requests" | "$hylora" score --model "$model" --lora full_r16="$adapters/full_r16" \
    --lora mixed_r4="$adapters/mixed_r4" --max-lora-rank 16 --max-loras-per-batch 2 \
  | awk -F'"logprobs":\\[' '{ id = $1; sub(/.*"id":"/, "", id); sub(/".*/, "", id);
                              n = split($2, v, ","); s = 0; for (i = 1; i <= n; i++) s += v[i];
                              printf "   %-9s %3d tokens scored, sum logprob = %9.4f\n", id, n, s }'
