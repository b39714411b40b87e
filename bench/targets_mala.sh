#!/bin/sh
# The reference targets sampled with MALA at a larger size than the tests (test_targets_mala),
# each compared with its reference.json by `heartbeat validate`.
# Usage: bench/targets_mala.sh [BUILD_DIR] [SHARED_DIR] [CHAINS] [WARMUP] [DRAWS] [INIT_RADIUS]
# Prints per target: wall time, and b2 / max |z| of each compared block. Expect the
# ill-conditioned targets (kilpisjarvi, kidiq, diamonds) to fail with a diagonal metric.
set -eu
BUILD=${1:-build}
SHARED=${2:-${HB_SHARED_DIR:-$(dirname "$0")/../../shared}}
CHAINS=${3:-1024}
WARMUP=${4:-2000}
DRAWS=${5:-2000}
RADIUS=${6:-0.5}
HB=$BUILD/heartbeat
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for dir in "$SHARED"/targets/*/; do
    t=$(basename "$dir")
    [ -f "$dir/reference.json" ] || continue
    cat > "$OUT/$t.ini" <<INI
[run]
seed = 20261122
chains = $CHAINS
warmup = $WARMUP
draws = $DRAWS
init_radius = $RADIUS
output = $OUT/$t.h5

[model]
name = $t
data = $dir/data.json

[sampler]
algorithm = mala
INI
    s0=$(date +%s.%N)
    "$HB" run "$OUT/$t.ini" --quiet
    s1=$(date +%s.%N)
    printf '%-42s %7.1f s  ' "$t" "$(echo "$s1 - $s0" | bc)"
    "$HB" validate "$OUT/$t.h5" "$dir/reference.json" | sed -n 's/^b2 = \(.*\)/\1/p' | tr '\n' ' '
    echo
    rm -f "$OUT/$t.h5"
done
