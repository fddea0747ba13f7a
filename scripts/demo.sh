#!/usr/bin/env bash
# The main job on the default real models: pull target and drafter, show what they hold, and answer
# a coding question with the target on the CPU. Speculative prefill joins this demo with its issue.
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
echo "== sift run --chat on the target (CPU, greedy)"
"$SIFT" run -m "$target_path" --chat --temp 0 -n 96 \
  -p "Write a Python function that checks whether a number is prime."
echo
echo "== speculative prefill (--drafter, --pflash) arrives with its issue."
