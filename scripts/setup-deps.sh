#!/bin/sh
# Installs the Debian packages Heartbeat needs (when root with apt-get), or names them.
# Usage: scripts/setup-deps.sh [--test | --bench]
#   --test adds the packages only the tests need; --bench also R with rstan and posterior for
#   the optional Stan comparison in bench/stan/ (~600 packages, ~4 min; never needed by make check)
set -eu
pkgs="cmake make gcc pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools \
libcunit1-dev libinih-dev librandom123-dev libsleef-dev libfftw3-dev libcjson-dev libopenblas-dev"
if [ "${1:-}" = "--test" ]; then
    pkgs="$pkgs python3 python3-h5py python3-xarray python3-h5netcdf python3-netcdf4 python3-numpy \
slurm-wlm munge"
fi
if [ "${1:-}" = "--bench" ]; then
    pkgs="$pkgs python3 python3-h5py python3-numpy r-base-dev g++ r-cran-rstan r-cran-posterior r-cran-jsonlite"
fi
missing=""
for p in $pkgs; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "setup: missing Debian packages:$missing" >&2
    echo "setup: install them with: sudo apt-get install$missing" >&2
    exit 1
fi
