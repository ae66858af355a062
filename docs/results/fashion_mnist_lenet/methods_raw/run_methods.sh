#!/usr/bin/env bash
# The methods comparison (issue 16) on the lent machine's CPU cores: one process per
# (seed, method), flex backend, one thread each; stops at $LIMIT seconds and returns
# every finished level's summary.json (the rows of methods.csv).
set -u
B=/tmp/bin; mkdir -p $B; xz -dc .carry/bin/fashion_mnist_methods.xz > $B/m; chmod +x $B/m
echo "# $(date -u '+%Y-%m-%d %H:%M UTC') $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
R=/tmp/methods; mkdir -p $R/logs
pids=()
for seed in 0 1; do
  for m in imp lr_rewind finetune oneshot snip grasp synflow magnitude_init random_init; do
    RAYON_NUM_THREADS=1 timeout ${LIMIT:-220} $B/m --device flex --seed $seed --method $m --root $R \
      --data-dir .carry/fmnist --checkpoint-every 100000 > $R/logs/${m}_seed$seed.log 2>&1 &
    pids+=($!)
  done
done
# Every 15 s, keep what has finished so far under $OUT (a timeout still returns it).
( while sleep 15; do (cd $R && tar czf $OUT/methods_summaries.tgz logs rows $(find . -name summary.json -o -name config.json) 2>/dev/null); done ) &
saver=$!
wait "${pids[@]}"
kill $saver
cd $R && tar czf $OUT/methods_summaries.tgz logs rows $(find . -name summary.json -o -name config.json) 2>/dev/null
find $R -name summary.json | wc -l
tail -n 2 $R/logs/*.log | tail -60
