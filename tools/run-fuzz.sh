#!/usr/bin/env bash
# Builds the libFuzzer targets (a separate clang build, -DNEUROBOLT_FUZZ=ON) and runs each
# tests/fuzz/fuzz_*.cpp target for SECONDS seconds, one after the other, on seeds made from the
# real files in ../shared/data/real (when they are there), the test fixtures and small files that
# make_fuzz_seeds writes. Before fuzzing, each target is run on every file kept in
# tests/fuzz/regressions/<target>/ (inputs that once crashed it): one that fails is an error.
# Exits non-zero when a regression input fails or a target crashes, leaks, times out or runs out
# of memory; the input that did it is kept under <build>/fuzz-artifacts/. Ends with a table of
# seconds, executions, coverage and result per target.
#
# usage: tools/run-fuzz.sh [SECONDS]        (default 30)
# environment: FUZZ_TARGETS          targets to run, space-separated, with or without the fuzz_
#                                    prefix (default: all)
#              FUZZ_LOG_DIR          keep each target's log there as <target>.log (default: a
#                                    temporary folder, removed at the end)
#              NEUROBOLT_FUZZ_BUILD  build folder   (default <repo>/build-fuzz)
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
regressions="$root/tests/fuzz/regressions"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DNEUROBOLT_FUZZ=ON >/dev/null
cmake --build "$build" -j"$jobs"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
logs="${FUZZ_LOG_DIR:-$work/logs}"
mkdir -p "$logs"
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
generated="$work/generated"
"$build/tests/fuzz/make_fuzz_seeds" "$generated"

# HDF5's own leaks on damaged files are not ours (see the file).
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# A C library (HDF5) asking for an absurd size (over 1 TiB, from a damaged length) gets NULL as it
# would without ASan, and reports an error; ASan's default aborts instead. Sizes from 1 GiB up are
# still failures (-malloc_limit_mb), and in C++ a NULL becomes std::bad_alloc, which fails too.
export ASAN_OPTIONS="allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

# The separator between the files of a multi-file input (tests/fuzz/fuzz_files.hpp).
separator=$'\n--neurobolt-fuzz-part--\n'
max_len=65536

copy_generated() {  # copy_generated TARGET OUT
  local f
  for f in "$generated/$1"/*; do
    [ -f "$f" ] && cp "$f" "$2/"
  done
  return 0
}

# An EDF/BDF file cut to its header and first data record, with the record count set to 1 so
# that the header still agrees with the size (at most max_len bytes: a long record is cut, and
# then only the header is checked).
seed_edf() {
  local out="$1" i=0 f header record ns size
  for f in "$real"/edf/*.edf "$real"/bdf/*.bdf; do
    [ -f "$f" ] || continue
    ns=$(head -c 256 "$f" | tail -c 4 | tr -d ' ')
    header=$(( 256 * (ns + 1) ))
    record=$(( ($(stat -c %s "$f") - header) / $(head -c 244 "$f" | tail -c 8 | tr -d ' ') ))
    size=$(( header + record < max_len ? header + record : max_len ))
    head -c "$size" "$f" > "$out/seed$i"
    printf '1       ' | dd of="$out/seed$i" bs=1 seek=236 conv=notrunc status=none
    i=$((i + 1))
  done
}

# The data path needs whole files: the cut real files and the EDF+D/BDF+D that make_fuzz_seeds writes.
seed_edf_data() {
  seed_edf "$1"
  copy_generated fuzz_edf "$1"
}

seed_brainvision() {
  local out="$1" i=0 f
  for f in "$real"/brainvision/*/*.vhdr "$real"/brainvision/*/*.vmrk "$real"/eegfmri_headers_only/*/*/*.vhdr \
           "$real"/eegfmri_headers_only/*/*/*.vmrk; do
    [ -f "$f" ] || continue
    head -c "$max_len" "$f" > "$out/seed$i"
    i=$((i + 1))
  done
}

# One fuzz_brainvision_data input: header, markers and data of FRAMES frames, the header naming
# fuzz.vmrk and fuzz.eeg, without DataPoints (the reader counts the frames), and only the
# markers that lie within the frames.
brainvision_input() {  # brainvision_input OUT VHDR VMRK DATA_SOURCE BYTES_PER_SAMPLE [SED_EXPRESSION]
  local out="$1" vhdr="$2" vmrk="$3" data="$4" bps="$5" edit="${6:-}" channels frames header markers
  header="$(sed -e 's/^DataFile=.*/DataFile=fuzz.eeg/' -e 's/^MarkerFile=.*/MarkerFile=fuzz.vmrk/' \
                -e '/^DataPoints=/d' ${edit:+-e "$edit"} "$vhdr")"
  channels=$(grep -m1 '^NumberOfChannels=' <<<"$header" | tr -dc '0-9')
  [ -n "$channels" ] && [ "$channels" -gt 0 ] || return 0
  frames=$(( (max_len - 8192 - ${#header}) / (channels * bps) ))
  [ "$frames" -gt 64 ] && frames=64
  [ "$frames" -ge 1 ] || return 0
  markers=""
  [ -f "$vmrk" ] && markers="$(awk -F, -v n="$frames" '!/^Mk[0-9]+=/ || ($3 + 0 >= 1 && $3 + 0 <= n)' "$vmrk" | head -c 8000)"
  {
    printf '%s%s%s%s' "$header" "$separator" "$markers" "$separator"
    head -c $(( frames * channels * bps )) "$data"
  } > "$out"
}

seed_brainvision_data() {
  local out="$1" dir="$real/brainvision/mne_test" v2 latin eegfmri
  [ -d "$dir" ] || return 0
  v2="$dir/testv2.vhdr"
  brainvision_input "$out/int16_multiplexed" "$v2" "$dir/testv2.vmrk" "$dir/test.eeg" 2
  brainvision_input "$out/int16_vectorized" "$v2" "$dir/testv2.vmrk" "$dir/test.eeg" 2 \
    's/^DataOrientation=.*/DataOrientation=VECTORIZED/'
  brainvision_input "$out/uint16_multiplexed" "$v2" "$dir/testv2.vmrk" "$dir/test.eeg" 2 \
    's/^BinaryFormat=.*/BinaryFormat=UINT_16/'
  brainvision_input "$out/int32_multiplexed" "$v2" "$dir/testv2.vmrk" /dev/urandom 4 \
    's/^BinaryFormat=.*/BinaryFormat=INT_32/'
  brainvision_input "$out/int32_vectorized_big_endian" "$v2" "$dir/testv2.vmrk" /dev/urandom 4 \
    's/^BinaryFormat=.*/BinaryFormat=INT_32\nUseBigEndianOrder=YES/;s/^DataOrientation=.*/DataOrientation=VECTORIZED/'
  brainvision_input "$out/float32_multiplexed" "$v2" "$dir/testv2.vmrk" /dev/zero 4 \
    's/^BinaryFormat=.*/BinaryFormat=IEEE_FLOAT_32/'
  brainvision_input "$out/ascii" "$v2" "$dir/testv2.vmrk" /dev/null 2 's/^DataFormat=.*/DataFormat=ASCII/'
  printf '1.5 -2 3e1\n' >> "$out/ascii"
  latin="$real/brainvision/mne_latin1_vectorized/test_old_layout_latin1_software_filter"
  [ -f "$latin.vhdr" ] && brainvision_input "$out/float32_vectorized_latin1" "$latin.vhdr" "$latin.vmrk" "$latin.eeg" 4
  for eegfmri in "$real"/eegfmri_headers_only/*/*/*.vhdr; do  # real headers, no real data: zeros
    [ -f "$eegfmri" ] || continue
    brainvision_input "$out/eegfmri_$(basename "$(dirname "$eegfmri")")" "$eegfmri" "${eegfmri%.vhdr}.vmrk" /dev/zero \
      "$(grep -q 'IEEE_FLOAT_32' "$eegfmri" && echo 4 || echo 2)"
  done
  return 0
}

seed_eeglab() {
  copy_generated fuzz_eeglab "$1"
}

seed_nifti() {
  local out="$1" f
  copy_generated fuzz_nifti "$out"
  for f in "$real"/nifti/*.nii "$real"/nifti/*.nii.gz; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -le "$max_len" ] && cp "$f" "$out/"
    if [[ "$f" == *.gz ]]; then  # uncompressed: the header and the first volumes (NIfTI-2 among them)
      gzip -dc "$f" | head -c "$max_len" > "$out/$(basename "${f%.gz}")" || true
    fi
  done
  return 0
}

# fuzz_json: the first byte picks the parser (see tests/fuzz/fuzz_json.cpp).
seed_json() {
  local out="$1" i=0 f bids="$real/eegfmri_headers_only/bids_eeg_rest_fmri"
  copy_generated fuzz_json "$out"
  for f in "$root"/models/*.json "$root"/tests/data/*.json; do
    [ -f "$f" ] && { printf '\x00'; cat "$f"; } > "$out/model$((i++))"
  done
  [ -f "$bids/task-rest_eeg.json" ] && { printf '\x02'; cat "$bids/task-rest_eeg.json"; } > "$out/eeg_sidecar"
  [ -f "$bids/dataset_description.json" ] && { printf '\x03'; cat "$bids/dataset_description.json"; } > "$out/description"
  printf '\x04onset\tduration\ttrial_type\tvalue\n0.5\t0\tstim\t1\n2.25\tn/a\trest\tn/a\n' > "$out/events"
  printf '\x05name\ttype\tunits\tstatus\tstatus_description\nCz\tEEG\tuV\tgood\tn/a\nECG\tECG\tmV\tbad\tnoisy\n' \
    > "$out/channels"
  [ -f "$bids/task-rest_bold.json" ] && { printf '\x06'; cat "$bids/task-rest_bold.json"; } > "$out/bold_sidecar"
  return 0
}

seed_tsv() {
  printf 'onset\tduration\ttrial_type\n0.5\t0\tstim\n2.25\tn/a\trest\n' > "$1/events.tsv"
  printf 'roi_a\troi_b\n1.5\t-2\n3e1\tn/a\n' > "$1/timeseries.tsv"
}

seed_h5_dataset() {
  copy_generated fuzz_h5_dataset "$1"
}

seed_checkpoint() {
  copy_generated fuzz_checkpoint "$1"
}

seed_pth() {
  local f
  for f in "$root"/tests/data/pth/*.pth; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -le "$max_len" ] && cp "$f" "$1/"
  done
  return 0
}

# A value of libFuzzer's final stats ("stat::NAME: VALUE").
# known_open NAME LOG: prints the open finding (tests/fuzz/open/known.txt) whose every pattern the
# crash log matches, if one does.
known_open() {
  local target patterns pattern all
  [ -f "$root/tests/fuzz/open/known.txt" ] || return 0
  while IFS=$'\t' read -r target patterns; do
    [ "$target" = "$1" ] || continue
    all=1
    IFS=$'\t' read -r -a list <<<"$patterns"
    for pattern in "${list[@]}"; do
      grep -Eq -- "$pattern" "$2" || { all=0; break; }
    done
    [ "$all" -eq 1 ] && { echo "${list[0]}"; return 0; }
  done < <(grep -v '^#' "$root/tests/fuzz/open/known.txt")
}

final_stat() {  # final_stat LOG NAME
  grep -E "^stat::$2:" "$1" | tail -n 1 | awk '{print $2}'
}

status=0
shopt -s nullglob
wanted=" ${FUZZ_TARGETS:-} "
summary=()
for target in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$target" ] && [ -f "$target" ] || continue
  name="$(basename "$target")"
  if [ -n "${FUZZ_TARGETS:-}" ] && [[ "$wanted" != *" $name "* && "$wanted" != *" ${name#fuzz_} "* ]]; then
    continue
  fi
  log="$logs/$name.log"
  : > "$log"

  # Inputs that once broke the target must pass before anything else.
  replays=("$regressions/$name"/*)
  if [ "${#replays[@]}" -gt 0 ]; then
    if ! "$target" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 "${replays[@]}" > "$log.replay" 2>&1; then
      status=1
      echo "$name FAILED on a file of tests/fuzz/regressions/$name; log tail:" >&2
      tail -n 40 "$log.replay" >&2
      summary+=("$(printf '%-24s %8s %12s %8s  %s' "$name" 0 0 - "FAILED (regressions)")")
      continue
    fi
    echo "== $name: ${#replays[@]} regression inputs pass"
  fi

  corpus="$work/$name"
  mkdir -p "$corpus"
  case "$name" in
    fuzz_edf_header) seed_edf "$corpus" ;;
    fuzz_edf) seed_edf_data "$corpus" ;;
    fuzz_brainvision) seed_brainvision "$corpus" ;;
    fuzz_brainvision_data) seed_brainvision_data "$corpus" ;;
    fuzz_eeglab) seed_eeglab "$corpus" ;;
    fuzz_nifti) seed_nifti "$corpus" ;;
    fuzz_json) seed_json "$corpus" ;;
    fuzz_tsv) seed_tsv "$corpus" ;;
    fuzz_h5_dataset) seed_h5_dataset "$corpus" ;;
    fuzz_checkpoint) seed_checkpoint "$corpus" ;;
    fuzz_pth) seed_pth "$corpus" ;;
  esac
  echo "== $name: ${seconds}s, $(ls "$corpus" | wc -l) seeds"
  start=$SECONDS
  result=ok
  if ! "$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
         -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$corpus" >> "$log" 2>&1; then
    known="$(known_open "$name" "$log")"
    if [ -n "$known" ]; then
      # A finding already on record (tests/fuzz/open/): reported, not a new failure; fuzzing of this
      # target stopped there.
      result="KNOWN OPEN ($known)"
      echo "$name stopped on a known open finding (tests/fuzz/open/known.txt): $known" >&2
    else
      status=1
      result=FAILED
      echo "$name FAILED; log tail:" >&2
      tail -n 40 "$log" >&2
    fi
  fi
  executions="$(final_stat "$log" number_of_executed_units)"
  # Coverage: the "cov:" of the last status line libFuzzer printed.
  coverage="$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')"
  summary+=("$(printf '%-24s %8s %12s %8s  %s' "$name" "$((SECONDS - start))" "${executions:-?}" "${coverage:-?}" "$result")")
done

echo
printf '%-24s %8s %12s %8s  %s\n' target seconds executions coverage result
for line in "${summary[@]}"; do echo "$line"; done
exit "$status"
