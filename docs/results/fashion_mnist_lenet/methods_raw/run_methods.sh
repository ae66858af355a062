#!/usr/bin/env bash
# The full methods comparison as it ran for docs/results/fashion_mnist_lenet/methods.csv
# (2026-11-26, this project's 2-core build machine): per seed, the 9 methods in two
# lanes of one process each (flex backend, one thread per process).
set -eu
cargo build --release --features wgpu --example fashion_mnist_methods
M=${CARGO_TARGET_DIR:-target}/release/examples/fashion_mnist_methods
ROOT=${ROOT:-experiments/methods}
mkdir -p "$ROOT/logs"
for seed in 0 1; do
  lane() { for m in "$@"; do RAYON_NUM_THREADS=1 nice -n 19 "$M" --device flex --seed $seed --method $m \
             --root "$ROOT" --checkpoint-every 100000 > "$ROOT/logs/${m}_seed$seed.log" 2>&1; done; }
  lane lr_rewind imp oneshot synflow random_init &
  lane finetune grasp snip magnitude_init &
  wait
done
"$M" --report --root "$ROOT" --report-dir docs/results/fashion_mnist_lenet
