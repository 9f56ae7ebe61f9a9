#!/usr/bin/env bash
# One shard of a fault campaign, as a cluster engine runs it. The shard index comes from the engine's own
# variable (first one set wins):
#   Kubernetes Indexed Job   JOB_COMPLETION_INDEX   0-based
#   Slurm job array          SLURM_ARRAY_TASK_ID    0-based (submit with --array=0-(N-1))
#   GitHub Actions matrix    SHARD_INDEX            0-based (the workflow sets it from matrix.shard)
# Settings (environment): SHARDS (how many), SEEDS (campaign size), START_SEED, OUT (results directory),
# CHARGER_HIL (the binary), BOARDS (board directory). Writes OUT/shard-I.jsonl; `charger-hil merge
# OUT/shard-*.jsonl --junit OUT/junit.xml` joins them into the report one unsharded run gives.
set -euo pipefail
index=${JOB_COMPLETION_INDEX:-${SLURM_ARRAY_TASK_ID:-${SHARD_INDEX:-}}}
if [ -z "$index" ]; then
  echo "run-shard.sh: no shard index: set JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or SHARD_INDEX" >&2
  exit 2
fi
: "${SHARDS:?run-shard.sh: set SHARDS, the number of shards}"
SEEDS=${SEEDS:-10000}
START_SEED=${START_SEED:-1}
OUT=${OUT:-hil-campaign}
HIL=${CHARGER_HIL:-charger-hil}
mkdir -p "$OUT"
args=(fuzz --seeds "$SEEDS" --seed "$START_SEED" --shard "$((index + 1))/$SHARDS" --results "$OUT/shard-$index.jsonl")
[ -n "${BOARDS:-}" ] && args+=(--boards "$BOARDS")
[ -n "${JOBS:-}" ] && args+=(--jobs "$JOBS")
# A failing seed is reported in the results file; the shard itself succeeds so that the merge sees it.
"$HIL" "${args[@]}" || [ $? = 1 ]
