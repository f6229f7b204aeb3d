#!/usr/bin/env bash
# The README's first command: on a fresh Debian bookworm machine, installs what is needed,
# builds the neurobolt tool and runs the main job end to end.
#
# usage: tools/demo.sh [OUT_DIR]     (default: demo-out/ in the repository)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/demo-out}"
cd "$root"

bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNEUROBOLT_BUILD_TESTS=OFF
cmake --build build -j"$(nproc)" --target neurobolt_cli
nb=build/tools/neurobolt
mkdir -p "$out"

echo "== 1. simulate a simultaneous EEG-fMRI study: 4 subjects x 2 runs x 8 min, 32-channel MR cap, 16 ROIs"
$nb simulate --out "$out/sim" --subjects 4 --runs 2 --minutes 8 --sfreq 250 --tr 2 --seed 1 --force
cat "$out/sim/derivatives/neurobolt-sim-truth/summary.tsv" | head -5

echo "== 2. read it back and pair 16 s EEG windows with fMRI volumes (cross-subject split)"
$nb bench --read "$out/sim/sub-01/eeg/sub-01_task-rest_run-1_eeg.edf" --iterations 3
$nb prepare "$out/sim" -o "$out/sim-tiny.h5" --config neurobolt-tiny --split cross-subject \
  --val-subjects 03 --test-subjects 04

echo "== 3. the model: the paper's configuration"
$nb info neurobolt-base

echo "== 4. speed and memory of the paper's model (batch 16, all cores)"
$nb bench --config neurobolt-base --batch 16 --iterations 3
