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

echo "== the model: the paper's configuration"
$nb info neurobolt-base

echo "== speed and memory of the paper's model (batch 16, all cores)"
$nb bench --config neurobolt-base --batch 16 --iterations 3
