#!/usr/bin/env bash
# Runs a bench on a Slurm cluster: an array job with one shard of the
# (method, task, seed) runs per task, all into the bench folder OUT, then a
# report job that writes OUT/report.md when every task has succeeded.
# Prints the report job's id as its last line.
#
#   deploy/slurm/bench.sh FEATURES PROTOCOL OUT [SHARDS] [more bench flags]
#
# e.g. deploy/slurm/bench.sh features/oh office-home bench/oh 12 --seeds 2023,1,2
#
# The logs of every task go to OUT/logs/. Running the same command again
# after a failure skips the finished runs.
set -euo pipefail

# Settings, overridable from the environment (UNIMOS_CPUS=4 deploy/slurm/bench.sh ...).
UNIMOS=${UNIMOS:-unimos}                       # the unimos binary, as the compute nodes see it
UNIMOS_PARTITION=${UNIMOS_PARTITION:-}         # empty: the cluster's default partition
UNIMOS_CPUS=${UNIMOS_CPUS:-4}                  # CPUs per shard
UNIMOS_MEM=${UNIMOS_MEM:-8G}                   # memory per job
UNIMOS_TIME=${UNIMOS_TIME:-08:00:00}           # time limit per job
UNIMOS_SBATCH_ARGS=${UNIMOS_SBATCH_ARGS:-}     # more sbatch options, split on spaces (--account=x --qos=y)
UNIMOS_SHARDS=${UNIMOS_SHARDS:-4}              # shards when the SHARDS argument is left out

usage() {
  cat >&2 <<USAGE
usage: $0 FEATURES PROTOCOL OUT [SHARDS] [more unimos bench flags]

Submits 'unimos bench --features FEATURES --protocol PROTOCOL --out OUT' as a
Slurm array of SHARDS tasks (default $UNIMOS_SHARDS), each making its share of the
runs, and a job that writes OUT/report.md when all have succeeded. Prints
the report job's id last. Settings (environment): UNIMOS ($UNIMOS),
UNIMOS_PARTITION, UNIMOS_CPUS ($UNIMOS_CPUS), UNIMOS_MEM ($UNIMOS_MEM),
UNIMOS_TIME ($UNIMOS_TIME), UNIMOS_SBATCH_ARGS.
USAGE
  exit 2
}

[ $# -ge 3 ] || usage
features=$1
protocol=$2
out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=deploy/slurm/submit-lib.sh
. "$here/submit-lib.sh"
shard_count "$@"
shift "$shard_args"

export UNIMOS # the jobs run with the environment of this script
mkdir -p "$out/logs"
array=$(submit_array unimos-bench "$shards" "$out/logs" \
  "$here/bench.sbatch" run "$out" --features "$features" --protocol "$protocol" "$@")
report=$(submit_after "$array" unimos-report "$out/logs" "$here/bench.sbatch" report "$out" "$@")
echo "bench: array job $array ($shards tasks), then report job $report writing $out/report.md; logs in $out/logs" >&2
echo "$report"
