#!/usr/bin/env python3
"""Compares two variants' benchmark runs (kernels/bench/ab_device.sh): for each row both variants
measured, the median over runs of the run medians, the ratio B / A of the times, and per back-end
and M the geometric mean of the ratios with the range over shapes.

  scripts/ab_compare.py --a DIR/ab_base_run*.json.gz --b DIR/ab_new_run*.json.gz [--backend w6_imma] [--rows]
"""
import argparse
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernels_summary import geomean, load_runs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", nargs="+", required=True, help="variant A's JSON runs")
    ap.add_argument("--b", nargs="+", required=True, help="variant B's JSON runs")
    ap.add_argument("--backend", action="append", help="only these back-ends (repeatable)")
    ap.add_argument("--rows", action="store_true", help="print every row, not only the per-M summary")
    args = ap.parse_args()
    a, b = load_runs(args.a)[1], load_runs(args.b)[1]  # each row: the median of its runs' medians
    by = defaultdict(list)
    for key in sorted(set(a) & set(b), key=lambda k: (k[0], k[3], k[1], k[2])):
        backend, model, layer, m = key
        if args.backend and backend not in args.backend:
            continue
        ratio = b[key]["us"] / a[key]["us"]
        by[(backend, m)].append(ratio)
        if args.rows:
            print("%-22s %-12s %-8s m=%-5d A %9.1f us  B %9.1f us  B/A %.3f" % (backend, model, layer, m, a[key]["us"], b[key]["us"], ratio))
    print("| back-end | m | shapes | geomean B/A time | min | max |\n|---|---|---|---|---|---|")
    for (backend, m), rs in sorted(by.items()):
        print("| %s | %d | %d | %.3f | %.3f | %.3f |" % (backend, m, len(rs), geomean(rs), min(rs), max(rs)))


if __name__ == "__main__":
    main()
