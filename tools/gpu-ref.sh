#!/usr/bin/env bash
# Prepares (here, with network) what tools/gpu-check.sh needs to time the reference Python
# NeuroBOLT on the same GPU: its model code copied from a checkout of soupeeli/NeuroBOLT into
# .gpu-ref/ref (git-ignored; never committed) and the pinned pure-Python packages it imports
# into .gpu-ref/wheels as wheels (versions that still import without further packages; built
# here, so that the GPU machine installs them offline).
# usage: tools/gpu-ref.sh REFERENCE_CHECKOUT
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref="${1:?usage: tools/gpu-ref.sh REFERENCE_CHECKOUT (a checkout of soupeeli/NeuroBOLT)}"
[ -f "$ref/models/model.py" ] || { echo "gpu-ref: '$ref/models/model.py' not found" >&2; exit 2; }
out="$root/.gpu-ref"
rm -rf "$out"
mkdir -p "$out/ref" "$out/wheels"
cp -r "$ref/models" "$out/ref/"
python3 -m pip wheel --no-deps -q -w "$out/wheels" einops==0.8.2 linear_attention_transformer==0.19.1 \
  axial_positional_embedding==0.3.12 linformer==0.2.3 local-attention==1.4.4 product-key-memory==0.1.10
ls "$out/wheels"
du -sh "$out"
