#!/usr/bin/env bash
# The main job on the default real models: pull target and drafter, show what they hold.
# Inference (speculative prefill) joins this demo with the engine issues.
set -euo pipefail
SIFT=${1:-build/sift}
TARGET=qwen2.5-coder-1.5b
DRAFTER=qwen2.5-coder-0.5b

echo "== pulling the default models (target $TARGET, drafter $DRAFTER)"
target_path=$("$SIFT" models pull "$TARGET")
drafter_path=$("$SIFT" models pull "$DRAFTER")

for path in "$target_path" "$drafter_path"; do
  echo
  echo "== sift inspect $path"
  "$SIFT" inspect "$path" | sed -n '1,/^hyperparameters/p'
done
echo
echo "== models are installed; the inference demo (sift run with --pflash) arrives with the engine."
