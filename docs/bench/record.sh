#!/usr/bin/env bash
# Re-records the raw outputs behind every figure of BENCHMARKS.md and of the
# README's performance and reliability sections. One function per area; each
# writes its files under docs/bench/ (or docs/reliability/) with the header of
# docs/bench/stamp.sh (date, machine, commit, build, load, exact command).
#
#   bash docs/bench/record.sh                  # every area of DEFAULT_AREAS
#   bash docs/bench/record.sh cpu_vs_pytorch mask_cost   # some areas
#   bash docs/bench/record.sh --list           # the areas and what they write
#
# Environment:
#   PROFILE   release (default): `cargo build --release`; or dev-opt: the dev
#             profile of Cargo.toml (dependencies, burn included, at
#             opt-level 3 with debug assertions) with this crate at opt-level 3
#             without debug assertions or overflow checks. dev-opt reuses a
#             test build's compiled burn instead of compiling it again, but
#             burn's debug assertions make its dense steps about twice as
#             slow (ResNet-20 on flex), so its figures are not comparable
#             with release ones: for trying the script, not for BENCHMARKS.md.
#   PYTHON    interpreter with torch (pip install torch); default
#             $HOME/.cache/burn-lottery/venv/bin/python, else python3.
#   QUICK=1   shorter: sparse_kernels 3 rounds instead of 5; no one-thread
#             sparse ResNet-20 run; no perf profiles (each header shows the
#             settings used).
#   CARGO_TARGET_DIR as for cargo.
#
# Wall times on a shared machine swing with its load (every header records
# `uptime`); each comparison runs its two sides alternately in one run
# (A B A B) and reports ratios, most of them of process CPU time.
set -uo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. docs/bench/stamp.sh

PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
FEATURES=wgpu,cli
PYTHON=${PYTHON:-$HOME/.cache/burn-lottery/venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
QUICK=${QUICK:-0}
export PYTHON PYTHONDONTWRITEBYTECODE=1

case $PROFILE in
    release)
        PROFILE_DIR=release
        CARGO_PROFILE_ARGS=(--release)
        BUILD_NOTE="release profile (cargo build --release --features $FEATURES)"
        ;;
    dev-opt)
        PROFILE_DIR=debug
        CARGO_PROFILE_ARGS=(
            --config 'profile.dev.package.burn-lottery.opt-level=3'
            --config 'profile.dev.package.burn-lottery.debug-assertions=false'
            --config 'profile.dev.package.burn-lottery.overflow-checks=false'
            --config 'profile.dev.package.burn-lottery.codegen-units=16'
        )
        BUILD_NOTE="dev profile (cargo build --features $FEATURES): dependencies incl. burn at opt-level 3 with debug assertions (Cargo.toml), this crate at opt-level 3 without debug assertions or overflow checks (PROFILE=dev-opt of docs/bench/record.sh); not the release profile"
        ;;
    *)
        echo "error: PROFILE must be release or dev-opt" >&2
        exit 2
        ;;
esac
export BUILD_NOTE
BIN=$TARGET/$PROFILE_DIR/examples

EXAMPLES=(train_step_throughput bench_memory sparse_kernels sparse_step
    fashion_mnist_lenet structured_speed train layer_launches)
BENCHES=(mask_ratio masked_training pruning data_pipeline)

build() {
    local args=()
    local name
    for name in "${EXAMPLES[@]}"; do args+=(--example "$name"); done
    for name in "${BENCHES[@]}"; do args+=(--bench "$name"); done
    cargo build "${CARGO_PROFILE_ARGS[@]}" --features "$FEATURES" "${args[@]}"
}

# The newest executable of a criterion bench target.
bench_bin() {
    find "$TARGET/$PROFILE_DIR/deps" -maxdepth 1 -type f -executable -name "$1-*" \
        -printf '%T@ %p\n' | sort -rn | head -1 | cut -d' ' -f2
}

torch_version() {
    "$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "not installed"
}

# The crate's step and PyTorch's, alternately, with --phases.
phases_vs_pytorch() {
    local run
    for run in 1 2 3; do
        echo "## run $run, load $(stamp_load)"
        env RAYON_NUM_THREADS=1 "$BIN/train_step_throughput" --model resnet20 --device flex \
            --warmup 1 --steps 3 --phases
        "$PYTHON" benches/pytorch/train_step.py --model resnet20 --threads 1 --warmup 1 \
            --steps 3 --phases 2>/dev/null
    done
}

# Training step against PyTorch on the CPU (benches/compare.sh), 1 and 2
# threads; where the dense ResNet-20 step's time goes, per phase and by function.
area_cpu_vs_pytorch() {
    local threads
    for threads in 1 2; do
        env THREADS=$threads PAIRS=3 CRATE_BIN="$BIN/train_step_throughput" \
            OUT=docs/bench/compare_threads$threads.txt bash benches/compare.sh > /dev/null
    done
    stamp_run docs/bench/resnet20_phases_vs_pytorch.txt \
        "torch $(torch_version); 3 alternating runs: RAYON_NUM_THREADS=1 train_step_throughput --model resnet20 --device flex --warmup 1 --steps 3 --phases, then benches/pytorch/train_step.py --model resnet20 --threads 1 --warmup 1 --steps 3 --phases" \
        -- phases_vs_pytorch
    [ "$QUICK" = 1 ] && return 0
    stamp_run docs/bench/resnet20_dense_profile.txt \
        "perf record -F 999 of 1 warm-up + 3 one-thread steps, then perf report --no-children --sort symbol (first 60 lines)" \
        -- bash -c "RAYON_NUM_THREADS=1 perf record -q -F 999 -o /tmp/record_dense.perf \
            '$BIN/train_step_throughput' --model resnet20 --device flex --warmup 1 --steps 3 \
            && perf report -i /tmp/record_dense.perf --no-children --sort symbol --stdio 2>/dev/null | head -60"
}

alloc_runs() {
    local run malloc
    for run in 1 2 3; do
        for malloc in --default-malloc ""; do
            echo "## ResNet-20, flex, 2 threads, run $run ${malloc:-(retain_freed_memory)}, load $(stamp_load)"
            env RAYON_NUM_THREADS=2 perf stat -e task-clock,page-faults \
                "$BIN/train_step_throughput" --model resnet20 --device flex --warmup 1 --steps 3 $malloc
        done
    done
    for run in 1 2; do
        for malloc in --default-malloc ""; do
            local device
            for device in flex ndarray; do
                echo "## LeNet-300-100, $device, run $run ${malloc:-(retain_freed_memory)}, load $(stamp_load)"
                env RAYON_NUM_THREADS=2 perf stat -e task-clock,page-faults \
                    "$BIN/train_step_throughput" --model lenet --device "$device" --warmup 20 --steps 300 $malloc
            done
        done
    done
}

# glibc malloc's defaults against alloc::retain_freed_memory().
area_alloc() {
    stamp_run docs/bench/alloc.txt \
        "alternating; perf stat -e task-clock,page-faults of train_step_throughput with and without --default-malloc" \
        -- alloc_runs
}

mask_phases() {
    local run mask
    for run in 1 2; do
        for mask in none 0.8 0.98; do
            echo "## ResNet-20, flex, mask $mask, run $run, load $(stamp_load)"
            "$BIN/train_step_throughput" --model resnet20 --device flex --mask "$mask" \
                --warmup 1 --steps 3 --phases
        done
        local device
        for device in ndarray flex; do
            echo "## LeNet-300-100, $device, mask 0.8, run $run, load $(stamp_load)"
            "$BIN/train_step_throughput" --model lenet --device "$device" --mask 0.8 \
                --warmup 20 --steps 300 --phases
        done
    done
}

# Cost of mask enforcement: masked / dense step alternating in one process
# (benches/mask_ratio.rs), and the two masking phases timed directly.
area_mask_cost() {
    stamp_run docs/bench/mask_ratio.txt "" -- "$(bench_bin mask_ratio)" --bench
    stamp_run docs/bench/mask_phases.txt \
        "train_step_throughput --phases (device synchronized after each phase), 2 runs per case, 2 threads" \
        -- mask_phases
}

# Criterion: the LeNet groups of masked_training (the ResNet-20 ones take
# about 5 minutes more: run the binary with --bench and no filter), pruning,
# data pipeline.
area_criterion() {
    stamp_run docs/bench/masked_training.txt \
        "criterion, LeNet-300-100 groups only (masked_step and cpu_backends)" \
        -- "$(bench_bin masked_training)" --bench lenet
    stamp_run docs/bench/pruning.txt "criterion" -- "$(bench_bin pruning)" --bench
    stamp_run docs/bench/data_pipeline.txt "criterion" \
        -- "$(bench_bin data_pipeline)" --bench --warm-up-time 1 --measurement-time 5
}

backend_rounds() {
    local round optimizer device
    for round in 1 2 3 4; do
        for optimizer in adam sgd; do
            for device in ndarray flex; do
                "$BIN/train_step_throughput" --model lenet --device "$device" \
                    --optimizer "$optimizer" --warmup 20 --steps 500
            done
        done
    done
}

flex_repeatability() {
    local threads
    for threads in 2 2 1; do
        echo "## RAYON_NUM_THREADS=$threads"
        env RAYON_NUM_THREADS=$threads "$BIN/train" --model lenet --device flex \
            --iterations 300 --log-every 100 --test-limit 2000
    done
}

# CPU backends: ndarray against flex.
area_backends() {
    stamp_run docs/bench/cpu_backends_lenet.txt \
        "4 rounds, each: adam ndarray, adam flex, sgd ndarray, sgd flex; 2 threads" \
        -- backend_rounds
    stamp_run docs/bench/ndarray_resnet20_step.txt "one timed step after one warm-up step" \
        -- "$BIN/train_step_throughput" --model resnet20 --device ndarray --warmup 1 --steps 1 --phases
    stamp_run docs/bench/flex_repeatability.txt \
        "three runs (2, 2 and 1 threads): do the printed losses and accuracy agree?" \
        -- flex_repeatability
}

wgpu_software() {
    local mask
    for mask in none 0.8; do
        timeout 300 "$BIN/train_step_throughput" --model lenet --optimizer adam --device wgpu \
            --mask "$mask" --warmup 10 --steps 100
    done
}

# wgpu on Mesa's software Vulkan driver (lavapipe): that it works, not GPU speed.
area_wgpu_software() {
    stamp_run docs/bench/wgpu_lavapipe.txt \
        "Mesa lavapipe (Vulkan on the CPU cores), no GPU: LeNet-300-100 no mask and 80%" \
        -- wgpu_software
    bash docs/bench/launches_lavapipe.sh  # kernel launches per step (stamps its own file)
    bash docs/bench/launch_phases_lavapipe.sh  # the same by phase (stamps its own file)
    stamp_run docs/bench/layer_launches_lavapipe.txt \
        "Mesa lavapipe: one layer's kernel launches, fusion on, then off" -- layer_launches
}

layer_launches() {
    echo "## fusion on"
    "$BIN/layer_launches" --kernels
    echo "## BURN_FUSION_MAX_EXPLORATIONS=0 (fusion off)"
    BURN_FUSION_MAX_EXPLORATIONS=0 "$BIN/layer_launches"
}

# Mask state and peak memory (MEMORY_NDARRAY=1 adds ndarray: 4 ResNet-20
# steps of about a minute each).
area_memory() {
    stamp_run docs/bench/memory_flex.txt "" -- "$BIN/bench_memory" --device flex
    if [ "${MEMORY_NDARRAY:-0}" = 1 ]; then
        stamp_run docs/bench/memory_ndarray.txt "" -- "$BIN/bench_memory" --device ndarray --steps 1
    fi
}

dense_phases_7pct() {
    local run
    for run in 1 2 3; do
        env RAYON_NUM_THREADS=1 "$BIN/train_step_throughput" --model lenet --optimizer adam \
            --device flex --mask 0.93 --warmup 20 --steps 300 --phases
    done
}

# Sparse LeNet-300-100: kernels per shape, whole steps and inference against
# the dense masked step, where the dense step's time goes at 7%.
area_sparse_lenet() {
    local rounds=5
    [ "$QUICK" = 1 ] && rounds=3
    stamp_run docs/bench/sparse_kernels.txt "" \
        -- "$BIN/sparse_kernels" --shapes all --rounds "$rounds"
    stamp_run docs/bench/sparse_step.txt "" \
        -- "$BIN/sparse_step" --rounds 5 --steps 60
    stamp_run docs/bench/sparse_step_1thread.txt "" \
        -- env RAYON_NUM_THREADS=1 "$BIN/sparse_step" --rounds 5 --steps 60 --densities 26,17,11,7,2
    stamp_run docs/bench/sparse_dense_phases_7pct.txt "3 runs" -- dense_phases_7pct
}

# Sparse ResNet-20: step and inference against burn's dense masked step
# (2 threads; 1 thread too unless QUICK=1), densities from 100% down, so that
# the crossover is measured rather than assumed; against PyTorch's dense step.
area_sparse_resnet() {
    stamp_run docs/bench/sparse_step_resnet20.txt "" \
        -- "$BIN/sparse_step" --model resnet20 --rounds 3 --steps 1 --densities 100,80,64,51,26,17,11,7,2
    if [ "$QUICK" != 1 ]; then
        stamp_run docs/bench/sparse_step_resnet20_1thread.txt "" \
            -- env RAYON_NUM_THREADS=1 "$BIN/sparse_step" --model resnet20 --rounds 3 --steps 1 \
            --densities 51,26,17,11,7,2
    fi
    local threads pairs
    for threads in 1 2; do
        pairs=3
        [ "$threads" = 2 ] && pairs=5
        env THREADS=$threads PAIRS=$pairs CASES="resnet20:flex:sgd:5" \
            CRATE_ARGS="--mask 0.93 --sparse" CRATE_BIN="$BIN/train_step_throughput" \
            OUT=docs/bench/sparse_resnet20_vs_pytorch_threads$threads.txt \
            bash benches/compare.sh > /dev/null
    done
    [ "$QUICK" = 1 ] && return 0
    stamp_run docs/bench/sparse_resnet20_profile.txt \
        "perf record -F 999 of 2 warm-up + 10 sparse steps at 7% density, 2 threads, then perf report --no-children --sort symbol (first 60 lines)" \
        -- bash -c "perf record -q -F 999 -o /tmp/record_sparse.perf '$BIN/train_step_throughput' \
            --model resnet20 --mask 0.93 --sparse --warmup 2 --steps 10 \
            && perf report -i /tmp/record_sparse.perf --no-children --sort symbol --stdio 2>/dev/null | head -60"
}

imp_ab() {
    local work pair mode flag
    work=$(mktemp -d /tmp/imp_ab.XXXX)
    for pair in 1 2; do
        for mode in dense sparse; do
            flag=""
            [ "$mode" = sparse ] && flag=--sparse
            echo "## pair $pair $mode: fashion_mnist_lenet --iterations 2000 --rewind 0 --control-seeds 1 --checkpoint-every 0 $flag (load $(stamp_load))"
            /usr/bin/time -f "TIME wall %e s user %U s sys %S s maxrss %M KB" \
                "$BIN/fashion_mnist_lenet" --iterations 2000 --rewind 0 --control-seeds 1 \
                --checkpoint-every 0 $flag --output "$work/$mode$pair" --report "$work/report_$mode$pair"
            cp "$work/report_$mode$pair/report.csv" "$work/report_$mode$pair.csv" 2>/dev/null
        done
    done
    echo "## cmp of the reports (each pair reproduces its own)"
    cmp "$work/report_dense1.csv" "$work/report_dense2.csv" && echo "dense reports identical"
    cmp "$work/report_sparse1.csv" "$work/report_sparse2.csv" && echo "sparse reports identical"
    echo "## dense report"; cat "$work/report_dense1.csv"
    echo "## sparse report"; cat "$work/report_sparse1.csv"
    rm -rf "$work"
}

# The README's main job, shortened (13 levels of 2,000 iterations, one rewind,
# no controls), dense then --sparse, A B A B.
area_sparse_imp() {
    stamp_run docs/bench/sparse_imp_ab.txt "A B A B, 2 threads per run" -- imp_ab
}

# The README's main job in full, A B A B, one thread per run (about 45
# minutes on 2 idle cores; not in the default set).
area_sparse_imp_full() {
    stamp_run docs/bench/sparse_imp_ab_full.txt "" \
        -- env BIN="$BIN/fashion_mnist_lenet" OUT=/dev/stdout bash docs/bench/sparse_imp_ab_full.sh
}

# Structured pruning: exported smaller networks against the dense ones.
area_structured() {
    stamp_run docs/bench/structured_speed.txt "1 thread, then 2 threads" \
        -- bash -c "RAYON_NUM_THREADS=1 '$BIN/structured_speed' --rounds 7 --calls 3; \
            RAYON_NUM_THREADS=2 '$BIN/structured_speed' --rounds 7 --calls 3"
}

# The README's reliability figures: power loss at every file operation with
# sampled crash states, and the kill harness at CI size (test profile).
area_reliability() {
    local BUILD_NOTE="test profile (cargo test --features $FEATURES: [profile.test] of Cargo.toml, dependencies at opt-level 3)"
    cargo test --features "$FEATURES" --no-run --test integration --test kill_resume
    stamp_run docs/reliability/power_loss.txt "test profile; the sampled test's defaults: POWER_LOSS_STATES_PER_CUT=2, POWER_LOSS_SEED=25" \
        -- cargo test --features "$FEATURES" --test integration -- power_loss:: --nocapture
    stamp_run docs/reliability/kill_resume_ci.txt "test profile; the CI size (12 random kills per model)" \
        -- cargo test --features "$FEATURES" --test kill_resume
}

# Long mode of the kill harness (100 random kills per model; not in the
# default set).
area_reliability_long() {
    local BUILD_NOTE="test profile (cargo test --features $FEATURES: [profile.test] of Cargo.toml, dependencies at opt-level 3)"
    stamp_run docs/reliability/kill_resume_long.txt "test profile" \
        -- env KILL_RESUME_KILLS=100 cargo test --features "$FEATURES" --test kill_resume
}

# The README's results (hours of training each; not in the default set).
# Each writes into docs/results/<name>/ as the README's commands do.
area_results() {
    local ex=$BIN
    stamp_run docs/results/fashion_mnist_lenet/record.log "main job, ndarray, seeds 0 and 1" \
        -- "$ex/fashion_mnist_lenet" --device ndarray --iterations 8000 --seeds 0,1 \
        --control-seeds 0 --rewind 0,500 --levels 12 --report docs/results/fashion_mnist_lenet
    stamp_run docs/results/fashion_mnist_lenet/methods_raw/record.log "" \
        -- env CARGO_TARGET_DIR="$TARGET" bash docs/results/fashion_mnist_lenet/methods_raw/run_methods.sh
    stamp_run docs/results/fashion_mnist_lenet/methods_decaying_raw/record.log "" \
        -- env CARGO_TARGET_DIR="$TARGET" bash docs/results/fashion_mnist_lenet/methods_decaying_raw/run_methods_decaying.sh
    # The sparsity toolbox (IMP, GMP, SET, RigL, 2:4, structured, early-bird).
    stamp_run docs/results/fashion_mnist_lenet/toolbox_raw/record.log "" \
        -- env CARGO_TARGET_DIR="$TARGET" bash docs/results/fashion_mnist_lenet/toolbox_raw/run_toolbox.sh
    stamp_run docs/results/resnet8_fashion_mnist/toolbox_raw/record.log "" \
        -- env CARGO_TARGET_DIR="$TARGET" bash docs/results/resnet8_fashion_mnist/toolbox_raw/run_toolbox.sh
    stamp_run docs/results/fashion_mnist_lenet/toolbox_raw/rigl_set_sgd/record.log "" \
        -- env CARGO_TARGET_DIR="$TARGET" bash docs/results/fashion_mnist_lenet/toolbox_raw/run_rigl_set_sgd.sh
    stamp_run docs/results/resnet8_fashion_mnist/toolbox_raw/longer/record.log "" \
        -- env CARGO_TARGET_DIR="$TARGET" bash docs/results/resnet8_fashion_mnist/toolbox_raw/run_longer.sh
    cargo build "${CARGO_PROFILE_ARGS[@]}" --features "$FEATURES" --example stability \
        --example cifar10_resnet20 --example text_fortunes --example diabetes_regression
    stamp_run docs/results/fashion_mnist_lenet/stability.log "" \
        -- "$ex/stability" --device ndarray --output experiments --iterations 8000 \
        --levels 12 --rewind 0,500 --analyze 0,3,6,9,12 --report docs/results/fashion_mnist_lenet
    stamp_run docs/results/resnet20_fashion_mnist/record.log "" \
        -- "$ex/cifar10_resnet20" --dataset fashion-mnist --iterations 1000 --batch-size 32 \
        --levels 3 --rewind 500 --checkpoint-every 250 --report docs/results/resnet20_fashion_mnist
    stamp_run docs/results/text_fortunes/record.log "" \
        -- "$ex/text_fortunes" --report docs/results/text_fortunes
    stamp_run docs/results/diabetes_regression/record.log "" \
        -- "$ex/diabetes_regression" --report docs/results/diabetes_regression
}

DEFAULT_AREAS=(cpu_vs_pytorch alloc mask_cost criterion backends wgpu_software memory
    sparse_lenet sparse_resnet sparse_imp structured reliability)

list_areas() {
    cat <<'EOF'
area              writes (under docs/)
cpu_vs_pytorch    bench/compare_threads1.txt, compare_threads2.txt, resnet20_phases_vs_pytorch.txt, resnet20_dense_profile.txt
alloc             bench/alloc.txt
mask_cost         bench/mask_ratio.txt, mask_phases.txt
criterion         bench/masked_training.txt (LeNet groups), pruning.txt, data_pipeline.txt
backends          bench/cpu_backends_lenet.txt, ndarray_resnet20_step.txt, flex_repeatability.txt
wgpu_software     bench/wgpu_lavapipe.txt, launches_lavapipe.txt, launch_phases_lavapipe.txt, layer_launches_lavapipe.txt
memory            bench/memory_flex.txt (memory_ndarray.txt with MEMORY_NDARRAY=1)
sparse_lenet      bench/sparse_kernels.txt, sparse_step.txt, sparse_step_1thread.txt, sparse_dense_phases_7pct.txt
sparse_resnet     bench/sparse_step_resnet20.txt, sparse_step_resnet20_1thread.txt, sparse_resnet20_vs_pytorch_threads{1,2}.txt, sparse_resnet20_profile.txt
sparse_imp        bench/sparse_imp_ab.txt
structured        bench/structured_speed.txt
reliability       reliability/power_loss.txt, kill_resume_ci.txt
not in the default set (long):
sparse_imp_full   bench/sparse_imp_ab_full.txt (about 45 min)
reliability_long  reliability/kill_resume_long.txt
results           results/*/ (hours)
not re-runnable here: bench/gpu/ (needs an NVIDIA GPU: bench/gpu/run_gpu.sh),
reliability/power_loss_bugs.txt (each section needs a durability fix taken out of the code)
EOF
}

main() {
    if [ "${1:-}" = --list ]; then
        list_areas
        return 0
    fi
    local areas=("$@")
    [ ${#areas[@]} -eq 0 ] && areas=("${DEFAULT_AREAS[@]}")
    local area
    for area in "${areas[@]}"; do
        declare -F "area_$area" > /dev/null || { echo "error: unknown area $area (--list)" >&2; return 2; }
    done
    build || return 1
    for area in "${areas[@]}"; do
        echo "== $area ($(date -u +%H:%M:%S))" >&2
        "area_$area"
    done
}

main "$@"
