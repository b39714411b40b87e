#!/bin/sh
# Issue-3 benchmark: gradient evaluations and wall time until b^2 < 0.01 (ALGORITHMS.md §11)
# for Heartbeat (adjust = none, mala, hybrid) against ULA and MALA (and NUTS / ChEES-HMC when
# the registry has them) at equal numbers of chains and equal sampling gradients, on the
# 100-d Gaussian (kappa 100), the funnel, rosenbrock, the bimodal mixture and the eight
# reference targets; the bias floor of unadjusted beats by target_accept_min; warmup-length
# and subchain-length sweeps that set the defaults.
#
# Usage: bench/heartbeat/run.sh [BUILD_DIR] [OUT_DIR] [PART...]
#   PART: main | baselines | floor | sweep | control | wsweep | auto | init (default: main floor
#   sweep). Results: OUT_DIR/results.jsonl (one JSON
#   row per run, see b2.py) and OUT_DIR/curves/*.npz; bench/heartbeat/report.py turns them
#   into tables and figures. Environment: CHAINS (256), WARMUP (400), GRADS (sampling
#   gradients per chain, 4000), THREADS (2), SEED (20261122), SHARED (../shared), TARGETS (space-separated
#   subset of target tags), BASELINES (samplers of the baselines part: "nuts hmc chees").
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
OUT=${2:-out/bench_heartbeat}
shift 2 2>/dev/null || shift $#
PARTS=${*:-main floor sweep}
HB=$(cd "$BUILD" && pwd)/heartbeat
SHARED=${SHARED:-$HERE/../../../shared}
CHAINS=${CHAINS:-256}
WARMUP=${WARMUP:-400}
GRADS=${GRADS:-4000}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
mkdir -p "$OUT/curves" "$OUT/runs"
RES=$OUT/results.jsonl
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# model lines and the b2.py reference of each target tag
model_of() {
    case $1 in
    gauss100) printf 'name = gaussian\ndim = 100\ncondition_number = 100\n' ;;
    funnel) printf 'name = funnel\ndim = 10\n' ;;
    rosenbrock) printf 'name = rosenbrock\ndim = 36\nQ = 0.1\n' ;;
    mixture) printf 'name = mixture\ndim = 2\nweights = 0.3, 0.7\nlocations = -4, 4\nscales = 1, 1\n' ;;
    *) printf 'name = %s\ndata = %s/targets/%s/data.json\n' "$1" "$SHARED" "$1" ;;
    esac
}
ref_of() {
    case $1 in
    gauss100) echo "--builtin gaussian:100:100" ;;
    funnel) echo "--builtin funnel:10" ;;
    rosenbrock) echo "--builtin rosenbrock:36:0.1" ;;
    mixture) echo "--builtin mixture2" ;;
    *) echo "--ref $SHARED/targets/$1/reference.json" ;;
    esac
}
has_sampler() { "$HB" run /dev/null --set sampler.algorithm="$1" 2>&1 | grep -q "unknown sampler" && return 1 || return 0; }

# run TAG TARGET SAMPLER_LINES DRAWS THIN [extra --set ...]
run() {
    tag=$1 target=$2 lines=$3 draws=$4 thin=$5
    shift 5
    ini=$OUT/runs/$tag.ini h5=$OUT/runs/$tag.h5
    {
        printf '[run]\nseed = %s\nchains = %s\nwarmup = %s\ndraws = %s\nthin = %s\n' \
            "${SEED:-20261122}" "$CHAINS" "${W_RUN:-$WARMUP}" "$draws" "$thin"
        printf 'output = %s\ninit_radius = 2\n[model]\n' "$h5"
        model_of "$target"
        printf '[sampler]\n%b\n' "$lines"
    } > "$ini"
    if ! OMP_NUM_THREADS=$THREADS "$HB" run "$ini" --quiet "$@" 2> "$OUT/runs/$tag.log"; then
        echo "$tag: run failed: $(tail -n 1 "$OUT/runs/$tag.log")" >&2
        return 0
    fi
    # shellcheck disable=SC2046
    $PY "$HERE/b2.py" "$h5" $(ref_of "$target") --curves "$OUT/curves/$tag.npz" --tag "$tag" >> "$RES"
    if [ "$target" = funnel ] || [ "$target" = mixture ]; then
        $PY "$HERE/checks.py" "$h5" "$target" "$tag" >> "$OUT/checks.jsonl"
    fi
    rm -f "$h5"
    echo "$tag done" >&2
}

L=4 # the default subchain_length
DRAWS_HB=$((GRADS / L))
THIN_1=4
DRAWS_1=$((GRADS / THIN_1))
ALL="gauss100 funnel rosenbrock mixture"
for dir in "$SHARED"/targets/*/; do
    [ -f "$dir/reference.json" ] && ALL="$ALL $(basename "$dir")"
done
TARGETS=${TARGETS:-$ALL}

for part in $PARTS; do
    case $part in
    main)
        for t in $TARGETS; do
            run "main.$t.heartbeat-mala" "$t" 'algorithm = heartbeat\n[heartbeat]\nadjust = mala' $DRAWS_HB 1
            run "main.$t.heartbeat-none" "$t" 'algorithm = heartbeat\n[heartbeat]\nadjust = none' $DRAWS_HB 1
            run "main.$t.heartbeat-hybrid" "$t" 'algorithm = heartbeat\n[heartbeat]\nadjust = hybrid' $DRAWS_HB 1
            # MALA with Heartbeat's own warmup and metric (beats of 2 steps at one step size
            # tuned to 0.574): the control HEARTBEAT.md compares against.
            run "main.$t.hb-warmup-mala" "$t" 'algorithm = heartbeat\n[heartbeat]\nschedule = constant\nsubchain_length = 2\ntarget_accept_min = 0.574' $((GRADS / 2)) 1
            run "main.$t.mala" "$t" 'algorithm = mala' $DRAWS_1 $THIN_1
            run "main.$t.ula" "$t" 'algorithm = ula' $DRAWS_1 $THIN_1
            # MALA at Heartbeat's own pooled warmup and metric is what "mala with the same
            # warmup" means here: both use W iterations pooled over all chains.
            for s in nuts hmc chees; do
                if has_sampler $s; then
                    run "main.$t.$s" "$t" "algorithm = $s" $DRAWS_HB 1
                fi
            done
        done
        ;;
    baselines)
        # only the HMC family (same tags as in main), to add them to an existing main run;
        # BASELINES (default "nuts hmc chees") picks a subset, e.g. BASELINES=chees
        for t in $TARGETS; do
            for s in ${BASELINES:-nuts hmc chees}; do
                if has_sampler $s; then
                    run "main.$t.$s" "$t" "algorithm = $s" $DRAWS_HB 1
                else
                    echo "$s: not in this build's registry, skipped" >&2
                fi
            done
            case " ${BASELINES:-nuts} " in
            *" nuts "*)
                run "main.$t.nuts-pooled" "$t" 'algorithm = nuts\n[nuts]\nadapt = pooled' $DRAWS_HB 1 ;;
            esac
        done
        ;;
    floor)
        # bias floor of unadjusted beats on the 100-d Gaussian, by target_accept_min
        for a in 0.8 0.9 0.95 0.99; do
            for l in 4 8 16; do
                run "floor.none$l.$a" gauss100 "algorithm = heartbeat\nmetric = diag\n[heartbeat]\nadjust = none\nsubchain_length = $l\ntarget_accept_min = $a" $((GRADS / l)) 1
            done
            for l in 4 8; do
                run "floor.hybrid$l.$a" gauss100 "algorithm = heartbeat\nmetric = diag\n[heartbeat]\nadjust = hybrid\nsubchain_length = $l\ntarget_accept_min = $a" $((GRADS / l)) 1
            done
            run "floor.ula.$a" gauss100 "algorithm = ula\nmetric = diag\n[ula]\ntarget_accept = $a" $DRAWS_1 $THIN_1
        done
        ;;
    control)
        for t in $TARGETS; do
            run "main.$t.hb-warmup-mala" "$t" 'algorithm = heartbeat\n[heartbeat]\nschedule = constant\nsubchain_length = 2\ntarget_accept_min = 0.574' $((GRADS / 2)) 1
        done
        ;;
    auto)
        # [run] warmup = auto (cap warmup_max = 1000) against the fixed W = 400 of the main
        # table, both run here so that their wall times are measured in one session
        for t in $TARGETS; do
            W_RUN=auto
            run "auto.$t.heartbeat-auto" "$t" 'algorithm = heartbeat' $DRAWS_HB 1
            W_RUN=400
            run "auto.$t.heartbeat-400" "$t" 'algorithm = heartbeat' $DRAWS_HB 1
            W_RUN=
        done
        ;;
    init)
        # [heartbeat] init = adam (stage A) against init = lbfgs (L-BFGS per chain, Laplace
        # metric and draws), W = 400 and warmup = auto; the chain count is in the tag, so
        # CHAINS=16 / 64 runs add rows (bench/heartbeat/init_table.py makes the table)
        for t in $TARGETS; do
            for init in adam lbfgs; do
                run "init.$t.$init.$CHAINS" "$t" "algorithm = heartbeat\n[heartbeat]\ninit = $init" $DRAWS_HB 1
                W_RUN=auto
                run "init.$t.$init-auto.$CHAINS" "$t" "algorithm = heartbeat\n[heartbeat]\ninit = $init" $DRAWS_HB 1
                W_RUN=
            done
        done
        ;;
    wsweep)
        # the shortest safe warmup: every target, W = 100 .. 2000 (Heartbeat, defaults)
        for t in $TARGETS; do
            for w in 100 200 400 1000 2000; do
                W_RUN=$w
                run "wsweep.$t.$w" "$t" 'algorithm = heartbeat' $((GRADS / L / 2)) 1
                W_RUN=
            done
        done
        ;;
    stagea)
        # stage-A settings of HEARTBEAT.md (beta1 0.9, warmup_rate 0.05) against the defaults
        for t in $TARGETS; do
            for w in 400 1000; do
                W_RUN=$w
                run "stagea.$t.spec.$w" "$t" 'algorithm = heartbeat\n[heartbeat]\nadam_beta1 = 0.9\nwarmup_rate = 0.05' $((GRADS / L / 2)) 1
                run "stagea.$t.default.$w" "$t" 'algorithm = heartbeat' $((GRADS / L / 2)) 1
                W_RUN=
            done
        done
        ;;
    accept)
        # the two acceptance targets (adjust = mala, L = 4 and 8)
        for t in gauss100 mixture eight_schools-eight_schools_noncentered garch-garch11; do
            for pair in 0.95:0.1 0.8:0.1 0.95:0.3 0.8:0.3 0.6:0.1; do
                amin=${pair%:*} amax=${pair#*:}
                for l in 4 8; do
                    run "accept.$t.$amin.$amax.$l" "$t" "algorithm = heartbeat\n[heartbeat]\nsubchain_length = $l\ntarget_accept_min = $amin\ntarget_accept_max = $amax" $((GRADS / l)) 1
                done
            done
        done
        ;;
    sweep)
        # warmup length and subchain length (Heartbeat, adjust = mala)
        for t in gauss100 mixture eight_schools-eight_schools_noncentered kidiq-kidscore_interaction; do
            for w in 100 200 400 800; do
                W_RUN=$w
                run "sweepW.$t.$w" "$t" 'algorithm = heartbeat' $DRAWS_HB 1
                run "sweepW.$t.mala.$w" "$t" 'algorithm = mala' $DRAWS_1 $THIN_1
                W_RUN=
            done
            for l in 2 8 16; do
                run "sweepL.$t.$l" "$t" "algorithm = heartbeat\n[heartbeat]\nsubchain_length = $l" $((GRADS / l)) 1
            done
        done
        ;;
    esac
done
