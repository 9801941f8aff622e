#!/usr/bin/env python3
"""Every committed kernel summary, both w6ax crossover headers and every committed A/B table
regenerate byte for byte from the benchmark JSON committed beside them (scripts/kernels_summary.py,
scripts/ab_compare.py --md). docs/kernels.md quotes these
files, and w6ax's choices compile from the headers: a number there that the committed runs do not
give back is one we cannot reproduce. Also checks the summary CSV's header against issue 6's.

Usage: test_kernels_summary.py REPO_ROOT   (meson test: cpu suite; no GPU, standard library only)
"""
import filecmp
import os
import subprocess
import sys
import tempfile

ISSUE_HEADER = "backend,m,n,k,a_bits,us,tbps,roofline_pct,x_cublaslt_w8a8,x_fp16,x_cublas_legacy"

# (files the run writes and the committed copy to match, the runs, extra arguments)
CASES = [
    (["h100_summary.csv", "h100_summary.md"], ["h100_bench_6424fa2_run%d.json.gz" % i for i in (1, 2)], ["--no-crossover"]),
    # The producer rows (RMSNorm / SiLU x up + w6_imma) under each protocol: --benchmark_filter runs.
    (["h100_producer_summary.csv", "h100_producer_summary.md"], ["h100_producer_flush_run%d.json.gz" % i for i in (1, 2, 3)], ["--suffix", "producer"]),
    (["h100_graph_producer_summary.csv", "h100_graph_producer_summary.md"], ["h100_producer_graph_run%d.json.gz" % i for i in (1, 2, 3)],
     ["--suffix", "producer"]),
    (["h100_graphchain_producer_summary.csv", "h100_graphchain_producer_summary.md"],
     ["h100_producer_graphchain_run%d.json.gz" % i for i in (1, 2, 3)], ["--suffix", "producer"]),
    (["h100_rotate_summary.csv", "h100_rotate_summary.md"], ["h100_rotate_run%d.json.gz" % i for i in (1, 2)], []),
    (["h100_graph_summary.csv", "h100_graph_summary.md"], ["h100_graph_run%d.json.gz" % i for i in (1, 2)], []),
    (["h100_graphchain_summary.csv", "h100_graphchain_summary.md"], ["h100_graphchain_run%d.json.gz" % i for i in (1, 2, 3)], []),
    (["h200_summary.csv", "h200_summary.md"], ["h200_bench_run%d.json.gz" % i for i in (1, 2, 3)],
     ["--gpu", "h200", "--peak-tbps", "4.3", "--no-crossover"]),
    # The w6ax headers came from earlier runs than the committed summaries (docs/kernels.md); of
    # these only the headers are committed.
    (["w6ax_crossover_h200.h"], ["h200_bench_779a679_run%d.json.gz" % i for i in (1, 2, 3)], ["--gpu", "h200", "--peak-tbps", "4.3"]),
    (["w6ax_crossover.h"], ["bench_kernels_ab202e8_run%d.json.gz" % i for i in (1, 2, 3)], []),
]

# A/B tables: (the committed table, A's runs, B's runs)
AB_CASES = [
    ("h100_graphchain_vs_unchained.md", ["h100_graphchain_unchained_run%d.json.gz" % i for i in (1, 2)],
     ["h100_graphchain_run%d.json.gz" % i for i in (1, 2, 3)]),
]


def committed(root, name):
    return os.path.join(root, "kernels", "w6ax", name) if name.endswith(".h") else os.path.join(root, "results", "kernels", name)


def compare(root, name, got, source, cmd):
    """The number of failures (0 or 1): the regenerated file `got` against the committed `name`."""
    if not os.path.exists(got):
        print("FAIL %s: not written from %s" % (name, source))
        return 1
    if not filecmp.cmp(got, committed(root, name), shallow=False):
        print("FAIL %s differs from what %s give (regenerate: %s)" % (name, source, " ".join(cmd[1:])))
        return 1
    print("ok   %s from %s" % (name, source))
    return 0


def main():
    root = os.path.abspath(sys.argv[1])
    runs_path = lambda runs: [os.path.join(root, "results", "kernels", r) for r in runs]
    failures = 0
    for names, runs, extra in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, os.path.join(root, "scripts", "kernels_summary.py"), *runs_path(runs), *extra]
            proc = subprocess.run(cmd + ["--out-dir", tmp, "--header-dir", tmp, "--no-plot"], capture_output=True, text=True)
            if proc.returncode != 0:
                print("FAIL %s: exit %d\n%s" % (" ".join(runs), proc.returncode, proc.stderr))
                failures += 1
                continue
            for name in names:
                got = os.path.join(tmp, name)
                failures += compare(root, name, got, " + ".join(runs), cmd)
                if name.endswith(".csv") and os.path.exists(got):
                    with open(got) as f:
                        header = f.readline().strip()
                    if header != ISSUE_HEADER:
                        print("FAIL %s header %r, issue 6 asks for %r" % (name, header, ISSUE_HEADER))
                        failures += 1
    for name, runs_a, runs_b in AB_CASES:
        with tempfile.TemporaryDirectory() as tmp:
            got = os.path.join(tmp, name)
            cmd = [sys.executable, os.path.join(root, "scripts", "ab_compare.py"), "--a", *runs_path(runs_a), "--b", *runs_path(runs_b)]
            proc = subprocess.run(cmd + ["--md", got], capture_output=True, text=True)
            if proc.returncode != 0:
                print("FAIL %s: exit %d\n%s" % (name, proc.returncode, proc.stderr))
                failures += 1
                continue
            failures += compare(root, name, got, "A = %s, B = %s" % (" + ".join(runs_a), " + ".join(runs_b)), cmd + ["--md", committed(root, name)])
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
