#!/usr/bin/env bash
# Installs what hylora needs to build and test on Debian 12 (run as root). Idempotent and quick when done before.
set -euo pipefail
packages=(build-essential cmake pkg-config git libopenblas-dev nlohmann-json3-dev libgtest-dev googletest
          libpcre2-dev libutf8proc-dev libcli11-dev libcpp-httplib-dev nodejs npm
          clang libclang-rt-dev libomp-dev)  # clang + compiler-rt + libomp: the ASan/UBSan build and libFuzzer
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine that has node/npm from elsewhere (not Debian's packages) keeps them.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Node packages for tests, each pinned by its package-lock.json: JS reference implementations for the text front
# end (tools/text_reference) and the OpenAI client that drives `hylora serve` (tools/server_client).
root="$(cd "$(dirname "$0")/.." && pwd)"
for dir in tools/text_reference tools/server_client; do
  if [ ! -d "$root/$dir/node_modules" ]; then
    echo "setup: npm ci in $dir"
    (cd "$root/$dir" && npm ci --no-audit --no-fund >/dev/null)
  fi
done
