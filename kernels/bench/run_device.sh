#!/usr/bin/env bash
# Runs the prebuilt W6 kernel tests and benchmark on the H100 machine without building there
# (device minutes are scarce; the binaries are built on a dev machine with nvcc 13.0 for sm_90a
# and carried in .carry/kernels together with the libbenchmark they link). The full build +
# every test suite is scripts/gpu-check.sh; this is the kernels-only fast path.
#   local:  kernels/bench/stage_carry.sh        (copies binaries to .carry/kernels; scripts/carry-pack.sh
#                                                packs them when the carry would pass 64 MiB)
#   device: QBENCH_GIT_COMMIT=<sha> kernels/bench/run_device.sh [--bench-filter REGEX] [--runs N] [--no-bench] [--ncu]
#                                    [--protocols "flush rotate"] [--no-tests]
# --runs N: N full benchmark runs back to back, bench_kernels_<sha>_run<i>.json each, gzipped
# (scripts/kernels_summary.py combines them: the median of the runs' medians).
# --protocols: the cold-L2 protocols of bench_kernels (--l2=...) each round runs, in this order
# (default flush; a protocol may be named more than once); rotate runs are named
# bench_kernels_rotate_<sha>_run<i>.json (rotate:8: rotate8_; rotate+graph, i.e. --l2=rotate --graph: rotategraph_;
# rotate+graph+chain: rotategraphchain_). With several, the rounds interleave
# them, so that a slow phase of the machine does not fall on one protocol only.
# --no-tests: skip the test suites (bench_kernels --check still runs), for benchmark-only calls on
# kernels whose tests already passed on this GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-$PWD/gpu-out}
bash scripts/carry-pack.sh unpack || exit 1 # binaries carried packed (scripts/carry-pack.sh)
mkdir -p "$out"
bin=.carry/kernels
filter="."
bench=1
runs=1
ncu=0
protocols="flush"
tests=1
while [ $# -gt 0 ]; do
  case "$1" in
    --bench-filter) filter="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --no-bench) bench=0 ;;
    --ncu) ncu=1 ;;
    --protocols) protocols="$2"; shift ;;
    --no-tests) tests=0 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
  shift
done
torch_nv=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -1)
torch_lib=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/torch/lib 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$PWD/$bin:${torch_nv}:${torch_lib}:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu --format=csv | tee "$out/nvidia-smi.csv"
ldd $bin/bench_kernels | grep -E "not found|cublas|cudart|benchmark"
rc=0
if [ $tests -eq 1 ]; then
  timeout 120 $bin/test_w6_ref --no-intro > "$out/test_w6_ref.txt" 2>&1 || rc=1
  tail -3 "$out/test_w6_ref.txt"
  timeout 400 $bin/test_w6_kernels --no-intro > "$out/test_w6_kernels.txt" 2>&1 || rc=1
  grep -E "MESSAGE|FAIL|ERROR|test cases|assertions" "$out/test_w6_kernels.txt" | head -60
fi
if [ $tests -eq 1 ] && [ -x $bin/test_backends ]; then
  OMP_NUM_THREADS=4 timeout 300 $bin/test_backends --no-intro > "$out/test_backends.txt" 2>&1 || rc=1
  grep -E "FAIL|ERROR|test cases|assertions|error" "$out/test_backends.txt" | head -30
fi
timeout 60 $bin/bench_kernels --check 2>&1 | tee "$out/bench_check.txt" || rc=1
if [ $tests -eq 1 ]; then
  py=$(command -v python3 || echo /opt/torch/.venv/bin/python)
  timeout 600 "$py" kernels/bench/bench_protocols_test.py $bin/bench_kernels > "$out/bench_protocols.txt" 2>&1 || rc=1
  tail -6 "$out/bench_protocols.txt"
fi
if [ $bench -eq 1 ]; then
  commit=${QBENCH_GIT_COMMIT:-unknown}
  # Runs are numbered per protocol (a protocol may appear several times in --protocols); a
  # protocol run once keeps the unnumbered, uncompressed name.
  declare -A total=() done_=()
  for proto in $protocols; do total[$proto]=$(( ${total[$proto]:-0} + runs )); done
  for r in $(seq 1 "$runs"); do
    for proto in $protocols; do
      done_[$proto]=$(( ${done_[$proto]:-0} + 1 ))
      i=${done_[$proto]}
      tag=""
      [ "$proto" = flush ] || tag="${proto//[:+]/}_"
      # rotate+graph+chain -> --l2=rotate --graph --chain
      l2=${proto%%+*}
      graph=""
      [ "$l2" = "$proto" ] || { flags=${proto#*+}; graph="--${flags//+/ --}"; }
      json="$out/bench_kernels_${tag}${commit:0:12}.json"
      [ "${total[$proto]}" -gt 1 ] && json="$out/bench_kernels_${tag}${commit:0:12}_run$i.json"
      timeout 420 $bin/bench_kernels --l2="$l2" $graph --benchmark_filter="$filter" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
        --benchmark_out="$json" --benchmark_out_format=json > "$out/bench_kernels.txt" 2>&1 || rc=1
      [ "${total[$proto]}" -gt 1 ] && gzip -f "$json"
      echo "bench --l2=$proto run $i: $(grep -c median "$out/bench_kernels.txt") medians, $(date +%T)"
    done
  done
  grep -c median "$out/bench_kernels.txt"
  grep -E "ERROR|error" "$out/bench_kernels.txt" | head -10
  grep -E "median" "$out/bench_kernels.txt" | grep -E "/(o|down)/a./m:(1|8)/" | grep "llama-2-70b" | head -40
fi
if [ $ncu -eq 1 ] && command -v ncu > /dev/null; then
  timeout 150 ncu --clock-control none -k regex:w6_gemm_kernel -c 4 --section SpeedOfLight --section MemoryWorkloadAnalysis \
    $bin/bench_kernels --benchmark_filter='^(w6_imma|flexq_btc)/llama-2-70b/o/a6/m:(1|8)/' --benchmark_repetitions=1 \
    > "$out/ncu.txt" 2>&1
  grep -E "w6_gemm_kernel|Duration|Memory Throughput|DRAM Throughput|Compute \(SM\)|Registers|Achieved Occupancy" "$out/ncu.txt" | head -40
fi
exit $rc
