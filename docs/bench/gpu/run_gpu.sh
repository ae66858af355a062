#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md in one run of at most ~8 minutes, on the lent GPU machine,
# from the repository root, with .gl/ and .carry/ carried (docs/bench/gpu/prepare.sh builds
# them here). Writes under $OUT (default ./gpu-out):
#   gpu_steps.txt          one training step, one process: the crate with fusion and without
#                          (the build without burn's fusion when prepare.sh made it with
#                          UNFUSED=1, else the fused build with fusion switched off at run time,
#                          BURN_FUSION_MAX_EXPLORATIONS=0: rows bin=...+fusion_off),
#                          reading the loss every step and every 100 steps, and PyTorch eager,
#                          same model, batch, optimizer and mask (ResNet-20 dense A B A B;
#                          ResNet-20 at 93% sparsity and LeNet-300-100 once), and each
#                          ResNet-20 row's projected level time
#   gpu_cuda.txt           (when prepare.sh built it with CUDA=1) the same step on burn's CUDA
#                          backend, kernels by NVRTC: ResNet-20 dense reading the loss every 100
#                          steps and every step, fusion off, 93% masked, LeNet, PyTorch again
#                          beside them, and the ResNet-20 step's launches
#   gpu_processes.txt      K = 2, 4, 8 concurrent processes of the crate (fused, loss every
#                          100 steps) and of PyTorch: each process's RESULT line and the
#                          aggregate images/s (K = 1: gpu_steps.txt), with nvidia-smi's
#                          utilisation sampled meanwhile
#   gpu_launches.txt       kernel launches per step (fused, fusion off at run time, and the
#                          unfused build when there is one; ResNet-20 with no mask and 93%
#                          masked, LeNet), counted by the crate's LaunchCounter, and the masked
#                          ResNet-20 step's launches phase by phase
#   gpu_resnet20_level.txt one ResNet-20 level (62,560 iterations) on Fashion-MNIST (its first
#                          10,000 training images, as prepare.sh packs them) through the IMP
#                          runner for LEVEL_S seconds, and its projected wall time
# Each file starts with the date, the GPU, the commit and the command. Budget (estimated from the
# H100 step times of h100_train_steps.txt, not yet timed on a GPU): 18 single-process runs of
# 10-15 s, 6 launch counts of a few seconds (9 with the unfused build), 6 runs of K processes
# of 15-30 s, a 60 s level: about 8 minutes; the CUDA rows add about 2-3 (7 runs, and NVRTC
# compiles every kernel in each process). SECTIONS picks what runs (default "steps cuda launches
# processes level"): to stay inside one call's 10 minutes (and its 64 MiB), run
# SECTIONS="steps launches processes level" in one call carrying .gl and .carry, and
# SECTIONS=cuda in the next carrying .carry-cuda (prepare.sh with CUDA=1 packs it).
# Sections run in the order of what they measure for the issue (steps, cuda, processes, level,
# launches), whatever the order in SECTIONS, and each ends with a line saying how long it took.
# BUDGET_S (default 540 on a GPU, for a call with timeout_s=600) guards the call's limit: a
# section whose estimate (EST_steps and so on, seconds) would end past it is skipped with a line
# saying so (also in skipped.txt), so a run slower than estimated loses the least important
# figures, never rows already written.
# LAVAPIPE=1 runs the same script on Mesa's software Vulkan driver with tiny step counts and
# PyTorch on the CPU (a check of the script, not a benchmark); BIN=dir takes the binaries
# from there instead of .carry/bin.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
SECTIONS=${SECTIONS:-steps cuda launches processes level}
want() { case " $SECTIONS " in *" $1 "*) true ;; *) false ;; esac; }
LAVAPIPE=${LAVAPIPE:-0}
if [ "$LAVAPIPE" = 1 ]; then  # LeNet stands in for ResNet-20 (whose kernels take minutes to compile there)
  BIG=lenet; S_BIG=20; S_LENET=20; S_K=20; EVERY=10; WARMUP=2; KS="2"; TORCH_DEVICE=cpu; LEVEL_S=${LEVEL_S:-30}
  BUDGET_S=${BUDGET_S:-3600}
else
  BIG=resnet20; S_BIG=200; S_LENET=1000; S_K=100; EVERY=100; WARMUP=20; KS="2 4 8"; TORCH_DEVICE=cuda; LEVEL_S=${LEVEL_S:-60}
  BUDGET_S=${BUDGET_S:-540}
fi
# Estimated seconds per section on a GPU (header); the level's is its LEVEL_S and the time to save.
EST_steps=${EST_steps:-240}; EST_cuda=${EST_cuda:-180}; EST_processes=${EST_processes:-150}
EST_level=${EST_level:-$((LEVEL_S + 20))}; EST_launches=${EST_launches:-60}
section() {  # name: true when it is asked for and its estimate ends inside BUDGET_S
  want "$1" || return 1
  local est; est=$(eval echo "\${EST_$1}")
  if [ $((SECONDS + est)) -gt "$BUDGET_S" ]; then
    echo "# SKIPPED section $1: ${SECONDS}s gone, about ${est}s needed, BUDGET_S=$BUDGET_S" | tee -a "$OUT/skipped.txt"
    return 1
  fi
  START=$SECONDS
}
took() { echo "# section took $((SECONDS - START))s (${SECONDS}s since the script started)"; }
if ls .gl/*.deb >/dev/null 2>&1; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
export XDG_RUNTIME_DIR=/tmp/xdg; mkdir -p $XDG_RUNTIME_DIR; chmod 700 $XDG_RUNTIME_DIR
if [ -n "${BIN:-}" ]; then
  B=$BIN
else
  B=/tmp/bin; mkdir -p $B
  for x in .carry/bin/*.xz .carry-cuda/bin/*.xz; do
    [ -e "$x" ] && xz -dc "$x" > "$B/$(basename "$x" .xz)" && chmod +x "$B/$(basename "$x" .xz)"
  done
fi
if [ -n "${BIN:-}" ]; then  # binaries built in this checkout: its commit
  COMMIT="$(git rev-parse --short HEAD 2>/dev/null) (binaries from BIN=$BIN)"
  git diff --quiet HEAD -- . ':!docs' 2>/dev/null || COMMIT="$COMMIT dirty"
else  # carried binaries: the commit prepare.sh built them from
  for f in .carry/COMMIT .carry-cuda/COMMIT; do [ -f $f ] && COMMIT=$(tr '\n' ' ' < $f) && break; done
fi
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
GPU=$(nvidia-smi -L 2>/dev/null | head -1); GPU=${GPU:-"no nvidia-smi (LAVAPIPE=$LAVAPIPE)"}
stamp() {  # file command...
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | $GPU | $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "# commit $COMMIT | torch $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo absent)"
  echo "# command: LAVAPIPE=$LAVAPIPE bash docs/bench/gpu/run_gpu.sh ($1)"
}
probe() { timeout 120 $B/train_step_throughput --model lenet --device wgpu --warmup 1 --steps 2 2>&1 | grep -E '^RESULT|adapter|rror' | head -3; }
uses_wgpu() { want steps || want launches || want processes || want level; }
if uses_wgpu && [ "$LAVAPIPE" != 1 ] && ! probe | grep -q RESULT; then
  for lib in /usr/local/nvidia/lib64/libGLX_nvidia.so.0 /lib/libGLX_nvidia.so.0; do
    printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.4.312"}}' $lib > /tmp/icd.json
    export VK_DRIVER_FILES=/tmp/icd.json
    echo "probe with $lib"; probe | grep -q RESULT && break
  done
fi
uses_wgpu && probe

crate() {  # binary model optimizer mask steps sync_every (CRATE_ENV: environment, DEVICE: device)
  timeout 120 env ${CRATE_ENV:-} "$B/$1" --model "$2" --optimizer "$3" --mask "$4" --device "${DEVICE:-wgpu}" --warmup $WARMUP \
    --steps "$5" --sync-every "$6" 2>&1 | grep -E '^RESULT|rror|Unable' | sed "s/^RESULT/RESULT bin=$1/"
}
torch_step() {  # model optimizer mask steps sync_every
  timeout 120 python3 benches/pytorch/train_step.py --model "$1" --optimizer "$2" --mask "$3" \
    --device $TORCH_DEVICE --warmup $WARMUP --steps "$4" --sync-every "$5" 2>&1 | grep -E '^RESULT|rror'
}
unfused() {  # fusion off: the unfused build if there is one, else burn's run-time switch
  if [ -x "$B/train_step_throughput_unfused" ]; then crate train_step_throughput_unfused "$@"
  else CRATE_ENV=BURN_FUSION_MAX_EXPLORATIONS=0 crate train_step_throughput "$@" \
    | sed 's/bin=train_step_throughput/bin=train_step_throughput+fusion_off/'; fi
}
launches() {  # label binary model optimizer mask (CRATE_ENV: environment for the binary)
  [ -x "$B/$2" ] || { echo "SKIPPED $2: not built"; return; }
  timeout 120 env ${CRATE_ENV:-} "$B/$2" --model "$3" --optimizer "$4" --mask "$5" --device "${DEVICE:-wgpu}" \
    --warmup $WARMUP --steps 5 --sync-every 5 --count-launches 2>&1 \
    | grep -E '^(LAUNCHES|KERNEL)|rror|Unable' | sed "s/^LAUNCHES/LAUNCHES bin=$1/"
}

if section steps; then {
stamp "single-process steps"
both_reads() {  # model optimizer mask steps: each side reading the loss every step, then every $EVERY
  crate train_step_throughput "$@" 1; crate train_step_throughput "$@" $EVERY
  unfused "$@" 1; unfused "$@" $EVERY
  torch_step "$@" 1; torch_step "$@" $EVERY
}
deferred() {  # model optimizer mask steps: the crate reading every $EVERY steps, PyTorch every step
  crate train_step_throughput "$@" $EVERY; unfused "$@" $EVERY; torch_step "$@" 1
}
for pair in 1 2; do both_reads $BIG sgd none $S_BIG; done   # A B A B
deferred $BIG sgd 0.93 $S_BIG
crate train_step_throughput lenet adam none $S_LENET 1; deferred lenet adam none $S_LENET
sleep 1  # tee has written the rows above
echo "# projected wall time of one ResNet-20 level: 62,560 steps x each row's median step"
awk '/^RESULT/ && /model=resnet20/ { for (i = 1; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] }
  printf "PROJECTED %s %s mask=%s sync_every=%s level_minutes=%.1f\n", v["bin"] ? "bin=" v["bin"] : "", v["impl"], v["mask"], v["sync_every"], 62560 * v["median_s"] / 60; delete v }' \
  "$OUT/gpu_steps.txt.part"
took
} 2>&1 | tee "$OUT/gpu_steps.txt.part"
mv "$OUT/gpu_steps.txt.part" "$OUT/gpu_steps.txt"
fi

if want cuda && [ ! -x "$B/train_step_throughput_cuda" ]; then
  echo "# SKIPPED section cuda: no train_step_throughput_cuda (prepare.sh with CUDA=1 packs it)" | tee -a "$OUT/skipped.txt"
elif section cuda; then {
stamp "burn's CUDA backend (kernels by NVRTC), one process"
# cubecl loads libcuda and libnvrtc at run time: the driver's directory and the toolkit's.
nvrtc=$(ldconfig -p | awk '/libnvrtc\.so/ { print $NF; exit }')
# Without a toolkit, PyTorch's wheel of NVRTC (site-packages/nvidia/.../libnvrtc.so.13) will do.
sites=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
[ -n "$nvrtc" ] || nvrtc=$(find /usr/local/cuda*/ $sites /usr/lib /opt -name 'libnvrtc.so*' 2>/dev/null | head -1)
echo "# libnvrtc: ${nvrtc:-not found}"
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${nvrtc:+$(dirname "$nvrtc"):}${LD_LIBRARY_PATH:-}
cuda() { DEVICE=cuda crate train_step_throughput_cuda "$@"; }
cuda $BIG sgd none $S_BIG $EVERY; cuda $BIG sgd none $S_BIG 1
CRATE_ENV=BURN_FUSION_MAX_EXPLORATIONS=0 cuda $BIG sgd none $S_BIG $EVERY | sed 's/bin=train_step_throughput_cuda/&+fusion_off/'
cuda $BIG sgd 0.93 $S_BIG $EVERY; cuda lenet adam none $S_LENET $EVERY
torch_step $BIG sgd none $S_BIG 1; torch_step lenet adam none $S_LENET 1  # the reference, in this file too
DEVICE=cuda launches train_step_throughput_cuda train_step_throughput_cuda $BIG sgd none
took
} 2>&1 | tee "$OUT/gpu_cuda.txt"; fi

if section processes; then {
stamp "K concurrent processes"
aggregate() {  # label K command...: K copies at once, then the sum of their images/s
  local label=$1 k=$2; shift 2
  local dir; dir=$(mktemp -d)
  local pids=()
  for i in $(seq 1 "$k"); do "$@" > "$dir/$i" 2>&1 & pids+=($!); done
  wait "${pids[@]}"  # not nvidia-smi's sampler
  cat "$dir"/*
  awk -v l="$label" -v k="$k" '/^RESULT/ { for (i = 1; i <= NF; i++) if ($i ~ /^images_per_s=/) { split($i, a, "="); s += a[2]; n++ } }
    END { printf "AGGREGATE impl=%s model='$BIG' processes=%d reported=%d images_per_s=%.1f\n", l, k, n, s }' "$dir"/*
}
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 1000 > "$OUT/smi.csv" &
  SMI=$!
fi
for k in $KS; do  # K = 1 is the single-process rows of gpu_steps.txt
  aggregate crate-fused "$k" crate train_step_throughput $BIG sgd none $S_K $EVERY
  aggregate pytorch "$k" torch_step $BIG sgd none $S_K 1
done
[ -n "${SMI:-}" ] && kill $SMI && echo "# nvidia-smi samples (timestamp, utilization.gpu, memory.used):" && cat "$OUT/smi.csv"
took
} 2>&1 | tee "$OUT/gpu_processes.txt"; fi

if section level; then {
stamp "one ResNet-20 level for ${LEVEL_S}s"
( time timeout "$LEVEL_S" $B/cifar10_resnet20 --dataset fashion-mnist --data-dir .carry/fmnist --device wgpu \
   --levels 1 --output /tmp/exp --checkpoint-every 5000 ) 2>&1 | tail -20
# When each file (progress checkpoints every 5,000 iterations, level results) was written:
# the checkpoints' spacing gives the level's projected wall time.
find /tmp/exp -type f -printf '%TT %s %P\n' | sort
took
} 2>&1 | tee "$OUT/gpu_resnet20_level.txt"; fi

if section launches; then {
stamp "kernel launches per step"
for case in "$BIG sgd none" "$BIG sgd 0.93" "lenet adam none"; do
  launches train_step_throughput train_step_throughput $case
  CRATE_ENV=BURN_FUSION_MAX_EXPLORATIONS=0 launches train_step_throughput+fusion_off train_step_throughput $case
  launches train_step_throughput_unfused train_step_throughput_unfused $case
done
# Each phase's launches (forward, backward, masks, optimizer: BENCHMARKS.md's by-phase table).
timeout 120 "$B/train_step_throughput" --model $BIG --optimizer sgd --mask 0.93 --device wgpu \
  --warmup $WARMUP --steps 5 --phases --count-launches 2>&1 | grep -E '^PHASES|rror'
took
} 2>&1 | tee "$OUT/gpu_launches.txt"; fi
