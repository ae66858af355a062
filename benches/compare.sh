#!/usr/bin/env bash
# Side by side with PyTorch on the CPU: runs the crate's training-step
# measurement (examples/train_step_throughput.rs) and PyTorch's
# (benches/pytorch/train_step.py) alternately, A B A B, for the same model,
# batch, optimizer and thread count, and prints each pair's throughput ratio
# (crate images/s over PyTorch images/s; above 1 means the crate is faster)
# and CPU-time ratio (PyTorch's CPU seconds per step over the crate's; above 1
# means the crate needs less CPU time; on a shared machine this is steadier
# than wall time, but it counts OpenMP's spin-waiting against PyTorch when
# THREADS > 1).
#
#   benches/compare.sh                      # every case below, 3 pairs each
#   PAIRS=5 CASES="resnet20:flex:sgd" benches/compare.sh
#
# Environment:
#   PYTHON    interpreter with torch (default: $HOME/.cache/burn-lottery/venv/bin/python, else python3)
#   THREADS   threads on both sides (default 2: RAYON_NUM_THREADS and torch.set_num_threads)
#   PAIRS     A B pairs per case (default 3)
#   CASES     space-separated model:device:optimizer[:steps] (default: all below)
#   OUT       raw-output file (default docs/bench/compare_threads$THREADS.txt)
#   CRATE_ARGS more arguments of the crate's side, e.g. "--mask 0.93 --sparse"
#             (the host sparse path at 7% density against PyTorch's dense step)
#   CRATE_BIN  the crate's train_step_throughput binary (default: built here
#             with `cargo build --release --features wgpu,cli`)
#   CARGO_TARGET_DIR as for cargo.
set -euo pipefail

cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1
THREADS=${THREADS:-2}
PAIRS=${PAIRS:-3}
CASES=${CASES:-"resnet20:flex:sgd:5 lenet:ndarray:adam:300 lenet:flex:adam:300 lenet:ndarray:sgd:300 lenet:flex:sgd:300"}
PYTHON=${PYTHON:-$HOME/.cache/burn-lottery/venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
"$PYTHON" -c 'import torch' 2>/dev/null || { echo "error: $PYTHON cannot import torch (pip install torch)" >&2; exit 1; }

# Everything printed below also goes to a raw-output file beside BENCHMARKS.md.
OUT=${OUT:-docs/bench/compare_threads$THREADS.txt}
mkdir -p "$(dirname "$OUT")"
exec > >(tee "$OUT")

if [ -z "${CRATE_BIN:-}" ]; then
    cargo build --quiet --release --features wgpu,cli --example train_step_throughput
    CRATE_BIN="${CARGO_TARGET_DIR:-target}/release/examples/train_step_throughput"
    BUILD_NOTE=${BUILD_NOTE:-"release profile (cargo build --release --features wgpu,cli)"}
fi

. docs/bench/stamp.sh
stamp_header "env THREADS=$THREADS PAIRS=$PAIRS CASES=\"$CASES\" CRATE_ARGS=\"${CRATE_ARGS:-}\" benches/compare.sh (crate: $CRATE_BIN)"
echo "# threads=$THREADS pairs=$PAIRS torch=$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
START=$(date +%s)

field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

for case in $CASES; do
    IFS=: read -r model device optimizer steps <<<"$case"
    steps=${steps:-5}
    warmup=$(( steps >= 50 ? 20 : 2 ))
    ratios=()
    for pair in $(seq 1 "$PAIRS"); do
        a=$(RAYON_NUM_THREADS=$THREADS "$CRATE_BIN" --model "$model" --device "$device" \
            --optimizer "$optimizer" --warmup "$warmup" --steps "$steps" ${CRATE_ARGS:-} | grep '^RESULT')
        echo "$a"
        b=$("$PYTHON" benches/pytorch/train_step.py --model "$model" --optimizer "$optimizer" \
            --threads "$THREADS" --warmup "$warmup" --steps "$steps" 2>/dev/null | grep '^RESULT')
        echo "$b"
        ratio=$(awk -v a="$(field "$a" images_per_s)" -v b="$(field "$b" images_per_s)" 'BEGIN { printf "%.3f", a / b }')
        cpu_ratio=$(awk -v a="$(field "$a" cpu_s)" -v b="$(field "$b" cpu_s)" 'BEGIN { if (a > 0) printf "%.3f", b / a; else print "?" }')
        ratios+=("$ratio")
        echo "PAIR case=$case pair=$pair ratio=$ratio cpu_ratio=$cpu_ratio"
    done
    sorted=$(printf '%s\n' "${ratios[@]}" | sort -g | tr '\n' ' ')
    echo "SUMMARY case=$case ratios=[ ${sorted}] (crate/pytorch images/s, median $(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'))"
done
echo "# finished: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), wall $(( $(date +%s) - START )) s; load at end: $(stamp_load)"
