#!/usr/bin/env bash
# The project's test command (README, second command; .ci/run calls exactly this): installs the
# Debian packages, builds everything in build/, runs every test (unit, core, CLI, consumer),
# then the torch-free unit tests under ASan/UBSan and each libFuzzer target briefly.
#
# usage: tools/run-tests.sh
# environment: NEUROBOLT_FUZZ_SECONDS (default 20; 0 skips), NEUROBOLT_SANITIZE_STAGE (0 skips it)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tools/install-deps.sh
# The CUDA kernels compile wherever the CUDA toolkit is (their device tests skip without a GPU).
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDACXX=/usr/local/cuda/bin/nvcc; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNEUROBOLT_BUILD_TESTS=ON -DNEUROBOLT_BUILD_TOOLS=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"

# The CUDA-wired build (a PyTorch wheel's LibTorch with CUDA), compiled but not run, where one is
# installed: in NEUROBOLT_TORCH_VENV (default ~/.cache/neurobolt/torch-venv, what
# tools/install-deps.sh --cuda makes) or for python3 itself; skipped otherwise.
prefix=""
for py in "${NEUROBOLT_TORCH_VENV:-$HOME/.cache/neurobolt/torch-venv}/bin/python" python3; do
  if command -v "$py" >/dev/null 2>&1 &&
    "$py" -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)' >/dev/null 2>&1; then
    prefix="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)"
    break
  fi
done
if [ -n "$prefix" ]; then
  echo "run-tests: compiling the CUDA-wired build against $prefix"
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DNEUROBOLT_WITH_CUDA=ON \
    -DNEUROBOLT_BUILD_TESTS=ON -DNEUROBOLT_BUILD_TOOLS=ON
  cmake --build build-cuda -j"$(nproc)"
else
  echo "run-tests: no CUDA-enabled PyTorch found: the CUDA-wired build is not compiled (tools/install-deps.sh --cuda)"
fi

# The torch-free unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (a separate
# build in build-sanitize; NEUROBOLT_SANITIZE_STAGE=0 skips it; the whole suite: tools/run-sanitized.sh --all).
if [ "${NEUROBOLT_SANITIZE_STAGE:-1}" != 0 ]; then
  bash tools/run-sanitized.sh --core
fi

fuzz_seconds="${NEUROBOLT_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
  bash tools/run-fuzz.sh "$fuzz_seconds"
fi
echo "run-tests: all tests passed"
