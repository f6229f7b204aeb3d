#!/usr/bin/env bash
# The project's test command (README, second command; .ci/run calls exactly this): installs the
# Debian packages, builds everything in build/, runs every test (unit, core, CLI, consumer),
# then runs each libFuzzer target briefly under ASan/UBSan.
#
# usage: tools/run-tests.sh          environment: NEUROBOLT_FUZZ_SECONDS (default 20; 0 skips)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNEUROBOLT_BUILD_TESTS=ON -DNEUROBOLT_BUILD_TOOLS=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"

fuzz_seconds="${NEUROBOLT_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
  bash tools/run-fuzz.sh "$fuzz_seconds"
fi
echo "run-tests: all tests passed"
