#!/usr/bin/env bash
# RigL against SET under SGD: the toolbox's LeNet-300-100 protocol (decaying
# rate x0.1 at 4,000 and 6,000 of 8,000 iterations, seeds 0 and 1) with SGD
# (momentum 0.9, no weight decay, base rate 0.05) instead of Adam, levels 0
# and 10 (10.83% of the weights) only: does RigL >= SET, which does not hold
# under Adam in toolbox.csv, hold under the optimizer of Evci et al.? One
# lane per seed (flex, one thread per process, dev build), then the report
# (rigl_set_sgd/report.txt).
set -eu
cargo build --features wgpu,cli --example fashion_mnist_methods
mkdir -p "${ROOT:=experiments/rigl_set_sgd}/bin"
cp "${CARGO_TARGET_DIR:-target}/debug/examples/fashion_mnist_methods" "$ROOT/bin/"
M=$ROOT/bin/fashion_mnist_methods
git rev-parse HEAD > "$ROOT/bin/commit"
OUT=docs/results/fashion_mnist_lenet/toolbox_raw/rigl_set_sgd
mkdir -p "$ROOT/logs" "$OUT"
job() { # seed method
  RAYON_NUM_THREADS=1 nice -n 19 "$M" --device flex --decaying --sgd 0.05 --seed "$1" \
      --method "$2" --levels-only 10 --root "$ROOT" --checkpoint-every 100000 \
      > "$ROOT/logs/${2}_seed$1.log" 2>&1
}
( job 0 rigl; job 0 set ) &
( job 1 rigl; job 1 set ) &
wait
"$M" --report --root "$ROOT" --report-dir "$OUT" --report-name rigl_set_sgd > "$OUT/report.txt"
cp "$ROOT"/logs/*.log "$ROOT"/rows/*.csv "$ROOT/bin/commit" "$OUT/"
