#!/usr/bin/env bash
# Copies the prebuilt kernel test/benchmark binaries (build dir $1, default build-kernels) and the
# libbenchmark they link into .carry/kernels, for kernels/bench/run_device.sh on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
b=${1:-build-kernels}
ninja -C "$b" kernels/bench/bench_kernels kernels/bench/pipe_probe tests/kernels/test_w6_kernels tests/kernels/test_w6_ref > /dev/null
mkdir -p .carry/kernels
cp "$b/kernels/bench/bench_kernels" "$b/tests/kernels/test_w6_kernels" "$b/tests/kernels/test_w6_ref" .carry/kernels/
# The SM-level probe of the prefill promotion (docs/kernels.md), when this build has it.
[ -x "$b/kernels/bench/pipe_probe" ] && cp "$b/kernels/bench/pipe_probe" .carry/kernels/
lib=$(ldd "$b/kernels/bench/bench_kernels" | awk '/libbenchmark/ {print $3}')
[ -n "$lib" ] && cp -L "$lib" .carry/kernels/
# The adapters' test (LibTorch) when it is built: its yaml-cpp soname may differ on the GPU machine.
if [ -x "$b/tests/backends/test_backends" ]; then
  cp "$b/tests/backends/test_backends" .carry/kernels/
  yaml=$(ldd "$b/tests/backends/test_backends" | awk '/libyaml-cpp/ {print $3}')
  [ -n "$yaml" ] && cp -L "$yaml" .carry/kernels/
fi
du -sh .carry/kernels
