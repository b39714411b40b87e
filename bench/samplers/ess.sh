#!/bin/sh
# Issue-5 benchmark: ESS_bulk per second (one core) and per gradient evaluation for the HMC
# family (nuts, hmc, chees when registered) and MALA on the 100-d iid Gaussian and the eight
# reference targets, 4 chains x 1000 warmup x 1000 draws as Stan's defaults (bench/stan/ runs
# Stan on the same targets; bench/stan's comparison script puts the two side by side).
# ESS is the minimum ESS_bulk over the posterior's coordinates (lp__ excluded), from
# `heartbeat summary --format json`; time is the sampling wall time (warmup reported apart).
#
# Usage: bench/samplers/ess.sh [BUILD_DIR] [OUT_DIR]
#   Environment: CHAINS (4), WARMUP (1000), DRAWS (1000), THREADS (1), SAMPLERS, TARGETS,
#   SEEDS (1 2 3), SHARED (../shared).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
OUT=${2:-out/bench_samplers}
HB=$(cd "$BUILD" && pwd)/heartbeat
SHARED=${SHARED:-$HERE/../../../shared}
CHAINS=${CHAINS:-4}
WARMUP=${WARMUP:-1000}
DRAWS=${DRAWS:-1000}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-1 2 3}
PY=/usr/bin/python3
mkdir -p "$OUT/runs"
RES=$OUT/ess.jsonl
has_sampler() { "$HB" run /dev/null --set sampler.algorithm="$1" 2>&1 | grep -q "unknown sampler" && return 1 || return 0; }
ALL_T="gauss100"
for dir in "$SHARED"/targets/*/; do
    [ -f "$dir/reference.json" ] && ALL_T="$ALL_T $(basename "$dir")"
done
TARGETS=${TARGETS:-$ALL_T}
SAMPLERS=${SAMPLERS:-nuts nuts-pooled hmc chees mala}

model_of() {
    case $1 in
    gauss100) printf 'name = gaussian\ndim = 100\n' ;;
    *) printf 'name = %s\ndata = %s/targets/%s/data.json\n' "$1" "$SHARED" "$1" ;;
    esac
}
sampler_of() {
    case $1 in
    nuts-pooled) printf 'algorithm = nuts\n[nuts]\nadapt = pooled\n' ;;
    *) printf 'algorithm = %s\n' "$1" ;;
    esac
}

for t in $TARGETS; do
    for s in $SAMPLERS; do
        has_sampler "${s%-pooled}" || continue
        for seed in $SEEDS; do
            tag=$t.$s.$seed ini=$OUT/runs/$tag.ini h5=$OUT/runs/$tag.h5
            {
                printf '[run]\nseed = %s\nchains = %s\nwarmup = %s\ndraws = %s\n' "$seed" "$CHAINS" "$WARMUP" "$DRAWS"
                printf 'output = %s\ninit_radius = 2\n[model]\n' "$h5"
                model_of "$t"
                printf '[sampler]\n'
                sampler_of "$s"
            } > "$ini"
            if ! OMP_NUM_THREADS=$THREADS "$HB" run "$ini" --quiet 2> "$OUT/runs/$tag.log"; then
                echo "$tag: run failed: $(tail -n 1 "$OUT/runs/$tag.log")" >&2
                continue
            fi
            "$HB" summary "$h5" --format json > "$OUT/runs/$tag.json"
            $PY - "$OUT/runs/$tag.json" "$h5" "$t" "$s" "$seed" >> "$RES" <<'PYEOF'
import json, sys
import h5py
js, h5, target, sampler, seed = sys.argv[1:6]
summ = json.load(open(js))
ess = [v["ess_bulk"] for v in summ["variables"] if v["name"] != "lp__"]
with h5py.File(h5, "r") as f:
    a = f.attrs
    tw, ts = float(a["wall_time_warmup"]), float(a["wall_time_sampling"])
    gw, gs = int(a["gradient_evals_warmup"]), int(a["gradient_evals_sampling"])
    div = int(f["sample_stats/diverging"][:].sum())
row = dict(target=target, sampler=sampler, seed=int(seed), chains=summ["chains"],
           draws=summ["draws"], ess_bulk_min=min(ess), wall_warmup=tw, wall_sampling=ts,
           grads_warmup=gw, grads_sampling=gs, divergences=div,
           ess_per_s=min(ess) / ts, ess_per_1000_grads=1000 * min(ess) / gs)
print(json.dumps(row))
PYEOF
            rm -f "$h5"
            echo "$tag done" >&2
        done
    done
done
$PY "$HERE/ess_report.py" "$RES" > "$OUT/ess.md"
cat "$OUT/ess.md"
