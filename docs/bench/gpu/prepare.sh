#!/usr/bin/env bash
# Builds what docs/bench/gpu/run_gpu.sh runs on the lent GPU machine (which has no registry
# access), here, from the repository root:
#   .carry/bin/*.xz        release binaries: train_step_throughput and cifar10_resnet20 with
#                          burn's fusion (--features wgpu,cli), burn-lottery-sweep, and with
#                          UNFUSED=1 train_step_throughput_unfused (--features wgpu-unfused,cli:
#                          another burn feature set, so another target directory and a full
#                          build of burn)
#   .carry/fmnist/         Fashion-MNIST's IDX .gz files (Debian's dataset-fashion-mnist)
#   .carry/COMMIT          the commit the binaries were built from
#   .gl/*.deb              the Vulkan loader and libglvnd (see the device tool's README)
# Cold, each release build compiles all of burn (40-55 minutes on 2 cores). Without the unfused
# build (the default), run_gpu.sh measures fusion off with burn's run-time switch in the fused
# binary (BURN_FUSION_MAX_EXPLORATIONS=0); UNFUSED=1 adds the build without fusion as well.
set -euo pipefail
cd "$(dirname "$0")/../../.."
mkdir -p .carry/bin .carry/fmnist .gl
grep -qx '/.carry/' .git/info/exclude || echo /.carry/ >> .git/info/exclude
grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >> .git/info/exclude
target=${CARGO_TARGET_DIR:-$HOME/.cache/burn-lottery/target}
cargo build --release --features wgpu,cli --example train_step_throughput --example cifar10_resnet20 \
  --bin burn-lottery-sweep
for b in examples/train_step_throughput examples/cifar10_resnet20 burn-lottery-sweep; do
  xz -T2 -c "$target/release/$b" > ".carry/bin/$(basename $b).xz"
done
if [ "${UNFUSED:-0}" != 0 ]; then
  CARGO_TARGET_DIR="$target-unfused" cargo build --release --features wgpu-unfused,cli \
    --example train_step_throughput
  xz -T2 -c "$target-unfused/release/examples/train_step_throughput" \
    > .carry/bin/train_step_throughput_unfused.xz
fi
cp /usr/share/datasets/fashion-mnist/*.gz .carry/fmnist/ 2>/dev/null \
  || echo "prepare: no Fashion-MNIST under /usr/share/datasets (apt-get install dataset-fashion-mnist)"
git rev-parse --short HEAD > .carry/COMMIT
git diff --quiet HEAD || echo "dirty" >> .carry/COMMIT
if ! ls .gl/*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .carry .gl
