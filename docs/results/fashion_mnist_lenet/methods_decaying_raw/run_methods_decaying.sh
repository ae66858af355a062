#!/usr/bin/env bash
# The retraining modes (and early-bird tickets) compared under the
# decaying-rate LeNet recipe (TrainingRecipe::lenet_fashion_mnist_decaying
# shortened to 8,000 iterations: x0.1 at 4,000 and 6,000), as it ran for
# docs/results/fashion_mnist_lenet/methods_decaying.csv: the (seed, method)
# jobs in two lanes of one process each (flex backend, one thread per
# process, dev build: burn at opt-level 3).
set -eu
cargo build --features wgpu,cli --example fashion_mnist_methods
M=${CARGO_TARGET_DIR:-target}/debug/examples/fashion_mnist_methods
ROOT=${ROOT:-experiments/methods_decaying}
mkdir -p "$ROOT/logs"
job() { # seed method
  RAYON_NUM_THREADS=1 nice -n 19 "$M" --device flex --decaying --seed "$1" --method "$2" \
      --root "$ROOT" --checkpoint-every 100000 > "$ROOT/logs/$2_seed$1.log" 2>&1
}
( job 0 lr_rewind; job 0 imp; job 1 finetune; job 0 early_bird ) &
( job 0 finetune; job 1 lr_rewind; job 1 imp; job 1 early_bird ) &
wait
"$M" --report --root "$ROOT" --report-dir docs/results/fashion_mnist_lenet \
    --report-name methods_decaying
