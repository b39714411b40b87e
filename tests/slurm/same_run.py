"""same_run.py REF.h5 CHAINS DRAWS RUN.h5...: each RUN is a complete run file (draws_committed
= DRAWS, /posterior and /sample_stats variables of CHAINS x DRAWS) whose datasets (/posterior,
/sample_stats, /adaptation and their coordinates) and group attributes (but created_at) equal
REF's bit for bit, as do the root attributes that do not depend on the run's shape or time
(seed, algorithm, model, gradient evaluations). Prints what differs; exit 1 on a difference, 2 if a
file does not open (after checking all of them)."""
import sys

import h5py
import numpy as np


def compare(ref, run_path, chains, draws):
    """The differences of run_path from ref (a list of messages); None if it does not open."""
    try:
        run = h5py.File(run_path, "r")
    except Exception as e:  # noqa: BLE001 - any failure to open is the finding
        print(f"{run_path} does not open: {e}")
        return None
    bad = []
    n = int(run.attrs.get("draws_committed", -1))
    if n != draws:
        bad.append(f"draws_committed = {n}, expected {draws}")
    for name in ("seed", "algorithm", "model", "gradient_evals_warmup", "gradient_evals_sampling"):
        a, b = ref.attrs.get(name), run.attrs.get(name)
        if a is None or b is None or np.asarray(a).tobytes() != np.asarray(b).tobytes():
            bad.append(f"root attribute {name}: {b!r}, reference {a!r}")
    datasets = []
    for g in ("posterior", "sample_stats", "adaptation"):
        if g not in ref:
            bad.append(f"reference has no /{g}")
            continue
        if g not in run:
            bad.append(f"no /{g}")
            continue
        for key in ref[g].attrs:
            if key == "created_at":  # a time stamp
                continue
            a, b = ref[g].attrs[key], run[g].attrs.get(key)
            if b is None or np.asarray(a).tobytes() != np.asarray(b).tobytes():
                bad.append(f"/{g} attribute {key}: {b!r}, reference {a!r}")
        for name, d in ref[g].items():
            if isinstance(d, h5py.Dataset):
                datasets.append(f"{g}/{name}")
        for name in run[g]:
            if name not in ref[g]:
                bad.append(f"/{g}/{name} is not in the reference")
    for path in datasets:
        d = ref[path]
        if path not in run:
            bad.append(f"/{path} missing")
            continue
        e = run[path]
        if d.shape != e.shape or d.dtype != e.dtype:
            bad.append(f"/{path}: {e.shape} {e.dtype}, reference {d.shape} {d.dtype}")
            continue
        if path.split("/")[0] in ("posterior", "sample_stats") and d.ndim >= 2:
            if d.shape[:2] != (chains, draws):
                bad.append(f"/{path}: shape {d.shape}, expected ({chains}, {draws}, ...)")
        if d[()].tobytes() != e[()].tobytes():
            bad.append(f"/{path}: values differ from the reference")
    if not bad:
        print(f"{run_path}: {len(datasets)} datasets bitwise equal, {n} draws of {chains} chains")
    return bad


ref_path, chains, draws = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    ref = h5py.File(ref_path, "r")
except Exception as e:  # noqa: BLE001
    print(f"{ref_path} does not open: {e}")
    sys.exit(2)
status = 0
for run_path in sys.argv[4:]:
    bad = compare(ref, run_path, chains, draws)
    if bad is None:
        status = 2
    elif bad:
        print(f"{run_path}: " + "\n  ".join(bad))
        status = max(status, 1)
sys.exit(status)
