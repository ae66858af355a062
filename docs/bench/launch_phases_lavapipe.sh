#!/usr/bin/env bash
# Where a training step's kernel launches go, phase by phase, on wgpu through Mesa's lavapipe
# (no GPU needed): `train_step_throughput --phases --count-launches` synchronizes the device after
# the forward (with the loss), the backward, the gradients' mask, the optimizer step and the
# weights' mask, and prints each phase's launches per step in its PHASES line. Synchronizing
# flushes burn's fusion queue at each phase's end, so nothing is fused across phases and the
# phases add up to a little more than the unsynchronized step of launches_lavapipe.txt.
# ResNet-20 (SGD, batch 8) and LeNet-300-100 (Adam, batch 60), no mask and 93% masked, with
# burn's fusion on, then switched off at run time (BURN_FUSION_MAX_EXPLORATIONS=0).
# Writes docs/bench/launch_phases_lavapipe.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/bench/launch_phases_lavapipe.txt
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/burn-lottery/target}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cargo build --features wgpu,cli --example train_step_throughput 2>&1 | tail -1
bin=$CARGO_TARGET_DIR/debug/examples/train_step_throughput
{
  commit=$(git rev-parse --short HEAD); git diff --quiet HEAD -- . ':!docs' || commit="$commit-dirty"
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) | Mesa lavapipe (software Vulkan), --features wgpu"
  echo "# commit $commit | command: bash docs/bench/launch_phases_lavapipe.sh (dev-profile binary)"
  run() {  # model optimizer batch mask warmup steps (FUSION_OFF=1: burn's fusion switched off)
    local env=; [ "${FUSION_OFF:-0}" = 1 ] && env=BURN_FUSION_MAX_EXPLORATIONS=0
    echo "## ${env:+$env }--model $1 --optimizer $2 --batch-size $3 --mask $4 --warmup $5 --steps $6 --phases --count-launches"
    env $env "$bin" --model "$1" --optimizer "$2" --batch-size "$3" --mask "$4" --device wgpu \
      --warmup "$5" --steps "$6" --phases --count-launches 2>&1 | grep -E '^(LAUNCHES|PHASES)|rror'
  }
  for off in 0 1; do
    FUSION_OFF=$off run resnet20 sgd 8 none 3 3
    FUSION_OFF=$off run resnet20 sgd 8 0.93 3 3
    FUSION_OFF=$off run lenet adam 60 none 10 10
    FUSION_OFF=$off run lenet adam 60 0.93 10 10
  done
} 2>&1 | tee "$out"
