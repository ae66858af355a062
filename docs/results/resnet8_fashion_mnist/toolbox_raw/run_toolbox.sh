#!/usr/bin/env bash
# The sparsity toolbox on a small conv net: ResNet-8 (three basic blocks,
# widths 16-32-64) on Fashion-MNIST with the CIFAR ResNet recipe (SGD
# momentum 0.9, weight decay 1e-4, rate 0.1, x0.1 at 50% and 75%) shortened
# to 400 iterations at batch 32, k = 30, global pruning of 50% of the
# remaining weights per level over every convolution and the output layer
# (levels 1-3: 50%, 25%, 12.5% of the weights), seeds 0 and 1, as it ran for
# docs/results/resnet8_fashion_mnist/toolbox.csv: one lane of jobs per seed
# (flex backend, one thread per process, dev build: burn at opt-level 3),
# then the report.
#
# gmp, set, rigl and early_bird (a mask every 40 iterations) train levels 1
# and 3 on their own (--levels-only; the 2-core budget), with a mask update
# every 20 steps (14 updates in a run; the papers' 100 would give 2 in 400
# iterations: rows_update100/ holds SET and RigL run that way first);
# two_of_four and half are the first level with and without the 2:4
# pattern (the 1-channel stem left out of both: 9 weights per filter make no
# groups of 4); structured removes 50% of the inner channels of every block
# per level (L1 norm, Li et al.).
set -eu
cargo build --features wgpu,cli --example fashion_mnist_methods
# A copy of the binary, so that a rebuild while the jobs run changes nothing.
mkdir -p "${ROOT:=experiments/toolbox_resnet8}/bin"
cp "${CARGO_TARGET_DIR:-target}/debug/examples/fashion_mnist_methods" "$ROOT/bin/"
M=$ROOT/bin/fashion_mnist_methods
git rev-parse HEAD > "$ROOT/bin/commit"
OUT=docs/results/resnet8_fashion_mnist
mkdir -p "$ROOT/logs"
job() { # seed method [options]
  local seed=$1 method=$2; shift 2
  RAYON_NUM_THREADS=1 nice -n 19 "$M" --device flex --model resnet8 --iterations 400 \
      --batch-size 32 --rewind 30 --fraction 0.5 --levels 3 --seed "$seed" --method "$method" \
      --root "$ROOT" --checkpoint-every 100000 "$@" > "$ROOT/logs/${method}_seed$seed.log" 2>&1
}
lane() { # seed
  job "$1" imp
  job "$1" rigl --levels-only 1,3 --update-every 20
  job "$1" set --levels-only 1,3 --update-every 20
  job "$1" gmp --levels-only 1,3 --update-every 20
  job "$1" two_of_four
  job "$1" half
  job "$1" structured
  job "$1" early_bird --levels-only 1,3 --epoch-iterations 40
}
lane 0 &
lane 1 &
wait
"$M" --model resnet8 --report --root "$ROOT" --report-dir "$OUT" --report-name toolbox
