#!/usr/bin/env bash
# Extracts CLIP features on a Slurm cluster: an array job with one shard of
# the batches per task, then a merge job that runs when every task has
# succeeded. Prints the merge job's id as its last line; when that job has
# ended successfully, OUT is the complete feature store.
#
#   deploy/slurm/extract.sh IMAGES WEIGHTS OUT [SHARDS] [more extract flags]
#
# e.g. deploy/slurm/extract.sh ~/data/DomainNet RN50.safetensors features/dn 16 --batch 256
#
# The shards, and the logs of every task, go to OUT.work/ (UNIMOS_WORK);
# running the same command again after a failure resumes the shards.
set -euo pipefail

# Settings, overridable from the environment (UNIMOS_MEM=64G deploy/slurm/extract.sh ...).
UNIMOS=${UNIMOS:-unimos}                       # the unimos binary, as the compute nodes see it
UNIMOS_PARTITION=${UNIMOS_PARTITION:-}         # empty: the cluster's default partition
UNIMOS_CPUS=${UNIMOS_CPUS:-8}                  # CPUs per shard
UNIMOS_MEM=${UNIMOS_MEM:-16G}                  # memory per job
UNIMOS_TIME=${UNIMOS_TIME:-04:00:00}           # time limit per job
UNIMOS_SBATCH_ARGS=${UNIMOS_SBATCH_ARGS:-}     # more sbatch options, split on spaces (--account=x --qos=y)
UNIMOS_SHARDS=${UNIMOS_SHARDS:-4}              # shards when the SHARDS argument is left out

usage() {
  cat >&2 <<USAGE
usage: $0 IMAGES WEIGHTS OUT [SHARDS] [more unimos extract flags]

Submits 'unimos extract --images IMAGES --weights WEIGHTS' as a Slurm array
of SHARDS tasks (default $UNIMOS_SHARDS), each writing one shard to OUT.work/shard-<i>,
and a job that merges them into the feature store OUT when all have
succeeded. Prints the merge job's id last. Settings (environment): UNIMOS
($UNIMOS), UNIMOS_PARTITION, UNIMOS_CPUS ($UNIMOS_CPUS), UNIMOS_MEM ($UNIMOS_MEM),
UNIMOS_TIME ($UNIMOS_TIME), UNIMOS_SBATCH_ARGS, UNIMOS_WORK (OUT.work).
USAGE
  exit 2
}

[ $# -ge 3 ] || usage
images=$1
weights=$2
out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=deploy/slurm/submit-lib.sh
. "$here/submit-lib.sh"
shard_count "$@"
shift "$shard_args"
if [ -e "$out/dataset.json" ]; then
  echo "$0: $out already holds a feature store; remove it or choose another OUT" >&2
  exit 1
fi
work=${UNIMOS_WORK:-$out.work}

export UNIMOS # the jobs run with the environment of this script
mkdir -p "$work/logs"
array=$(submit_array unimos-extract "$shards" "$work/logs" \
  "$here/extract.sbatch" shard "$work" --images "$images" --weights "$weights" "$@")
merge=$(submit_after "$array" unimos-merge "$work/logs" "$here/extract.sbatch" merge "$work" "$out" "$shards")
echo "extraction: array job $array ($shards tasks), then merge job $merge into $out; logs in $work/logs" >&2
echo "$merge"
