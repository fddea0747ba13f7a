#!/usr/bin/env bash
# Runs the GGUF libFuzzer target for a while, seeded with small valid GGUF files.
#
#   scripts/fuzz.sh FUZZ_BINARY SECONDS        e.g. scripts/fuzz.sh build-fuzz/fuzz_gguf 600
#   FUZZ_FORKS=8 scripts/fuzz.sh ...           runs 8 fuzzing processes (libFuzzer -fork)
#
# `make fuzz` builds it; -DSIFT_FUZZ=ON instruments every library, not only the target (flags on the fuzz target alone leave
# the reader without coverage feedback):
#   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DSIFT_FUZZ=ON -DSIFT_CUDA=OFF -DSIFT_TESTS=OFF
#   cmake --build build-fuzz --target fuzz_gguf
# Corpus and crashes go to fuzz/corpus/ and fuzz/artifacts/ (both gitignored).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 FUZZ_BINARY SECONDS" >&2
  exit 2
fi
binary=$(realpath "$1")
seconds=$2
cd "$(dirname "$0")/.."

seeds=fuzz/corpus/gguf-seeds
corpus=fuzz/corpus/gguf
artifacts=fuzz/artifacts/
mkdir -p "$seeds" "$corpus" "$artifacts"

# Seeds: the committed fixtures (written by the Python gguf package) ...
for f in tests/data/gguf/*.gguf; do
  [ -e "$f" ] || continue
  if [ "$(stat -c %s "$f")" -le 65536 ]; then cp "$f" "$seeds/"; fi
done
# ... and minimal headers: v3 and v2 with no tensors and no metadata, and one u32 alignment kv.
printf 'GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' \
  >"$seeds/empty_v3.gguf"
printf 'GGUF\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' \
  >"$seeds/empty_v2.gguf"
{
  printf 'GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00'
  printf '\x11\x00\x00\x00\x00\x00\x00\x00general.alignment\x04\x00\x00\x00\x40\x00\x00\x00'
} >"$seeds/alignment_only.gguf"

# Tokens that are hard to find by mutation alone.
dict=fuzz/corpus/gguf.dict
cat >"$dict" <<'DICT'
"GGUF"
"general.alignment"
"\x03\x00\x00\x00"
"\x02\x00\x00\x00"
"\x08\x00\x00\x00"
"\x09\x00\x00\x00"
"\x00\x00\x00\x00\x00\x00\x00\x80"
"\xff\xff\xff\xff\xff\xff\xff\xff"
"\x20\x00\x00\x00"
"\x40\x00\x00\x00"
DICT

args=(-max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048
      -dict="$dict" -artifact_prefix="$artifacts" -print_final_stats=1)
if [ -n "${FUZZ_FORKS:-}" ]; then args+=(-fork="$FUZZ_FORKS" -ignore_crashes=0); fi
echo "fuzz: $binary for ${seconds}s, corpus $corpus, seeds $seeds" >&2
exec "$binary" "${args[@]}" "$corpus" "$seeds"
