#!/bin/sh
# Table of a scaling study (slurm/scaling.sbatch): per mode and rank count, the sampling
# throughput (draws/s), the speed-up over the smallest run and the parallel efficiency
# (strong: speed-up / (ranks / ranks_min); weak: throughput per rank / that of the smallest).
#   slurm/scaling_collect.sh [DIR]
DIR=${1:-scaling}
for mode in strong weak; do
    ls "$DIR"/"$mode"-*.txt >/dev/null 2>&1 || continue
    echo "| mode | ranks | draws/s | speed-up | efficiency |"
    echo "|---|---|---|---|---|"
    for f in "$DIR"/"$mode"-*.txt; do
        r=${f##*-}; r=${r%.txt}
        rate=$(sed -n 's/.*(\([0-9.e+]*\) draws\/s).*/\1/p' "$f")
        echo "$r $rate"
    done | sort -n | awk -v mode="$mode" '
        NR == 1 { r0 = $1; t0 = $2 }
        { s = $2 / t0; e = (mode == "strong") ? s / ($1 / r0) : ($2 / $1) / (t0 / r0);
          printf "| %s | %d | %.4g | %.2f | %.2f |\n", mode, $1, $2, s, e }'
done
