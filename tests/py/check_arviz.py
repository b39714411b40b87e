#!/usr/bin/python3
"""Check that a heartbeat run file reads as ArviZ InferenceData through h5py, xarray
(engines h5netcdf and netcdf4) and netCDF4.Dataset; with the test pattern of
tests/test_h5out.c, also check every committed value. Exit status 1 on any failure.

Usage: check_arviz.py FILE...
"""
import sys

import h5py
import netCDF4
import numpy as np
import xarray as xr

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def as_str(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        return as_str(v[()])
    return str(v)


# The values tests/test_h5out.c writes.
def fpos(c, d, j):
    return 1e6 * c + 1e3 * d + j + 0.5


def check_h5py(path):
    with h5py.File(path, "r") as f:
        check(as_str(f.attrs["inference_library"]) == "heartbeat", "inference_library")
        for a in ("inference_library_version", "created_at", "draws_committed", "n_ranks"):
            check(a in f.attrs, "root attribute " + a)
        committed = int(f.attrs["draws_committed"])
        for gname in ("posterior", "sample_stats", "adaptation"):
            if gname not in f:
                check(gname == "adaptation", "group " + gname)
                continue
            g = f[gname]
            for name, ds in g.items():
                if not isinstance(ds, h5py.Dataset) or h5py.h5ds.is_scale(ds.id):
                    continue
                for k, dim in enumerate(ds.dims):
                    check(len(dim) == 1, "%s/%s axis %d has %d scales" % (gname, name, k, len(dim)))
        pattern = as_str(f.attrs.get("test_pattern", ""))
        return committed, pattern


def check_dataset_dims(ds, group):
    """Every data variable's dims are its axes' scales: (chain, draw, <var>_dim_k...)."""
    for name, var in ds.data_vars.items():
        if group in ("posterior", "sample_stats"):
            want = ("chain", "draw") + tuple("%s_dim_%d" % (name, k) for k in range(var.ndim - 2))
            check(var.dims == want, "%s/%s dims %s, expected %s" % (group, name, var.dims, want))
    if group in ("posterior", "sample_stats"):
        check(np.array_equal(ds["chain"].values, np.arange(ds.sizes["chain"])), group + " chain")
        check(np.array_equal(ds["draw"].values, np.arange(ds.sizes["draw"])), group + " draw")


def check_xarray(path, engine, committed, pattern):
    post = xr.open_dataset(path, group="posterior", engine=engine)
    stats = xr.open_dataset(path, group="sample_stats", engine=engine)
    check_dataset_dims(post, "posterior")
    check_dataset_dims(stats, "sample_stats")
    for name, var in post.data_vars.items():
        check(var.dtype == np.float64, "%s posterior/%s dtype %s" % (engine, name, var.dtype))
    if "diverging" in stats:
        check(stats["diverging"].dtype == np.bool_,
              "%s diverging decodes as %s, not bool" % (engine, stats["diverging"].dtype))
    if pattern == "h5out-v1":
        C, D = post.sizes["chain"], post.sizes["draw"]
        c = np.arange(C)[:, None]
        d = np.arange(committed)[None, :]
        cut = dict(draw=slice(0, committed))
        check(post["theta"].dims == ("chain", "draw", "theta_dim_0"), engine + " theta dims")
        check(post["a"].dims == ("chain", "draw", "a_dim_0", "a_dim_1"), engine + " a dims")
        check(post["mu"].dims == ("chain", "draw"), engine + " mu dims")
        check(post["theta"].shape == (C, D, 8), engine + " theta shape")
        check(post["a"].shape == (C, D, 2, 3), engine + " a shape")
        check(np.array_equal(post["mu"].isel(cut).values, fpos(c, d, 0)), engine + " mu values")
        th = post["theta"].isel(cut).values
        for i in range(8):
            check(np.array_equal(th[:, :, i], fpos(c, d, 1 + i)), "%s theta[%d]" % (engine, i + 1))
        a = post["a"].isel(cut).values
        for i in range(2):
            for k in range(3):
                check(np.array_equal(a[:, :, i, k], fpos(c, d, 9 + 3 * i + k)),
                      "%s a[%d,%d]" % (engine, i + 1, k + 1))
        # uncommitted draws are missing (NaN)
        rest = dict(draw=slice(committed, None))
        check(bool(np.isnan(post["theta"].isel(rest).values).all()), engine + " NaN fill")
        check(np.array_equal(stats["lp"].isel(cut).values, -(c * 1000.0 + d) - 0.25), "lp")
        check(np.array_equal(stats["acceptance_rate"].isel(cut).values, ((c + d) % 4) / 4.0),
              engine + " acceptance_rate")
        check(np.array_equal(stats["diverging"].isel(cut).values, (c + d) % 3 == 0),
              engine + " diverging")
        check(stats["n_steps"].dtype == np.int64, engine + " n_steps dtype")
        check(np.array_equal(stats["n_steps"].isel(cut).values, c * 10000000000 + d + 1),
              engine + " n_steps")
        adapt = xr.open_dataset(path, group="adaptation", engine=engine)
        check(adapt["inv_metric"].dims == ("inv_metric_dim_0",), engine + " inv_metric dims")
        check(np.array_equal(adapt["inv_metric"].values, 1.0 / np.arange(1, 16)),
              engine + " inv_metric")
        check(float(adapt.attrs["step_size"]) == 0.125, engine + " step_size")
        adapt.close()
    post.close()
    stats.close()


def check_netcdf4(path, committed, pattern):
    with netCDF4.Dataset(path, "r") as nc:
        check(nc.getncattr("inference_library") == "heartbeat", "netCDF4 inference_library")
        check("posterior" in nc.groups and "sample_stats" in nc.groups, "netCDF4 groups")
        post = nc.groups["posterior"]
        for name, var in post.variables.items():
            if name in post.dimensions:
                continue
            check(var.dimensions[:2] == ("chain", "draw"),
                  "netCDF4 posterior/%s dims %s" % (name, var.dimensions))
        if pattern == "h5out-v1":
            check(post.dimensions["theta_dim_0"].size == 8, "netCDF4 theta_dim_0")
            check(len(nc.getncattr("config")) == 100000, "netCDF4 config attribute")
            th = np.ma.getdata(post.variables["theta"][:, :committed, :])
            C = th.shape[0]
            c = np.arange(C)[:, None]
            d = np.arange(committed)[None, :]
            check(np.array_equal(th[:, :, 2], fpos(c, d, 3)), "netCDF4 theta values")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    status = 0
    for path in sys.argv[1:]:
        failures.clear()
        try:
            committed, pattern = check_h5py(path)
            for engine in ("h5netcdf", "netcdf4"):
                check_xarray(path, engine, committed, pattern)
            check_netcdf4(path, committed, pattern)
        except Exception as e:  # a reader that cannot open the file is a failure too
            check(False, "%s: %s" % (type(e).__name__, e))
        if failures:
            print("%s: %d check(s) failed" % (path, len(failures)), file=sys.stderr)
            status = 1
        else:
            print("%s: ok (committed %d, %s)" % (path, committed, pattern or "no test pattern"))
    return status


if __name__ == "__main__":
    sys.exit(main())
