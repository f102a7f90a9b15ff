#!/usr/bin/env bash
# Install dlib into a virtual environment: $1 = its pip, $2 = "bin" (default) or "source".
#   source: dlib compiled here against OpenBLAS with -O3 -march=native (needs cmake, g++,
#           libopenblas-dev). The wheel is kept in ~/.cache/faceindex/wheels/<flags>/, so
#           only the first install on a machine compiles (8-20 minutes on 2 cores).
#   bin:    the dlib-bin wheel (no BLAS): installs in seconds. faceindex runs dlib's ResNet and
#           CNN on ONNX Runtime, so dlib itself only runs HOG and the landmarks (BLAS-free).
# docs/BENCHMARKS.md has the measurements behind the default.
set -euo pipefail
pip=$1
mode=${2:-bin}
version=20.0.1
if [ "$mode" = "bin" ]; then
  "$pip" uninstall -q -y dlib 2>/dev/null || true
  exec "$pip" install -q "dlib-bin==${version}.post1"
fi
export CXXFLAGS="${CXXFLAGS:--O3 -march=native}" CFLAGS="${CFLAGS:--O3 -march=native}"
export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
# The wheel depends on the flags and on this CPU (-march=native): key the cache on both.
key=$(printf '%s|%s|%s' "$version" "$CXXFLAGS" "$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)" \
      | sha256sum | cut -c1-16)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/faceindex/wheels/dlib-$key"
if ! ls "$cache"/dlib-${version}-*.whl >/dev/null 2>&1; then
  echo "install-dlib: compiling dlib ${version} against OpenBLAS (first time on this machine:" \
       "several minutes)" >&2
  mkdir -p "$cache"
  "$pip" wheel -q --no-deps --no-binary dlib -w "$cache" "dlib==${version}"
fi
"$pip" uninstall -q -y dlib-bin 2>/dev/null || true
"$pip" install -q --no-deps --force-reinstall "$cache"/dlib-${version}-*.whl
