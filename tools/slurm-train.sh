#!/usr/bin/env bash
# Data-parallel training on several nodes with SLURM: one neurobolt process per task. Each process
# finds its rank in SLURM_PROCID/SLURM_NTASKS and rank 0's host in SLURM_JOB_NODELIST; they meet
# at MASTER_PORT there (a TCPStore) and average gradients over Gloo (CPU). --batch is the global batch
# (a multiple of the task count). Prepare the dataset once, on a shared filesystem, before. On GPU
# nodes, with the CUDA-wired build: --device cuda, one task per GPU (--ntasks-per-node = GPUs per
# node): task SLURM_LOCALID uses cuda:SLURM_LOCALID, or its only visible GPU, over NCCL.
#
#   sbatch tools/slurm-train.sh data.h5 runs/base
#
#SBATCH --job-name=neurobolt-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
set -euo pipefail
data=${1:?usage: sbatch tools/slurm-train.sh DATA.h5 RUN_DIR}
run_dir=${2:?usage: sbatch tools/slurm-train.sh DATA.h5 RUN_DIR}
export MASTER_PORT=${MASTER_PORT:-29500}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
# Resume when the run folder already holds a state (a requeued job continues at any task count).
resume=()
[ -f "$run_dir/last.h5" ] && resume=(--resume)
srun neurobolt train "$data" -o "$run_dir" --config neurobolt-base --batch 64 --epochs 50 "${resume[@]}"
