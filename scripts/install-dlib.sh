#!/usr/bin/env bash
# Install dlib into a virtual environment: $1 = its pip, $2 = "source" or "bin".
#   source: dlib 20.0.1 compiled here against OpenBLAS (needs cmake, g++, libopenblas-dev).
#           pip caches the built wheel, so only the first install on a machine compiles.
#   bin:    the dlib-bin wheel (no BLAS): installs in seconds, descriptors ~6x slower.
set -euo pipefail
pip=$1
mode=${2:-source}
if [ "$mode" = "bin" ]; then
  exec "$pip" install -q "dlib-bin==20.0.1.post1"
fi
export CXXFLAGS="${CXXFLAGS:--O3 -march=native}" CFLAGS="${CFLAGS:--O3 -march=native}"
# Build jobs: one per core (dlib's setup.py reads this).
export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
echo "install-dlib: building dlib from source against OpenBLAS (first time: several minutes)" >&2
"$pip" install -q "dlib==20.0.1"
