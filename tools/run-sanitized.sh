#!/usr/bin/env bash
# Runs neurobolt's tests under AddressSanitizer and UndefinedBehaviorSanitizer (every finding
# fails: -fno-sanitize-recover=all).
#
# usage: tools/run-sanitized.sh [--core | --all]
#   --core  (default; what tools/run-tests.sh runs in CI) the torch-free unit tests
#           (neurobolt_core_tests: readers, the .pth reader, signal processing, BIDS, data,
#           simulation, clean, eval), built with clang in the fuzzing build (build-fuzz, shared
#           with tools/run-fuzz.sh, so the core is compiled once for both); nothing of LibTorch.
#   --all   a GCC build of everything (build-sanitize: library, CLI, all tests) and the whole
#           ctest suite; hours on 2 cores. LibTorch itself is not instrumented.
# environment: NEUROBOLT_FUZZ_BUILD      build folder of --core (default <repo>/build-fuzz)
#              NEUROBOLT_SANITIZE_BUILD  build folder of --all (default <repo>/build-sanitize)
#              NEUROBOLT_SANITIZE_TESTS  Catch2 test spec for --core (default: every test)
#              JOBS                      build jobs (default: number of CPUs)
set -euo pipefail
mode="${1:---core}"
case "$mode" in
  --core | --all) ;;
  *) echo "usage: $0 [--core | --all]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${JOBS:-$(nproc)}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Leaks that are the libraries' and not ours (allocations HDF5 and matio keep until exit).
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tools/sanitizers/lsan.supp:print_suppressions=0}"

start=$(date +%s)
if [ "$mode" = --core ]; then
  build="${NEUROBOLT_FUZZ_BUILD:-$root/build-fuzz}"
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DNEUROBOLT_FUZZ=ON -DNEUROBOLT_BUILD_TESTS=ON >/dev/null
  cmake --build "$build" -j"$jobs" --target neurobolt_core_tests
  echo "run-sanitized: built in $(( $(date +%s) - start )) s; running the torch-free unit tests under ASan+UBSan"
  start=$(date +%s)
  "$build/tests/neurobolt_core_tests" ${NEUROBOLT_SANITIZE_TESTS:-} --order decl
else
  build="${NEUROBOLT_SANITIZE_BUILD:-$root/build-sanitize}"
  # Debug information for readable reports; -O1 keeps the run time reasonable. CUDA is off: nvcc
  # does not take -fsanitize.
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DNEUROBOLT_SANITIZE=address,undefined -DNEUROBOLT_WITH_CUDA=OFF \
    -DNEUROBOLT_BUILD_TESTS=ON -DNEUROBOLT_BUILD_TOOLS=ON >/dev/null
  cmake --build "$build" -j"$jobs"
  echo "run-sanitized: built in $(( $(date +%s) - start )) s; running every test under ASan+UBSan"
  start=$(date +%s)
  # LibTorch is not built with ASan: ASan cannot pair its allocations across the boundary.
  ASAN_OPTIONS="$ASAN_OPTIONS:alloc_dealloc_mismatch=0" ctest --test-dir "$build" --output-on-failure -j"$jobs" \
    --timeout 7200
fi
echo "run-sanitized: tests passed under address,undefined in $(( $(date +%s) - start )) s"
