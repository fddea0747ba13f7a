#!/usr/bin/env bash
# Real-model parity: sift's exact path (F32 matmuls on dequantized weights, F32 KV cache) against
# transformers loading the same GGUF in float32 (scripts/ref_logits.py), last-position logits of a
# few prompts per model, plus the greedy continuation of each side.
#
#   scripts/real_parity.sh [OUT_DIR]     (needs the oracle venv: requirements-oracle.txt;
#                                         PY=/path/to/python to choose it)
# Prints one line per (model, prompt): max relative error, top-1 agreement, greedy tokens equal.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv-oracle/bin/python}
SIFT=${SIFT:-build/sift}
OUT=${1:-/tmp/sift_real_parity}
MODELS=${SIFT_MODELS:-$HOME/.cache/sift/models}
N=${N_PREDICT:-16}
mkdir -p "$OUT"

prompts=(
  "plain|The history of the printing press begins in"
  "code|def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
  "chat|What is the capital of France? Answer in one word."
)

run_case() {  # model_file label kind text
  local model=$MODELS/$1 dir=$OUT/$2 kind=$3 text
  text=$(printf '%b' "$4")
  mkdir -p "$dir"
  local chat=()
  [[ $kind == chat ]] && chat=(--chat)
  # The reference is slow (transformers dequantizes the whole GGUF): reuse it unless FORCE=1.
  if [[ ! -f $dir/continuation.json || -n ${FORCE:-} ]]; then
    "$PY" scripts/ref_logits.py --model "$model" --prompt "$text" "${chat[@]}" --n-predict "$N" \
      --ignore-eos --out "$dir" >"$dir/ref.log" 2>&1
  fi
  "$SIFT" run -m "$model" -p "$text" "${chat[@]}" --exact --cache-type f32 -n 0 \
    --dump-logits "$dir/ours.bin" >/dev/null 2>"$dir/ours.log"
  "$SIFT" run -m "$model" -p "$text" "${chat[@]}" --exact --cache-type f32 -n "$N" --ignore-eos --temp 0 \
    --json 2>/dev/null >"$dir/ours.json"
  "$PY" scripts/ref_logits.py --compare "$dir/ours.bin" --out "$dir" --json >"$dir/compare.json"
  "$PY" - "$dir" "$2" <<'PYEOF'
import json, sys
d, label = sys.argv[1], sys.argv[2]
c = json.load(open(f"{d}/compare.json"))
ref = json.load(open(f"{d}/continuation.json"))["ids"]
ours = json.load(open(f"{d}/ours.json"))["tokens"]
same = 0
for a, b in zip(ref, ours):
    if a != b:
        break
    same += 1
print(f"{label:32s} max_rel {c['max_rel_err']:.2e}  top1 {'yes' if c['top1_agree'] == 1 else 'NO'}"
      f"  greedy {same}/{len(ref)} tokens equal")
PYEOF
}

# PARITY_MODELS="a.gguf b.gguf" limits the run.
for model in ${PARITY_MODELS:-qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \
             qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf smollm2-135m-instruct-q4_1.gguf \
             gemma-3-270m-q4_k_m.gguf}; do
  [[ -f $MODELS/$model ]] || { echo "skip $model (not installed)"; continue; }
  for p in "${prompts[@]}"; do
    kind=${p%%|*}
    if [[ $kind == chat && $model == gemma-3-270m* ]]; then continue; fi  # base model, no template
    run_case "$model" "${model%.gguf}/$kind" "$kind" "${p#*|}"
  done
done
