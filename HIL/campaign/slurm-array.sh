#!/usr/bin/env bash
# A 10,000-seed fault campaign as a Slurm job array: `sbatch HIL/campaign/slurm-array.sh` from the
# repository (built with `make build`); each array task runs one shard (SLURM_ARRAY_TASK_ID), then
#   sbatch --dependency=afterok:<jobid> --wrap ".build/release/charger-hil merge hil-campaign/shard-*.jsonl --junit hil-campaign/junit.xml"
#SBATCH --job-name=charger-hil
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=1G
#SBATCH --output=hil-campaign/slurm-%A_%a.out
export SHARDS=8 SEEDS=${SEEDS:-10000} START_SEED=${START_SEED:-1} OUT=${OUT:-hil-campaign}
export CHARGER_HIL=${CHARGER_HIL:-.build/release/charger-hil} JOBS=${SLURM_CPUS_PER_TASK:-2}
exec HIL/campaign/run-shard.sh
