#!/usr/bin/env bash
# The GPU check, run on a machine with an NVIDIA GPU, PyTorch 2.x (CUDA), CMake and nvcc but no
# Debian packages: unpacks the carried .deb files (tools/gpu-debs.sh) under /tmp, builds the
# CUDA-wired neurobolt, runs the GPU tests and prints the benchmarks:
#   1. cuda.kernel_device: the fused spectra kernel vs a double DFT (1e-5 relative);
#   2. neurobolt_tests "[cuda]": kernel vs the CPU path, boundary checks, the reference model's
#      forward on the GPU vs the fixture (fp32, TF32 off, 1e-4) when ../shared is there;
#   3. bench --spectral: fused kernel vs per-scale torch::stft + abs, batch 256 x 26 x 3200;
#   4. bench of neurobolt-base: inference at batch 256 and training at batch 64, fp32 and bf16,
#      beside the reference Python implementation on the same GPU (tools/bench_reference.py)
#      when .gpu-ref/ was prepared (tools/gpu-ref.sh);
#   5. a short fp32 vs bf16 training run (final validation r);
#   6. the same fp32 run distributed over NCCL (neurobolt launch: 2 ranks on 2 GPUs, else 1 rank),
#      its final validation r beside the one-process run's.
# usage: tools/gpu-check.sh [DEB_DIR]     (default .gpu-debs; about 6 minutes on an H200)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
debs="${1:-.gpu-debs}"
prefix=/tmp/nbdeps
build=/tmp/nb-build-cuda
mkdir -p "$prefix"

# Unpack without dpkg where there is none: an .deb is an ar archive holding data.tar.*.
for deb in "$debs"/*.deb; do
  if command -v dpkg >/dev/null 2>&1; then
    dpkg -x "$deb" "$prefix"
  else
    python3 - "$deb" "$prefix" <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
pos = 8
while pos < len(data):
    name = data[pos:pos + 16].decode().strip().rstrip("/")
    size = int(data[pos + 48:pos + 58].decode().strip())
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
    pos += 60 + size + (size % 2)
PY
  fi
done
arch_lib="$prefix/usr/lib/x86_64-linux-gnu"
# Debian's absolute symlinks (e.g. hdf5/serial/include) point into /usr: repoint them.
find "$prefix" -type l | while read -r link; do
  target="$(readlink "$link")"
  case "$target" in /usr/*) ln -sfn "$prefix$target" "$link" ;; esac
done
export PKG_CONFIG_PATH="$arch_lib/pkgconfig:$prefix/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$prefix"
export LD_LIBRARY_PATH="$arch_lib:$arch_lib/hdf5/serial:${LD_LIBRARY_PATH:-}"

torch_prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
python3 -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv || true

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNEUROBOLT_WITH_CUDA=ON \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr;$arch_lib/hdf5/serial" \
  -DHDF5_ROOT="$arch_lib/hdf5/serial" -DHDF5_C_INCLUDE_DIR="$prefix/usr/include/hdf5/serial" \
  -DNEUROBOLT_BUILD_TESTS=ON -DNEUROBOLT_BUILD_TOOLS=ON >/tmp/nb-cmake.log
cmake --build "$build" -j"$(nproc)" --target neurobolt_cli neurobolt_tests neurobolt_cuda_kernel_tests >/tmp/nb-build.log
nb="$build/tools/neurobolt"

echo "== 1. kernel vs double DFT"
"$build/tests/neurobolt_cuda_kernel_tests" plan
"$build/tests/neurobolt_cuda_kernel_tests" device
echo "== 2. [cuda] tests"
"$build/tests/neurobolt_tests" "[cuda]" -s 2>&1 | grep -E "WARN|warning|passed|failed|FAILED|error" || true
echo "== 3. spectral front end"
"$nb" bench --spectral --device cuda --batch 256 --channels 26 --iterations 50 --warmup 5
echo "== 4. neurobolt-base, ours and the reference's"
if [ -d .gpu-ref/wheels ]; then
  python3 -m pip install -q --no-deps --no-index --target /tmp/nb-ref-py .gpu-ref/wheels/* || true
fi
for precision in fp32 bf16; do
  "$nb" bench --config neurobolt-base --device cuda --precision "$precision" --batch 256 --phase inference \
    --iterations 10 --warmup 3 -q
  "$nb" bench --config neurobolt-base --device cuda --precision "$precision" --batch 64 --phase training \
    --iterations 10 --warmup 3 -q
  if [ -d .gpu-ref/ref ]; then
    PYTHONPATH=/tmp/nb-ref-py python3 tools/bench_reference.py --ref-dir .gpu-ref/ref --device cuda \
      --precision "$precision" --batch-inference 256 --batch-training 64 --iterations 10 --warmup 3 2>/dev/null ||
      echo "reference: did not run"
  fi
done
echo "== 5. bf16 vs fp32 on a short training run (final validation r)"
work=/tmp/nb-gpu-train
rm -rf "$work"
"$nb" simulate --out "$work/sim" --subjects 4 --runs 2 --minutes 8 --sfreq 250 --seed 1 -q
"$nb" prepare "$work/sim" -o "$work/data.h5" --split cross-subject --val-subjects 03 --test-subjects 04 -q
for precision in fp32 bf16; do
  "$nb" train "$work/data.h5" -o "$work/run-$precision" --config neurobolt-tiny --epochs 5 --seed 1 \
    --device cuda --precision "$precision" -q
  echo "$precision: $(tail -1 "$work/run-$precision/metrics.jsonl")"
done
echo "== 6. distributed training on CUDA (NCCL), fp32"
ranks=$(( $(nvidia-smi -L 2>/dev/null | wc -l) >= 2 ? 2 : 1 ))
"$nb" launch --nproc "$ranks" -- train "$work/data.h5" -o "$work/run-nccl" --config neurobolt-tiny --epochs 5 --seed 1 \
  --device cuda --distributed 2>&1 | grep -E "distributed:|error" || true
echo "NCCL, $ranks rank(s): $(tail -1 "$work/run-nccl/metrics.jsonl")"
echo "gpu-check: done"
