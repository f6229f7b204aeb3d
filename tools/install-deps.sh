#!/usr/bin/env bash
# Installs every Debian bookworm package that the build, the tests and the demo need.
# Idempotent: packages already present are skipped, so re-running costs one dpkg query.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libtorch-dev libopenblas0-pthread
  libeigen3-dev libhdf5-dev hdf5-tools libfmt-dev catch2 libcli11-dev nlohmann-json3-dev
  libedf-dev libnifti2-dev libmatio-dev zlib1g-dev libjemalloc-dev libssl-dev
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
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
