#!/usr/bin/python3
"""Failures that b^2 on x^2 misses (HEARTBEAT.md): the funnel's mean and variance of v
(truth 0 and 9) and the bimodal mixture's mode weight P(x_1 > 0) (truth 0.7), pooled over
all chains and draws, with a standard error from per-chain means. One JSON row.

  checks.py RUN.h5 funnel|mixture TAG
"""
import json
import sys

import h5py
import numpy as np


def pooled(v):
    cm = v.mean(axis=1)
    return float(v.mean()), float(cm.std(ddof=1) / np.sqrt(len(cm)))


def main():
    path, target, tag = sys.argv[1:4]
    post = h5py.File(path, "r")["posterior"]
    x = post["x"][...]
    row = {"tag": tag, "target": target}
    if target == "funnel":
        # the funnel's outputs are v and x[1..]: /posterior/v (x[..., 0] is x[1], whose
        # variance is E[exp(v)] = exp(4.5) = 90, not v)
        v = post["v"][...] if "v" in post else x[..., 0]
        row["mean_v"], row["mean_v_se"] = pooled(v)
        row["var_v"], row["var_v_se"] = pooled((v - 0.0) ** 2)
        row["truth"] = {"mean_v": 0.0, "var_v": 9.0}
    else:
        w = (x[..., 0] > 0).astype(float)
        row["mode_weight"], row["mode_weight_se"] = pooled(w)
        row["switches_per_draw"] = float((np.diff(w, axis=1) != 0).mean())
        row["truth"] = {"mode_weight": 0.69998}
    json.dump(row, sys.stdout)
    print()


if __name__ == "__main__":
    main()
