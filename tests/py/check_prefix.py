"""check_prefix.py REF.h5 RUN.h5: RUN opens with h5py and its committed draws (below the
root attribute draws_committed) equal REF's, dataset by dataset, bit for bit. Prints the
number of committed draws; exit 1 on a mismatch, 2 if RUN does not open."""
import sys

import h5py
import numpy as np

ref_path, run_path = sys.argv[1:3]
try:
    run = h5py.File(run_path, "r")
    n = int(run.attrs["draws_committed"])
except Exception as e:  # noqa: BLE001 - any failure to open is the finding
    print(f"{run_path} does not open: {e}")
    sys.exit(2)
with h5py.File(ref_path, "r") as ref:
    for g in ("posterior", "sample_stats"):
        for name, d in run[g].items():
            if d.ndim < 2 or name in ("chain", "draw"):
                continue
            a, b = ref[g][name][:, :n], d[:, :n]
            if a.tobytes() != b.tobytes():
                print(f"{g}/{name}: committed draws differ from the reference")
                sys.exit(1)
print(n)
