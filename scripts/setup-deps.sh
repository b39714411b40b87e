#!/bin/sh
# Installs the Debian packages Heartbeat needs (when root with apt-get), or names them.
# Usage: scripts/setup-deps.sh [--test | --bench]
#   --test adds the packages only the tests need, and tries slurm-wlm and munge for the real
#   one-node Slurm test (optional: if they cannot be installed that test reports SKIP);
#   --bench also R with rstan and posterior for the optional Stan comparison in bench/stan/ (and python3-mpmath for scripts/vmath_coeffs.py)
#   (~600 packages, ~4 min; never needed by make check)
set -eu
pkgs="cmake make gcc pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools \
libcunit1-dev libinih-dev librandom123-dev libsleef-dev libfftw3-dev libcjson-dev libopenblas-dev"
optional=""
if [ "${1:-}" = "--test" ]; then
    pkgs="$pkgs python3 python3-h5py python3-xarray python3-h5netcdf python3-netcdf4 python3-numpy"
    optional="slurm-wlm munge"
fi
if [ "${1:-}" = "--bench" ]; then
    pkgs="$pkgs python3 python3-h5py python3-numpy r-base-dev g++ r-cran-rstan r-cran-posterior r-cran-jsonlite python3-mpmath"
fi
not_installed() { # the arguments dpkg does not list as installed (one dpkg-query call)
    [ $# -eq 0 ] && return 0
    installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
        sed -n 's/^\([^ ]*\) install ok installed$/\1/p' || true)
    out=""
    for p in "$@"; do
        echo "$installed" | grep -qx "$p" || out="$out $p"
    done
    echo "$out"
}
# shellcheck disable=SC2086
missing=$(not_installed $pkgs)
# shellcheck disable=SC2086
missing_opt=$(not_installed $optional)
[ -z "$missing" ] && [ -z "$missing_opt" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if [ -n "$missing" ]; then
        echo "setup: installing Debian packages:$missing" >&2
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
    if [ -n "$missing_opt" ]; then
        echo "setup: installing Debian packages for the Slurm test:$missing_opt" >&2
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing_opt >/dev/null ||
            echo "setup: could not install$missing_opt: the Slurm test will be skipped" >&2
    fi
else
    if [ -n "$missing_opt" ]; then
        echo "setup: not installed:$missing_opt (optional: the Slurm test will be skipped)" >&2
    fi
    if [ -n "$missing" ]; then
        echo "setup: missing Debian packages:$missing" >&2
        echo "setup: install them with: sudo apt-get install$missing" >&2
        exit 1
    fi
fi
