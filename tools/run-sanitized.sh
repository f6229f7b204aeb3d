#!/usr/bin/env bash
# Builds neurobolt with AddressSanitizer and UndefinedBehaviorSanitizer (GCC, -fno-sanitize-recover:
# every finding fails) in a separate folder and runs tests there.
#
# usage: tools/run-sanitized.sh [--core | --all]
#   --core  (default; what tools/run-tests.sh runs in CI) the torch-free unit tests
#           (neurobolt_core_tests: readers, signal processing, BIDS, data, simulation, clean, eval,
#           the .pth reader): nothing of LibTorch is built.
#   --all   everything, then the whole ctest suite (unit, torch, CLI), slower by far (hours on 2
#           cores). LibTorch itself is not instrumented; leaks inside it are not reported.
# environment: NEUROBOLT_SANITIZE_BUILD  build folder (default <repo>/build-sanitize)
#              NEUROBOLT_SANITIZE_TESTS  Catch2 test spec for --core (default: every test)
#              JOBS                      build jobs (default: number of CPUs)
set -euo pipefail
mode="${1:---core}"
case "$mode" in
  --core | --all) ;;
  *) echo "usage: $0 [--core | --all]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${NEUROBOLT_SANITIZE_BUILD:-$root/build-sanitize}"
jobs="${JOBS:-$(nproc)}"

# Debug information for readable reports, -O1 to keep the tests' run time reasonable. CUDA is off:
# nvcc does not take -fsanitize.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DNEUROBOLT_SANITIZE=address,undefined -DNEUROBOLT_WITH_CUDA=OFF \
  -DNEUROBOLT_BUILD_TESTS=ON -DNEUROBOLT_BUILD_TOOLS="$([ "$mode" = --all ] && echo ON || echo OFF)" >/dev/null

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Leaks that are the libraries' and not ours (one-time allocations HDF5 and matio keep until exit).
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tools/sanitizers/lsan.supp:print_suppressions=0}"

start=$(date +%s)
if [ "$mode" = --core ]; then
  cmake --build "$build" -j"$jobs" --target neurobolt_core_tests
  echo "run-sanitized: built in $(( $(date +%s) - start )) s; running the torch-free unit tests"
  start=$(date +%s)
  "$build/tests/neurobolt_core_tests" ${NEUROBOLT_SANITIZE_TESTS:-} --order decl
else
  cmake --build "$build" -j"$jobs"
  echo "run-sanitized: built in $(( $(date +%s) - start )) s; running every test"
  start=$(date +%s)
  # LibTorch is not built with ASan: its operator new/delete pairs are fine, but ASan cannot see
  # them match across the boundary; protect_shadow_gap=0 lets CUDA-free LibTorch map its memory.
  ASAN_OPTIONS="$ASAN_OPTIONS:alloc_dealloc_mismatch=0:protect_shadow_gap=0" \
    ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 7200
fi
echo "run-sanitized: tests passed under address,undefined in $(( $(date +%s) - start )) s"
