#!/usr/bin/env bash
# One call on the H100 machine: build (CUDA for sm_90a, LibTorch from the preinstalled torch),
# run every test suite (cpu and gpu), run the kernel benchmarks, and leave logs and benchmark
# JSON in $OUT. Usage through the device tool, from the repository root:
#   scripts/fetch-deps.sh                        # once, on the dev machine
#   device run --carry .deps -- QBENCH_GIT_COMMIT=<sha> QBENCH_GIT_DIRTY=0|1 scripts/gpu-check.sh [--no-bench] [--bench-filter REGEX]
# The tree arrives without .git: state the revision (scripts/gpu-command.sh prints the line).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
bench=1
bench_filter="."
while [ $# -gt 0 ]; do
  case "$1" in
    --no-bench) bench=0 ;;
    --bench-filter) bench_filter="$2"; shift ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
  shift
done

# Headers the image lacks, from the carried .deb files (never unpacked into /).
deps_root="$PWD/.deps/root"
if [ -d .deps/debs ]; then
  mkdir -p "$deps_root"
  for d in .deps/debs/*.deb; do dpkg -x "$d" "$deps_root"; done
fi

python_bin=python3
[ -x /opt/torch/.venv/bin/python ] && python_bin=/opt/torch/.venv/bin/python
torch_dir=$($python_bin -c 'import torch, os; print(os.path.dirname(torch.__file__))')
echo "torch: $torch_dir"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$out/nvidia-smi.csv"

build=build-gpu
if [ ! -f $build/build.ninja ]; then
  meson setup $build -Dtorch_dir="$torch_dir" -Ddeps_dir="$deps_root" -Dcuda=enabled -Dgpu_arch=90a > "$out/meson-setup.log" 2>&1 \
    || { tail -50 "$out/meson-setup.log"; exit 1; }
fi
if ! ninja -C $build > "$out/build.log" 2>&1; then
  grep -E "error|FAILED" "$out/build.log" | head -40
  exit 1
fi
echo "build: ok"

meson test -C $build --print-errorlogs --num-processes 4 > "$out/test.log" 2>&1
test_rc=$?
cp $build/meson-logs/testlog.txt "$out/testlog.txt" 2>/dev/null
grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass):" "$out/test.log"
# The doctest output of the GPU suites (messages with measured values) goes to the note.
grep -hE "MESSAGE|GPU:|worst error|max \|cpu" $build/meson-logs/testlog.txt | head -20

if [ $bench -eq 1 ] && [ -x $build/kernels/common/bench_common ]; then
  commit=${QBENCH_GIT_COMMIT:-unknown}
  commit=${commit:0:12}
  $build/kernels/common/bench_common --benchmark_filter="$bench_filter" --benchmark_repetitions=5 \
    --benchmark_report_aggregates_only=true --benchmark_out="$out/bench_common_${commit}.json" --benchmark_out_format=json \
    > "$out/bench_common.txt" 2>&1
  grep -E "median|^--|Benchmark" "$out/bench_common.txt" | head -60
fi
exit $test_rc
