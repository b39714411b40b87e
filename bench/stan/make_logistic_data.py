#!/usr/bin/python3
"""Simulated logistic-regression data in the JSON layout that both heartbeat's `logistic`
model and Stan read: {"N", "K", "X": N rows of K, "y": N in {0, 1}}. X ~ N(0, 1),
coefficients 0.3 z (intercept too), y ~ Bernoulli(logit^-1(alpha + X beta)); fixed seed.
Usage: make_logistic_data.py OUT.json [N K seed]"""
import json
import sys

import numpy as np

out = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
K = int(sys.argv[3]) if len(sys.argv) > 3 else 50
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 20261122
rng = np.random.default_rng(seed)
X = np.round(rng.standard_normal((N, K)), 6)
coef = 0.3 * rng.standard_normal(K + 1)
eta = coef[0] + X @ coef[1:]
y = (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(int)
with open(out, "w") as f:
    json.dump({"N": N, "K": K, "X": X.tolist(), "y": y.tolist(),
               "true_alpha": coef[0], "true_beta": coef[1:].tolist()}, f)
