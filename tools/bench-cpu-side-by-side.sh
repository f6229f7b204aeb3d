#!/usr/bin/env bash
# neurobolt against the reference Python NeuroBOLT on this machine's CPU, side by side in one run
# (issue 12): inference windows/s and training s/step at one batch size, the reference both as it
# comes and with glibc's allocator told to keep freed memory (its best CPU configuration), peak
# memory of each process, and the machine's matmul GFLOP/s as neurobolt bench measures it.
#
# usage: tools/bench-cpu-side-by-side.sh REF_DIR [BATCH] [ITERATIONS]
#   REF_DIR     a checkout of soupeeli/NeuroBOLT (holding models/); its Python needs torch, einops
#               and linear_attention_transformer (PYTHONPATH may point at them)
#   BATCH       windows per batch (default 16); ITERATIONS timed iterations (default 3)
# environment: NEUROBOLT_BIN (default build/tools/neurobolt), PYTHON (default python3),
#              THREADS (default: all cores)
set -euo pipefail
ref=${1:?usage: $0 REF_DIR [BATCH] [ITERATIONS]}
batch=${2:-16}
iterations=${3:-3}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${NEUROBOLT_BIN:-$root/build/tools/neurobolt}
python=${PYTHON:-python3}
threads=${THREADS:-$(nproc)}
[ -x "$bin" ] || { echo "no neurobolt binary at $bin (build first or set NEUROBOLT_BIN)" >&2; exit 2; }
[ -d "$ref/models" ] || { echo "'$ref' holds no models/ (a soupeeli/NeuroBOLT checkout)" >&2; exit 2; }
"$python" -c "import torch, einops, linear_attention_transformer" 2>/dev/null ||
  { echo "$python cannot import torch, einops and linear_attention_transformer" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
measure() {  # NAME COMMAND...: runs it, keeps its output and the process's peak RSS
  local name=$1
  shift
  /usr/bin/time -f "%M" -o "$work/$name.rss" "$@" > "$work/$name.out" 2>&1 ||
    { echo "$name failed:" >&2; tail -5 "$work/$name.out" >&2; exit 1; }
}
reference=("$python" "$root/tools/bench_reference.py" --ref-dir "$ref" --device cpu --batch-inference "$batch"
           --batch-training "$batch" --iterations "$iterations" --threads "$threads")

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads, batch $batch, $iterations iterations"
measure neurobolt "$bin" bench --config neurobolt-base --batch "$batch" --iterations "$iterations" --threads "$threads" -q
export OMP_NUM_THREADS=$threads
measure reference "${reference[@]}"
measure tuned env MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4294967295 "${reference[@]}"

# inference windows/s and training s/step from each output
ours_inf=$(awk '/^inference/ {print $2; exit}' "$work/neurobolt.out")
ours_step=$(awk '/^training/ {print $2; exit}' "$work/neurobolt.out")
row() {  # NAME: windows/s, s/step, peak RSS GiB of a reference run
  local inf step
  inf=$(awk '/^inference/ {print $2; exit}' "$work/$1.out")
  step=$(awk '/^training/ {sub(/\(/, "", $4); print $4; exit}' "$work/$1.out")
  printf '%-28s %8.2f %10.3f %9.2f   %5.2fx %8.2fx\n' "$2" "$inf" "$step" "$(awk '{print $1 / 1048576}' "$work/$1.rss")" \
    "$(awk -v a="$ours_inf" -v b="$inf" 'BEGIN {print a / b}')" "$(awk -v a="$ours_step" -v b="$step" 'BEGIN {print b / a}')"
}
printf '\n%-28s %8s %10s %9s   %s\n' "" "win/s" "s/step" "RSS GiB" "neurobolt is (inference, training) x faster"
printf '%-28s %8.2f %10.3f %9.2f\n' "neurobolt" "$ours_inf" "$ours_step" "$(awk '{print $1 / 1048576}' "$work/neurobolt.rss")"
row reference "reference (as it comes)"
row tuned "reference (malloc tuned)"
echo
grep -E '^(matmul|           [0-9.]+ GFLOP/s)' "$work/neurobolt.out"
