#!/usr/bin/env bash
# Submits a burn-lottery sweep to Slurm: one job array per wave of the plan
# (`burn-lottery-sweep plan --format waves`), each wave after the previous
# one succeeded (--dependency=afterok), then a report job that merges every
# finished job into $ROOT/report (report.csv, report.svg, stability.csv).
#
#   scripts/slurm/submit.sh SWEEP.json ROOT [extra sbatch options...]
#
# Wave w holds the main line's level w of every experiment and the controls
# and stability copies of level w - 1, so controls train while the main line
# goes on; every job's dependencies are in earlier waves. Prints the job ids,
# the report job's last. Environment: SWEEP_BIN, DEVICE, DATA_DIR (see
# sweep_job.sbatch), LOG_DIR (default $ROOT/slurm-logs).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 SWEEP.json ROOT [sbatch options...]" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
SWEEP="$(realpath "$1")"; ROOT="$(realpath -m "$2")"; shift 2
SWEEP_BIN="$(command -v "${SWEEP_BIN:-burn-lottery-sweep}")"
LOG_DIR="${LOG_DIR:-$ROOT/slurm-logs}"
mkdir -p "$ROOT" "$LOG_DIR"
export SWEEP ROOT SWEEP_BIN DEVICE="${DEVICE:-flex}" DATA_DIR="${DATA_DIR:-}"

previous=""
while read -r first last; do
  id=$(sbatch --parsable --array="${first}-${last}" \
    ${previous:+--dependency=afterok:$previous} --kill-on-invalid-dep=yes \
    --output="$LOG_DIR/job-%a.out" --export=ALL "$@" "$here/sweep_job.sbatch")
  echo "wave ${first}-${last}: job array $id${previous:+ (afterok:$previous)}"
  previous="$id"
done < <("$SWEEP_BIN" plan --sweep "$SWEEP" --format waves)

report=$(sbatch --parsable ${previous:+--dependency=afterok:$previous} \
  --job-name=lottery-report --output="$LOG_DIR/report.out" --export=ALL "$@" \
  --wrap "\"$SWEEP_BIN\" report --sweep \"$SWEEP\" --root \"$ROOT\" --device \"$DEVICE\" ${DATA_DIR:+--data-dir \"$DATA_DIR\"} --require-complete")
echo "report: job $report"
