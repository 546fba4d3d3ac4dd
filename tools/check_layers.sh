#!/usr/bin/env bash
# Fails when a source file includes a header of a layer above its own (docs/design.md). Usage: check_layers.sh SRC_DIR
set -euo pipefail
src="${1:-$(dirname "$0")/../src}"
# layer -> the layers its files may include (itself included).
declare -A allowed=(
  [core]="core"
  [io]="core io"
  [ops]="core ops"
  [batch]="core ops batch"
  [kv]="core kv"
  [models]="core io ops batch kv models"
  [dist]="core io ops models dist"
  [lora]="core io ops batch kv models dist lora"
  [engine]="core io ops batch kv models dist lora engine"
  [text]="core text"
  [scheduler]="core io ops batch kv models dist lora engine text scheduler"
  [server]="core io ops batch kv models dist lora engine text scheduler server"
  [parallel]="core ops parallel"
  [cli]="core io ops batch kv models dist lora engine text scheduler server parallel cli"
)
status=0
while IFS= read -r -d '' f; do
  rel="${f#"$src"/}"
  layer="${rel%%/*}"
  [ -n "${allowed[$layer]+x}" ] || { echo "check_layers: $rel is in an unknown layer '$layer' (add it to tools/check_layers.sh)"; status=1; continue; }
  while IFS= read -r inc; do
    target="${inc%%/*}"
    [ -n "${allowed[$target]+x}" ] || continue  # not one of ours
    if [[ " ${allowed[$layer]} " != *" $target "* ]]; then
      echo "check_layers: $rel includes \"$inc\": layer '$layer' may include only: ${allowed[$layer]}"
      status=1
    fi
  done < <(grep -oE '^#include "[^"]+"' "$f" | sed -E 's/#include "([^"]+)"/\1/')
done < <(find "$src" -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0)
exit $status
