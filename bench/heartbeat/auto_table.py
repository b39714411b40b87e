#!/usr/bin/python3
"""The warmup = auto table of the README from a results.jsonl of `run.sh BUILD OUT auto`:
per target, warmup used, gradients per chain (warmup included) to b^2 < 0.01 (median over
chains / ensemble) and wall time to the per-chain crossing, auto against fixed W = 400."""
import json
import sys

rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    _, target, kind = r["tag"].split(".", 2)
    rows.setdefault(target, {})[kind] = r


def cell(r):
    c, e = r.get("chain_avg"), r.get("ens_avg")
    g = lambda x: "–" if x is None else "%.0f" % x["grads_per_chain_total"]
    return "%s / %s" % (g(c), g(e))


def wall(r):
    c = r.get("chain_avg")
    return None if c is None else c["wall_total"]


print("| target | warmup used (auto) | auto: grads to b² < 0.01 | W = 400 | wall auto / W = 400 "
      "| b² at the end (auto / 400, per chain) |")
print("|---|---|---|---|---|---|")
for t, k in rows.items():
    a, f = k.get("heartbeat-auto"), k.get("heartbeat-400")
    if not a or not f:
        continue
    wa, wf = wall(a), wall(f)
    ratio = "%.2f" % (wa / wf) if wa and wf else "–"
    print("| %s | %.0f | %s | %s | %s | %.2g / %.2g |" % (
        t.split("-")[0], a["adaptation"]["warmup_used"], cell(a), cell(f), ratio,
        a["b2_end"]["chain_avg"], f["b2_end"]["chain_avg"]))
