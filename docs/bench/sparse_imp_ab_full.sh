#!/bin/bash
# The README's main job, dense then --sparse, A B A B; one thread per run,
# niced; CPU and wall time from /usr/bin/time. Produced
# docs/bench/sparse_imp_ab_full.txt (there, run from /work/imp_ab with a copy
# of the release binary built from main at 0e4f16b's parent, a1a6fa3).
#
#   cargo build --release --features wgpu,cli --example fashion_mnist_lenet
#   bash docs/bench/sparse_imp_ab_full.sh [work dir, default /tmp/imp_ab]
# BIN names another binary; OUT another output file (docs/bench/record.sh
# sparse_imp_full runs it with OUT=/dev/stdout under its stamped header).
set -u
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/examples/fashion_mnist_lenet}
work=${1:-/tmp/imp_ab}
mkdir -p "$work"
out=${OUT:-$work/imp_ab_full.txt}
echo "# $(date -u) $(uname -m) $(nproc) cores" >> "$out"
for pair in 1 2; do
  for mode in dense sparse; do
    flag=""; [ $mode = sparse ] && flag="--sparse"
    dir=$work/exp_${mode}_$pair
    rm -rf "$dir"
    echo "## pair $pair $mode: fashion_mnist_lenet --iterations 8000 $flag --output $dir/exp --report $dir/report ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))" >> "$out"
    RAYON_NUM_THREADS=1 nice -n 10 /usr/bin/time -f "TIME wall %e s user %U s sys %S s maxrss %M KB" \
      "$bin" --iterations 8000 $flag --output "$dir/exp" --report "$dir/report" >> "$out" 2>&1
  done
done
echo "# done $(date -u)" >> "$out"
