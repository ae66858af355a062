#!/usr/bin/env bash
# The Slurm round trip: a small Fashion-MNIST sweep submitted to a
# single-node Slurm on this machine, merged, and compared with the same
# sweep run in one process.
#
#   scripts/slurm_round_trip.sh [WORK_DIR]
#
# 1. installs and starts Slurm (scripts/slurm/setup_single_node.sh: Debian's
#    slurm-wlm and munge, slurmctld + slurmd on localhost; needs root);
# 2. builds burn-lottery-sweep (cargo feature `cli`);
# 3. submits scripts/slurm/fashion_mnist_small.json (2 seeds x 2 rewind
#    points x 3 levels, both controls, stability copies with data-order
#    seeds 1 and 2) with scripts/slurm/submit.sh, on ndarray (results
#    bit-identical across processes), and waits for the report job;
# 4. runs the same sweep in one process (`single-process`) and compares the
#    two report.csv and stability.csv byte for byte.
# Prints the job count, the wall time of the Slurm run and the comparison;
# exits non-zero when they differ. Environment: SWEEP (another sweep file),
# CARGO_FEATURES (default wgpu,cli), DEVICE (default ndarray), DATA_DIR.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(realpath -m "${1:-$(mktemp -d /tmp/slurm-round-trip.XXXXXX)}")"
SWEEP="${SWEEP:-$repo/scripts/slurm/fashion_mnist_small.json}"
export DEVICE="${DEVICE:-ndarray}"
mkdir -p "$WORK"

"$repo/scripts/slurm/setup_single_node.sh"

( cd "$repo" && cargo build --features "${CARGO_FEATURES:-wgpu,cli}" --bin burn-lottery-sweep )
target="${CARGO_TARGET_DIR:-$repo/target}"
export SWEEP_BIN="$target/debug/burn-lottery-sweep"
cp "$SWEEP_BIN" "$WORK/burn-lottery-sweep"   # a copy later builds cannot replace
SWEEP_BIN="$WORK/burn-lottery-sweep"

jobs=$("$SWEEP_BIN" plan --sweep "$SWEEP" --format count)
echo "sweep: $jobs jobs in $("$SWEEP_BIN" plan --sweep "$SWEEP" --format waves | wc -l) waves"
"$SWEEP_BIN" plan --sweep "$SWEEP" > "$WORK/plan.txt"

start=$(date +%s)
"$repo/scripts/slurm/submit.sh" "$SWEEP" "$WORK/cluster" | tee "$WORK/submit.txt"
report_job=$(awk '/^report: job/ {print $3}' "$WORK/submit.txt")
while [ -n "$(squeue -h -j "$report_job" 2>/dev/null)" ]; do sleep 2; done
slurm_seconds=$(( $(date +%s) - start ))
cat "$WORK/cluster/slurm-logs/report.out"
if [ ! -s "$WORK/cluster/report/report.csv" ]; then
  echo "round trip: FAILED, no merged report (see $WORK/cluster/slurm-logs)" >&2
  exit 1
fi

start=$(date +%s)
"$SWEEP_BIN" single-process --sweep "$SWEEP" --root "$WORK/single" --device "$DEVICE" \
  ${DATA_DIR:+--data-dir "$DATA_DIR"} > "$WORK/single.log" 2>&1
single_seconds=$(( $(date +%s) - start ))

status=0
for file in report.csv stability.csv; do
  if cmp -s "$WORK/cluster/report/$file" "$WORK/single/report/$file"; then
    echo "compare $file: identical ($(( $(wc -l < "$WORK/cluster/report/$file") - 1 )) rows)"
  else
    echo "compare $file: DIFFERENT"
    diff "$WORK/cluster/report/$file" "$WORK/single/report/$file" || true
    status=1
  fi
done
echo "round trip: $jobs Slurm jobs in ${slurm_seconds} s (single process: ${single_seconds} s); work dir $WORK"
exit $status
