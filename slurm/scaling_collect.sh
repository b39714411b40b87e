#!/bin/sh
# The table of a scaling study made by slurm/scaling.sbatch: per mode (strong, weak) and shape,
# ordered by cores, the sampling throughput, the speed-up over the smallest shape and the
# parallel efficiency, (draws/s per core) / (that of the smallest shape); for strong scaling
# this is t_1 c_1 / (t_p c_p), for weak scaling (same work per core) t_1 / t_p. The warmup
# efficiency is the same ratio over the warmup's time (pooled reductions every iteration).
#   slurm/scaling_collect.sh [SCALING_DIR]     (default: scaling)
DIR=${1:-scaling}
found=0
for mode in strong weak; do
    # shellcheck disable=SC2086
    set -- "$DIR"/$mode-*.txt
    [ -f "$1" ] || continue
    found=1
    echo
    echo "| mode | ranks x threads | cores | draws | warmup s | sampling s | draws/s | speed-up | efficiency | warmup eff. |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    cat "$@" | sort -k4,4n -k2,2n | awk '
        NF != 7 { next }
        {
            cores = $4; draws = $5; w = $6; s = $7
            rate = s > 0 ? draws / s : 0; wrate = w > 0 ? draws / w : 0
            if (n++ == 0) { c0 = cores; r0 = rate; w0 = wrate }
            sp = r0 > 0 ? rate / r0 : 0
            eff = r0 > 0 ? (rate / cores) / (r0 / c0) : 0
            weff = w0 > 0 ? (wrate / cores) / (w0 / c0) : 0
            printf "| %s | %dx%d | %d | %d | %.3f | %.3f | %.4g | %.2f | %.2f | %.2f |\n",
                   $1, $2, $3, cores, draws, w, s, rate, sp, eff, weff
        }'
done
if [ $found = 0 ]; then
    echo "scaling_collect.sh: no strong-*.txt or weak-*.txt in $DIR" >&2
    exit 1
fi
