#!/usr/bin/env bash
# Builds bench_kernels at a commit and stages it as one variant of kernels/bench/ab_device.sh:
#   scripts/stage-ab.sh VARIANT COMMIT [BENCH_KERNELS ARGS...]
# e.g. scripts/stage-ab.sh oldg 4001c34 --l2=rotate --graph; scripts/stage-ab.sh newg HEAD --l2=rotate --graph
# The commit is built in a git worktree under /tmp (only the bench_kernels target, CUDA for sm_90a),
# so the working tree and ./build stay as they are; the binary (stripped) goes to .carry/ab/VARIANT/
# with its args file, and libbenchmark to .carry/kernels/. Then scripts/carry-pack.sh pack.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 VARIANT COMMIT [BENCH_KERNELS ARGS...]" >&2; exit 2; }
variant=$1 commit=$(git rev-parse --verify "$2^{commit}")
shift 2
export PATH="$PWD/.venv/bin:$PATH"
tree=/tmp/qbench-ab-${commit:0:12}
[ -d "$tree" ] || git worktree add --detach "$tree" "$commit" > /dev/null
if [ ! -f "$tree/build/build.ninja" ]; then
  torch_dir=$(.venv/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
  meson setup "$tree/build" "$tree" -Dtorch_dir="$torch_dir" > /dev/null
fi
ninja -C "$tree/build" kernels/bench/bench_kernels > /dev/null
mkdir -p ".carry/ab/$variant" .carry/kernels
cp "$tree/build/kernels/bench/bench_kernels" ".carry/ab/$variant/"
strip ".carry/ab/$variant/bench_kernels"
echo "$*" > ".carry/ab/$variant/args"
lib=$(ldd "$tree/build/kernels/bench/bench_kernels" | awk '/libbenchmark/ {print $3}')
[ -n "$lib" ] && cp -L "$lib" .carry/kernels/
echo "stage-ab: .carry/ab/$variant = bench_kernels at ${commit:0:12} ($*)"
