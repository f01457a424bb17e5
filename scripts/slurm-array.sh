#!/usr/bin/env bash
# Runs one joulebench suite as a SLURM job array: task i of n runs shard i/n,
# each on a whole node, then a dependent job merges the shards.
#
#   sbatch --array=0-3 scripts/slurm-array.sh experiments/paper-resnet50.toml
#
# Every task writes results/slurm-<job id>/<suite>/<timestamp>-shard<i>of<n>/.
# When all tasks finished, the last step merges their results.csv files into
# results/slurm-<job id>/merged.csv (merge refuses mixed suite files).
# An interrupted shard continues with:
#   joulebench run SUITE --resume results/slurm-<job id>/<suite>/<dir> --shard i/n
#
#SBATCH --job-name=joulebench
#SBATCH --exclusive
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail

SUITE=${1:?usage: sbatch --array=0-N scripts/slurm-array.sh SUITE.toml}
JOULEBENCH=${JOULEBENCH:-joulebench}
JOB=${SLURM_ARRAY_JOB_ID:?run this through sbatch --array}
TASK=${SLURM_ARRAY_TASK_ID:?run this through sbatch --array}
MIN=${SLURM_ARRAY_TASK_MIN:-0}
COUNT=${SLURM_ARRAY_TASK_COUNT:?run this through sbatch --array}
OUT=${OUT:-results/slurm-$JOB}

I=$((TASK - MIN + 1)) # shards are 1-based
"$JOULEBENCH" run "$SUITE" --shard "$I/$COUNT" --out "$OUT" --quiet

# The first task queues the merge after every task of the array succeeded.
if [ "$I" -eq 1 ]; then
    sbatch --dependency="afterok:$JOB" --job-name=joulebench-merge \
        --output="slurm-$JOB-merge.out" \
        --wrap "$JOULEBENCH merge $OUT/*/*/results.csv --out $OUT/merged.csv"
fi
