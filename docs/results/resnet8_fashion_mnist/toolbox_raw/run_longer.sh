#!/usr/bin/env bash
# The two orderings that did not hold at 400 iterations (GMP close to IMP,
# RigL >= SET), again with 2.5 times the training: ResNet-8 on Fashion-MNIST,
# the same recipe shortened to 1,000 iterations at batch 32, k = 75, 50%
# pruned per level; IMP levels 0-3, GMP, SET and RigL levels 0, 1 and 3 with
# a mask update every 50 steps (14 updates, as at 400 with 20); seeds 0 and
# 1, one lane per seed (flex, one thread per process, dev build), then the
# report (longer/report.txt).
set -eu
cargo build --features wgpu,cli --example fashion_mnist_methods
mkdir -p "${ROOT:=experiments/toolbox_resnet8_longer}/bin"
cp "${CARGO_TARGET_DIR:-target}/debug/examples/fashion_mnist_methods" "$ROOT/bin/"
M=$ROOT/bin/fashion_mnist_methods
git rev-parse HEAD > "$ROOT/bin/commit"
OUT=docs/results/resnet8_fashion_mnist/toolbox_raw/longer
mkdir -p "$ROOT/logs" "$OUT"
job() { # seed method [options]
  local seed=$1 method=$2; shift 2
  RAYON_NUM_THREADS=1 nice -n 19 "$M" --device flex --model resnet8 --iterations 1000 \
      --batch-size 32 --rewind 75 --fraction 0.5 --levels 3 --seed "$seed" --method "$method" \
      --root "$ROOT" --checkpoint-every 100000 "$@" > "$ROOT/logs/${method}_seed$seed.log" 2>&1
}
lane() { # seed
  job "$1" imp
  job "$1" rigl --levels-only 1,3 --update-every 50
  job "$1" set --levels-only 1,3 --update-every 50
  job "$1" gmp --levels-only 1,3 --update-every 50
}
lane 0 &
lane 1 &
wait
"$M" --model resnet8 --report --root "$ROOT" --report-dir "$OUT" --report-name longer > "$OUT/report.txt"
cp "$ROOT"/logs/*.log "$ROOT"/rows/*.csv "$ROOT/bin/commit" "$OUT/"
