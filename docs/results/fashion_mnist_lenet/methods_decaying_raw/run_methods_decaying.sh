#!/usr/bin/env bash
# The retraining modes compared under the decaying-rate LeNet recipe
# (TrainingRecipe::lenet_fashion_mnist_decaying, shortened to --iterations:
# x0.1 at 50% and 75%), as it ran for
# docs/results/fashion_mnist_lenet/methods_decaying.csv: per seed, the methods
# in two lanes of one process each (flex backend, one thread per process).
# LEVELS and ITERATIONS shorten the protocol on a shared machine.
set -eu
LEVELS=${LEVELS:-12}
ITERATIONS=${ITERATIONS:-8000}
cargo build --features wgpu,cli --example fashion_mnist_methods
M=${CARGO_TARGET_DIR:-target}/debug/examples/fashion_mnist_methods
ROOT=${ROOT:-experiments/methods_decaying}
mkdir -p "$ROOT/logs"
for seed in ${SEEDS:-0 1}; do
  lane() { for m in "$@"; do RAYON_NUM_THREADS=1 nice -n 19 "$M" --device flex --decaying \
             --seed $seed --method $m --levels "$LEVELS" --iterations "$ITERATIONS" \
             --root "$ROOT" --checkpoint-every 100000 > "$ROOT/logs/${m}_seed$seed.log" 2>&1; done; }
  lane ${LANE1:-lr_rewind imp} &
  lane ${LANE2:-finetune} &
  wait
done
"$M" --report --root "$ROOT" --report-dir docs/results/fashion_mnist_lenet \
    --report-name methods_decaying
