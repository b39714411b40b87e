#!/usr/bin/python3
"""Heartbeat against Stan (rstan), measured in one run, target by target (Stan and Heartbeat
interleaved so that the load of the shared machine hits both alike):

  issue 7  gradient evaluations per second per core: heartbeat (bench_grad; grad_rate for the
           models bench_grad does not cover) against rstan's grad_log_prob (and against the
           leapfrog steps per second inside Stan's own NUTS, which has no R call overhead);
  issue 5  ESS_bulk per second per core (minimum over the parameters, sampling time, 4 chains
           x 1000 warmup x 1000 draws, one core) and per 1000 gradients: heartbeat NUTS
           (adapt = per_chain and pooled, through bench/samplers/ess.sh) against Stan's NUTS;
  issue 3  wall time until b^2 < 0.01 (bench/heartbeat/b2.py: ensemble of all chains, and
           median over chains) of the Heartbeat sampler (256 chains, W = 400, 2 threads, as
           bench/heartbeat/run.sh) against Stan's NUTS with 4 chains, whose draws go through
           the same b2.py.

Usage: bench/stan/compare.py [--build DIR] [--out DIR] [--seeds "1 2 3"] [--targets "..."]
                             [--skip-build] [--grad-secs S] [--parts "grad ess b2"]
       bench/stan/compare.py --out DIR --tables-only   (compare.md from all runs in DIR)
Needs R with rstan and posterior (scripts/setup-deps.sh --bench); without them it says so and
exits 0. Results: OUT/stan.jsonl, OUT/heartbeat_*.jsonl, OUT/compare.jsonl, OUT/compare.md.
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from statistics import median

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "heartbeat"))
import b2  # noqa: E402  (bench/heartbeat/b2.py: b^2 curves and crossings)

REF_TARGETS = [
    "eight_schools-eight_schools_noncentered", "diamonds-diamonds", "kilpisjarvi_mod-kilpisjarvi",
    "kidiq-kidscore_interaction", "arK-arK", "garch-garch11", "gp_pois_regr-gp_regr",
    "low_dim_gauss_mix-low_dim_gauss_mix",
]
# gauss100: iid N(0, I_100) (issue 5); gauss100k: condition number 100 (issue 3);
# logistic: 10^4 x 50 simulated (issue 7, gradients only).
ALL = ["gauss100", "gauss100k"] + REF_TARGETS + ["logistic"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def have_rstan():
    if not shutil.which("Rscript"):
        return "Rscript not found"
    r = subprocess.run(["Rscript", "-e", "quit(status = !(requireNamespace('rstan', quietly = TRUE)"
                        " && requireNamespace('posterior', quietly = TRUE)"
                        " && requireNamespace('jsonlite', quietly = TRUE)))"],
                       capture_output=True)
    return None if r.returncode == 0 else "R packages rstan, posterior or jsonlite missing"


class Env:
    def __init__(self, a):
        self.a = a
        self.build = os.path.abspath(a.build)
        self.out = os.path.abspath(a.out)
        self.shared = os.path.abspath(a.shared)
        self.hb = os.path.join(self.build, "heartbeat")
        self.grad_rate = os.path.join(self.build, "bench", "grad_rate")
        self.bench_grad = os.path.join(self.build, "bench", "bench_grad")
        self.work = os.path.join(self.out, "work")
        os.makedirs(self.work, exist_ok=True)
        self.env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                        HB_STAN_CACHE=os.environ.get("HB_STAN_CACHE",
                                                     os.path.join(self.build, "stan-cache")))
        self.logistic_data = os.path.join(self.work, "logistic_N10000_K50.json")

    def data_of(self, t):
        if t == "gauss100":
            p = os.path.join(self.work, "gauss100.json")
            json.dump({"D": 100}, open(p, "w"))
            return p
        if t == "gauss100k":
            p = os.path.join(self.work, "gauss100k.json")
            json.dump({"D": 100, "kappa": 100}, open(p, "w"))
            return p
        if t == "logistic":
            return self.logistic_data
        return os.path.join(self.shared, "targets", t, "data.json")

    def model_lines(self, t):
        if t == "gauss100":
            return "name = gaussian\ndim = 100\n"
        if t == "gauss100k":
            return "name = gaussian\ndim = 100\ncondition_number = 100\n"
        return f"name = {t}\ndata = {self.data_of(t)}\n"

    def b2_args(self, t):
        if t == "gauss100":
            return dict(builtin="gaussian:100:1")
        if t == "gauss100k":
            return dict(builtin="gaussian:100:100")
        return dict(ref=os.path.join(self.shared, "targets", t, "reference.json"))

    def run(self, cmd, threads=1, **kw):
        env = dict(self.env, OMP_NUM_THREADS=str(threads))
        return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- Stan side
def stan_run(E, t, seed, nuts=True, grad=True):
    draws = os.path.join(E.work, f"stan.{t}.{seed}.csv")
    cmd = ["Rscript", os.path.join(HERE, "stan_bench.R"), "--name", t,
           "--model", os.path.join(HERE, "models", f"{t}.stan"), "--data", E.data_of(t),
           "--seed", str(seed), "--grad-secs", str(E.a.grad_secs)]
    if nuts:
        cmd += ["--draws", draws]
    else:
        cmd += ["--no-nuts"]
    if not grad:
        cmd += ["--no-grad"]
    r = E.run(cmd)
    row = json.loads(r.stdout.strip().splitlines()[-1])
    if nuts:
        row["draws_csv"] = draws
    return row


def stan_b2(E, t, row):
    """b^2 crossings of Stan's draws by b2.analyse: the draws go into a run file of
    heartbeat's layout whose times are one core's (chains in sequence)."""
    h5 = row["draws_csv"][:-4] + ".h5"
    with open(row["draws_csv"]) as f:
        rd = csv.reader(f)
        head = next(rd)
        vals = np.array([[float(v) for v in r] for r in rd])
    nc, nd = row["chains"], row["draws"]
    chain, draw = vals[:, 0].astype(int), vals[:, 1].astype(int)
    groups = {}
    for j, name in enumerate(head[2:], start=2):
        m = re.match(r"^([^\[]+)(?:\[([0-9,]+)\])?$", name)
        groups.setdefault(m.group(1), []).append((m.group(2), j))
    with h5py.File(h5, "w") as f:
        post = f.create_group("posterior")
        for base, cols in groups.items():
            a = np.empty((nc, nd, len(cols)))
            for k, (_, j) in enumerate(cols):
                a[chain, draw, k] = vals[:, j]
            post[base] = a if cols[0][0] is not None else a[..., 0]
        at = f.attrs
        at["algorithm"] = "stan-nuts"
        at["gradient_evals_warmup"] = row["grads_warmup"]
        at["gradient_evals_sampling"] = row["grads_sampling"]
        at["wall_time_warmup"] = row["wall_warmup"]
        at["wall_time_sampling"] = row["wall_sampling"]
    res = b2.analyse(h5, **E.b2_args(t))
    os.remove(h5)
    # wall times until the crossing for 4 chains run in parallel: on 2 cores (one core's time
    # halved: perfectly balanced, the best case) and on 4 cores (slowest chain's warmup +
    # slowest chain's sampling up to the crossing)
    for key in ("ens_avg", "chain_avg"):
        c = res.get(key)
        if c:
            k = c["draws"]
            c["wall_1core"] = c["wall_total"]
            c["wall_2cores"] = c["wall_total"] / 2
            c["wall_4cores"] = max(row["chain_warmup_s"]) + max(row["chain_sampling_s"]) * k / nd
    res["wall_full_run_2cores"] = (row["wall_warmup"] + row["wall_sampling"]) / 2
    res["wall_full_run_4cores"] = max(w + s for w, s in zip(row["chain_warmup_s"],
                                                            row["chain_sampling_s"]))
    return res


# ---------------------------------------------------------------- Heartbeat side
def hb_grad_rates(E, targets):
    """bench_grad for the reference targets and its logistic row (10^4 x 50, its own
    simulated data: the cost does not depend on the values); grad_rate for the Gaussians and
    for the logistic data file Stan reads."""
    rates = {}
    if any(t in REF_TARGETS or t == "logistic" for t in targets):
        r = E.run([E.bench_grad, E.shared, str(E.a.grad_secs)])
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) >= 6 and f[0] in REF_TARGETS:
                rates[f[0]] = dict(one=float(f[2]), batch=float(f[3]), source="bench_grad")
            m = re.match(r"^logistic N=(\d+) K=(\d+)\s+\d+\s+(\S+)\s+(\S+)", line)
            if m:
                rates["logistic(bench_grad)"] = dict(one=float(m.group(3)), batch=float(m.group(4)),
                                                     source="bench_grad")
    for t in targets:
        if t in ("gauss100", "gauss100k", "logistic"):
            ini = os.path.join(E.work, f"grad.{t}.ini")
            open(ini, "w").write("[model]\n" + E.model_lines(t))
            j = json.loads(E.run([E.grad_rate, ini, str(E.a.grad_secs)]).stdout)
            rates[t] = dict(one=j["grads_per_s_one_chain"], batch=j["grads_per_s_batch"],
                            source="grad_rate")
    return rates


def hb_nuts_ess(E, t, seeds):
    """bench/samplers/ess.sh for nuts (per_chain) and nuts-pooled, 4 chains, one thread."""
    out = os.path.join(E.work, f"ess.{t}")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(E.env, TARGETS=t, SAMPLERS="nuts nuts-pooled", SEEDS=" ".join(map(str, seeds)),
               THREADS="1", CHAINS="4", WARMUP="1000", DRAWS="1000", SHARED=E.shared)
    subprocess.run([os.path.join(ROOT, "bench", "samplers", "ess.sh"), E.build, out], env=env,
                   check=True, capture_output=True, text=True)
    return [json.loads(l) for l in open(os.path.join(out, "ess.jsonl")) if l.strip()]


# Targets where Heartbeat's defaults at W = 400 do not converge (README: the needles) and the
# setting README reports to work for some of them: a dense metric and W = 1000. Run as an extra
# variant next to the defaults.
DENSE_VARIANT = {"diamonds-diamonds", "kidiq-kidscore_interaction", "kilpisjarvi_mod-kilpisjarvi"}


def hb_heartbeat_b2(E, t, chains=256, warmup=400, grads=4000, threads=2, seed=20261122,
                    sampler_lines=""):
    """The Heartbeat sampler with bench/heartbeat/run.sh's main settings, b^2 by b2.py."""
    ini = os.path.join(E.work, f"hb.{t}.ini")
    h5 = os.path.join(E.work, f"hb.{t}.h5")
    open(ini, "w").write(
        f"[run]\nseed = {seed}\nchains = {chains}\nwarmup = {warmup}\ndraws = {grads // 4}\n"
        f"output = {h5}\ninit_radius = 2\n[model]\n{E.model_lines(t)}[sampler]\n"
        "algorithm = heartbeat\n" + sampler_lines)
    t0 = time.time()
    E.run([E.hb, "run", ini, "--quiet"], threads=threads)
    wall = time.time() - t0
    res = b2.analyse(h5, **E.b2_args(t))
    res["process_wall"] = wall
    res["threads"] = threads
    os.remove(h5)
    return res


# ---------------------------------------------------------------- tables
def fmt(x, p=3):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    return f"{x:.{p}g}"


def tables(rows):
    g = {r["target"]: r for r in rows}
    out = []
    out.append("### Gradient evaluations per second, one core (issue 7: goal >= 5x Stan)\n")
    out.append("Stan: rstan's grad_log_prob (best of 3 windows; `direct` calls the model "
               "instance's method without S4 dispatch) and leapfrog steps per second of sampling "
               "time inside Stan's NUTS (no R in the loop, NUTS overhead included). Heartbeat: "
               "one chain (hb_model_eval_one / the model's logp_grad) and a SIMD batch of 8.\n")
    out.append("| target | dim | Stan grad_log_prob | direct | Stan inside NUTS | heartbeat one chain | "
               "heartbeat batch | batch / grad_log_prob | batch / inside NUTS | "
               "one chain / inside NUTS | >= 5x grad_log_prob |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for t, r in g.items():
        s, h = r.get("stan_grad"), r.get("hb_grad")
        if not s or not h:
            continue
        ins = r.get("stan_leapfrog_per_s")
        out.append(f"| {t} | {s['dim']} | {fmt(s['rate'])} | {fmt(s.get('direct'))} | "
                   f"{fmt(ins)} | {fmt(h['one'])} | "
                   f"{fmt(h['batch'])} | **{fmt(h['batch'] / s['rate'])}** | "
                   f"{fmt(h['batch'] / ins if ins else None)} | "
                   f"{fmt(h['one'] / ins if ins else None)} | "
                   f"{'yes' if h['batch'] >= 5 * s['rate'] else 'no'} |")
    out.append("\n### NUTS, 4 chains x 1000 warmup x 1000 draws, one core (issue 5: goal >= 2x Stan)\n")
    out.append("Minimum ESS_bulk over the parameters; ESS/s over the sampling time; medians over "
               "seeds.\n")
    out.append("| target | Stan ESS | Stan ESS/s | Stan ESS/1000 grads | Stan grads/draw | "
               "hb nuts ESS/s | ratio | hb ESS/1000 grads | hb grads/draw | hb nuts-pooled ESS/s | "
               "ratio | divergences Stan / hb / pooled |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for t, r in g.items():
        s = r.get("stan_ess")
        if not s:
            continue
        hn, hp = r.get("hb_nuts") or {}, r.get("hb_nuts_pooled") or {}
        out.append(
            f"| {t} | {s['ess']:.0f} | {fmt(s['ess_per_s'])} | {fmt(s['ess_per_1000_grads'])} | "
            f"{fmt(s['grads_per_draw'])} | {fmt(hn.get('ess_per_s'))} | "
            f"**{fmt(hn['ess_per_s'] / s['ess_per_s'] if hn else None)}** | "
            f"{fmt(hn.get('ess_per_1000_grads'))} | {fmt(hn.get('grads_per_draw'))} | "
            f"{fmt(hp.get('ess_per_s'))} | "
            f"{fmt(hp['ess_per_s'] / s['ess_per_s'] if hp else None)} | "
            f"{fmt(s['divergences'])} / {fmt(hn.get('divergences'))} / "
            f"{fmt(hp.get('divergences'))} |")
    out.append("\n### Wall time until b² < 0.01 (issue 3: goal Heartbeat < 1/5 of Stan)\n")
    out.append("b2.py's crossings (last time the curve goes below 0.01) of b² of x², averaged "
               "over coordinates: *ens* = all chains' draws pooled, *chain* = median over chains "
               "of each chain's running average (ALGORITHMS.md §11.1). Heartbeat: the Heartbeat "
               "sampler (defaults, 256 chains as bench/heartbeat, W = 400, 4000 sampling "
               "gradients per chain), wall time warmup included; Stan: NUTS, 4 chains x (1000 "
               "warmup + 1000 draws), warmup included. Per core: Heartbeat on 1 thread against "
               "Stan's 4 chains in sequence on 1 core. 2 cores: Heartbeat on 2 threads against "
               "Stan's 4 chains on the same 2 cores (one core's time / 2: perfectly balanced, "
               "Stan's best case). Medians over seeds (a seed that does not reach counts as "
               "infinite); times in seconds; ratio = Heartbeat / Stan; goal met when ratio < "
               "0.2.\n")
    out.append("| target | Stan 1 core ens / chain | hb 1 thread ens / chain | ratio ens / chain | "
               "goal (1 core) | Stan 2 cores ens | hb 2 threads ens | ratio | goal (2 cores) | "
               "final ens b² hb / Stan |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    variants = []
    for t, r in g.items():
        variants.append((t, r, r.get("hb_b2_runs")))
        if r.get("hb_b2_runs_dense"):
            variants.append((t + " (hb: dense, W = 1000)", r, r["hb_b2_runs_dense"]))

    def med_wall(runs, key, field):
        v = [x[key][field] if x.get(key) else float("inf") for x in runs]
        if not v:
            return None
        m = median(v)
        return None if m == float("inf") else m

    def ratio(h, s_):
        return h / s_ if h is not None and s_ else None

    def goal(rt, h):
        if h is None:
            return "no (hb not reached)"
        if rt is None:
            return "n/a (Stan not reached)"
        return "yes" if rt < 0.2 else "no"
    for t, r, hr in variants:
        sr = r.get("stan_b2_runs")
        if not sr or not hr:
            continue
        h1 = [x for x in hr if x["chains"] == 256 and x["threads"] == 1]
        h2 = [x for x in hr if x["chains"] == 256 and x["threads"] == 2]
        if not h1 and not h2:
            continue
        se1, sc1 = med_wall(sr, "ens_avg", "wall_1core"), med_wall(sr, "chain_avg", "wall_1core")
        se2 = med_wall(sr, "ens_avg", "wall_2cores")
        he1, hc1 = med_wall(h1, "ens_avg", "wall_total"), med_wall(h1, "chain_avg", "wall_total")
        he2 = med_wall(h2, "ens_avg", "wall_total")
        re1, rc1, re2 = ratio(he1, se1), ratio(hc1, sc1), ratio(he2, se2)
        hb_end = median(x["b2_end"]["ens_avg"] for x in h1 + h2)
        st_end = median(x["b2_end"]["ens_avg"] for x in sr)
        out.append(f"| {t} | {fmt(se1)} / {fmt(sc1)} | {fmt(he1)} / {fmt(hc1)} | "
                   f"**{fmt(re1)}** / **{fmt(rc1)}** | {goal(re1, he1)} / {goal(rc1, hc1)} | "
                   f"{fmt(se2)} | {fmt(he2)} | **{fmt(re2)}** | {goal(re2, he2)} | "
                   f"{fmt(hb_end, 2)} / {fmt(st_end, 2)} |")
    out.append("\nThe same per core and with the best of the chain counts run (picked after the "
               "fact, so optimistic for Heartbeat): Heartbeat on 1 thread against Stan's 4 chains "
               "in sequence on 1 core; on 2 threads against Stan on 4 cores (slowest chain's "
               "warmup + sampling to the crossing). Ensemble crossings.\n")
    out.append("| target | Stan 1 core | Stan 4 cores | hb 1 thread best (chains) | ratio 1 core | "
               "hb 2 threads best (chains) | ratio vs Stan 4 cores | Stan full run 1 core |")
    out.append("|---|---|---|---|---|---|---|---|")
    for t, r, hr in variants:
        sr = r.get("stan_b2_runs")
        if not sr or not hr:
            continue
        s1, s4 = med_wall(sr, "ens_avg", "wall_1core"), med_wall(sr, "ens_avg", "wall_4cores")
        sfull = median(x["wall_full_run_2cores"] * 2 for x in sr)

        def best(th):
            """(median wall to the ensemble crossing, chains) of the best chain count"""
            out_ = []
            for nc in sorted({x["chains"] for x in hr}):
                m = med_wall([x for x in hr if x["chains"] == nc and x["threads"] == th],
                             "ens_avg", "wall_total")
                if m is not None:
                    out_.append((m, nc))
            return min(out_) if out_ else (None, None)
        h1, c1 = best(1)
        h2, c2 = best(2)
        out.append(
            f"| {t} | {fmt(s1)} | {fmt(s4)} | {fmt(h1)} ({c1 or '–'}) | "
            f"{fmt(ratio(h1, s1))} | {fmt(h2)} ({c2 or '–'}) | {fmt(ratio(h2, s4))} | "
            f"{fmt(sfull)} |")
    cc = sorted({(x["chains"], x["threads"]) for r in rows for x in (r.get("hb_b2_runs") or [])})
    if cc:
        out.append("\nHeartbeat wall time until ensemble / chain-median b² < 0.01 by chains / "
                   "threads (median over seeds; – = not reached in 4000 gradients per chain):\n")
        out.append("| target | " + " | ".join(f"{c} ch / {th} th" for c, th in cc) + " |")
        out.append("|---|" + "---|" * len(cc))
        for t, r, hr in variants:
            if not hr:
                continue
            cells = []
            for c, th in cc:
                sub = [x for x in hr if x["chains"] == c and x["threads"] == th]
                cells.append(f"{fmt(med_wall(sub, 'ens_avg', 'wall_total'))} / "
                             f"{fmt(med_wall(sub, 'chain_avg', 'wall_total'))}")
            out.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build-stan"))
    p.add_argument("--out", default=os.path.join(ROOT, "build-stan", "bench_stan"))
    p.add_argument("--shared", default=os.environ.get("HB_SHARED_DIR",
                                                      os.path.join(ROOT, "..", "shared")))
    p.add_argument("--seeds", default="1 2 3")
    p.add_argument("--targets", default=" ".join(ALL))
    p.add_argument("--grad-secs", type=float, default=2.0)
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--hb-chains", default="16 64 256",
                   help="chain counts of the Heartbeat runs for b^2")
    p.add_argument("--hb-threads", default="1 2",
                   help="thread counts of the Heartbeat runs for b^2")
    p.add_argument("--parts", default="grad ess b2", help="any of: grad ess b2")
    p.add_argument("--tables-only", action="store_true",
                   help="no runs: rebuild OUT/compare.md from OUT/compare.jsonl, merging the "
                        "rows of all runs target by target (a later run's keys win; b² runs "
                        "of other seeds are added)")
    a = p.parse_args()
    if a.tables_only:
        merged = {}
        runs = ("stan_b2_runs", "hb_b2_runs", "hb_b2_runs_dense")
        for line in open(os.path.join(a.out, "compare.jsonl")):
            if line.strip():
                r = json.loads(line)
                m = merged.setdefault(r["target"], {})
                for k in runs:  # b² runs of several invocations (e.g. more seeds) add up;
                    if k in r and k in m:  # a run of the same seed and layout replaces
                        new_ = {(x["seed"], x.get("chains"), x.get("threads")): x
                                for x in m[k] + r[k]}
                        r[k] = list(new_.values())
                m.update(r)
        md = tables(list(merged.values()))
        open(os.path.join(a.out, "compare.md"), "w").write(md)
        print(md)
        return 0
    why = have_rstan()
    if why:
        print(f"bench/stan: skipped: {why} (install with scripts/setup-deps.sh --bench)")
        return 0
    if not a.skip_build:
        subprocess.run(["cmake", "-S", ROOT, "-B", a.build, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", a.build, "-j2", "--target", "heartbeat_cli",
                        "bench_grad", "grad_rate"], check=True, stdout=subprocess.DEVNULL)
    E = Env(a)
    targets = a.targets.split()
    seeds = [int(s) for s in a.seeds.split()]
    parts = a.parts.split()
    if "logistic" in targets and not os.path.exists(E.logistic_data):
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make_logistic_data.py"),
                        E.logistic_data], check=True)
    os.makedirs(E.out, exist_ok=True)
    stan_log = open(os.path.join(E.out, "stan.jsonl"), "a")
    res_log = open(os.path.join(E.out, "compare.jsonl"), "a")
    rows = []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for t in targets:
        row = dict(target=t, run=stamp)
        nuts = t != "logistic" and ("ess" in parts or "b2" in parts)
        stan_rows = []
        for i, seed in enumerate(seeds if nuts else seeds[:1]):
            log(f"{t}: Stan seed {seed}")
            sr = stan_run(E, t, seed, nuts=nuts, grad=("grad" in parts and i == 0))
            stan_log.write(json.dumps(dict(sr, run=stamp)) + "\n")
            stan_log.flush()
            stan_rows.append(sr)
        if "grad" in parts:
            log(f"{t}: heartbeat gradients")
            hr = hb_grad_rates(E, [t])
            row["hb_grad"] = hr[t]
            if t == "logistic" and "logistic(bench_grad)" in hr:
                row["hb_grad_bench_grad"] = hr["logistic(bench_grad)"]
            s0 = stan_rows[0]
            row["stan_grad"] = dict(rate=s0["grad_log_prob_per_s"], dim=s0["dim"],
                                    direct=s0.get("grad_log_prob_direct_per_s"))
        if nuts:
            # leapfrog steps per second inside Stan's NUTS (for the gradient table)
            row["stan_leapfrog_per_s"] = median(s["leapfrog_per_s_sampling"] for s in stan_rows)
        if nuts and "ess" in parts:
            row["stan_ess"] = dict(
                ess=median(s["ess_bulk_min"] for s in stan_rows),
                ess_per_s=median(s["ess_per_s"] for s in stan_rows),
                ess_per_1000_grads=median(s["ess_per_1000_grads"] for s in stan_rows),
                grads_per_draw=median(s["grads_sampling"] / (s["chains"] * s["draws"])
                                      for s in stan_rows),
                divergences=median(s["divergences"] for s in stan_rows),
                seeds=len(stan_rows))
            if t != "gauss100k":  # ess.sh knows gauss100 and the reference targets
                log(f"{t}: heartbeat NUTS")
                hrows = hb_nuts_ess(E, t, seeds)
                row["hb_nuts_runs"] = hrows
                for name, key in (("nuts", "hb_nuts"), ("nuts-pooled", "hb_nuts_pooled")):
                    rs = [r for r in hrows if r["sampler"] == name]
                    if rs:
                        row[key] = dict(
                            ess=median(r["ess_bulk_min"] for r in rs),
                            ess_per_s=median(r["ess_per_s"] for r in rs),
                            ess_per_1000_grads=median(r["ess_per_1000_grads"] for r in rs),
                            grads_per_draw=median(r["grads_sampling"] / (r["chains"] * r["draws"])
                                                  for r in rs),
                            divergences=median(r["divergences"] for r in rs), seeds=len(rs))
        if nuts and "b2" in parts and t != "gauss100":
            log(f"{t}: b2 (Stan, Heartbeat)")
            row["stan_b2_runs"] = [dict(stan_b2(E, t, sr), seed=sr["seed"]) for sr in stan_rows]
            row["hb_b2_runs"] = []
            for nc in [int(c) for c in a.hb_chains.split()]:
                for th in [int(x) for x in a.hb_threads.split()]:
                    for seed in seeds:
                        r = hb_heartbeat_b2(E, t, chains=nc, threads=th, seed=20261122 + seed)
                        row["hb_b2_runs"].append(dict(r, chains=nc, threads=th, seed=seed))
                        if t in DENSE_VARIANT:
                            r = hb_heartbeat_b2(E, t, chains=nc, threads=th, seed=20261122 + seed,
                                                warmup=1000, sampler_lines="metric = dense\n")
                            row.setdefault("hb_b2_runs_dense", []).append(
                                dict(r, chains=nc, threads=th, seed=seed))
        for s in stan_rows:
            if s.get("draws_csv") and os.path.exists(s["draws_csv"]):
                os.remove(s["draws_csv"])
        res_log.write(json.dumps(row) + "\n")
        res_log.flush()
        rows.append(row)
        log(f"{t}: done")
    md = tables(rows)
    open(os.path.join(E.out, "compare.md"), "w").write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
