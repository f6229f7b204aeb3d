#!/usr/bin/env bash
# Builds the libFuzzer targets (a separate clang build, -DNEUROBOLT_FUZZ=ON) and runs every
# tests/fuzz/fuzz_*.cpp target for SECONDS seconds each, on seeds made from the real files in
# ../shared/data/real when they are there. Exits non-zero when a target crashes, leaks or times
# out; the input that did it is kept under <build>/fuzz-artifacts/.
#
# usage: tools/run-fuzz.sh [SECONDS]        (default 30)
# environment: NEUROBOLT_FUZZ_BUILD  build folder   (default <repo>/build-fuzz)
#              NEUROBOLT_SHARED_DIR  shared folder  (default <repo>/../shared)
#              FUZZ_JOBS             build jobs     (default: number of CPUs)
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS]  (SECONDS: a positive integer, default 30)" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${NEUROBOLT_FUZZ_BUILD:-$root/build-fuzz}"
shared="${NEUROBOLT_SHARED_DIR:-$root/../shared}"
real="$shared/data/real"
jobs="${FUZZ_JOBS:-$(nproc)}"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DNEUROBOLT_FUZZ=ON >/dev/null
cmake --build "$build" -j"$jobs"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

# Seeds are at most 64 KiB (the -max_len below): an EDF/BDF file cut to its header and first data
# record, with the record count set to 1 so that the header still agrees with the size.
seed_edf() {
  local out="$1" i=0 f header record ns size
  for f in "$real"/edf/*.edf "$real"/bdf/*.bdf; do
    [ -f "$f" ] || continue
    ns=$(head -c 256 "$f" | tail -c 4 | tr -d ' ')
    header=$(( 256 * (ns + 1) ))
    record=$(( ($(stat -c %s "$f") - header) / $(head -c 244 "$f" | tail -c 8 | tr -d ' ') ))
    size=$(( header + record < 65536 ? header + record : 65536 ))
    head -c "$size" "$f" > "$out/seed$i"
    printf '1       ' | dd of="$out/seed$i" bs=1 seek=236 conv=notrunc status=none
    i=$((i + 1))
  done
}

seed_brainvision() {
  local out="$1" i=0 f
  for f in "$real"/brainvision/*/*.vhdr "$real"/brainvision/*/*.vmrk "$real"/eegfmri_headers_only/*/*/*.vhdr \
           "$real"/eegfmri_headers_only/*/*/*.vmrk; do
    [ -f "$f" ] || continue
    head -c 65536 "$f" > "$out/seed$i"
    i=$((i + 1))
  done
}

status=0
shopt -s nullglob
for target in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$target" ] && [ -f "$target" ] || continue
  name="$(basename "$target")"
  corpus="$work/$name"
  mkdir -p "$corpus"
  case "$name" in
    fuzz_edf_header) [ -d "$real" ] && seed_edf "$corpus" ;;
    fuzz_brainvision) [ -d "$real" ] && seed_brainvision "$corpus" ;;
  esac
  echo "== $name: ${seconds}s, $(ls "$corpus" | wc -l) seeds"
  if "$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$artifacts/$name-" "$corpus" > "$work/$name.log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^Done|^#[0-9]+.*DONE" "$work/$name.log" || true
  else
    status=1
    echo "$name FAILED; log tail:" >&2
    tail -n 40 "$work/$name.log" >&2
  fi
done
exit "$status"
