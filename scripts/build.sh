#!/usr/bin/env bash
# Configures and builds gliomagrade (Release with asserts) into ./build. Re-running rebuilds only
# what changed. Needs the packages from scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "build: ok ($(pwd)/build/gliomagrade)"
