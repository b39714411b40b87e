#!/bin/sh
# Benchmarks of the foundation (issue 2). Usage: bench/run.sh [BUILD_DIR]
# Prints wall times and ratios measured in this one run (machines here are noisy).
set -eu
BUILD=${1:-build}
HB=$BUILD/heartbeat
HERE=$(dirname "$0")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
NCORES=$(nproc)
sampling_time() { sed -n 's/.*sampling \([0-9.]*\) s.*/\1/p' | tail -n 1; }

echo "== RWMH seed benchmark: 10^9 draws of the 1-D mixture, proposal sd 0.1 =="
t=$(OMP_NUM_THREADS=$NCORES $HB run "$HERE/configs/rwmh_mixture.ini" --set run.progress_every=1000 2>&1 | sampling_time)
echo "1 rank x $NCORES threads, no output:   $t s"
t2=$(OMP_NUM_THREADS=1 mpirun -n "$NCORES" --bind-to core $HB run "$HERE/configs/rwmh_mixture.ini" --set run.progress_every=1000 2>&1 | sampling_time)
echo "$NCORES ranks x 1 thread, no output:    $t2 s"
if [ "${HB_BENCH_WRITE:-1}" = 1 ]; then
    mkdir -p out
    s0=$(date +%s.%N)
    OMP_NUM_THREADS=$NCORES $HB run "$HERE/configs/rwmh_mixture.ini" --set run.output=out/bench_rwmh.h5 --quiet
    s1=$(date +%s.%N)
    echo "1 rank x $NCORES threads, writing all 10^9 draws + stats (HDF5): $(echo "$s1 - $s0" | bc) s total, file $(du -h out/bench_rwmh.h5 | cut -f1)"
    rm -f out/bench_rwmh.h5
fi

echo "== ULA on a 100-d Gaussian, 4096 chains, one core, vs the normal-variate roofline =="
r=$($BUILD/bench/bench_rng 4096 100 400 2>/dev/null || $BUILD/bench_rng 4096 100 400)
echo "$r"
rate_rng=$(echo "$r" | sed -n 's/normals: \([0-9.e+]*\) per second.*/\1/p')
t=$(OMP_NUM_THREADS=1 $HB run "$HERE/configs/ula_gauss100.ini" --set run.progress_every=1000 2>&1 | sampling_time)
rate_ula=$(awk "BEGIN { print 4096 * 100 * 400 / $t }")
echo "ULA: $rate_ula coordinate updates per second per core ($t s)"
awk "BEGIN { printf \"ULA / roofline = %.2f\n\", $rate_ula / $rate_rng }"
