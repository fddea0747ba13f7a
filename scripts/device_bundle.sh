#!/usr/bin/env bash
# Bundles built binaries with the shared libraries they need that a bare GPU image may lack
# (fmt, pcre2, libzip, OpenSSL, ...; not glibc, not the CUDA runtime libraries, which the GPU
# machine has), so binaries built here run there:
#   scripts/device_bundle.sh BUNDLE_DIR BINARY...
# then on the GPU machine: LD_LIBRARY_PATH=BUNDLE_DIR/lib BUNDLE_DIR/bin/NAME
set -euo pipefail
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
