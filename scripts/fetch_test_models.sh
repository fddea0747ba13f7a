#!/usr/bin/env bash
# Pulls the real models the test suite checks against (tokenizers, logits) into the models cache
# ($SIFT_MODELS or ~/.cache/sift/models, outside the repo). A second run is a no-op.
set -euo pipefail
SIFT=${1:-build/sift}
for name in smollm2-135m qwen2.5-coder-0.5b gemma3-270m; do
  "$SIFT" models pull "$name" >/dev/null
done
