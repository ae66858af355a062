#!/usr/bin/env bash
# Kernel launches per training step on wgpu through Mesa's lavapipe (no GPU needed), counted
# by burn_lottery::launches::LaunchCounter (`train_step_throughput --count-launches`):
# LeNet-300-100 (Adam, batch 60) and ResNet-20 (SGD, batch 8: a batch of 128 takes minutes per
# step there), each with no mask and 93% masked, with burn's fusion on; then fusion switched off
# at run time (BURN_FUSION_MAX_EXPLORATIONS=0: each operation its own kernel, as in a build
# without fusion) for LeNet (both masks) and unmasked ResNet-20; last, the masked LeNet step with
# a wider fusion search (burn.toml's [fusion.beam_search] max_blocks: 8 and 32; burn's default 5).
# Writes docs/bench/launches_lavapipe.txt (7 minutes on 2 cores at d85dc26). Lavapipe's autotune
# picks its own convolution and matmul kernels by timing them, so a GPU's counts differ in
# those kernels; docs/bench/gpu/run_gpu.sh counts the same on the lent GPU.
#
# With the argument `phases` (what docs/bench/launch_phases_lavapipe.sh runs): where the launches
# go, phase by phase (`--phases --count-launches`: the device is synchronized after the forward
# with the loss, the backward, the gradients' mask, the optimizer step and the weights' mask, and
# each phase's launches per step are in its PHASES line; synchronizing flushes burn's fusion queue
# at each phase's end, so nothing is fused across phases), both models, both masks, fusion on and
# off: writes docs/bench/launch_phases_lavapipe.txt (10 minutes on 2 cores at 863c4ee).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-steps}
case $mode in
  steps) out=docs/bench/launches_lavapipe.txt; script=docs/bench/launches_lavapipe.sh ;;
  phases) out=docs/bench/launch_phases_lavapipe.txt; script=docs/bench/launch_phases_lavapipe.sh ;;
  *) echo "launches_lavapipe.sh: no mode $mode (steps or phases)" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/burn-lottery/target}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cargo build --features wgpu,cli --example train_step_throughput 2>&1 | tail -1
bin=$CARGO_TARGET_DIR/debug/examples/train_step_throughput
steps() {
  run lenet adam 60 none 10 10
  run lenet adam 60 0.93 10 10
  run resnet20 sgd 8 none 3 3
  run resnet20 sgd 8 0.93 3 3
  FUSION_OFF=1 run lenet adam 60 none 10 10
  FUSION_OFF=1 run lenet adam 60 0.93 10 10
  FUSION_OFF=1 run resnet20 sgd 8 none 3 3
  for blocks in 8 32; do  # burn reads burn.toml from the working directory
    dir=$(mktemp -d); printf '[fusion.beam_search]\nmax_blocks = %s\n' "$blocks" > "$dir/burn.toml"
    echo "## burn.toml: [fusion.beam_search] max_blocks = $blocks"
    (cd "$dir" && run lenet adam 60 0.93 10 10)
  done
}
phases() {
  local off
  for off in 0 1; do
    FUSION_OFF=$off run resnet20 sgd 8 none 3 3 --phases
    FUSION_OFF=$off run resnet20 sgd 8 0.93 3 3 --phases
    FUSION_OFF=$off run lenet adam 60 none 10 10 --phases
    FUSION_OFF=$off run lenet adam 60 0.93 10 10 --phases
  done
}
{
  commit=$(git rev-parse --short HEAD); git diff --quiet HEAD -- . ':!docs' || commit="$commit-dirty"
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) | Mesa lavapipe (software Vulkan), --features wgpu (burn's fusion on unless a row says BURN_FUSION_MAX_EXPLORATIONS=0)"
  echo "# commit $commit | command: bash $script (dev-profile binary)"
  run() {  # model optimizer batch mask warmup steps [--phases] (FUSION_OFF=1: fusion switched off)
    local env=; [ "${FUSION_OFF:-0}" = 1 ] && env=BURN_FUSION_MAX_EXPLORATIONS=0
    local reads="--sync-every $6" keep='^(RESULT|LAUNCHES|KERNEL)|rror'
    [ "${7:-}" = --phases ] && reads=--phases && keep='^(LAUNCHES|PHASES)|rror'
    echo "## ${env:+$env }--model $1 --optimizer $2 --batch-size $3 --mask $4 --warmup $5 --steps $6 $reads --count-launches"
    env $env "$bin" --model "$1" --optimizer "$2" --batch-size "$3" --mask "$4" --device wgpu \
      --warmup "$5" --steps "$6" $reads --count-launches 2>&1 | grep -E "$keep"
  }
  $mode
} 2>&1 | tee "$out"
