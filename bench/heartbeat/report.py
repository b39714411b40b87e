#!/usr/bin/python3
"""Tables (markdown) and figures (PNG) of the issue-3 benchmark from the output directory of
bench/heartbeat/run.sh: results.jsonl (b2.py rows), checks.jsonl (funnel / mixture checks)
and curves/*.npz.

  report.py OUT_DIR            prints the tables, writes OUT_DIR/b2_curves.png and
                               OUT_DIR/bias_floor.png
"""
import json
import math
import os
import sys

import numpy as np

SAMPLERS = ["heartbeat-mala", "heartbeat-hybrid", "heartbeat-none", "hb-warmup-mala", "mala",
            "ula", "nuts", "nuts-pooled", "hmc", "chees"]


def load(path):
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]


def cell(row, key, field="grads_per_chain_total"):
    if row is None:
        return "n/a"
    v = row.get(key)
    if v is None:
        return "not reached"
    return "%.0f" % v[field]


def wall(row, key):
    if row is None or row.get(key) is None:
        return "-"
    return "%.2f" % row[key]["wall_total"]


def main_table(rows, checks):
    by = {r["tag"]: r for r in rows}
    targets = []
    for r in rows:
        t = r["tag"].split(".")
        if t[0] == "main" and t[1] not in targets:
            targets.append(t[1])
    print("### Gradient evaluations per chain until b² < 0.01 (warmup included), and wall time\n")
    print("b² of x², averaged over coordinates; *chain*: median over chains of each chain's "
          "running average (ALGORITHMS.md §11.1, last crossing); *ensemble*: all chains' draws "
          "pooled. Wall time (s) to the chain-median crossing, warmup included. Final b² = "
          "ensemble b² after the whole run.\n")
    print("| target | sampler | chain | ensemble | sampling only (chain) | wall (s) | final b² |")
    print("|---|---|---|---|---|---|---|")
    for t in targets:
        for s in SAMPLERS:
            r = by.get("main.%s.%s" % (t, s))
            if r is None:
                continue
            print("| %s | %s | %s | %s | %s | %s | %.1e |" % (
                t.split("-")[0], s, cell(r, "chain_avg"), cell(r, "ens_avg"),
                cell(r, "chain_avg", "grads_per_chain_sampling"), wall(r, "chain_avg"),
                r["b2_end"]["ens_avg"]))
    print()
    if checks:
        print("### What b² on x² does not see\n")
        print("| run | check | value | truth |")
        print("|---|---|---|---|")
        for c in checks:
            if c["target"] == "funnel":
                print("| %s | mean v / E[v²] | %.2f ± %.2f / %.1f ± %.1f | 0 / 9 |" % (
                    c["tag"].split(".", 1)[1], c["mean_v"], c["mean_v_se"], c["var_v"],
                    c["var_v_se"]))
            else:
                print("| %s | mode weight (switches/draw) | %.3f ± %.3f (%.3f) | 0.700 |" % (
                    c["tag"].split(".", 1)[1], c["mode_weight"], c["mode_weight_se"],
                    c["switches_per_draw"]))
        print()


def beat_bias(lo, hi, n, lam=1.0):
    """Exact relative variance bias of unadjusted quadratic beats on a whitened Gaussian."""
    a, b = 1.0, 0.0
    for k in range(n):
        t = k / (n - 1)
        h = lo if k == n - 1 else lo + (hi - lo) * (1 - t) ** 2
        r = (1 - h * lam) ** 2
        a *= r
        b = r * b + 2 * h
    return lam * b / (1 - a) - 1


FLOOR_COLS = [("none4", "none L=4", 4), ("none8", "none L=8", 8), ("none16", "none L=16", 16),
              ("hybrid4", "hybrid L=4", 0), ("hybrid8", "hybrid L=8", 0),
              ("ula", "ULA (same gauge)", 0)]


def floor_table(rows):
    by = {r["tag"]: r for r in rows}
    acc = ["0.8", "0.9", "0.95", "0.99"]
    if not any(("floor.none4.%s" % a) in by for a in acc):
        return None
    print("### Bias floor on the 100-d Gaussian (κ = 100, diag metric, 256 chains)\n")
    print("Ensemble b² of x² at the end of the run (about 1e-5 of it is Monte Carlo noise), by "
          "target_accept_min (target_accept_max = 0.10); in brackets the exact value for the "
          "adapted step sizes (stationary variance of the beat, b² = bias²/2).\n")
    print("| target_accept_min | step_min | step_max | " +
          " | ".join(c[1] for c in FLOOR_COLS) + " |")
    print("|---|---|---|" + "---|" * len(FLOOR_COLS))
    out = []
    for a in acc:
        r0 = by.get("floor.none4.%s" % a)
        if r0 is None:
            continue
        ad = r0["adaptation"]
        cells, vals = [], []
        for key, _, n in FLOOR_COLS:
            r = by.get("floor.%s.%s" % (key, a))
            if r is None:
                cells.append("-")
                vals.append(math.nan)
                continue
            v = r["b2_end"]["ens_avg"]
            vals.append(v)
            if n:
                ra = r["adaptation"]
                cells.append("%.1e (%.1e)" % (v, beat_bias(ra["step_min"], ra["step_max"], n) ** 2 / 2))
            else:
                cells.append("%.1e" % v)
        print("| %s | %.3f | %.3f | %s |" % (a, ad["step_min"], ad["step_max"], " | ".join(cells)))
        out.append([float(a)] + vals)
    print()
    return out


def sweep_tables(rows):
    by = {r["tag"]: r for r in rows}
    ts = sorted({r["tag"].split(".")[1] for r in rows if r["tag"].startswith("sweepW.")})
    if not ts:
        return
    print("### Warmup length W (gradients per chain until chain-median b² < 0.01, warmup "
          "included; final ensemble b²)\n")
    print("| target | W | heartbeat (mala) | final b² | MALA | final b² |")
    print("|---|---|---|---|---|---|")
    for t in ts:
        for w in (100, 200, 400, 800):
            h = by.get("sweepW.%s.%d" % (t, w))
            m = by.get("sweepW.%s.mala.%d" % (t, w))
            print("| %s | %d | %s | %s | %s | %s |" % (
                t.split("-")[0], w, cell(h, "chain_avg"),
                "%.1e" % h["b2_end"]["ens_avg"] if h else "-", cell(m, "chain_avg"),
                "%.1e" % m["b2_end"]["ens_avg"] if m else "-"))
    print()
    print("### Subchain length L (W = 400, adjust = mala, other settings default)\n")
    print("| target | L | chain crossing | ensemble crossing | final b² (chain median) |")
    print("|---|---|---|---|---|")
    for t in ts:
        for n in (2, 4, 8, 16):
            r = by.get("sweepL.%s.%d" % (t, n)) if n != 4 else by.get("sweepW.%s.400" % t)
            if r is None:
                continue
            print("| %s | %d | %s | %s | %.1e |" % (t.split("-")[0], n, cell(r, "chain_avg"),
                                                   cell(r, "ens_avg"), r["b2_end"]["chain_avg"]))
    print()


def wsweep_table(rows):
    by = {r["tag"]: r for r in rows}
    ts = []
    for r in rows:
        if r["tag"].startswith("wsweep.") and r["tag"].split(".")[1] not in ts:
            ts.append(r["tag"].split(".")[1])
    if not ts:
        return
    ws = (100, 200, 400, 1000, 2000)
    print("### The shortest safe warmup: Heartbeat (defaults) by W\n")
    print("Each cell: ensemble b² after W warmup iterations and 1600 sampling gradients per "
          "chain / gradients per chain until the chain-median b² < 0.01 (warmup included; "
          "'-' = not reached).\n")
    print("| target | " + " | ".join("W = %d" % w for w in ws) + " |")
    print("|---|" + "---|" * len(ws))
    for t in ts:
        cells = []
        for w in ws:
            r = by.get("wsweep.%s.%d" % (t, w))
            if r is None:
                cells.append("n/a")
                continue
            c = r.get("chain_avg")
            cells.append("%.0e / %s" % (r["b2_end"]["ens_avg"],
                                        "%.0f" % c["grads_per_chain_total"] if c else "-"))
        print("| %s | %s |" % (t.split("-")[0], " | ".join(cells)))
    print()


def tuning_tables(rows):
    by = {r["tag"]: r for r in rows}

    def c(r):
        if r is None:
            return "n/a"
        v = r.get("chain_avg")
        return "%.0e / %s" % (r["b2_end"]["ens_avg"],
                              "%.0f" % v["grads_per_chain_total"] if v else "-")

    ts = []
    for r in rows:
        if r["tag"].startswith("stagea.") and r["tag"].split(".")[1] not in ts:
            ts.append(r["tag"].split(".")[1])
    if ts:
        print("### Stage A: HEARTBEAT.md's adam_beta1 0.9, warmup_rate 0.05 against 0.3, 0.2\n")
        print("Ensemble b² / gradients per chain until the chain-median b² < 0.01 (L = 8, "
              "target_accept_min 0.95 in these runs).\n")
        print("| target | W = 400, 0.9/0.05 | W = 400, 0.3/0.2 | W = 1000, 0.9/0.05 | "
              "W = 1000, 0.3/0.2 |")
        print("|---|---|---|---|---|")
        for t in ts:
            print("| %s | %s |" % (t.split("-")[0], " | ".join(
                c(by.get("stagea.%s.%s.%d" % (t, k, w))) for w in (400, 1000)
                for k in ("spec", "default"))))
        print()
    ts = []
    for r in rows:
        if r["tag"].startswith("accept.") and r["tag"].split(".")[1] not in ts:
            ts.append(r["tag"].split(".")[1])
    if ts:
        pairs = [("0.95", "0.1"), ("0.8", "0.1"), ("0.6", "0.1"), ("0.95", "0.3"), ("0.8", "0.3")]
        print("### Acceptance targets (adjust = mala): gradients per chain until the "
              "chain-median b² < 0.01, L = 4 / L = 8\n")
        print("| target | " + " | ".join("min %s, max %s" % p for p in pairs) + " |")
        print("|---|" + "---|" * len(pairs))
        for t in ts:
            cells = []
            for a, b in pairs:
                v = []
                for n in (4, 8):
                    r = by.get("accept.%s.%s.%s.%d" % (t, a, b, n))
                    x = r.get("chain_avg") if r else None
                    v.append("%.0f" % x["grads_per_chain_total"] if x else "-")
                cells.append(" / ".join(v))
            print("| %s | %s |" % (t.split("-")[0], " | ".join(cells)))
        print()


def figures(out, floor):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    cur = os.path.join(out, "curves")
    targets = ["gauss100", "eight_schools-eight_schools_noncentered", "arK-arK",
               "garch-garch11", "gp_pois_regr-gp_regr", "mixture"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for ax, t in zip(axes.flat, targets):
        for s, col in zip(SAMPLERS, ["C3", "C1", "C4", "C7", "C0", "C2", "C5", "C6"]):
            p = os.path.join(cur, "main.%s.%s.npz" % (t, s))
            if not os.path.exists(p):
                continue
            z = np.load(p)
            g = float(z["grads_warmup"]) + float(z["grad_per_draw"]) * np.arange(
                1, len(z["chain_avg"]) + 1)
            ax.loglog(g, z["chain_avg"], color=col, label=s)
            ax.loglog(g, z["ens_avg"], color=col, ls=":", lw=1)
        ax.axhline(0.01, color="k", lw=0.7)
        ax.set_title(t.split("-")[0])
        ax.set_xlabel("gradient evaluations per chain (warmup included)")
        ax.set_ylabel("b² (solid: chain median, dotted: ensemble)")
        ax.set_ylim(1e-6, 1e2)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "b2_curves.png"), dpi=90)
    if floor:
        f = np.array(floor)
        fig, ax = plt.subplots(figsize=(6, 4))
        for j, (_, label, _) in enumerate(FLOOR_COLS):
            ax.semilogy(f[:, 0], f[:, 1 + j], "o-", label=label)
        ax.set_xlabel("target_accept_min")
        ax.set_ylabel("b² floor (100-d Gaussian, κ = 100)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "bias_floor.png"), dpi=90)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "out/bench_heartbeat"
    rows = load(os.path.join(out, "results.jsonl"))
    checks = load(os.path.join(out, "checks.jsonl"))
    main_table(rows, [c for c in checks if c["tag"].startswith("main.")])
    floor = floor_table(rows)
    sweep_tables(rows)
    wsweep_table(rows)
    tuning_tables(rows)
    figures(out, floor)


if __name__ == "__main__":
    main()
