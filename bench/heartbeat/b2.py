#!/usr/bin/python3
"""b^2 of one run file (ALGORITHMS.md §11.1): per-chain running averages of x_i^2, b^2 per
coordinate against reference moments, averaged (and maxed) over coordinates, median over
chains, last crossing of 0.01; also the ensemble version (all chains pooled up to draw n).
Prints one JSON row; --curves saves the curves (.npz) for plots.

  b2.py RUN.h5 --ref REFERENCE.json          posteriordb target (constrained parameters)
  b2.py RUN.h5 --builtin gaussian:100:100    gaussian dim kappa (rho = 0)
  b2.py RUN.h5 --builtin mixture2            the 2-d bimodal mixture (0.3/0.7 at -4/4)
  b2.py RUN.h5 --builtin funnel:10           Neal's funnel (v, x[1..])
  b2.py RUN.h5 --builtin rosenbrock:36:0.1   banana pairs, dim Q
"""
import argparse
import json
import math
import re
import sys

import h5py
import numpy as np

THRESHOLD = 0.01


def builtin_moments(spec, d):
    """E[x_i^2] and Var[x_i^2] per coordinate, exact."""
    parts = spec.split(":")
    name = parts[0]
    if name == "gaussian":
        kappa = float(parts[2])
        var = kappa ** (np.arange(d) / max(d - 1, 1))
        return var, 2 * var**2
    if name == "mixture2":
        # N(+-4, 1) per coordinate: E x^2 = 17, E x^4 = 4^4 + 6 4^2 + 3 = 355
        return np.full(d, 17.0), np.full(d, 355.0 - 17.0**2)
    if name == "funnel":
        e = np.empty(d)
        v = np.empty(d)
        e[0], v[0] = 9.0, 2 * 81.0
        e[1:] = math.exp(4.5)  # E e^v, v ~ N(0, 9)
        v[1:] = 3 * math.exp(18.0) - math.exp(9.0)  # E x^4 = 3 E e^{2v}
        return e, v
    if name == "rosenbrock":
        q = float(parts[2])
        e = np.empty(d)
        v = np.empty(d)
        e[0::2], v[0::2] = 2.0, 6.0  # a = 1 + z: E a^2 = 2, E a^4 = 10
        e[1::2] = q + 10.0
        v[1::2] = 764.0 + 60.0 * q + 3 * q * q - (q + 10.0) ** 2  # E a^8 = 764
        return e, v
    raise SystemExit("unknown builtin " + spec)


def read_draws(f, names=None):
    """(chains, draws, D) array. names: reference parameter names (constrained, model
    order); None: the single posterior variable x (built-in models)."""
    post = f["posterior"]
    if names is None:
        x = post["x"][...]
        return x if x.ndim == 3 else x[..., None]
    cols = []
    for nm in names:
        m = re.match(r"^([^\[]+)(?:\[([0-9,]+)\])?$", nm)
        base, idx = m.group(1), m.group(2)
        a = post[base]
        if idx is None:
            cols.append(a[...])
        else:
            ix = tuple(int(k) - 1 for k in idx.split(","))
            cols.append(a[(slice(None), slice(None)) + ix])
    return np.stack(cols, axis=-1)


def last_crossing(curve):
    """Draws needed so that the curve stays below THRESHOLD from then on (1 + the last index
    above it); None if it ends above."""
    above = np.nonzero(curve > THRESHOLD)[0]
    if len(above) == 0:
        return 1
    if above[-1] == len(curve) - 1:
        return None
    return int(above[-1]) + 2


def analyse(path, ref=None, builtin=None, curves=None):
    f = h5py.File(path, "r")
    if ref:
        r = json.load(open(ref))["parameters"]
        names = [p["name"] for p in r]
        e = np.array([p["mean_sq"] for p in r])
        v = np.array([p["var_sq"] for p in r])
        x = read_draws(f, names)
    else:
        x = read_draws(f)
        e, v = builtin_moments(builtin, x.shape[2])
    nc, nd, d = x.shape
    x2 = x * x
    del x
    n = np.arange(1, nd + 1)[None, :, None]
    run = np.cumsum(x2, axis=1) / n  # per-chain running averages
    b = (run - e) ** 2 / v
    b_avg = np.median(b.mean(axis=2), axis=0)
    b_max = np.median(b.max(axis=2), axis=0)
    del b, run
    ens = np.cumsum(x2.sum(axis=0), axis=0) / (n[0] * nc)
    be = (ens - e) ** 2 / v
    e_avg, e_max = be.mean(axis=1), be.max(axis=1)
    at = f.attrs
    gw = float(at["gradient_evals_warmup"])
    gs = float(at["gradient_evals_sampling"])
    tw = float(at["wall_time_warmup"])
    ts = float(at["wall_time_sampling"])
    per_draw = gs / (nc * nd)  # gradient evaluations per chain per draw
    alg = at["algorithm"]
    alg = alg.decode() if isinstance(alg, bytes) else str(alg)
    row = {
        "file": path,
        "algorithm": alg,
        "chains": nc,
        "draws": nd,
        "dim": d,
        "grad_per_draw": per_draw,
        "grads_warmup_per_chain": gw / nc,
        "wall_warmup": tw,
        "wall_sampling": ts,
        "b2_end": {"chain_avg": float(b_avg[-1]), "chain_max": float(b_max[-1]),
                   "ens_avg": float(e_avg[-1]), "ens_max": float(e_max[-1])},
    }
    if "adaptation" in f:
        a = f["adaptation"].attrs
        row["adaptation"] = {k: (a[k].decode() if isinstance(a[k], bytes) else float(a[k]))
                             for k in a if k not in ("created_at", "inference_library",
                                                     "inference_library_version")}
    for key, curve in (("chain_avg", b_avg), ("chain_max", b_max), ("ens_avg", e_avg),
                       ("ens_max", e_max)):
        k = last_crossing(curve)
        if k is None:
            row[key] = None
            continue
        row[key] = {
            "draws": k,
            "grads_per_chain_sampling": k * per_draw,
            "grads_per_chain_total": gw / nc + k * per_draw,
            "grads_total_all_chains": gw + k * per_draw * nc,
            "wall_total": tw + ts * k / nd,
        }
    if curves:
        np.savez_compressed(curves, chain_avg=b_avg, chain_max=b_max, ens_avg=e_avg,
                            ens_max=e_max, grad_per_draw=per_draw, grads_warmup=gw / nc)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run")
    p.add_argument("--ref")
    p.add_argument("--builtin")
    p.add_argument("--curves")
    p.add_argument("--tag", default="")
    a = p.parse_args()
    if not a.ref and not a.builtin:
        p.error("need --ref or --builtin")
    row = analyse(a.run, a.ref, a.builtin, a.curves)
    row["tag"] = a.tag
    json.dump(row, sys.stdout)
    print()


if __name__ == "__main__":
    main()
