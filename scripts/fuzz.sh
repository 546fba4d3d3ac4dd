#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ (clang, ASan + UBSan) in build-asan and runs each one for N seconds
# (default 60) on a corpus seeded from tests/fixtures and tests/text. Fails on any crash, leak, timeout, out-of-memory
# or sanitizer report (the input that caused it is kept in build-asan/fuzz/artifacts/). Prints, and writes to
# build-asan/fuzz/results.txt, the executions each harness survived.
#   bash scripts/fuzz.sh [seconds-per-target] [target...]     e.g. bash scripts/fuzz.sh 600 jinja bpe
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=(request_json server_request safetensors config adapter tokenizer_json bpe jinja)
[ $# -gt 0 ] && targets=("$@")
build=${HYLORA_ASAN_BUILD:-build-asan}
jobs=${HYLORA_JOBS:-$(nproc)}

if [ "${HYLORA_FUZZ_NO_BUILD:-0}" != 1 ]; then  # 1: run the harnesses already built
  if [ ! -f "$build/CMakeCache.txt" ] || ! grep -q "HYLORA_FUZZ:BOOL=ON" "$build/CMakeCache.txt"; then
    CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHYLORA_FUZZ=ON -DHYLORA_NO_CUDA=ON >/dev/null
  fi
  cmake --build "$build" -j"$jobs" --target "${targets[@]/#/fuzz_}"
fi

# Seeds: the repository's own inputs, one file each.
seeds="$build/fuzz/seeds"
for t in "${targets[@]}"; do rm -rf "${seeds:?}/$t"; mkdir -p "$seeds/$t"; done
seed_lines() {  # file dir: one seed per line
  local i=0
  while IFS= read -r line; do printf '%s' "$line" > "$2/$(basename "$1").$i"; i=$((i + 1)); done < "$1"
}
u32le() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))"; }
n=0
for t in "${targets[@]}"; do
  d="$seeds/$t"
  case $t in
    request_json)
      for f in tests/text/*.jsonl; do seed_lines "$f" "$d"; done
      printf '{"id": "base", "input_ids": [1, 2, 3], "lora": null}' > "$d/score.0"
      printf '{"id": 7, "input_ids": [4294967296, -1], "lora": "full_r16"}' > "$d/score.1" ;;
    server_request)  # chat bodies (messages, tools, kwargs) and one body of each other endpoint
      seed_lines tests/text/chat_requests.jsonl "$d"
      printf '{"model": "base", "prompt": "hello", "max_tokens": 4, "logprobs": 2, "stop": ["\\n"], "seed": 1}' > "$d/completion"
      printf '{"model": "base:a", "messages": [{"role": "user", "content": "hi"}], "n": 2, "top_p": 0.9, "stream": true, "stream_options": {"include_usage": true}, "chat_template_kwargs": {"enable_thinking": false}}' > "$d/chat"
      printf '{"input_ids": [1, 2, 3], "sampling_params": {"max_new_tokens": 4, "temperature": 0.7, "top_k": 5, "min_p": 0.1, "stop_token_ids": [2]}, "lora_path": "a", "return_logprob": true, "logprob_start_len": 0}' > "$d/generate" ;;
    safetensors)
      find tests/fixtures -name '*.safetensors' -size -64k | while read -r f; do cp "$f" "$d/$((n++)).st"; done ;;
    config)
      find tests/fixtures -name 'config.json' -o -name 'adapter_config.json' | while read -r f; do
        cp "$f" "$d/$((n++)).json"; done ;;
    adapter)
      for a in tests/fixtures/qwen3_5_causal_lora/adapters/*/; do
        c="$a/adapter_config.json"
        { u32le "$(stat -c %s "$c")"; cat "$c" "$a/adapter_model.safetensors"; } > "$d/$(basename "$a")"
      done ;;
    tokenizer_json)
      find tests/fixtures -name 'tokenizer.json' | while read -r f; do cp "$f" "$d/$((n++)).json"; done ;;
    bpe)
      seed_lines tests/text/tokenizer_corpus.jsonl "$d" ;;
    jinja)
      find tests -name '*.jinja' | while read -r f; do cp "$f" "$d/$((n++)).jinja"; done ;;
  esac
done

mkdir -p "$build/fuzz/artifacts"
results="$build/fuzz/results.txt"
status=0
for t in "${targets[@]}"; do
  corpus="$build/fuzz/corpus/$t"
  mkdir -p "$corpus"
  log="$build/fuzz/$t.log"
  case $t in tokenizer_json | adapter | safetensors) max_len=262144 ;; *) max_len=65536 ;; esac
  echo "== fuzz_$t: ${secs}s"
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -max_len="$max_len" \
      -print_final_stats=1 -artifact_prefix="$build/fuzz/artifacts/$t-" "$corpus" "$seeds/$t" > "$log" 2>&1; then
    echo "fuzz_$t FAILED; the end of its log ($log):"
    tail -40 "$log"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  printf '%-16s %12s executions in %ss\n' "$t" "$runs" "$secs" | tee -a "$results"
done
exit $status
