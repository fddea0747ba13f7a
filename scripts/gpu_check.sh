#!/usr/bin/env bash
# Runs on the GPU machine from the repository root, over binaries bundled here with
# scripts/device_bundle.sh into .devcarry/ (see docs/BENCHMARKS.md for how it is called):
#   CUDA op parity and end-to-end model parity (test_cuda), the op benches, and `sift bench` on
#   synthetic models of real shapes made there with `sift mkmodel`.
# Logs go to $OUT (the device tool brings them back); the last lines are a summary.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.devcarry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export SIFT_TEST_DATA=$PWD/tests/data
B=$PWD/.devcarry/bin
STAGES=${STAGES:-"parity bench"}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

if [[ $STAGES == *parity* ]]; then
  "$B/test_cuda" ${GTEST_FILTER:+--gtest_filter=$GTEST_FILTER} >"$OUT/test_cuda.log" 2>&1
  echo "test_cuda exit $?" >"$OUT/summary.txt"
  grep -E "^\[  (PASSED|FAILED) |^  [a-z].*max rel|FAILED  \]" "$OUT/test_cuda.log" | head -60 >>"$OUT/summary.txt"
  cat "$OUT/summary.txt"
fi
if [[ $STAGES == *opbench* ]]; then
  for b in "$B"/bench_cuda_*; do
    "$b" --benchmark_min_time=0.2 >"$OUT/$(basename "$b").log" 2>&1
    tail -25 "$OUT/$(basename "$b").log"
  done
fi
M=/tmp/sift_models
mkdir -p $M
if [[ $STAGES == *bench* || $STAGES == *pflash* || $STAGES == *gemmncu* ]]; then
  [[ -f $M/q8b.gguf ]] || "$B/sift" mkmodel --arch qwen3 --preset 8b --type q4_k_m -o $M/q8b.gguf >/dev/null 2>&1
  [[ -f $M/q06.gguf ]] || "$B/sift" mkmodel --arch qwen3 --preset 0.6b --type bf16 -o $M/q06.gguf >/dev/null 2>&1
  # TARGET=q32b: the 32B shape (about 20 GB, a few minutes to write).
  [[ ${TARGET:-q8b} != q32b || -f $M/q32b.gguf ]] || "$B/sift" mkmodel --arch qwen3 --preset 32b --type q4_k_m -o $M/q32b.gguf >/dev/null 2>&1
fi
if [[ $STAGES == *bench* ]]; then
  "$B/sift" bench -m $M/q8b.gguf -p ${PP:-512,8192,32768} -n 128 -r ${REPS:-2} --peak-tflops 780 \
    2>&1 | tee "$OUT/bench_8b.md"
  "$B/sift" bench -m $M/q06.gguf -p 8192 -n 128 -r ${REPS:-2} --peak-tflops 780 2>&1 | tee "$OUT/bench_06.md"
fi
if [[ $STAGES == *pflash* ]]; then
  # Speculative prefill on synthetic models (random weights: timings only, no quality): a prompt
  # of about N tokens, dense target vs drafter + compressed target at keep 0.05. BSA=off runs
  # the drafter dense; BSA_ALPHA sets its block-sparse threshold.
  for n in ${PFLASH_CTX:-32768}; do
    # The synthetic vocabulary spells "wNNNN" in about 5.45 tokens.
    python3 -c "import random; random.seed(1); print(' '.join('w%d' % random.randrange(20000) for _ in range(int($n / 5.45))))" >/tmp/p$n.txt
    # DENSE=0 skips the dense baseline (when it already ran in this call).
    [[ ${DENSE:-1} == 1 ]] && "$B/sift" run -m $M/${TARGET:-q8b}.gguf -f /tmp/p$n.txt -p "Which word came first?" -n 4 --temp 0 -c $((n + 1024)) -u ${UBATCH:-4096} --json \
      >"$OUT/dense_$n.json" 2>"$OUT/dense_$n.err"
    # SCORE_LAYERS=N: the drafter's early exit after N layers.
    "$B/sift" run -m $M/${TARGET:-q8b}.gguf --drafter $M/q06.gguf --pflash on --pflash-threshold 0 --keep-ratio 0.05 \
      --bsa ${BSA:-on} --bsa-alpha ${BSA_ALPHA:-0.12} --score-layers ${SCORE_LAYERS:-0} ${PFLASH_ARGS:-} \
      -f /tmp/p$n.txt -p "Which word came first?" -n 4 --temp 0 -c $((n + 1024)) -u ${UBATCH:-4096} --json \
      >"$OUT/pflash_$n.json" 2>"$OUT/pflash_$n.err"
    python3 - "$OUT/dense_$n.json" "$OUT/pflash_$n.json" $n <<'PY'
import json, sys
import os
d = json.load(open(sys.argv[1])) if os.path.exists(sys.argv[1]) else {"timings": {"prompt_tokens": 0, "ttft_seconds": 0}}
p = json.load(open(sys.argv[2])); n = sys.argv[3]
pf = p["pflash"]
print(f"{os.environ.get('TARGET', 'q8b')} bsa {os.environ.get('BSA', 'on')} alpha {os.environ.get('BSA_ALPHA', '0.12')} ctx {n}: dense prompt {d['timings']['prompt_tokens']} TTFT {d['timings']['ttft_seconds']:.3f} s | "
      f"pflash kept {pf['kept_tokens']}/{pf['target_tokens']} TTFT {pf['ttft_seconds']:.3f} s "
      f"(drafter {pf['drafter_seconds']:.3f} s, bsa layers {pf.get('bsa_layers', 0)}, select {pf['select_seconds']:.3f}, map {pf['map_seconds']:.3f}, "
      f"target prefill {p['timings']['prefill_seconds']:.3f} s)")
PY
  done
fi
if [[ $STAGES == *gemmncu* ]]; then
  # The drafter's GEMM kernels as cuBLAS picks them inside a real forward (names and durations;
  # ncu serializes kernels and leaves the clocks alone): the first layers of a 32K prompt.
  n=32768
  python3 -c "import random; random.seed(1); print(' '.join('w%d' % random.randrange(20000) for _ in range(int($n / 5.45))))" >/tmp/p$n.txt
  ncu --clock-control none --metrics gpu__time_duration.sum -k regex:'gemm|Kernel|cutlass|convert|bf16' \
    --launch-count ${NCU_COUNT:-40} "$B/sift" run -m $M/q06.gguf -f /tmp/p$n.txt -n 1 --temp 0 \
    -c $((n + 1024)) -u 16384 >"$OUT/gemm_ncu.log" 2>&1
  grep -E "^  [a-zA-Z_].*\(|gpu__time_duration" "$OUT/gemm_ncu.log" | paste - - | \
    sed -E 's/ +/ /g' | cut -c1-220 | head -${NCU_COUNT:-40}
fi
if [[ $STAGES == *decodencu* ]]; then
  # Every kernel of a few decode steps (graph nodes one by one, serialized, caches and clocks
  # left alone), summed per kernel name: where a token's time goes beyond its bytes.
  for m in ${DECODE_MODELS:-q8b q06}; do
    ncu --clock-control none --cache-control none --graph-profiling node --csv \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum "$B/sift" run -m $M/$m.gguf \
      -p "Tell me a story about a cat" -n ${DECODE_STEPS:-4} --temp 0 >"$OUT/decode_ncu_$m.csv" 2>"$OUT/decode_ncu_$m.err"
    python3 scripts/ncu_summary.py "$OUT/decode_ncu_$m.csv" ${DECODE_STEPS:-4} | tee "$OUT/decode_ncu_$m.txt"
  done
fi
if [[ $STAGES == *matvecncu* ]]; then
  # Where the decode matvecs stall: ncu's detail sections for one launch of each
  # bench_cuda_matmul_bench case named in MATVEC_CASES (regex on the benchmark name), all in
  # matvec_ncu.txt.
  for c in ${MATVEC_CASES:-"q6_k/ffn_down_12288x4096/T=1/" "q4_k/ffn_up_4096x12288/T=1/"}; do
    echo "=== $c" >>"$OUT/matvec_ncu.txt"
    ncu --clock-control none --launch-skip 3 --launch-count 1 -k regex:matvec \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
      --section SchedulerStats --section Occupancy --section LaunchStats --section InstructionStats \
      "$B/bench_cuda_matmul_bench" --benchmark_filter="Matvec/$c" --benchmark_min_time=0.01 \
      >>"$OUT/matvec_ncu.txt" 2>&1
  done
  grep -E "^===|Duration|Memory Throughput|Issue Slots Busy|Warp Cycles Per Issued|Achieved Occupancy|Registers Per|No Eligible|Eligible Warps|Executed Ipc A|L1/TEX Hit|L2 Hit|Theoretical Occ|Block Limit" "$OUT/matvec_ncu.txt" | head -80
fi
