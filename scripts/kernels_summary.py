#!/usr/bin/env python3
"""Turns the kernel benchmark JSON (kernels/bench/bench_kernels) into the committed summaries:

  results/kernels/<gpu>_summary.csv  one row per back-end x shape x M (header below)
  results/kernels/<gpu>_summary.md   the tables docs/kernels.md quotes (decode targets, M >= 512, quantizer cost)
  results/kernels/<gpu>_speedup.png  paper-style speedup bars per shape at M = 1/4/8 (needs matplotlib)
  kernels/w6ax/w6ax_crossover.h      the w6ax crossover table (flexq_btc below the measured crossover M)
                                     and when a layer quantizes inside the GEMM (w6_imma+fq) instead of
                                     running act_quant + GEMM (w6_imma+aq); from H100 runs, the tables
                                     w6ax uses on every GPU that has none of its own
  kernels/w6ax/w6ax_crossover_<gpu>.h  the same tables from another GPU's runs (--gpu h200), which
                                     w6ax uses when the current GPU's name contains <GPU> (w6ax.cpp)

Usage: scripts/kernels_summary.py BENCH.json[.gz] [MORE_RUNS ...] [--out-dir results/kernels] [--no-plot] [--no-crossover]
                                 [--gpu h100 --peak-tbps 3.0] [--header-dir kernels/w6ax] [--suffix S]
<gpu> names the files (default h100, the issue's machine; --suffix S appends _S, for runs of a subset of the rows); runs of `bench_kernels --l2=rotate`
(weights rotated through copies, launches back to back; the JSON's l2_policy says so) write
<gpu>_rotate_* (with --graph: <gpu>_graph_*; with --chain as well: <gpu>_graphchain_*) instead and never the crossover headers, which follow the flush protocol's runs; --peak-tbps is that GPU's measured
device-to-device copy rate (H100: 3.0 TB/s, ../shared/docs/gpu-machine.md; H200: 4.3 TB/s, measured
on this workplace's H200s). --no-crossover leaves the headers alone (runs that are not a full
benchmark of a clean tree, or that should not change what w6ax picks).
Only the standard library is needed, matplotlib only for the PNG (any 3.x; 3.11.2 was used).
Rows use the medians of the repetitions. roofline_pct is against the W6 floor for every back-end:
N*K*6.125/8 bytes (weights + fp16 scales per 128) / --peak-tbps. x_* columns are time(baseline) /
time(row) on the same shape and M; '+aq' and '+fq' rows (quantizer + GEMM; +fq: the quantizer
inside the GEMM) are compared with
'cublaslt_w8a8+aq' for x_cublaslt_w8a8 and with the GEMM-only fp16 / legacy rows otherwise.
Producer rows (rmsnorm* / silu_mul*: the kernel ahead of the layer + w6_imma) stay out of the CSV,
which lists back-ends; the markdown gets a section on them when a run has them.
'stream_read' rows (M=1 only, no x_* columns) time a kernel that only reads the shape's W6 bytes
in the same harness (kernels/bench/stream_probe.h): the attainable floor, launch and DRAM ramp
included, that the decode tables set beside the roofline.
"""
import argparse
import csv
import gzip
import json
import math
import os
import statistics
import sys
from collections import defaultdict

HEADER = ["backend", "m", "n", "k", "a_bits", "us", "tbps", "roofline_pct", "x_cublaslt_w8a8", "x_fp16", "x_cublas_legacy"]
PEAK_TBPS = 3.0  # both set from the command line in main(); these are the defaults
GPU_TAG = "h100"
DECODE_M = (1, 4, 8)
QUANT_M = (1, 2, 4, 8)  # the quantizer table: every decode M the fused layer is measured at
PAPER_LEGACY = {1: 1.78, 4: 1.81, 8: 1.82}  # the paper's average speedups over legacy cuBLAS W8A8


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        doc = json.load(f)
    rows, cvs = {}, {}
    for b in doc["benchmarks"]:
        if b.get("aggregate_name") == "cv" and not b.get("error_occurred"):
            cvs[b["run_name"]] = b["real_time"]
        if b.get("aggregate_name") != "median" or b.get("error_occurred"):
            continue
        parts = b["run_name"].split("/")
        backend, model, layer, abits = parts[0], parts[1], parts[2], int(parts[3][1:])
        kv = dict(p.split(":", 1) for p in parts[4:] if ":" in p)
        m, n, k = int(kv["m"]), int(kv["n"]), int(kv["k"])
        rows[(backend, model, layer, m)] = dict(backend=backend, model=model, layer=layer, a_bits=abits, m=m, n=n, k=k,
                                                us=b["real_time"], label=b.get("label", ""), run_name=b["run_name"])
    for r in rows.values():
        r["cv"] = cvs.get(r["run_name"])
    return doc["context"], rows


def load_runs(paths):
    """One or more benchmark runs of the same build: each row's time is the median over the runs
    of the runs' medians, so that a slow phase of the machine during one run (several seconds,
    all repetitions of the rows it covers) does not decide a row. With several runs, a row's
    `cv` is the spread between runs ((max - min) / median of the run medians) instead."""
    runs = [load(p) for p in paths]
    context = dict(runs[0][0])
    for p, (c, _) in zip(paths[1:], runs[1:]):
        for key in ("qbench_git", "gpu", "l2_policy"):
            if c.get(key) != context.get(key):
                sys.exit("%s: %s %r differs from %s's %r; only runs of one build on one GPU under one L2 protocol combine" % (p, key, c.get(key), paths[0], context.get(key)))
    context["runs"] = [os.path.basename(p) for p in paths]
    if len(runs) == 1:
        return context, runs[0][1]
    rows = {}
    for key, first in runs[0][1].items():
        times = [r[1][key]["us"] for r in runs if key in r[1]]
        row = dict(first, us=statistics.median(times), run_us=times)
        row["cv"] = (max(times) - min(times)) / row["us"] if len(times) > 1 else None
        rows[key] = row
    return context, rows


def floor_us(n, k):
    return n * k * 6.125 / 8 / (PEAK_TBPS * 1e12) * 1e6


def weight_bytes(backend, n, k):
    base = backend.split("+")[0]
    if base == "fp16":
        return 2.0 * n * k
    if base in ("cublaslt_w8a8", "cublas_w8a8_legacy"):
        return n * k + 4.0 * n
    if base == "act_quant":
        return 0.0
    return n * k * 6.125 / 8


PRODUCERS = ("rmsnorm", "silu_mul")  # rows of a producer kernel + GEMM (bench_kernels' producer rows): layers, not back-ends


def is_producer_row(backend):
    return backend.startswith(PRODUCERS)


def summarize(rows):
    out = []
    for (backend, model, layer, m), r in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][3], kv[0][0])):
        if is_producer_row(backend):
            continue
        n, k, us = r["n"], r["k"], r["us"]
        aq = backend.endswith("+aq") or backend.endswith("+fq")  # whole layers, quantizer included
        lt = rows.get(("cublaslt_w8a8+aq" if aq else "cublaslt_w8a8", model, layer, m))
        f16 = rows.get(("fp16", model, layer, m))
        leg = rows.get(("cublas_w8a8_legacy", model, layer, m))
        speed = lambda base: round(base["us"] / us, 3) if base and backend not in ("act_quant", "stream_read") else ""
        wb = weight_bytes(backend, n, k)
        out.append(dict(backend=backend, m=m, n=n, k=k, a_bits=r["a_bits"], us=round(us, 2),
                        tbps=round(wb / (us * 1e-6) / 1e12, 3) if wb else "",
                        roofline_pct=round(100 * floor_us(n, k) / us, 1) if backend != "act_quant" else "",
                        x_cublaslt_w8a8=speed(lt), x_fp16=speed(f16), x_cublas_legacy=speed(leg),
                        model=model, layer=layer, label=r["label"], cv=r.get("cv")))
    return out


def crossover(rows):
    """Largest M (from 1 upwards, contiguous) where flexq_btc beats w6_imma in the geometric mean over shapes."""
    table = {}
    for abits in (6, 8):
        best = 0
        for m in sorted({key[3] for key in rows}):
            ratios = [rows[("w6_imma", mo, la, m)]["us"] / r["us"] for (b, mo, la, mm), r in rows.items()
                      if b == "flexq_btc" and mm == m and r["a_bits"] == abits and ("w6_imma", mo, la, m) in rows]
            if ratios and geomean(ratios) > 1.0:
                best = m
            else:
                break
        table[abits] = best
    return table


def fuse_table(rows, unfused="w6_imma+aq"):
    """Per measured M of the fused-quantizer layer (w6_imma+fq): the n*k up to which fusing pays.

    Shapes in order of n*k; the threshold is the end of the prefix with the largest total log
    speedup of w6_imma+fq over the unfused layer (act_quant + GEMM, PDL). Fusing repeats the
    quantization in every row-tile warp, so its cost grows with the layer while the separate
    quantizer's is a fixed few microseconds: small layers gain, large ones lose. 0: never."""
    table = []
    for m in sorted({key[3] for key in rows if key[0] == "w6_imma+fq"}):
        pairs = sorted((r["n"] * r["k"], rows[(unfused, mo, la, m)]["us"] / r["us"]) for (b, mo, la, mm), r in rows.items()
                       if b == "w6_imma+fq" and mm == m and (unfused, mo, la, m) in rows)
        best_nk, best_gain, gain = 0, 0.0, 0.0
        for nk, speedup in pairs:
            gain += math.log(speedup)
            if gain > best_gain:
                best_gain, best_nk = gain, nk
        table.append((m, best_nk))
    return table


def write_crossover(header_dir, gpu, table, fuse, source):
    """H100 runs: w6ax_crossover.h, the row types and the default tables. Another GPU's runs:
    w6ax_crossover_<gpu>.h, the same tables in namespace qb::w6::<gpu>, matched by name."""
    default = gpu == "h100"
    path = os.path.join(header_dir, "w6ax_crossover.h" if default else "w6ax_crossover_%s.h" % gpu)
    rows = ("inline constexpr w6ax_crossover_row w6ax_crossover[] = {" + ", ".join("{%d, %d}" % (a, table[a]) for a in sorted(table)) + "};\n",
            "inline constexpr w6ax_fuse_row w6ax_fuse[] = {" + ", ".join("{%d, %d}" % (m, nk) for m, nk in fuse) + "};\n",
            'inline constexpr const char *w6ax_crossover_source = "%s";\n' % source)
    with open(path, "w") as f:
        f.write("// Generated by scripts/kernels_summary.py from the %s benchmark JSON; do not edit by hand.\n" % gpu.upper())
        f.write("// flexq_btc is chosen when m <= btc_max_m for the row's (a_bits); w6_imma otherwise.\n")
        f.write("// w6_imma quantizes the activations inside the GEMM when n * k <= max_nk of the first row\n")
        f.write("// with m <= max_m (none: act_quant + GEMM).\n")
        if default:
            f.write("#pragma once\nnamespace qb::w6 {\nstruct w6ax_crossover_row { int a_bits; int btc_max_m; };\n")
            f.write(rows[0])
            f.write("struct w6ax_fuse_row { int max_m; long long max_nk; };\n")
            f.write(rows[1] + rows[2] + "} // namespace qb::w6\n")
        else:
            f.write("// w6ax uses these on a GPU whose name contains w6ax_gpu_match (w6ax.cpp).\n")
            f.write('#pragma once\n#include "w6ax/w6ax_crossover.h"\nnamespace qb::w6::%s {\n' % gpu)
            f.write('inline constexpr const char *w6ax_gpu_match = "%s";\n' % gpu.upper())
            f.write(rows[0] + rows[1] + rows[2] + "} // namespace qb::w6::%s\n" % gpu)


def tree_state(context):
    """The build's tree: vcs_tag appends -dirty to a modified tree; QBENCH_GIT_DIRTY may say so too."""
    if str(context.get("qbench_git", "")).endswith("-dirty") or context.get("qbench_git_dirty") in ("1", "true"):
        return "modified tree"
    return "clean tree"


def producer_section(rows):
    """The quantizer written by the kernel ahead of the layer (RMSNorm before qkv / gate_up, SiLU x up
    before down) against act_quant between the two, each as the time it adds to the GEMM alone."""
    lines = []
    added = defaultdict(lambda: defaultdict(list))
    for (backend, model, layer, m), plain in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][3], kv[0][0])):
        if not (is_producer_row(backend) and backend.endswith("+w6_imma") and "+aq" not in backend and "_q+" not in backend):
            continue
        prod = backend.split("+")[0]
        aq, inside, gemm = (rows.get(key) for key in ((prod + "+aq+w6_imma", model, layer, m), (prod + "_q+w6_imma", model, layer, m),
                                                       ("w6_imma", model, layer, m)))
        if not (aq and inside and gemm):
            continue
        if not lines:
            lines = ["", "## The quantizer inside the kernel ahead: RMSNorm / SiLU x up writing the codes (LLaMA layers)", "",
                     "Each row is a producer kernel followed by w6_imma under PDL. `plain`: the producer writes fp16 only and the "
                     "GEMM reads codes made beforehand; `+ act_quant`: producer, act_quant_int8, GEMM; `codes inside`: the producer "
                     "writes the codes itself. 'added' is the difference from `plain`, over the GEMM alone.", "",
                     "| shape | producer | M | w6_imma us | plain us | + act_quant us | codes inside us | added by act_quant | added inside |",
                     "|---|---|---|---|---|---|---|---|---|"]
        a_aq = (aq["us"] - plain["us"]) / gemm["us"]
        a_in = (inside["us"] - plain["us"]) / gemm["us"]
        added["act_quant"][m].append(a_aq)
        added["inside"][m].append(a_in)
        lines.append("| %s.%s | %s | %d | %.1f | %.1f | %.1f | %.1f | %+.1f%% | %+.1f%% |" % (
            model, layer, prod, m, gemm["us"], plain["us"], aq["us"], inside["us"], 100 * a_aq, 100 * a_in))
    for m in sorted(added["inside"]):
        lines.append("")
        lines.append("At M=%d: act_quant between them adds %+.1f%% (mean), %d of %d points above +10%%; codes written inside add %+.1f%% (mean), "
                     "%+.1f..%+.1f%%, %d above +10%%." % (
                         m, 100 * statistics.mean(added["act_quant"][m]), sum(x > 0.10 for x in added["act_quant"][m]), len(added["act_quant"][m]),
                         100 * statistics.mean(added["inside"][m]), 100 * min(added["inside"][m]), 100 * max(added["inside"][m]),
                         sum(x > 0.10 for x in added["inside"][m])))
    return lines


def markdown(summary, context, rows=None):
    by = defaultdict(dict)
    for r in summary:
        by[(r["model"], r["layer"], r["m"])][r["backend"]] = r
    shapes = []
    for r in summary:
        if (r["model"], r["layer"], r["n"], r["k"], r["a_bits"]) not in shapes:
            shapes.append((r["model"], r["layer"], r["n"], r["k"], r["a_bits"]))
    lines = ["# %s kernel benchmark (generated by scripts/kernels_summary.py; do not edit)" % GPU_TAG.upper(), "",
             "GPU %s, driver %s, SM clock %s MHz (max %s), cuBLAS %s, commit %s (%s). L2: %s. Medians of 5 repetitions%s." % (
                 context.get("gpu"), context.get("driver"), context.get("sm_clock_mhz"), context.get("sm_clock_max_mhz"),
                 context.get("cublas"), context.get("qbench_git"), tree_state(context), context.get("l2_policy"),
                 "" if len(context["runs"]) < 2 else ", then the median over %d runs of the same binaries (%s)" % (
                     len(context["runs"]), ", ".join(context["runs"]))), "",
             ("W6 floor = N*K*6.125/8 bytes / %.1f TB/s. `stream us` = a kernel that only reads those bytes, timed the same way "
              "(launch, DRAM ramp and drain included): what any kernel could reach here. `best W6` = the faster of w6_imma and "
              "flexq_btc per row; `w6ax` = the auto choice.") % PEAK_TBPS, ""]
    for m in DECODE_M:
        lines += ["## M = %d" % m, "",
                  "| shape | N x K | A | floor us | stream us | fp16 us | cublaslt_w8a8 us | legacy us | w6_imma us | flexq_btc us | best W6 % roofline | % of stream | x cublaslt | x fp16 | x legacy | paper x legacy |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        agg = defaultdict(list)
        for model, layer, n, k, ab in shapes:
            d = by.get((model, layer, m), {})
            if "w6_imma" not in d:
                continue
            best = min(d["w6_imma"]["us"], d.get("flexq_btc", {"us": math.inf})["us"])  # a filtered run may lack flexq_btc
            pct = 100 * floor_us(n, k) / best
            xs = [d[b]["us"] / best if b in d else float("nan") for b in ("cublaslt_w8a8", "fp16", "cublas_w8a8_legacy")]
            paper = PAPER.get((model, layer), {}).get(m, "")
            stream = by.get((model, layer, 1), {}).get("stream_read", {}).get("us", float("nan"))
            lines.append("| %s.%s | %dx%d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f%% | %.0f%% | %.2f | %.2f | %.2f | %s |" % (
                model, layer, n, k, ab, floor_us(n, k), stream, d.get("fp16", {}).get("us", float("nan")), d.get("cublaslt_w8a8", {}).get("us", float("nan")),
                d.get("cublas_w8a8_legacy", {}).get("us", float("nan")), d["w6_imma"]["us"], d.get("flexq_btc", {}).get("us", float("nan")), pct, 100 * stream / best, *xs, paper))
            agg["pct"].append(pct / 100)
            if stream == stream:
                agg["stream_pct"].append(floor_us(n, k) / stream)
                agg["of_stream"].append(stream / best)
            for name, x in zip(("lt", "fp16", "legacy"), xs):
                agg[name].append(x)
            if layer != "qkv(gqa)":
                agg["legacy_paper_shapes"].append(xs[2])
        lines += ["", "Geometric means at M=%d: %.0f%% of the W6 roofline (the read-only kernel: %.0f%%; best W6 at %.0f%% of its speed), %.2fx cublaslt_w8a8, %.2fx fp16, %.2fx legacy cuBLAS on the paper's 20 shapes (paper: %.2fx)." % (
            m, 100 * geomean(agg["pct"]), 100 * geomean(agg["stream_pct"]), 100 * geomean(agg["of_stream"]), geomean(agg["lt"]), geomean(agg["fp16"]),
            geomean(agg["legacy_paper_shapes"]), PAPER_LEGACY[m]), ""]
    lines += ["## M >= 512: W6A8 (w6_imma, the shape's A bits) against cublaslt_w8a8", "",
              "| shape | M | cublaslt us | w6_imma us | flexq_btc us | x cublaslt (best W6) |", "|---|---|---|---|---|---|"]
    prefill = defaultdict(list)
    for model, layer, n, k, ab in shapes:
        for m in (512, 2048):
            d = by.get((model, layer, m), {})
            if "w6_imma" in d and "cublaslt_w8a8" in d:
                best = min(d["w6_imma"]["us"], d.get("flexq_btc", {"us": 1e30})["us"])
                prefill[m].append(d["cublaslt_w8a8"]["us"] / best)
                lines.append("| %s.%s | %d | %.1f | %.1f | %.1f | %.2f |" % (model, layer, m, d["cublaslt_w8a8"]["us"], d["w6_imma"]["us"],
                                                                        d.get("flexq_btc", {}).get("us", float("nan")), d["cublaslt_w8a8"]["us"] / best))
    if prefill:
        lines += [""] + ["At M=%d: geometric mean %.2fx cublaslt_w8a8, range %.2f-%.2fx, %d of %d shapes >= 1.0x." % (
            m, geomean(xs), min(xs), max(xs), sum(x >= 1.0 for x in xs), len(xs)) for m, xs in sorted(prefill.items())]
    lines += ["", "## Activation quantization: alone, and quantizer + GEMM as one layer", "",
              "w6_imma+aq: act_quant then the GEMM under PDL; w6_imma+fq: the quantizer inside the GEMM; w6ax+aq: "
              "the layer as w6ax runs it (w6ax_fuse_act picks one of the two; 'how' is its label). "
              "'added' is w6ax+aq over the GEMM alone (w6ax).", "",
              "| shape | M | act_quant us | w6ax us | w6_imma+aq us | w6_imma+fq us | w6ax+aq us | how | added by the quantizer |",
              "|---|---|---|---|---|---|---|---|---|"]
    cell = lambda d, b: "%.1f" % d[b]["us"] if b in d else "-"
    added, choice = defaultdict(list), defaultdict(list)
    for model, layer, n, k, ab in shapes:
        for m in QUANT_M:
            d = by.get((model, layer, m), {})
            if "w6ax" in d and "w6ax+aq" in d and "act_quant" in d:
                how = "fused" if d["w6ax+aq"]["label"].endswith("fused") else "pdl"
                lines.append("| %s.%s | %d | %.1f | %.1f | %s | %s | %.1f | %s | %+.1f%% |" % (
                    model, layer, m, d["act_quant"]["us"], d["w6ax"]["us"], cell(d, "w6_imma+aq"), cell(d, "w6_imma+fq"), d["w6ax+aq"]["us"], how,
                    100 * (d["w6ax+aq"]["us"] / d["w6ax"]["us"] - 1)))
                added[m].append(d["w6ax+aq"]["us"] / d["w6ax"]["us"])
                if "w6_imma+aq" in d and "w6_imma+fq" in d:
                    choice[m].append(d["w6ax+aq"]["us"] / min(d["w6_imma+aq"]["us"], d["w6_imma+fq"]["us"]))
    # The quantizer target (adds <= 10% at M <= 8), and whether w6ax's fuse choice (from the
    # crossover header) picked the faster of its two ways in these runs.
    for m, xs in sorted(added.items()):
        ch = choice.get(m, [])
        lines.append("")
        picked = ("; w6ax+aq within 3%% of the faster of w6_imma+aq and w6_imma+fq at %d of %d" % (sum(c <= 1.03 for c in ch), len(ch))) if ch else ""
        lines.append("At M=%d: the quantizer adds %+.1f%% (geometric mean), %+.1f..%+.1f%%; %d of %d points above +10%%%s." % (
            m, 100 * (geomean(xs) - 1), 100 * (min(xs) - 1), 100 * (max(xs) - 1), sum(x > 1.10 for x in xs), len(xs), picked))
    lines += producer_section(rows or {})
    noisy = [r for r in summary if r.get("cv") is not None and r["cv"] > NOISY_CV]
    spread = ("runs disagree by more than %d%% ((max - min) / median of the run medians)" if len(context["runs"]) > 1
              else "5 repetitions spread by more than %d%% (coefficient of variation)") % round(100 * NOISY_CV)
    lines += ["", "## Rows whose " + spread, "",
              "%d of %d rows; their medians are less certain than the rest." % (len(noisy), len(summary)), ""]
    if noisy:
        lines += ["| back-end | shape | M | median us | spread |", "|---|---|---|---|---|"]
        lines += ["| %s | %s.%s | %d | %.1f | %.0f%% |" % (r["backend"], r["model"], r["layer"], r["m"], r["us"], 100 * r["cv"]) for r in noisy]
    return "\n".join(lines) + "\n"


NOISY_CV = 0.05
PAPER = {}


def load_paper(root):
    # The committed copy first, so that a clone alone regenerates the committed summaries byte for
    # byte (tests/scripts/test_kernels_summary.py); the team's shared folder otherwise.
    for path in (os.path.join(root, "results", "reference", "flexq_paper_kernels.csv"),
                 os.path.join(root, "..", "shared", "reference", "flexq_paper_kernels.csv")):
        if os.path.exists(path):
            break
    else:
        return
    with open(path) as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            PAPER[(row["model"], row["layer"])] = {1: float(row["m1"]), 4: float(row["m4"]), 8: float(row["m8"])}


def plot(summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shapes, vals = [], defaultdict(dict)
    for r in summary:
        if r["backend"] == "w6ax" and r["m"] in DECODE_M:
            key = "%s\n%s" % (r["model"], r["layer"])
            if key not in shapes:
                shapes.append(key)
            vals[r["m"]][key] = (r["x_cublas_legacy"] or 0, r["x_cublaslt_w8a8"] or 0)
    fig, axes = plt.subplots(len(DECODE_M), 1, figsize=(16, 9), sharex=True)
    width = 0.38
    for ax, m in zip(axes, DECODE_M):
        xs = range(len(shapes))
        ax.bar([x - width / 2 for x in xs], [vals[m].get(s, (0, 0))[0] for s in shapes], width, label="w6ax vs legacy cuBLAS W8A8 (paper's baseline)")
        ax.bar([x + width / 2 for x in xs], [vals[m].get(s, (0, 0))[1] for s in shapes], width, label="w6ax vs cuBLASLt W8A8 (TN, scales)")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(PAPER_LEGACY[m], color="gray", linestyle="--", linewidth=0.8, label="paper's mean vs legacy (%.2fx)" % PAPER_LEGACY[m])
        ax.set_ylabel("speedup, M=%d" % m)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xticks(list(range(len(shapes))))
    axes[-1].set_xticklabels(shapes, rotation=60, fontsize=7)
    protocol = "weights cold, launches back to back" if any(t in GPU_TAG for t in ("_rotate", "_graph")) else "cold L2"
    if "_graphchain" in GPU_TAG:
        protocol += ", qbench chained by PDL"
    fig.suptitle("W6 kernel speedup on %s (%s, medians)" % (GPU_TAG.upper().split("_")[0], protocol))
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main():
    global PEAK_TBPS, GPU_TAG
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+", help="benchmark JSON (.json or .json.gz); several runs of one build combine")
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--no-crossover", action="store_true")
    ap.add_argument("--gpu", default=GPU_TAG, help="file prefix and title (h100, h200)")
    ap.add_argument("--peak-tbps", type=float, default=PEAK_TBPS, help="the W6 roofline's bandwidth, TB/s")
    ap.add_argument("--header-dir", default=None, help="where the crossover headers go (default kernels/w6ax)")
    ap.add_argument("--suffix", default="", help="appended to the file prefix (runs of a --benchmark_filter subset: <gpu>_<protocol>_<suffix>_*)")
    a = ap.parse_args()
    PEAK_TBPS, GPU_TAG = a.peak_tbps, a.gpu
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    out_dir = a.out_dir or os.path.join(root, "results", "kernels")
    os.makedirs(out_dir, exist_ok=True)
    load_paper(root)
    context, rows = load_runs(a.json)
    if str(context.get("l2_policy", "")).startswith("rotate"):
        policy = str(context.get("l2_policy"))
        GPU_TAG += ("_graph" if "CUDA graph" in policy else "_rotate") + ("chain" if "chained" in policy else "")
        a.no_crossover = True
    if a.suffix:
        GPU_TAG += "_" + a.suffix
        a.no_crossover = True  # a subset of the rows decides nothing
    summary = summarize(rows)
    with open(os.path.join(out_dir, GPU_TAG + "_summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HEADER, extrasaction="ignore")
        w.writeheader()
        w.writerows(summary)
    with open(os.path.join(out_dir, GPU_TAG + "_summary.md"), "w") as f:
        f.write(markdown(summary, context, rows))
    if not a.no_crossover:
        table, fuse = crossover(rows), fuse_table(rows)
        commit = str(context.get("qbench_git", "?"))[:12]
        write_crossover(a.header_dir or os.path.join(root, "kernels", "w6ax"), GPU_TAG, table, fuse, "%s (%s, commit %s)" % (" + ".join(context["runs"]), context.get("gpu"), commit))
        print("w6ax crossover (btc_max_m by a_bits):", table, "fused quantizer (max_m, max_nk):", fuse)
    if not a.no_plot:
        try:
            plot(summary, os.path.join(out_dir, GPU_TAG + "_speedup.png"))
        except ImportError:
            print("matplotlib not available: no PNG", file=sys.stderr)
    print("rows:", len(summary))


if __name__ == "__main__":
    main()
