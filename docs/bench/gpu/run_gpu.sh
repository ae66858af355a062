#!/usr/bin/env bash
# Run on the lent GPU machine from the repository root, with .gl/ (Debian libvulkan1 and
# libglvnd .debs, downloaded as /work/.library/device/README.md says) and .carry/
# (the xz-compressed release binaries and the Fashion-MNIST .gz files) carried.
# GPU figures: wgpu training steps (crate) vs PyTorch CUDA, A B A B; then a ResNet-20 level on wgpu.
set -u
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
export XDG_RUNTIME_DIR=/tmp/xdg; mkdir -p $XDG_RUNTIME_DIR; chmod 700 $XDG_RUNTIME_DIR
B=/tmp/bin; mkdir -p $B; for x in .carry/bin/*.xz; do xz -dc $x > $B/$(basename $x .xz); chmod +x $B/$(basename $x .xz); done
probe() { timeout 60 $B/train_step_throughput --model lenet --optimizer adam --device wgpu --warmup 1 --steps 2 2>&1 | grep -E '^RESULT|adapter|rror' | head -3; }
if ! probe | grep -q RESULT; then
  for lib in /usr/local/nvidia/lib64/libGLX_nvidia.so.0 /lib/libGLX_nvidia.so.0; do
    printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.4.312"}}' $lib > /tmp/icd.json
    export VK_DRIVER_FILES=/tmp/icd.json
    echo "probe with $lib"; probe | grep -q RESULT && break
  done
fi
VK_LOADER_DEBUG=error probe
L=$OUT/gpu_steps.txt
{
echo "# $(date -u '+%Y-%m-%d %H:%M UTC') $(nvidia-smi -L) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "# torch $(python3 -c 'import torch; print(torch.__version__)')"
run_pair() {  # model optimizer mask steps: the crate on wgpu, then PyTorch on CUDA
  timeout 100 $B/train_step_throughput --model $1 --optimizer $2 --mask $3 --device wgpu --warmup 20 --steps $4 2>&1 | grep -E '^RESULT|rror'
  timeout 100 python3 benches/pytorch/train_step.py --model $1 --optimizer $2 --mask $3 --device cuda --warmup 20 --steps $4 2>&1 | grep -E '^RESULT|rror'
}
for pair in 1 2; do
  run_pair resnet20 sgd none 200
  run_pair resnet20 sgd 0.93 200
done
run_pair lenet adam none 1000
run_pair lenet adam 0.93 1000
} 2>&1 | tee $L
# One ResNet-20 level (62,560 iterations) on Fashion-MNIST through the IMP runner, wgpu.
( time timeout ${LEVEL_S:-200} $B/cifar10_resnet20 --dataset fashion-mnist --data-dir .carry/fmnist --device wgpu \
   --levels 1 --output /tmp/exp --checkpoint-every 5000 ) 2>&1 | tee $OUT/gpu_resnet20_level.txt | tail -40
# When each file (progress checkpoints every 5,000 iterations, level results) was written.
find /tmp/exp -type f -printf '%TT %s %P\n' | sort | tee -a $OUT/gpu_resnet20_level.txt
cat $(find /tmp/exp -name 'summary.json' | head -2) 2>/dev/null | tee -a $OUT/gpu_resnet20_level.txt
