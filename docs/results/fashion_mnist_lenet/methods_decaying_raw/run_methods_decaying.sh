#!/usr/bin/env bash
# The retraining modes and early-bird tickets compared under the
# decaying-rate LeNet recipe (TrainingRecipe::lenet_fashion_mnist_decaying
# shortened to 8,000 iterations: x0.1 at 4,000 and 6,000), as it ran for
# docs/results/fashion_mnist_lenet/methods_decaying.csv: the (seed, method)
# jobs in two lanes of one process each (flex backend, one thread per
# process, dev build: burn at opt-level 3), then the early-bird jobs, then
# the report and the level-to-level connectivity of the IMP experiments.
#
# Early-bird tickets take a mask every 400 iterations: with the paper's
# window of 5 distances, a mask per 1,000-iteration epoch (8 in a run) only
# fires if the distance of epoch 4 is below 0.1; in this recipe the masks
# move by more than 0.1 per epoch until the rate drops at 4,000, so it never
# fired (a first attempt, run inside the first lanes and stopped after
# level 1: logs/early_bird_epoch1000_*, early_bird/epoch1000_seed0_stopped).
set -eu
cargo build --features wgpu,cli --example fashion_mnist_methods --example fashion_mnist_connectivity
M=${CARGO_TARGET_DIR:-target}/debug/examples/fashion_mnist_methods
C=${CARGO_TARGET_DIR:-target}/debug/examples/fashion_mnist_connectivity
ROOT=${ROOT:-experiments/methods_decaying}
OUT=docs/results/fashion_mnist_lenet
mkdir -p "$ROOT/logs"
job() { # seed method [options]
  local seed=$1 method=$2; shift 2
  RAYON_NUM_THREADS=1 nice -n 19 "$M" --device flex --decaying --seed "$seed" --method "$method" \
      --root "$ROOT" --checkpoint-every 100000 "$@" > "$ROOT/logs/${method}_seed$seed.log" 2>&1
}
( job 0 lr_rewind; job 0 imp; job 1 finetune ) &
( job 0 finetune; job 1 lr_rewind; job 1 imp ) &
wait
job 0 early_bird --epoch-iterations 400 &
job 1 early_bird --epoch-iterations 400 &
wait
"$M" --report --root "$ROOT" --report-dir "$OUT" --report-name methods_decaying
for seed in 0 1; do
  RAYON_NUM_THREADS=1 "$C" --root "$ROOT" --decaying --seed $seed \
      --out "$OUT/methods_decaying_raw/connectivity_imp_seed$seed.csv"
done
