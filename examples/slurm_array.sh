#!/usr/bin/env bash
# Split a folder of videos across a Slurm array: each task takes every N-th video.
#   sbatch --array=0-7 examples/slurm_array.sh /data/videos /data/out
#SBATCH --job-name=strcli
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
set -euo pipefail
strcli reconstruct "$1" -o "$2" --quiet \
    --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}"
