#!/usr/bin/env bash
# Inference over a whole BIDS dataset as a SLURM job array: task i of N predicts runs i, i+N, ...
# of the sorted run list into one BIDS derivative folder (re-running a task skips what it already
# finished). A last job, after the array, checks that every run was predicted exactly once.
#
#   jid=$(sbatch --parsable --array=0-31 tools/slurm-infer.sh run/best.h5 /data/bids pred)
#   sbatch --dependency=afterok:$jid --wrap "neurobolt infer run/best.h5 /data/bids -o pred --verify"
#
#SBATCH --job-name=neurobolt-infer
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
set -euo pipefail
model=${1:?usage: sbatch --array=0-N tools/slurm-infer.sh MODEL.h5 BIDS_ROOT OUT_DIR}
bids=${2:?usage: sbatch --array=0-N tools/slurm-infer.sh MODEL.h5 BIDS_ROOT OUT_DIR}
out=${3:?usage: sbatch --array=0-N tools/slurm-infer.sh MODEL.h5 BIDS_ROOT OUT_DIR}
neurobolt infer "$model" "$bids" -o "$out" --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" \
  --threads "${SLURM_CPUS_PER_TASK:-1}"
