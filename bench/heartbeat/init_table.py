#!/usr/bin/python3
"""Table of bench/heartbeat/run.sh's `init` part: [heartbeat] init = adam against init = lbfgs,
gradients per chain and wall time until b^2 < 0.01 (b2.py's last crossing; ensemble and
chain median), next to Stan's wall time to the same crossings (NUTS, 4 chains, 1 core: the
stan_b2_runs of bench/stan/results/compare.jsonl, medians over seeds, as compare.py).

  init_table.py RESULTS.jsonl [--stan bench/stan/results/compare.jsonl]
"""
import argparse
import json
import os
from statistics import median

HERE = os.path.dirname(os.path.abspath(__file__))


def fmt(x, p=3):
    return "–" if x is None else f"{x:.{p}g}"


def stan_walls(path):
    out = {}
    if not os.path.exists(path):
        return out
    for line in open(path):
        r = json.loads(line)
        runs = r.get("stan_b2_runs")
        if not runs:
            continue

        def med(key):
            v = [x[key]["wall_1core"] if x.get(key) else float("inf") for x in runs]
            m = median(v)
            return None if m == float("inf") else m
        out[r["target"]] = (med("ens_avg"), med("chain_avg"))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("results")
    p.add_argument("--stan", default=os.path.join(HERE, "..", "stan", "results", "compare.jsonl"))
    a = p.parse_args()
    stan = stan_walls(a.stan)
    rows = [json.loads(line) for line in open(a.results)]
    rows = [r for r in rows if r.get("tag", "").startswith("init.")]
    print("| target | chains | warmup | init | warmup grads/chain | ens: grads/chain | ens: wall s "
          "| chain-median: grads/chain | chain-median: wall s | final ens b² | Stan ens / chain "
          "wall s | ratio ens / chain |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        _, t, init, nc = r["tag"].split(".", 3)
        w = "auto" if init.endswith("-auto") else "400"
        init = init.replace("-auto", "")
        e, c = r.get("ens_avg"), r.get("chain_avg")
        se, sc = stan.get(t, (None, None))
        re = e["wall_total"] / se if e and se else None
        rc = c["wall_total"] / sc if c and sc else None
        wu = r.get("adaptation", {}).get("warmup_used")
        print(f"| {t} | {nc} | {w}{'' if w == '400' or wu is None else f' ({wu:.0f})'} | "
              f"{init} | {fmt(r['grads_warmup_per_chain'], 4)} | "
              f"{fmt(e['grads_per_chain_total'], 4) if e else '–'} | "
              f"{fmt(e['wall_total']) if e else '–'} | "
              f"{fmt(c['grads_per_chain_total'], 4) if c else '–'} | "
              f"{fmt(c['wall_total']) if c else '–'} | {fmt(r['b2_end']['ens_avg'], 2)} | "
              f"{fmt(se)} / {fmt(sc)} | {fmt(re, 2)} / {fmt(rc, 2)} |")


if __name__ == "__main__":
    main()
