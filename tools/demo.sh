#!/usr/bin/env bash
# The README's first command: on a fresh Debian bookworm machine, installs what is needed, builds
# the neurobolt tool and runs the whole product on a simulated study: simulate -> prepare ->
# train (the ridge baseline and a small NeuroBOLT on CPU) -> infer on the held-back subject ->
# evaluate against the baseline and the noise ceiling -> per-ROI table and an HTML report.
#
# usage: tools/demo.sh [OUT_DIR]     (default: demo-out/ in the repository)
# environment: NEUROBOLT_DEMO_EPOCHS (default 8), NEUROBOLT_DEMO_MINUTES (minutes per run, default 8),
#              NEUROBOLT_DEMO_BIN (use this neurobolt binary: no install, no build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/demo-out}"
epochs="${NEUROBOLT_DEMO_EPOCHS:-8}"
minutes="${NEUROBOLT_DEMO_MINUTES:-8}"
cd "$root"
start=$(date +%s)

if [ -n "${NEUROBOLT_DEMO_BIN:-}" ]; then
  nb=$NEUROBOLT_DEMO_BIN  # an already built neurobolt (the CLI test that runs the demo twice)
else
  bash tools/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNEUROBOLT_BUILD_TESTS=OFF
  cmake --build build -j"$(nproc)" --target neurobolt_cli
  nb=build/tools/neurobolt
fi
mkdir -p "$out"
echo "demo: built in $(($(date +%s) - start)) s"

echo "== 1. simulate a simultaneous EEG-fMRI study: 4 subjects x 2 runs x $minutes min, 32-channel MR cap, 16 ROIs"
$nb simulate --out "$out/sim" --subjects 4 --runs 2 --minutes "$minutes" --sfreq 250 --tr 2 --seed 1 --force -q
$nb info "$out/sim" | head -8

echo "== 2. prepare: 16 s EEG windows paired with fMRI volumes; subject 03 validates, subject 04 is held back"
$nb prepare "$out/sim" -o "$out/data.h5" --split cross-subject --val-subjects 03 --test-subjects 04 --force -q
$nb info "$out/data.h5" | head -6

echo "== 3. train the ridge baseline (band power x ridge regression) and NeuroBOLT (neurobolt-tiny, $epochs epochs)"
$nb train "$out/data.h5" -o "$out/ridge" --arch ridge --force
$nb train "$out/data.h5" -o "$out/neurobolt" --config neurobolt-tiny --epochs "$epochs" --warmup-epochs 1 \
  --seed 1 --force

echo "== 4. infer: synthesise fMRI for the held-back subject 04 from its EEG alone"
$nb infer "$out/neurobolt/best.h5" "$out/sim" --subjects 04 -o "$out/pred-neurobolt" --force
$nb infer "$out/ridge/best.h5" "$out/sim" --subjects 04 -o "$out/pred-ridge" --force -q

echo "== 5. evaluate against the measured fMRI of subject 04, beside the baseline and the noise ceiling"
$nb eval "$out/pred-neurobolt" --targets "$out/sim" --split test --baseline "$out/pred-ridge" \
  --json "$out/evaluation.json" --report "$out/report.html" --title "neurobolt demo: held-back subject 04" --force

echo "demo: done in $(($(date +%s) - start)) s; open $out/report.html in a browser"
