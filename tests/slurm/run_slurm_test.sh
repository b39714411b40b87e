#!/bin/bash
# A real one-node Slurm (munged, slurmctld, slurmd -N localhost; state under a temp dir) runs
# the project's own scripts: slurm/one_node.sbatch (2 tasks, srun --mpi=pmix), whose file must
# equal a direct mpirun run bitwise; and slurm/preemptible.sbatch, signalled with SIGUSR1
# mid-run (scancel --signal, as Slurm does before a time limit): heartbeat checkpoints and
# exits 5, the script requeues the job, the requeued job resumes, and the final file equals an
# uninterrupted run. Daemons are stopped by PID on every exit. Exit 77 (ctest SKIP) when
# slurm-wlm or munge is not installed.
# Usage: run_slurm_test.sh HEARTBEAT_BIN SOURCE_DIR
set -uo pipefail
HB=$1 SRC=$2
PY=/usr/bin/python3
for b in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged /usr/bin/sbatch; do
    if [ ! -x "$b" ]; then
        echo "SKIP: $b is not installed (apt-get install slurm-wlm munge)"
        exit 77
    fi
done
DIR=$(mktemp -d /tmp/hb-slurm.XXXXXX)
STARTED_MUNGE=0
cleanup() {
    [ -n "${JOBS:-}" ] && scancel $JOBS 2>/dev/null
    for p in slurmd slurmctld; do
        [ -f "$DIR/$p.pid" ] && kill "$(cat "$DIR/$p.pid")" 2>/dev/null
    done
    if [ $STARTED_MUNGE = 1 ] && [ -f /run/munge/munged.pid ]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null
    fi
    sleep 0.5
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in "$DIR"/*.log; do echo "== $f"; tail -n 20 "$f"; done
    exit 1
}

# munge (the package made /etc/munge/munge.key)
if ! { [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged || fail "munged did not start"
    STARTED_MUNGE=1
fi
PORT=$((17000 + RANDOM % 2000))
cat > "$DIR/slurm.conf" <<CONF
ClusterName=hbtest
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
KillWait=5
MinJobAge=300
NodeName=localhost CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=60 State=UP
CONF
mkdir -p "$DIR/state" "$DIR/spool"
export SLURM_CONF=$DIR/slurm.conf
/usr/sbin/slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
/usr/sbin/slurmd -f "$SLURM_CONF" -N localhost || fail "slurmd did not start"
for _ in $(seq 150); do
    sinfo -h -o %T 2>/dev/null | grep -q idle && break
    sleep 0.2
done
sinfo -h -o %T | grep -q idle || fail "the node never became idle"

# wait_job ID STATE TIMEOUT: poll until JobState is STATE (COMPLETED) or a failure state
wait_job() {
    for _ in $(seq $(($3 * 2))); do
        st=$(scontrol show job "$1" -o 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
        [ "$st" = "$2" ] && return 0
        case $st in FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) return 1 ;; esac
        sleep 0.5
    done
    return 1
}
same() { # same REF RUN DRAWS: every committed draw equal, and all of them committed
    n=$($PY "$SRC/tests/py/check_prefix.py" "$1" "$2") || return 1
    [ "$n" = "$3" ]
}
EXPORT="ALL,HB=$HB,OMPI_ALLOW_RUN_AS_ROOT=1,OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$DIR" || exit 1

# 1. the one-node script
cat > small.ini <<INI
[run]
seed = 3
chains = 40
warmup = 100
draws = 200
[model]
name = gaussian
dim = 4
[sampler]
algorithm = mala
INI
OMP_NUM_THREADS=1 mpirun -n 2 --oversubscribe "$HB" run small.ini --output ref1.h5 --quiet ||
    fail "reference run"
id=$(sbatch --parsable -n 2 --export="$EXPORT" --output="$DIR/job1.log" \
    "$SRC/slurm/one_node.sbatch" small.ini --output "$DIR/out1.h5" --quiet) || fail "sbatch"
JOBS=$id
wait_job "$id" COMPLETED 120 || fail "one_node job $id did not complete"
same ref1.h5 out1.h5 200 || fail "one_node output differs from the mpirun run"
echo "one_node.sbatch: job $id completed, output bitwise equal to mpirun"

# 2. preemption: signal -> checkpoint -> exit 5 -> requeue -> resume
cat > long.ini <<INI
[run]
seed = 4
chains = 64
warmup = 200
draws = 400
thin = 400
write_batch = 10
[model]
name = gaussian
dim = 10
[sampler]
algorithm = mala
INI
OMP_NUM_THREADS=1 mpirun -n 2 --oversubscribe "$HB" run long.ini --output ref2.h5 --quiet ||
    fail "reference run"
id=$(sbatch --parsable -n 2 --export="$EXPORT" --output="$DIR/job2.log" \
    "$SRC/slurm/preemptible.sbatch" long.ini "$DIR/out2.h5" --quiet) || fail "sbatch"
JOBS=$id
wait_job "$id" RUNNING 60 || fail "preemptible job $id never ran"
for _ in $(seq 60); do [ -f out2.h5 ] && break; sleep 0.5; done
sleep 2
scancel --signal=USR1 "$id" || fail "scancel --signal"
for _ in $(seq 120); do
    r=$(scontrol show job "$id" -o | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
    [ "${r:-0}" -ge 1 ] && break
    sleep 0.5
done
[ "${r:-0}" -ge 1 ] || fail "job $id was not requeued after the signal"
wait_job "$id" COMPLETED 240 || fail "requeued job $id did not complete"
grep -q "resuming from" job2.log || fail "the requeued job did not resume from the checkpoint"
same ref2.h5 out2.h5 400 || fail "preempted and resumed output differs from the uninterrupted run"
[ ! -f out2.h5.ckpt ] || fail "the checkpoint was left behind"
echo "preemptible.sbatch: job $id signalled, checkpointed, requeued ($r restart), resumed; output bitwise equal"
