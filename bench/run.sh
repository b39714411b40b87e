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

REPS=${REPS:-3}
# min over REPS runs of a command's "sampling X s" (the least disturbed run on a shared machine)
min_of() { m=; for _ in $(seq "$REPS"); do t=$("$@" 2>&1 | sampling_time); m=$(awk -v a="${m:-$t}" -v b="$t" 'BEGIN { print (b < a ? b : a) }'); done; echo "$m"; }

echo "== RWMH seed benchmark: 10^9 draws of the 1-D mixture, proposal sd 0.1 (best of $REPS) =="
t=$(min_of env OMP_NUM_THREADS=$NCORES $HB run "$HERE/configs/rwmh_mixture.ini" --set run.progress_every=1000)
echo "1 rank x $NCORES threads, no output:   $t s"
t2=$(min_of env OMP_NUM_THREADS=1 mpirun -n "$NCORES" --bind-to core $HB run "$HERE/configs/rwmh_mixture.ini" --set run.progress_every=1000)
echo "$NCORES ranks x 1 thread, no output:    $t2 s"
"$BUILD/bench/bench_kernels" 2>/dev/null || true
if [ "${HB_BENCH_WRITE:-1}" = 1 ]; then
    mkdir -p out
    s0=$(date +%s.%N)
    OMP_NUM_THREADS=$NCORES $HB run "$HERE/configs/rwmh_mixture.ini" --set run.output=out/bench_rwmh.h5 --quiet
    s1=$(date +%s.%N)
    echo "1 rank x $NCORES threads, writing all 10^9 draws + stats (HDF5): $(echo "$s1 - $s0" | bc) s total, file $(du -h out/bench_rwmh.h5 | cut -f1)"
    rm -f out/bench_rwmh.h5
fi

echo "== ULA on a 100-d Gaussian, 4096 chains, one core, vs the normal-variate roofline (best of $((2 * REPS)), interleaved in one process) =="
OMP_NUM_THREADS=1 "$BUILD/bench/bench_ula" "$HERE/configs/ula_gauss100.ini" $((2 * REPS)) | grep -v '^\s*$' | sed 's/ \[sink.*//'
