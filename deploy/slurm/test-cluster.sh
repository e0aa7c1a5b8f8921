#!/usr/bin/env bash
# Tests extract.sh and bench.sh on a real Slurm scheduler: starts a
# one-node cluster from Debian's packages (slurm-wlm, munge) with its state
# in a temporary folder, builds unimos, then
#
#   1. submits extract.sh as a 4-task array over a few Office-Caltech photos
#      (2 domains) with the tiny test model, waits for the merge job, and
#      requires the store to be byte-identical to a single-process extraction;
#   2. submits bench.sh (4 tasks) on the synthetic tiny store (pairs
#      protocol, 1 epoch), waits for the report job, and requires the report
#      to be the one an unsharded bench writes.
#
# At the end, whatever happened, every job is cancelled and the daemons are
# stopped once the queue is empty. Without root or the packages, or when
# the cluster does not come up, it says so and skips (exit 0), unless
# UNIMOS_REQUIRE_SLURM=1 (set by .ci/run as root), which makes that a
# failure. Without the test data (office_caltech10 and clip_reference in
# ../shared/data), it skips step 1 only, with a message, even then.
#
#   deploy/slurm/test-cluster.sh        (from anywhere; about a minute)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${UNIMOS_TEST_DATA:-$REPO/../shared/data}    # shared test data (office_caltech10, clip_reference)
PHOTOS_PER_CLASS=${PHOTOS_PER_CLASS:-2}           # per class and domain
SHARDS=${SHARDS:-4}
WAIT_SECONDS=${WAIT_SECONDS:-120}                 # bound on each wait for a job
CTLD_PORT=${CTLD_PORT:-16817}                     # not Slurm's 6817, so as not to meet a real cluster
SLURMD_PORT=${SLURMD_PORT:-16818}
UNIMOS_REQUIRE_SLURM=${UNIMOS_REQUIRE_SLURM:-0}
KEEP=${KEEP:-0}                                   # 1: keep the temporary folder

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[ $# -eq 0 ] || usage

skip() {
  echo "SKIP slurm test: $*" >&2
  if [ "$UNIMOS_REQUIRE_SLURM" = 1 ]; then
    echo "UNIMOS_REQUIRE_SLURM=1: failing instead" >&2
    exit 1
  fi
  exit 0
}

[ "$(id -u)" = 0 ] || skip "not root: slurmd and munged are started as root"
for cmd in munged mungekey slurmctld slurmd sbatch squeue scontrol scancel go; do
  command -v "$cmd" >/dev/null || skip "$cmd not found (apt-get install slurm-wlm munge)"
done
# The extraction needs the fixture photos and model; the bench runs on a
# synthetic store, so it does not.
photos=$DATA/office_caltech10/images
weights=$DATA/clip_reference/models/vit_tiny.safetensors
extraction=1
if [ ! -d "$photos" ] || [ ! -f "$weights" ]; then
  echo "SKIP slurm extraction test: $photos or $weights not found (set UNIMOS_TEST_DATA); the bench test still runs" >&2
  extraction=0
fi

tmp=$(mktemp -d /tmp/unimos-slurm.XXXXXX)
chmod 755 "$tmp" # munged wants its socket reachable by every user
pids=()          # the daemons this script started, in starting order
cluster=0        # 1 once this script's cluster is up (SLURM_CONF names it: scancel reaches no other)
DRAIN_SECONDS=30 # bound on the wait for the cancelled jobs to leave the queue

# drain cancels every job of the private cluster (the array tasks as well
# as the jobs that depend on them) and waits, at most DRAIN_SECONDS, for
# the queue to be empty: stopping slurmd first would leave the tasks'
# slurmstepd and unimos processes running. It fails if jobs remain.
drain() {
  scancel --user=root 2>/dev/null || true
  local waited=0
  while [ -n "$(squeue -h 2>/dev/null || echo unreachable)" ]; do
    if [ "$waited" -ge $((DRAIN_SECONDS * 5)) ]; then
      echo "jobs still in the queue ${DRAIN_SECONDS}s after scancel:" >&2
      squeue >&2 || true
      return 1
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
}

stop() {
  status=$?
  if [ "$cluster" = 1 ] && ! drain; then
    [ "$status" != 0 ] || status=1
  fi
  # slurmd, then slurmctld, then munged, which both authenticate through.
  for ((k = ${#pids[@]} - 1; k >= 0; k--)); do
    kill "${pids[k]}" 2>/dev/null || true
    wait "${pids[k]}" 2>/dev/null || true
  done
  if [ "$status" != 0 ]; then
    for log in "$tmp"/log/*.log; do
      echo "== $log (last lines)" >&2
      tail -n 20 "$log" >&2 || true
    done
  fi
  if [ "$KEEP" = 1 ] || [ "$status" != 0 ]; then
    echo "kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap stop EXIT
trap 'exit 130' INT TERM

step() { echo "== $*" >&2; }

step "building unimos"
mkdir -p "$tmp/bin" "$tmp/log" "$tmp/munge" "$tmp/ctld" "$tmp/slurmd"
(cd "$REPO" && go build -o "$tmp/bin/unimos" ./cmd/unimos)
export UNIMOS=$tmp/bin/unimos

step "starting munged and a one-node Slurm cluster in $tmp"
mungekey --create --keyfile="$tmp/munge/munge.key"
chmod 400 "$tmp/munge/munge.key"
munged --foreground --force --socket="$tmp/munge/munge.socket" --key-file="$tmp/munge/munge.key" \
  --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" --log-file="$tmp/log/munged.log" \
  2>>"$tmp/log/munged.log" &
pids+=($!)

node=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<CONF
ClusterName=unimos-test
SlurmctldHost=$node
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
StateSaveLocation=$tmp/ctld
SlurmdSpoolDir=$tmp/slurmd
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$node CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
for _ in $(seq 50); do
  [ -S "$tmp/munge/munge.socket" ] && break
  sleep 0.1
done
[ -S "$tmp/munge/munge.socket" ] || skip "munged did not start (see $tmp/log/munged.log)"
slurmctld -D -f "$SLURM_CONF" >>"$tmp/log/slurmctld.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >>"$tmp/log/slurmd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  state=$(sinfo -h -n "$node" -o %t 2>/dev/null || true)
  case $state in idle | mix | alloc) break ;; esac
  sleep 0.2
done
case $state in
  idle | mix | alloc) step "node $node up: $cpus CPUs, $memory MB" ;;
  *) skip "the Slurm node did not come up (state '$state'; logs in $tmp/log)" ;;
esac
cluster=1

# wait_job ID waits (at most WAIT_SECONDS) for job ID to end, and fails
# unless it COMPLETED.
wait_job() {
  local id=$1 state="" waited=0
  while [ "$waited" -lt $((WAIT_SECONDS * 5)) ]; do
    state=$(scontrol show job -o "$id" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
    case $state in
      COMPLETED) return 0 ;;
      FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
        echo "job $id ended $state" >&2
        return 1
        ;;
    esac
    sleep 0.2
    waited=$((waited + 1))
  done
  echo "job $id still $state after ${WAIT_SECONDS}s" >&2
  return 1
}

# show_logs DIR prints the job logs in DIR.
show_logs() {
  for log in "$1"/*.out; do
    echo "== $log" >&2
    cat "$log" >&2
  done
}

cd "$tmp" # the jobs run in the folder they were submitted from

if [ "$extraction" = 1 ]; then
  step "extraction: $SHARDS-task array and merge job, against one process"
  images=$tmp/office-caltech # the dataset is named after this folder
  for pair in amazon:amazon webcam:Web_Cam; do
    from=${pair%%:*}
    to=${pair##*:}
    for class in "$photos/$from"/*/; do
      mkdir -p "$images/$to/$(basename "$class")"
      mapfile -t files < <(find "$class" -maxdepth 1 -type f -name '*.jpg' | sort)
      ln -s "${files[@]:0:PHOTOS_PER_CLASS}" "$images/$to/$(basename "$class")/"
    done
  done
  "$UNIMOS" extract --images "$images" --weights "$weights" --batch 4 --out "$tmp/want-store" >"$tmp/log/reference-extract.log" 2>&1
  merge=$(UNIMOS_CPUS=1 UNIMOS_MEM=500M UNIMOS_TIME=00:05:00 \
    "$REPO/deploy/slurm/extract.sh" "$images" "$weights" "$tmp/store" "$SHARDS" --batch 4 --workers 1 | tail -n 1)
  wait_job "$merge" || { show_logs "$tmp/store.work/logs"; exit 1; }
  diff -r "$tmp/want-store" "$tmp/store" >&2 || { echo "the merged store differs from the single-process one" >&2; exit 1; }
  [ "$(find "$tmp/store.work" -maxdepth 1 -name 'shard-*' | wc -l)" = "$SHARDS" ]
  step "ok: the merged store is byte-identical ($(find "$tmp/store" -type f | wc -l) files)"
fi

step "bench: $SHARDS-task array and report job, against one process"
"$UNIMOS" synth --preset tiny --out "$tmp/tiny" >/dev/null
"$UNIMOS" bench --features "$tmp/tiny" --protocol pairs --epochs 1 --out "$tmp/want-bench" >"$tmp/log/reference-bench.log" 2>&1
report=$(UNIMOS_CPUS=1 UNIMOS_MEM=500M UNIMOS_TIME=00:05:00 \
  "$REPO/deploy/slurm/bench.sh" "$tmp/tiny" pairs "$tmp/bench" "$SHARDS" --epochs 1 | tail -n 1)
wait_job "$report" || { show_logs "$tmp/bench/logs"; exit 1; }
cmp "$tmp/want-bench/report.md" "$tmp/bench/report.md" >&2 ||
  { diff "$tmp/want-bench/report.md" "$tmp/bench/report.md" >&2; exit 1; }
# results.csv: the same numbers; train_seconds (column 12) aside.
for dir in want-bench bench; do
  cut -d, -f1-11,13 "$tmp/$dir/results.csv" >"$tmp/$dir.csv"
done
cmp "$tmp/want-bench.csv" "$tmp/bench.csv" >&2
step "ok: the report of $(grep -c . "$tmp/bench.csv") results lines equals the unsharded bench's"
