#!/usr/bin/env bash
# Builds train_step_throughput with this crate's `cuda` feature (burn's CUDA backend, kernels
# compiled by NVRTC) on a machine that cannot run burn's LLVM download, from the repository
# root; prints the binary's path last. prepare.sh calls it with CUDA=1.
#
# Why it is needed (docs/bench/gpu/cuda_build_probe.txt, step 5): cubecl-cuda links cubecl-llvm
# whatever compiler it uses, and cubecl-llvm's build script downloads an LLVM bundle from
# GitHub, which no machine of this project can reach. With DOCS_RS=1 that build script (and
# tracel-llvm-bundler's) does nothing, so everything compiles, and the program's link is
# completed here from Debian's LLVM 22 (llvm-22-dev, static libraries): the objects it names,
# plus the two C++ shims cubecl-llvm's build script would have compiled
# (src/shared/cpp_shims/*.cpp) and llvm-sys's target wrappers (wrappers/target.c), compiled
# against LLVM 22's headers. The bundle is LLVM 23; the version differs, which is harmless
# only because the `cuda` feature selects NVRTC (cubecl-cuda's `cpp`), so no LLVM function
# runs. A normal build with network access needs none of this: `cargo build --features cuda`.
# Another target directory (burn's feature set differs): a full build of burn, 40-60 minutes
# cold on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
llvm=/usr/lib/llvm-22
if [ ! -x $llvm/bin/llvm-config ] || [ ! -e /usr/lib/x86_64-linux-gnu/libzstd.a ]; then
  $(command -v sudo) apt-get update -qq
  $(command -v sudo) apt-get install -y -qq llvm-22-dev libzstd-dev libxml2-dev zlib1g-dev
fi
version() { grep -A1 "^name = \"$1\"$" Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -1; }
registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ | head -1)
cubecl_llvm=$registry/cubecl-llvm-$(version cubecl-llvm)
llvm_sys=$registry/llvm-sys-$(version llvm-sys)
target=${CARGO_TARGET_DIR:-$HOME/.cache/burn-lottery/target}-cuda
export CARGO_TARGET_DIR=$target DOCS_RS=1
# Compiles the dependencies (and fetches their sources) before the shims are built from them;
# the first link fails for want of LLVM, which the second supplies.
cargo build --release --features cuda,cli --example train_step_throughput >/dev/null 2>&1 || true
shim=$target/llvm-shim; mkdir -p "$shim"
for f in "$cubecl_llvm"/src/shared/cpp_shims/*.cpp; do
  g++ -c -O2 -fPIC -w $($llvm/bin/llvm-config --cxxflags) "$f" -o "$shim/$(basename "$f" .cpp).o"
done
# llvm-sys's wrappers initialise every target LLVM was built with, which would link all of
# them (a 213 MB binary, 37 MB xz): its target lists, cut to the host's and NVPTX, come first.
mkdir -p "$shim/include/llvm/Config"
for def in $llvm/include/llvm/Config/*.def; do
  grep -Pv '^LLVM_[A-Z_]+\((?!(X86|NVPTX)\))' "$def" > "$shim/include/llvm/Config/$(basename "$def")"
done
gcc -c -O2 -fPIC -I"$shim/include" -I$llvm/include "$llvm_sys/wrappers/target.c" -o "$shim/target.o"
rm -f "$shim/libshim.a"; ar rcs "$shim/libshim.a" "$shim"/*.o
args=(-C link-arg=-Wl,--as-needed -C link-arg=-Wl,--start-group -C "link-arg=$shim/libshim.a")
# llvm-config names Polly's archives, which Debian ships in another package: only those present.
for lib in $($llvm/bin/llvm-config --link-static --libfiles all); do
  [ -e "$lib" ] && args+=(-C "link-arg=$lib")
done
args+=(-C link-arg=-Wl,--end-group)
# The system libraries statically where Debian has the archive, so the binary runs on a machine
# without them (the GPU machine); --as-needed drops those (libz3) that no linked object uses.
for lib in $($llvm/bin/llvm-config --link-static --system-libs); do
  name=${lib#-l}
  [ "$name" != "$lib" ] && [ -e "/usr/lib/x86_64-linux-gnu/lib$name.a" ] && lib=-l:lib$name.a
  args+=(-C "link-arg=$lib")
done
args+=(-C link-arg=-lstdc++)
# Cargo does not see the link arguments or the shim change: without its output it relinks.
rm -f "$target"/release/examples/train_step_throughput{,-*}
cargo rustc --release --features cuda,cli --example train_step_throughput -- "${args[@]}"
echo "$target/release/examples/train_step_throughput"
