#!/usr/bin/env bash
# Downloads (apt-get download, no install) the .deb files of the Debian packages the build needs
# beyond what a GPU machine with PyTorch, CMake and nvcc has, into .gpu-debs/ (git-ignored), for
# tools/gpu-check.sh there. Run here, on Debian bookworm; about 25 MB.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/.gpu-debs}"
mkdir -p "$out"
cd "$out"
packages=(
  libhdf5-dev libhdf5-103-1 libsz2 libaec0 libcurl3-gnutls
  libfmt-dev libfmt9 libeigen3-dev catch2 libcli11-dev nlohmann-json3-dev
  libedf-dev libedf1 libnifti2-dev libnifti2-2 libznz3 libmatio-dev libmatio11
  libssl-dev zlib1g-dev libzip-dev libzip4
)
apt-get download "${packages[@]}"
ls -la "$out"
du -sh "$out"
