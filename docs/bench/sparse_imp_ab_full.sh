#!/bin/bash
# The README's main job, dense then --sparse, A B A B; one thread per run, niced.
cd /work/imp_ab
out=/work/imp_ab/imp_ab_full.txt
echo "# $(date -u) $(uname -m) $(nproc) cores; binary built from $(git -C /work/main rev-parse --short HEAD)" > $out
for pair in 1 2; do
  for mode in dense sparse; do
    flag=""; [ $mode = sparse ] && flag="--sparse"
    dir=/work/imp_ab/exp_${mode}_$pair
    rm -rf $dir
    echo "## pair $pair $mode: fashion_mnist_lenet --iterations 8000 $flag --output $dir/exp --report $dir/report ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))" >> $out
    RAYON_NUM_THREADS=1 nice -n 10 /usr/bin/time -f "TIME wall %e s user %U s sys %S s maxrss %M KB" ./fml --iterations 8000 $flag --output $dir/exp --report $dir/report >> $out 2>&1
  done
done
echo "# done $(date -u)" >> $out
