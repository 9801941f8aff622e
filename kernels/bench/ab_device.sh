#!/usr/bin/env bash
# A/B of two prebuilt benchmark binaries on the GPU machine: runs them alternately (A B A B ...),
# so that a slow phase of the machine falls on both, and gzips one JSON per run into $OUT as
# ab_<variant>_run<i>.json.gz. scripts/ab_compare.py reads them back (the median of each row's run
# medians, per-row ratios, geomeans per M).
#   local:  stage each variant's bench_kernels into .carry/ab/<variant>/ (plus libbenchmark in .carry/kernels;
#           scripts/stage-ab.sh VARIANT COMMIT [ARGS...] builds one at a commit and does both);
#           a file .carry/ab/<variant>/args adds that variant's bench_kernels flags (e.g. --l2=rotate --graph),
#           a file .carry/ab/<variant>/env its environment (NAME=value words), so one binary can be two variants
#   device: kernels/bench/ab_device.sh --filter REGEX [--runs N] [--repetitions R] <variantA> <variantB>
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-$PWD/gpu-out}
bash scripts/carry-pack.sh unpack || exit 1 # binaries carried packed (scripts/carry-pack.sh)
mkdir -p "$out"
filter="."
runs=2
reps=5
variants=()
while [ $# -gt 0 ]; do
  case "$1" in
    --filter) filter="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --repetitions) reps="$2"; shift ;;
    -*) echo "unknown argument $1"; exit 2 ;;
    *) variants+=("$1") ;;
  esac
  shift
done
[ ${#variants[@]} -ge 2 ] || { echo "usage: $0 --filter REGEX [--runs N] variantA variantB"; exit 2; }
torch_nv=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$PWD/.carry/kernels:${torch_nv}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
rc=0
for r in $(seq 1 "$runs"); do
  for v in "${variants[@]}"; do
    bin=.carry/ab/$v/bench_kernels
    [ -x "$bin" ] || { echo "no $bin"; exit 2; }
    json="$out/ab_${v}_run$r.json"
    extra=$(cat ".carry/ab/$v/args" 2>/dev/null)
    vars=$(cat ".carry/ab/$v/env" 2>/dev/null)
    env $vars timeout 280 "$bin" $extra --benchmark_filter="$filter" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
      --benchmark_out="$json" --benchmark_out_format=json > "$out/ab_${v}.txt" 2>&1 || { rc=1; tail -5 "$out/ab_${v}.txt"; }
    gzip -f "$json"
    echo "$v run $r: $(grep -c median "$out/ab_${v}.txt") medians"
  done
done
exit $rc
