#!/usr/bin/env bash
# Installs every Debian bookworm package that the build, the tests and the demo need.
# Idempotent: packages already present are skipped, so re-running costs one dpkg query.
#
# usage: tools/install-deps.sh            the default build (Debian's CPU LibTorch)
#        tools/install-deps.sh --cuda     also a PyTorch 2.x wheel with CUDA in a virtual
#                                         environment (NEUROBOLT_TORCH_VENV, default
#                                         ~/.cache/neurobolt/torch-venv; several GB) for the
#                                         CUDA-wired build; prints its CMAKE_PREFIX_PATH
set -euo pipefail

with_cuda=0
for arg in "$@"; do
  case "$arg" in
    --cuda) with_cuda=1 ;;
    *) echo "install-deps: unknown option '$arg' (expected --cuda)" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake pkg-config git
  libtorch-dev libopenblas0-pthread libgloo-dev  # Gloo headers: c10d process groups (distributed training)
  libeigen3-dev libhdf5-dev hdf5-tools libfmt-dev catch2 libcli11-dev nlohmann-json3-dev
  libedf-dev libnifti2-dev libmatio-dev libzip-dev zlib1g-dev libjemalloc-dev libssl-dev
  clang libclang-rt-14-dev
  chromium  # headless browser: tests/cli/test_report_browser.sh loads the HTML report
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$with_cuda" -eq 1 ]; then
  venv="${NEUROBOLT_TORCH_VENV:-$HOME/.cache/neurobolt/torch-venv}"
  if ! command -v nvcc >/dev/null 2>&1; then
    echo "install-deps: warning: nvcc not on PATH; the CUDA kernels need the CUDA toolkit (e.g. /usr/local/cuda/bin)" >&2
  fi
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    echo "install-deps: installing PyTorch (CUDA) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet torch
  fi
  prefix="$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)"
  echo "install-deps: PyTorch $("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null) in $venv"
  echo "install-deps: configure the CUDA-wired build with -DCMAKE_PREFIX_PATH=$prefix"
fi
