#!/usr/bin/env bash
# Copies the estimates of the last criterion run (every
# $CARGO_TARGET_DIR/criterion/<group>/<bench>/new/estimates.json) into
# docs/bench/criterion/<group>/<bench>/estimates.json, the raw output that
# BENCHMARKS.md's criterion figures point to.
#
#   cargo bench --features wgpu --bench masked_training && benches/save_criterion.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="${CARGO_TARGET_DIR:-target}/criterion"
[ -d "$SRC" ] || { echo "error: no criterion results under $SRC" >&2; exit 1; }
find "$SRC" -path '*/new/estimates.json' | while read -r file; do
    relative=${file#"$SRC"/}
    target="docs/bench/criterion/${relative%/new/estimates.json}/estimates.json"
    mkdir -p "$(dirname "$target")"
    cp "$file" "$target"
    echo "$target"
done
