#!/usr/bin/env bash
# Bundles built binaries with the shared libraries they need that a bare GPU image may lack
# (fmt, pcre2, libzip, OpenSSL, ...; not glibc, not the CUDA runtime libraries, which the GPU
# machine has), so binaries built here run there:
#   scripts/device_bundle.sh BUNDLE_DIR BINARY...
# then on the GPU machine: LD_LIBRARY_PATH=BUNDLE_DIR/lib BUNDLE_DIR/bin/NAME
#   scripts/device_bundle.sh --xz BUNDLE_DIR BINARY...
# strips the binaries and packs bin/ and lib/ into BUNDLE_DIR/carry.tar.xz (sift, test_cuda and
# a bench are ~60 MB stripped, past the device's 64 MiB per call with the working tree; packed,
# ~12 MB); on the GPU machine `bash BUNDLE_DIR/unpack.sh` first puts bin/ and lib/ back.
set -euo pipefail
xz=0
if [[ ${1:-} == --xz ]]; then
  xz=1
  shift
fi
out=$1
shift
mkdir -p "$out/bin" "$out/lib"
for bin in "$@"; do
  cp "$bin" "$out/bin/"
  ldd "$bin" | awk '/=> \//{print $3}' | while read -r lib; do
    case $(basename "$lib") in
      libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libcuda.so*|libcudart.so*|libcublas*.so*|libstdc++.so*|libgcc_s.so*) ;;
      *) cp -L "$lib" "$out/lib/" ;;
    esac
  done
done
if [[ $xz == 1 ]]; then
  strip --strip-all "$out"/bin/*
  tar -C "$out" -cJf "$out/carry.tar.xz" bin lib
  rm -rf "$out/bin" "$out/lib"
  cat >"$out/unpack.sh" <<'EOS'
d=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/sift_bundle && tar -C /tmp/sift_bundle -xJf "$d/carry.tar.xz"
ln -sfn /tmp/sift_bundle/bin "$d/bin" && ln -sfn /tmp/sift_bundle/lib "$d/lib"
EOS
fi
