#!/bin/sh
# Issue-6 benchmark. (1) The cost of a checkpoint at 10^5 chains x 100 dims (MALA, Gaussian):
# bytes of the file, and seconds per checkpoint from 10 warmup iterations with a checkpoint
# after every one against the same run without (same process count, one run after the other).
# (2) The write overhead of the HDF5 output at 4096 chains x 1000 draws x 100 dims (ULA, MALA):
# the time with the file against `output = none`, as a fraction of the time with the file.
# Usage: bench/checkpoint.sh [BUILD_DIR] [OUT_DIR]
# (environment: RANKS 2, THREADS 1, ALGOS "ula mala", PASSES 2, SKIP_CKPT=1 skips part 1)
set -eu
BUILD=${1:-build}
OUT=${2:-out/bench_checkpoint}
HB=$(cd "$BUILD" && pwd)/heartbeat
RANKS=${RANKS:-2}
THREADS=${THREADS:-1}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=$THREADS
run() { mpirun -n "$RANKS" --oversubscribe --bind-to none "$HB" run "$@" --quiet; }
attr() { /usr/bin/python3 -c "import h5py,sys; print(h5py.File(sys.argv[1])['/'].attrs[sys.argv[2]])" "$1" "$2"; }

if [ -z "${SKIP_CKPT:-}" ]; then
cat > "$OUT/ck.ini" <<INI
[run]
seed = 1
chains = 100000
warmup = 10
draws = 1
output = $OUT/ck.h5
[model]
name = gaussian
dim = 100
[sampler]
algorithm = mala
step_size = 0.1
INI
t0=$(date +%s.%N); run "$OUT/ck.ini" --set run.checkpoint_every=0; t1=$(date +%s.%N)
run "$OUT/ck.ini" --set run.checkpoint_every=1e-9; t2=$(date +%s.%N)
HB_INTERRUPT_AT=warmup:5 run "$OUT/ck.ini" || true
bytes=$(stat -c %s "$OUT/ck.h5.ckpt")
rm -f "$OUT/ck.h5" "$OUT/ck.h5.ckpt"
echo "checkpoint at 1e5 chains x 100 dims: $bytes bytes, $(echo "($t2 - $t1 - ($t1 - $t0)) / 10" | bc -l | cut -c1-6) s each ($RANKS ranks x $THREADS threads)"
fi

# (2) The write overhead: for each sampler, (time with the file - time with output = none) /
# time with the file, both for the sampling phase (the final progress line) and for the whole
# process (create, sampling, close), one run right after the other, PASSES times.
for algo in ${ALGOS:-ula mala}; do
cat > "$OUT/wr.ini" <<INI
[run]
seed = 1
chains = 4096
warmup = 0
draws = 1000
output = $OUT/wr.h5
[model]
name = gaussian
dim = 100
[sampler]
algorithm = $algo
step_size = 0.05
INI
# prints "WALL SAMPLING" (seconds) of one run
samp() {
    t0=$(date +%s.%N)
    s=$(mpirun -n "$RANKS" --oversubscribe --bind-to none "$HB" run "$OUT/wr.ini" --set run.progress_every=1e9 "$@" 2>&1 | sed -n 's/.*sampling \([0-9.]*\) s.*/\1/p' | tail -n 1)
    t1=$(date +%s.%N)
    echo "$(echo "$t1 - $t0" | bc -l) $s"
}
frac() { echo "($1 - $2) / $1" | bc -l | cut -c1-5; }
for k in $(seq 1 "${PASSES:-2}"); do
    set -- $(samp); ww=$1 ws=$2; bytes=$(stat -c %s "$OUT/wr.h5"); rm -f "$OUT/wr.h5"
    set -- $(samp --set run.output=none); nw=$1 ns=$2
    echo "write overhead, $algo, 4096 chains x 1000 draws x 100 dims ($bytes bytes), $RANKS ranks x $THREADS threads, pass $k: sampling $ws s with the file, $ns s without: $(frac "$ws" "$ns") of the sampling; whole run $(echo "$ww" | cut -c1-6) s vs $(echo "$nw" | cut -c1-6) s: $(frac "$ww" "$nw") of the run"
done
done
# the disk's raw speed, for comparison (1 GB, written through to the disk, and into the page cache)
dd if=/dev/zero of="$OUT/dd.bin" bs=1M count=1000 conv=fdatasync 2>&1 | tail -n 1 | sed 's/^/dd conv=fdatasync: /'
rm -f "$OUT/dd.bin"
dd if=/dev/zero of="$OUT/dd.bin" bs=1M count=1000 2>&1 | tail -n 1 | sed 's/^/dd page cache: /'
rm -f "$OUT/dd.bin"
