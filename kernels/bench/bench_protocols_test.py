#!/usr/bin/env python3
"""gpu suite: bench_kernels' timing protocols end to end on one small layer (LLaMA-7B o, 4096 x
4096), so that a protocol that silently stops doing what its JSON claims is caught:
  flush                    one launch per event pair after the L2 read pass
  --l2=rotate              24 launches back to back per event pair, rotating weight copies
  --l2=rotate --graph      the same batch replayed as one CUDA graph (a failed capture says so in
                           the label: an error here)
  --l2=rotate --graph --chain  qbench's kernels launched with programmatic dependent launch
and that the flags it refuses exit 2 with a message. Each run must report every expected row
without error, a positive time, the launches per batch of its protocol, and an l2_policy naming it.
Timing figures themselves are not checked: that is the benchmark's job, not a test's.

Usage: bench_protocols_test.py BENCH_KERNELS"""
import json
import os
import subprocess
import sys
import tempfile

FILTER = r"^(fp16|w6_imma|w6_imma\+aq|w6_imma\+fq|act_quant|stream_read)/llama-7b/o/a6/m:(1|8)/"
EXPECTED = {("fp16", 1), ("fp16", 8), ("w6_imma", 1), ("w6_imma", 8), ("w6_imma+aq", 1), ("w6_imma+aq", 8),
            ("w6_imma+fq", 1), ("w6_imma+fq", 8), ("act_quant", 1), ("act_quant", 8), ("stream_read", 1)}
PROTOCOLS = {
    "flush": ([], lambda p: p.startswith("cold")),
    "rotate": (["--l2=rotate"], lambda p: p.startswith("rotate") and "CUDA graph" not in p and "chained" not in p),
    "rotate+graph": (["--l2=rotate", "--graph"], lambda p: p.startswith("rotate") and "CUDA graph" in p and "chained" not in p),
    "rotate+graph+chain": (["--l2=rotate", "--graph", "--chain"], lambda p: "CUDA graph" in p and "chained by programmatic dependent launch" in p),
}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def main():
    bench = sys.argv[1]
    for args, why in ((["--l2=bogus"], "unknown --l2"), (["--graph"], "--graph without rotate"), (["--chain"], "--chain without rotate")):
        r = subprocess.run([bench] + args + ["--benchmark_filter=^$"], capture_output=True, text=True, timeout=120)
        if r.returncode != 2 or "bench_kernels:" not in r.stderr:
            fail("%s: exit %d, stderr %r (want 2 and a message)" % (why, r.returncode, r.stderr[-300:]))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (args, policy_ok) in PROTOCOLS.items():
            out = os.path.join(tmp, name + ".json")
            r = subprocess.run([bench] + args + ["--benchmark_filter=" + FILTER, "--benchmark_repetitions=2", "--benchmark_out=" + out,
                                                 "--benchmark_out_format=json"], capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                fail("%s: bench_kernels exit %d: %s" % (name, r.returncode, r.stderr[-500:]))
                continue
            with open(out) as f:
                doc = json.load(f)
            policy = doc["context"].get("l2_policy", "")
            if not policy_ok(policy):
                fail("%s: l2_policy %r does not name this protocol" % (name, policy))
            seen = set()
            for b in doc["benchmarks"]:
                if b.get("run_type") != "iteration":
                    continue
                backend, m = b["name"].split("/")[0], int(b["name"].split("/m:")[1].split("/")[0])
                seen.add((backend, m))
                row = "%s: %s" % (name, b["name"])
                if b.get("error_occurred"):
                    fail("%s: error %s" % (row, b.get("error_message")))
                    continue
                if not b["real_time"] > 0:
                    fail("%s: time %r" % (row, b["real_time"]))
                if "graph capture failed" in b.get("label", ""):
                    fail("%s: %s" % (row, b["label"]))
                per_batch = b.get("launches_per_batch")
                if name == "flush" and per_batch is not None:
                    fail("%s: launches_per_batch %r under flush (one launch per event pair)" % (row, per_batch))
                if name != "flush" and not (per_batch and per_batch >= 24):
                    fail("%s: launches_per_batch %r (want >= 24 back to back)" % (row, per_batch))
            if seen != EXPECTED:
                fail("%s: rows %s missing, %s unexpected" % (name, sorted(EXPECTED - seen), sorted(seen - EXPECTED)))
            print("%s: %d rows, l2_policy %r" % (name, len(seen), policy))
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
