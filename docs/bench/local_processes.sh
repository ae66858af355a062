#!/usr/bin/env bash
# Aggregate throughput of a sweep's trainings run K processes at a time on this machine
# (`burn-lottery-sweep local --jobs K`), for each K in $KS, each on a fresh experiment root,
# and the reports compared with K = 1's. Writes docs/bench/local_processes.txt.
#   bash docs/bench/local_processes.sh [SWEEP.json]   (default scripts/slurm/fashion_mnist_small.json)
# DEVICE (default flex), KS (default "1 2 4"), DATA_DIR (default: the loader's search).
set -euo pipefail
cd "$(dirname "$0")/../.."
sweep=${1:-scripts/slurm/fashion_mnist_small.json}
device=${DEVICE:-flex}
ks=${KS:-1 2 4}
out=docs/bench/local_processes.txt
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/burn-lottery/target}
cargo build --features wgpu,cli --bin burn-lottery-sweep 2>&1 | tail -1
bin=$CARGO_TARGET_DIR/debug/burn-lottery-sweep
work=$(mktemp -d)
jobs=$($bin plan --sweep "$sweep" --format count)
{
  commit=$(git rev-parse --short HEAD); git diff --quiet HEAD -- . ':!docs' || commit="$commit-dirty"
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) | $(free -g | awk '/Mem:/ {print $2}') GiB | load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# commit $commit | command: DEVICE=$device KS=\"$ks\" bash docs/bench/local_processes.sh $sweep"
  echo "# $jobs jobs ($sweep) on $device; dev-profile binary (dependencies at opt-level 3)"
  for k in $ks; do
    root=$work/k$k
    start=$(date +%s.%N)
    $bin local --sweep "$sweep" --root "$root" --device "$device" --jobs "$k" \
      ${DATA_DIR:+--data-dir "$DATA_DIR"} > "$work/k$k.log" 2>&1
    seconds=$(echo "$(date +%s.%N) - $start" | bc)
    # The jobs alone (`local: N jobs in S s`), then the report (its stability pairs) as well.
    training=$(sed -n 's/^local: [0-9]* jobs in \([0-9.]*\) s.*/\1/p' "$work/k$k.log")
    printf 'RESULT processes=%s jobs=%s jobs_seconds=%.1f jobs_per_min=%.2f with_report_seconds=%.1f load1=%s\n' \
      "$k" "$jobs" "$training" "$(echo "$jobs * 60 / $training" | bc -l)" "$seconds" "$(cut -d' ' -f1 /proc/loadavg)"
    if [ "$k" != "$(echo $ks | cut -d' ' -f1)" ]; then
      first=$work/k$(echo $ks | cut -d' ' -f1)
      for f in report.csv stability.csv; do
        if cmp -s "$first/report/$f" "$root/report/$f"; then echo "  $f: identical to the first K's"
        else echo "  $f: DIFFERS from the first K's"; fi
      done
    fi
  done
} | tee "$out"
rm -rf "$work"
