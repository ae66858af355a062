#!/usr/bin/env bash
# The sparsity toolbox on the decaying-rate LeNet-300-100 protocol
# (TrainingRecipe::lenet_fashion_mnist_decaying shortened to 8,000
# iterations: x0.1 at 4,000 and 6,000; k = 500; seeds 0 and 1), as it ran for
# docs/results/fashion_mnist_lenet/toolbox.csv: one lane of jobs per seed
# (flex backend, one thread per process, dev build: burn at opt-level 3),
# then the report.
#
# gmp, set and rigl train levels 0, 3, 7 and 10 only (--levels-only: their
# levels do not build on each other), at IMP's counts of those levels
# (51.3%, 21.1%, 10.8%); two_of_four and half are one level of layer-wise
# pruning to 50% with and without the 2:4 pattern; structured prunes 20% of
# the hidden neurons per level for 7 levels; imp runs levels 0-10 and
# early_bird levels 0, 3, 7, 10 (a mask every 400 iterations, as in
# methods_decaying.csv).
set -eu
cargo build --features wgpu,cli --example fashion_mnist_methods
# A copy of the binary, so that a rebuild while the jobs run changes nothing.
mkdir -p "${ROOT:=experiments/toolbox}/bin"
cp "${CARGO_TARGET_DIR:-target}/debug/examples/fashion_mnist_methods" "$ROOT/bin/"
M=$ROOT/bin/fashion_mnist_methods
git rev-parse HEAD > "$ROOT/bin/commit"
OUT=docs/results/fashion_mnist_lenet
mkdir -p "$ROOT/logs"
job() { # seed method [options]
  local seed=$1 method=$2; shift 2
  RAYON_NUM_THREADS=1 nice -n 19 "$M" --device flex --decaying --seed "$seed" --method "$method" \
      --root "$ROOT" --checkpoint-every 100000 "$@" > "$ROOT/logs/${method}_seed$seed.log" 2>&1
}
lane() { # seed
  job "$1" imp --levels 10
  job "$1" rigl --levels-only 3,7,10
  job "$1" set --levels-only 3,7,10
  job "$1" gmp --levels-only 3,7,10
  job "$1" two_of_four
  job "$1" half
  job "$1" structured --levels 7
  job "$1" early_bird --levels-only 3,7,10 --epoch-iterations 400
}
lane 0 &
lane 1 &
wait
"$M" --report --root "$ROOT" --report-dir "$OUT" --report-name toolbox
