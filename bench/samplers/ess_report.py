"""Table of bench/samplers/ess.sh results: medians over seeds per (target, sampler)."""
import json
import sys
from collections import defaultdict
from statistics import median

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = defaultdict(list)
for r in rows:
    groups[(r["target"], r["sampler"])].append(r)
print("| target | sampler | seeds | min ESS_bulk | ESS/s (sampling, 1 core) | ESS / 1000 grads |"
      " grads/draw | divergences | warmup s | sampling s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (t, s), rs in groups.items():
    def med(k):
        return median(r[k] for r in rs)
    gpd = median(r["grads_sampling"] / (r["chains"] * r["draws"]) for r in rs)
    print(f"| {t} | {s} | {len(rs)} | {med('ess_bulk_min'):.0f} | {med('ess_per_s'):.3g} | "
          f"{med('ess_per_1000_grads'):.3g} | {gpd:.1f} | {med('divergences'):.0f} | "
          f"{med('wall_warmup'):.3g} | {med('wall_sampling'):.3g} |")
