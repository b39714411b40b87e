#!/bin/bash
# A real one-node Slurm on this machine runs the project's own slurm/ scripts.
#
# Brings up a private munged (own key and socket), slurmctld and slurmd -N localhost
# (proctrack/linuxproc, select/cons_tres, MpiDefault=pmix; state, spool, logs and pid files in a
# fresh temp dir; free ports), then:
#  1. slurm/one_node.sbatch (2 tasks x 1 cpu, srun --mpi=pmix): the file equals, bit for bit,
#     the same config run directly with mpirun; the job log holds plain progress lines (phase,
#     iteration/total, ETA, draws/s) and the final line;
#  2. slurm/multi_node.sbatch as 1 rank x 2 threads: the same bits again;
#  3. slurm/preemptible.sbatch: SIGUSR1 to the job's tasks mid-sampling (scancel --signal, which
#     is what --signal=USR1@120 does before the time limit): heartbeat checkpoints and exits 5,
#     the script requeues the job, the requeued job resumes with --resume, and the final file
#     equals the uninterrupted run bit for bit, with no checkpoint left; then scancel (SIGTERM
#     to the tasks and the batch shell): checkpoint, exit 5, the job stays cancelled, and a
#     resubmission with HB_RESUME=1 completes the file bit for bit;
#  4. slurm/scaling.sbatch as job arrays (strong: 1x1 1x2; weak: 1x1 2x1) and
#     slurm/scaling_collect.sh: a table row per shape with throughput and efficiency.
# The daemons are stopped by PID on every exit (trap), jobs cancelled first.
# Exit 77 (ctest SKIP) with the reason when Slurm cannot run here: not root, slurm-wlm or munge
# not installed, fewer than 2 CPUs.
# Usage: run_slurm_test.sh HEARTBEAT_BIN SOURCE_DIR   (KEEP_SLURM_TEST_DIR=1 keeps the temp dir)
set -uo pipefail
HB=$1 SRC=$2
PY=/usr/bin/python3
skip() {
    echo "SKIP: $*"
    exit 77
}
[ "$(id -u)" = 0 ] || skip "slurmd must run as root to launch jobs"
for b in slurmctld slurmd munged sbatch srun scontrol scancel sinfo squeue; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
        skip "$b is not installed (apt-get install slurm-wlm munge; scripts/setup-deps.sh --test)"
done
id munge >/dev/null 2>&1 || skip "no munge user (apt-get install munge)"
[ "$(nproc)" -ge 2 ] || skip "fewer than 2 CPUs"
command -v mpirun >/dev/null 2>&1 || { echo "FAIL: mpirun not found"; exit 1; }

# Slurm variables of an enclosing job would steer sbatch/srun to it.
while read -r v; do unset "$v"; done < <(env | sed -n 's/^\(SLURM_[A-Z_]*\)=.*/\1/p')

DIR=$(mktemp -d /tmp/hb-slurm-test.XXXXXX) || exit 1
chmod 755 "$DIR" # munged (user munge) checks every directory above its socket
DEADLINE=$((SECONDS + ${HB_SLURM_TEST_TIMEOUT:-240}))
pid_of() { [ -s "$1" ] && cat "$1"; }
alive() { # a live process, not a zombie
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"
}
stop_pid() { # stop_pid PID: TERM, up to 5 s, then KILL
    local p=$1
    alive "$p" || return 0
    kill "$p" 2>/dev/null
    for _ in $(seq 50); do alive "$p" || return 0; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if alive "$(pid_of "$DIR/slurmctld.pid")"; then
        ids=$(squeue -h -o %A 2>/dev/null | sort -u)
        # shellcheck disable=SC2086
        [ -n "$ids" ] && scancel $ids 2>/dev/null
        for _ in $(seq 100); do
            [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    stop_pid "$(pid_of "$DIR/slurmd.pid")"
    stop_pid "$(pid_of "$DIR/slurmctld.pid")"
    stop_pid "$(pid_of "$DIR/munge/munged.pid")"
    if [ "${KEEP_SLURM_TEST_DIR:-0}" = 1 ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() {
    echo "FAIL: $*"
    for f in "$DIR"/*.log "$DIR"/scaling/*.log; do
        [ -f "$f" ] || continue
        echo "== $f"
        tail -n 25 "$f"
    done
    exit 1
}
left() { [ $SECONDS -lt $DEADLINE ]; }

# munged of our own: its key, socket, pid and log in $DIR/munge.
mkdir "$DIR/munge" && chown munge:munge "$DIR/munge" && chmod 755 "$DIR/munge" || fail "munge dir"
if command -v mungekey >/dev/null 2>&1; then
    runuser -u munge -- mungekey --create --keyfile="$DIR/munge/munge.key" || fail "mungekey"
else
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none &&
        chown munge:munge "$DIR/munge/munge.key" && chmod 400 "$DIR/munge/munge.key" ||
        fail "munge key"
fi
SOCK=$DIR/munge/munge.socket
runuser -u munge -- "$(command -v munged || echo /usr/sbin/munged)" --socket="$SOCK" \
    --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" ||
    fail "munged did not start: $(tail -n 3 "$DIR/munge/munged.log" 2>/dev/null)"

# Two free TCP ports in a row for slurmctld and slurmd.
PORT=
for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if [ -z "$(ss -Hltn "( sport = :$p or sport = :$((p + 1)) )" 2>/dev/null)" ]; then
        PORT=$p
        break
    fi
done
[ -n "$PORT" ] || fail "no free port pair"

# The node as slurmd sees it (CPUs, sockets, cores, threads), named localhost.
NODE=$(slurmd -C | sed -n 's/^NodeName=[^ ]* \(.*\) RealMemory=.*/\1/p' | head -n 1)
[ -n "$NODE" ] || NODE="CPUs=$(nproc)"
mkdir -p "$DIR/state" "$DIR/spool"
cat >"$DIR/slurm.conf" <<CONF
ClusterName=hbtest
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Our munged; a requeued job waits cred_expire seconds (default 120) before it may start.
AuthInfo=socket=$SOCK,cred_expire=5
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
SchedulerParameters=sched_interval=1,bf_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
KillWait=5
MinJobAge=300
MailProg=/bin/true
NodeName=localhost $NODE State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$DIR/slurm.conf
"$(command -v slurmctld || echo /usr/sbin/slurmctld)" -f "$SLURM_CONF" || fail "slurmctld did not start"
"$(command -v slurmd || echo /usr/sbin/slurmd)" -f "$SLURM_CONF" -N localhost || fail "slurmd did not start"
for _ in $(seq 150); do
    sinfo -h -o %T 2>/dev/null | grep -q idle && break
    sleep 0.2
done
sinfo -h -o %T 2>/dev/null | grep -q idle || fail "the node never became idle: $(sinfo 2>&1)"
echo "slurm up: ctld port $PORT, node $NODE, dir $DIR ($SECONDS s)"

job_field() { scontrol show job "$1" -o 2>/dev/null | sed -n "s/.*[[:space:]]$2=\([^ ]*\).*/\1/p" | head -n 1; }
# wait_done ID: every task of job (or array) ID reaches COMPLETED; 1 on a failed state or the deadline
wait_done() {
    local st
    while left; do
        st=$(scontrol show job "$1" -o 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u)
        [ "$st" = COMPLETED ] && return 0
        if echo "$st" | grep -qE 'FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE'; then
            echo "job $1: $st ($(job_field "$1" Reason))"
            return 1
        fi
        sleep 0.3
    done
    echo "job $1: timed out in state $st"
    return 1
}
EXPORT="ALL,HB=$HB,OMPI_ALLOW_RUN_AS_ROOT=1,OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$DIR" || exit 1

# The run: 2 ranks sample for about 2 s whatever the build (a sanitizer build is ~20x slower)
# or the load: THIN comes from a calibration run at thin 100 (the preemption test needs a
# sampling line before 60% to signal at, one_node at least two sampling lines at 0.3 s).
CHAINS=64 DRAWS=400
run_ini() { # THIN
    cat <<INI
[run]
seed = 4
chains = $CHAINS
warmup = 200
draws = $DRAWS
thin = $1
write_batch = 10
progress_every = 0.3
[model]
name = gaussian
dim = 10
[sampler]
algorithm = mala
INI
}
run_ini 100 >cal.ini
cal=$(OMP_NUM_THREADS=1 timeout 120 mpirun -n 2 --oversubscribe "$HB" run cal.ini \
    --set run.output=none 2>&1 | sed -n 's/.*sampling \([0-9.]*\) s.*/\1/p' | tail -n 1)
[ -n "$cal" ] || fail "the calibration run with mpirun"
THIN=$(awk -v t="$cal" 'BEGIN { n = int(100 * 2.0 / (t > 0.001 ? t : 0.001)); print (n < 100 ? 100 : n > 20000 ? 20000 : n) }')
echo "calibration: thin 100 sampled in $cal s; thin $THIN ($SECONDS s)"
run_ini "$THIN" >run.ini
OMP_NUM_THREADS=1 timeout 120 mpirun -n 2 --oversubscribe "$HB" run run.ini --output ref.h5 \
    --quiet || fail "the reference run with mpirun"
echo "reference run with mpirun -n 2 ($SECONDS s)"

# 1. one_node.sbatch
id=$(sbatch --parsable --export="$EXPORT" --output="$DIR/one_node.log" \
    "$SRC/slurm/one_node.sbatch" run.ini --output "$DIR/one_node.h5") || fail "sbatch one_node"
wait_done "$id" || fail "one_node.sbatch job $id"
# Progress in a log (not a terminal): plain lines with phase, iteration/total, ETA, draws/s.
n=$((DRAWS * THIN))
grep -qE "^warmup +[0-9]+/200 +[0-9]+%  ETA [0-9a-z?]+  [0-9.e+]+ draws/s" one_node.log ||
    fail "no warmup progress line in the job log"
[ "$(grep -cE "^sampling +[0-9]+/$n +[0-9]+%  ETA [0-9a-z?]+  [0-9.e+]+ draws/s" one_node.log)" -ge 2 ] ||
    fail "fewer than 2 sampling progress lines in the job log"
grep -qE "^done: warmup [0-9.]+ s, sampling [0-9.]+ s, $((CHAINS * DRAWS)) draws \([0-9.e+]+ draws/s" \
    one_node.log || fail "no final progress line in the job log"
if grep -q $'\r' one_node.log; then fail "carriage returns (a terminal's live line) in the log"; fi
echo "one_node.sbatch: job $id, 2 ranks x 1 thread; progress lines in the log ($SECONDS s)"

# 2. multi_node.sbatch, one rank with two threads on this one node
id=$(sbatch --parsable --export="$EXPORT" --output="$DIR/multi_node.log" --nodes=1 \
    --ntasks-per-node=1 --cpus-per-task=2 "$SRC/slurm/multi_node.sbatch" run.ini \
    --output "$DIR/multi_node.h5" --quiet) || fail "sbatch multi_node"
wait_done "$id" || fail "multi_node.sbatch job $id"
grep -q "1 ranks x 2 threads" multi_node.log || fail "multi_node.sbatch did not run 1 rank x 2 threads"
echo "multi_node.sbatch: job $id, 1 rank x 2 threads ($SECONDS s)"

# 3. preemptible.sbatch: signal -> checkpoint -> exit 5 -> requeue -> resume
id=$(sbatch --parsable --export="$EXPORT" --output="$DIR/preempt.log" \
    "$SRC/slurm/preemptible.sbatch" run.ini "$DIR/preempt.h5") || fail "sbatch preemptible"
signalled=0
while left; do
    # a sampling line short of the end: signal now
    if grep -qE "^sampling +[0-9]+/$n +([0-9]|[1-5][0-9])%" preempt.log 2>/dev/null; then
        scancel --signal=USR1 "$id" || fail "scancel --signal=USR1 $id"
        signalled=1
        break
    fi
    st=$(job_field "$id" JobState)
    case $st in RUNNING | PENDING | CONFIGURING) ;; *) fail "preemptible job $id is $st before the signal" ;; esac
    sleep 0.1
done
[ $signalled = 1 ] || fail "preemptible job $id never reached sampling"
wait_done "$id" || fail "preemptible.sbatch job $id"
restarts=$(job_field "$id" Restarts)
[ "${restarts:-0}" -ge 1 ] || fail "job $id was not requeued (Restarts=$restarts)"
grep -q "interrupted by a signal: checkpoint .*preempt.h5.ckpt written" preempt.log ||
    fail "heartbeat did not report its checkpoint"
grep -q "checkpointed after a signal (exit 5): requeueing job $id" preempt.log ||
    fail "the script did not requeue on exit 5"
grep -q "restart 1 of job $id: resuming from $DIR/preempt.h5.ckpt" preempt.log ||
    fail "the requeued job did not resume from the checkpoint"
# A fresh run would give the same bits: the resumed part must not warm up again.
after=$(sed -n "/restart 1 of job $id/,\$p" preempt.log)
if echo "$after" | grep -q '^warmup'; then fail "the requeued job started over (warmup lines)"; fi
echo "$after" | grep -qE "^sampling +[0-9]+/$n " || fail "no sampling progress after the restart"
[ ! -e preempt.h5.ckpt ] || fail "the checkpoint was left behind"
echo "preemptible.sbatch: job $id signalled mid-sampling, checkpointed, requeued, resumed ($SECONDS s)"

# 3b. scancel (SIGTERM to the tasks and the batch shell): checkpoint, exit 5, no requeue (the
# job stays cancelled); a resubmission with HB_RESUME=1 completes the run.
id=$(sbatch --parsable --export="$EXPORT" --output="$DIR/cancel.log" \
    "$SRC/slurm/preemptible.sbatch" run.ini "$DIR/cancel.h5") || fail "sbatch preemptible"
cancelled=0
while left; do
    if grep -qE "^sampling +[0-9]+/$n +([0-9]|[1-5][0-9])%" cancel.log 2>/dev/null; then
        scancel "$id" || fail "scancel $id"
        cancelled=1
        break
    fi
    sleep 0.1
done
[ $cancelled = 1 ] || fail "job $id never reached sampling"
while left && [ "$(job_field "$id" JobState)" != CANCELLED ]; do sleep 0.2; done
# the batch shell may still be writing its last line
while left && ! grep -q "not requeueing" cancel.log; do sleep 0.2; done
grep -q "terminated; checkpoint .*cancel.h5.ckpt kept, not requeueing" cancel.log ||
    fail "the cancelled job did not keep its checkpoint without requeueing"
sleep 1
[ "$(job_field "$id" JobState)" = CANCELLED ] && [ "$(job_field "$id" Restarts)" = 0 ] ||
    fail "the cancelled job $id was requeued"
[ -f cancel.h5.ckpt ] || fail "no checkpoint after scancel"
id=$(HB_RESUME=1 sbatch --parsable --export="$EXPORT" --output="$DIR/cancel2.log" \
    "$SRC/slurm/preemptible.sbatch" run.ini "$DIR/cancel.h5") || fail "sbatch preemptible"
wait_done "$id" || fail "resubmitted preemptible.sbatch job $id"
grep -q "resuming from $DIR/cancel.h5.ckpt" cancel2.log || fail "HB_RESUME=1 did not resume"
if grep -q '^warmup' cancel2.log; then fail "the resubmitted job started over (warmup lines)"; fi
echo "preemptible.sbatch: job cancelled mid-sampling kept its checkpoint, not requeued; HB_RESUME=1 completed it ($SECONDS s)"

# The four files, bitwise equal to the direct mpirun run (one h5py start for all).
$PY "$SRC/tests/slurm/same_run.py" ref.h5 $CHAINS $DRAWS one_node.h5 multi_node.h5 preempt.h5 \
    cancel.h5 || fail "a file made under Slurm differs from the mpirun run (above)"

# 4. scaling.sbatch as job arrays, then scaling_collect.sh
small=(--set run.thin=50)
id=$(SHAPES="1x1 1x2" MODE=strong SCALING_DIR="$DIR/scaling" sbatch --parsable \
    --export="$EXPORT" --array=0-1 --output="$DIR/scaling-%A_%a.log" \
    "$SRC/slurm/scaling.sbatch" run.ini "${small[@]}") || fail "sbatch scaling (strong)"
wait_done "$id" || fail "scaling.sbatch strong array $id"
id=$(SHAPES="1x1 2x1" MODE=weak CHAINS_PER_CORE=32 SCALING_DIR="$DIR/scaling" sbatch --parsable \
    --export="$EXPORT" --array=0-1 --output="$DIR/scaling-%A_%a.log" \
    "$SRC/slurm/scaling.sbatch" run.ini "${small[@]}") || fail "sbatch scaling (weak)"
wait_done "$id" || fail "scaling.sbatch weak array $id"
"$SRC/slurm/scaling_collect.sh" "$DIR/scaling" >table.md || fail "scaling_collect.sh"
cat table.md
num='[0-9.e+-]+'
for row in "strong | 1x1 | 1 | $((CHAINS * DRAWS))" "strong | 1x2 | 2 | $((CHAINS * DRAWS))" \
    "weak | 1x1 | 1 | $((32 * DRAWS))" "weak | 2x1 | 2 | $((64 * DRAWS))"; do
    grep -qE "^\| $row \| $num \| $num \| $num \| $num \| $num \| $num \|$" table.md ||
        fail "no table row \"$row | ...\""
done
grep -qE "^\| strong \| 1x1 \| 1 \| [0-9]+ \| $num \| $num \| $num \| 1.00 \| 1.00 \| 1.00 \|$" table.md ||
    fail "the smallest shape is not the base of the table"
echo "scaling.sbatch + scaling_collect.sh: strong and weak arrays, table above ($SECONDS s)"
echo "PASS"
