#!/usr/bin/env bash
# Builds what docs/bench/gpu/run_gpu.sh runs on the lent GPU machine (which has no registry
# access), here, from the repository root:
#   .carry/bin/*.xz        stripped binaries (release; PROFILE=dev: see below): train_step_throughput
#                          and cifar10_resnet20 with burn's fusion (--features wgpu,cli), and with
#                          UNFUSED=1 train_step_throughput_unfused (--features wgpu-unfused,cli:
#                          another burn feature set, so another target directory and a full
#                          build of burn)
#   .carry-cuda/bin/*.xz   with CUDA=1, train_step_throughput_cuda (--features cuda,cli, release:
#                          burn's CUDA backend; build_cuda.sh says how it links here), and its
#                          .carry-cuda/COMMIT: 26 MB, which with .carry would pass the 64 MiB a
#                          run carries, so the CUDA rows are a second call carrying .carry-cuda
#                          (run_gpu.sh's header)
#   .carry/fmnist/         Fashion-MNIST's IDX .gz files (Debian's dataset-fashion-mnist), the
#                          training set cut to its first 10,000 images: the level run times
#                          iterations, and the whole set would not fit the 64 MiB a run carries
#   .carry/COMMIT          the commit the binaries were built from
#   .gl/*.deb              the Vulkan loader and libglvnd (see the device tool's README)
# Cold, each release build compiles all of burn (40-55 minutes on 2 cores). PROFILE=dev packs
# the dev-profile binaries instead (dependencies at opt-level 3, the crate at 1, debug assertions
# on): after the test command has built them, no build at all; .carry/COMMIT, so every figure's
# # header, then says "(dev profile)". Without the unfused build (the default), run_gpu.sh
# measures fusion off with burn's run-time switch in the fused binary
# (BURN_FUSION_MAX_EXPLORATIONS=0); UNFUSED=1 adds the build without fusion as well.
# Last, it checks that the working tree and what a run carries fit in the device's 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/../../.."
mkdir -p .carry/bin .carry/fmnist .gl
for d in /.carry/ /.carry-cuda/ /.gl/; do grep -qx $d .git/info/exclude || echo $d >> .git/info/exclude; done
target=${CARGO_TARGET_DIR:-$HOME/.cache/burn-lottery/target}
profile=${PROFILE:-release}
case $profile in
  release) flag=--release; dir=release ;;
  dev) flag=; dir=debug ;;
  *) echo "prepare: PROFILE is release or dev, not $profile" >&2; exit 2 ;;
esac
pack() {  # binary name [directory]: stripped and compressed into .carry/bin (or directory/bin)
  strip -o /tmp/prepare-strip "$1" && xz -T2 -c /tmp/prepare-strip > "${3:-.carry}/bin/$2.xz"
  rm -f /tmp/prepare-strip
}
cargo build $flag --features wgpu,cli --example train_step_throughput --example cifar10_resnet20
for b in train_step_throughput cifar10_resnet20; do pack "$target/$dir/examples/$b" $b; done
if [ "${UNFUSED:-0}" != 0 ]; then
  CARGO_TARGET_DIR="$target-unfused" cargo build --release --features wgpu-unfused,cli \
    --example train_step_throughput
  pack "$target-unfused/release/examples/train_step_throughput" train_step_throughput_unfused
fi
if [ "${CUDA:-0}" != 0 ]; then  # burn's CUDA backend, linked with Debian's LLVM (build_cuda.sh)
  mkdir -p .carry-cuda/bin
  pack "$(bash docs/bench/gpu/build_cuda.sh | tail -1)" train_step_throughput_cuda .carry-cuda
fi
fmnist=/usr/share/datasets/fashion-mnist
if [ -f $fmnist/train-images-idx3-ubyte.gz ]; then
  cp $fmnist/t10k-*.gz .carry/fmnist/
  python3 - $fmnist .carry/fmnist 10000 <<'PY'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name, size in [("train-images-idx3-ubyte", 28 * 28), ("train-labels-idx1-ubyte", 1)]:
    data = gzip.open(f"{src}/{name}.gz").read()
    rank = data[3]
    start = 4 + 4 * rank
    dims = list(struct.unpack(f">{rank}I", data[4:start]))
    dims[0] = n
    kept = data[:4] + struct.pack(f">{rank}I", *dims) + data[start:start + n * size]
    with gzip.open(f"{dst}/{name}.gz", "wb") as out:
        out.write(kept)
PY
else
  echo "prepare: no Fashion-MNIST under $fmnist (apt-get install dataset-fashion-mnist)"
fi
commit() {  # directory profile: the commit its binaries were built from
  { git rev-parse --short HEAD; git diff --quiet HEAD || echo dirty; echo "($2 profile)"; } > "$1/COMMIT"
}
commit .carry "$profile"
[ "${CUDA:-0}" = 0 ] || commit .carry-cuda release
if ! ls .gl/*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .carry .gl
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb | tail -1 | cut -f1)
carried=$(du -sb .carry .gl | awk '{ s += $1 } END { print s }')
fits() {  # label carried-bytes
  echo "prepare: working tree $tree bytes + $1 $2 bytes (a run takes at most 67108864)"
  [ $((tree + $2)) -le 67108864 ] || { echo "prepare: $1 is too large for one run" >&2; exit 1; }
}
fits ".carry .gl" "$carried"
[ "${CUDA:-0}" = 0 ] || fits .carry-cuda "$(du -sb .carry-cuda | cut -f1)"
