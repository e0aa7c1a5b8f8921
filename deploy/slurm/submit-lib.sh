# shellcheck shell=bash
# Shared by extract.sh and bench.sh (sourced, not run): submitting an array
# of shards, then one job that runs when all of them have succeeded. The
# caller sets UNIMOS_PARTITION, UNIMOS_CPUS, UNIMOS_MEM, UNIMOS_TIME and
# UNIMOS_SBATCH_ARGS (see the top of extract.sh).

# sbatch_common prints nothing; it fills the array common_args with the
# options every job gets.
sbatch_common() {
  common_args=(--parsable --chdir="$PWD" --mem="$UNIMOS_MEM" --time="$UNIMOS_TIME")
  if [ -n "$UNIMOS_PARTITION" ]; then
    common_args+=(--partition="$UNIMOS_PARTITION")
  fi
  local extra
  read -r -a extra <<<"$UNIMOS_SBATCH_ARGS"
  common_args+=("${extra[@]}")
}

# job_id reads sbatch --parsable's "id" or "id;cluster" and prints the id.
job_id() {
  local line
  line=$(cat)
  echo "${line%%;*}"
}

# submit_array NAME N LOGDIR SCRIPT ARGS... submits SCRIPT as an array of N
# tasks (0 to N-1) with UNIMOS_CPUS CPUs each and prints the array's job id.
submit_array() {
  local name=$1 n=$2 logs=$3
  shift 3
  sbatch_common
  sbatch "${common_args[@]}" --job-name="$name" --array="0-$((n - 1))" \
    --cpus-per-task="$UNIMOS_CPUS" --output="$logs/$name-%a.out" "$@" | job_id
}

# submit_after DEPENDENCY NAME LOGDIR SCRIPT ARGS... submits SCRIPT on one
# CPU, to start when job DEPENDENCY has succeeded (every task of it, for an
# array) and to be cancelled when it failed, and prints its job id.
submit_after() {
  local dependency=$1 name=$2 logs=$3
  shift 3
  sbatch_common
  sbatch "${common_args[@]}" --job-name="$name" --dependency="afterok:$dependency" --kill-on-invalid-dep=yes \
    --cpus-per-task=1 --output="$logs/$name.out" "$@" | job_id
}

# shard_count ARGS... reads the optional SHARDS argument: it sets shards to
# the first argument when that is a number, else to UNIMOS_SHARDS, and
# shard_args to the number of arguments it took (for the caller's shift);
# a count below 1 is a usage error.
# shellcheck disable=SC2034 # shards and shard_args are the caller's
shard_count() {
  shards=$UNIMOS_SHARDS
  shard_args=0
  if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    shards=$1
    shard_args=1
  fi
  if [ "$shards" -lt 1 ]; then
    echo "$0: SHARDS is $shards: want at least 1" >&2
    exit 2
  fi
}
