#!/usr/bin/env bash
# Full disk and planted links (issue 11). Every command that writes a file is run with too little
# room for it: under a file-size limit (ulimit -f, everywhere) and on a tiny tmpfs (only where
# root or passwordless sudo can mount one). Each must fail with exit status 3 and a one-line error naming
# the output and the system's reason, and leave nothing behind: no output, no temporary file.
# Then a symlink planted at an output path is never written through: without --force the command
# refuses, with --force the link itself is replaced and its target is untouched.
source "$(dirname "$0")/lib.sh"

# Inputs, made with room to spare.
trained_model 5 1
"$bin" infer "$work/run/best.h5" "$work/sim" -o "$work/pred" --threads 1 -q || fail "infer"
eeg=$work/sim/sub-01/eeg/sub-01_task-rest_run-1_eeg.edf
# A 3-minute recording, so that even the stream's table (one short row per volume) outgrows 1 KiB.
"$bin" simulate --out "$work/long" --subjects 1 --runs 1 --minutes 3 --sfreq 250 --seed 6 --threads 1 -q \
  || fail "simulate (long)"
long=$work/long/sub-01/eeg/sub-01_task-rest_run-1_eeg.edf
model=$work/run/best.h5
fixture=$shared/fixtures/neurobolt_ref/neurobolt_r4_perturbed.pth
[ -f "$fixture" ] || fixture=""

# leaves_nothing FOLDER NAME: no file or folder FOLDER/NAME*, i.e. neither the output nor a
# temporary file of it, is there.
leaves_nothing() {
  local left
  left=$(find "$1" -maxdepth 1 -name "$2*" 2>/dev/null)
  [ -z "$left" ] || fail "partial output left behind in $1: $left"
}

# full DIR LIMITED: runs every writing command with its output in DIR, under a file-size limit when
# LIMITED is "yes" (16 KiB for the large outputs, 1 KiB for the small ones: not less, as the
# limit applies to the error message written to the file $work/err too), else as it is (DIR is a
# full file system).
full() {
  local dir=$1 limited=$2
  # limit KB: the command prefix for a KB file-size limit (nothing when not limiting).
  limit() { if [ "$limited" = yes ]; then printf '%s\n' bash -c 'ulimit -f "$0"; exec "$@"' "$1"; fi; }
  local big=() small=()
  mapfile -t big < <(limit 16); mapfile -t small < <(limit 1)
  reason() { has err "No space left on device\|File too large"; one_line_error; }

  run 3 "${big[@]}" "$bin" simulate --out "$dir/sim" --subjects 1 --runs 1 --minutes 1 --sfreq 250 --seed 5 \
    --threads 1 -q
  reason; leaves_nothing "$dir" sim
  run 3 "${big[@]}" "$bin" prepare "$work/sim" -o "$dir/data.h5" --config neurobolt-tiny \
    --rois calcarine,thalamus --split cross-subject --val-subjects 02 --test-subjects 03 -q
  reason; has err "data.h5"; leaves_nothing "$dir" data.h5
  run 3 "${big[@]}" "$bin" train "$work/data.h5" -o "$dir/run" --config neurobolt-tiny --epochs 1 --batch 4 \
    --threads 1 -q
  reason
  [ -z "$(find "$dir/run" -name '*.h5*' 2>/dev/null)" ] || fail "train left a checkpoint: $(ls "$dir/run")"
  run 3 "${small[@]}" "$bin" infer "$model" "$eeg" -o "$dir/pred" --threads 1 -q
  # infer goes on after a failed run: one line for the run, one for the summary (under the limit;
  # on the full disk its first file, dataset_description.json, fails and stops it).
  has err "No space left on device\|File too large"
  [ -z "$(find "$dir/pred" -type f -name 'sub-*' 2>/dev/null)" ] || fail "infer left: $(find "$dir/pred" -type f)"
  run 3 "${small[@]}" "$bin" eval "$work/pred" --targets "$work/sim" --split all --json "$dir/e.json"
  reason; has err "e.json"; leaves_nothing "$dir" e.json
  run 3 "${big[@]}" "$bin" eval "$work/pred" --targets "$work/sim" --split all --report "$dir/r.html"
  reason; has err "r.html"; leaves_nothing "$dir" r.html
  run 3 "${big[@]}" "$bin" clean "$eeg" -o "$dir/clean.edf" --no-gradient --no-bcg -q
  reason; has err "clean.edf"; leaves_nothing "$dir" clean.edf
  run 3 "${small[@]}" "$bin" stream "$model" "$long" -o "$dir/stream.tsv" --speed 0 --threads 1 -q
  reason; has err "stream.tsv"; leaves_nothing "$dir" stream.tsv
  if [ -n "$fixture" ]; then
    run 3 "${big[@]}" "$bin" convert "$fixture" "$dir/ref.h5"
    reason; has err "ref.h5"; leaves_nothing "$dir" ref.h5
  fi
}

# 1. File-size limits: every output is larger than the limit.
mkdir "$work/limited"
full "$work/limited" yes
echo "file-size limit: every writer failed cleanly; e.g. $(cat "$work/err")"

# 2. A full tmpfs (as root, or where sudo mounts one without a password): 64 KiB, filled up (the
# file-size limits above leave partial files; here not one block is free).
mkdir "$work/small"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
if "${as_root[@]}" mount -t tmpfs -o size=64k,mode=1777 tmpfs "$work/small" 2>/dev/null; then
  trap '"${as_root[@]}" umount "$work/small" 2>/dev/null; rm -rf "$work"' EXIT
  head -c $((64 * 1024)) /dev/zero > "$work/small/filler" 2>/dev/null || true
  full "$work/small" no
  echo "full tmpfs: every writer failed cleanly; e.g. $(cat "$work/err")"
  "${as_root[@]}" umount "$work/small"
else
  echo "skipped: cannot mount a tmpfs here (not root, no passwordless sudo); the file-size limits take the same paths"
fi

# 3. Planted symlinks: the link's target is never written.
mkdir "$work/links"
echo "precious" > "$work/precious"
plant() { ln -sf "$work/precious" "$work/links/$1"; }
intact() { [ "$(cat "$work/precious")" = "precious" ] || fail "a command wrote through a planted link"; }
for out in e.json clean.edf stream.tsv data.h5; do plant "$out"; done
run 3 "$bin" eval "$work/pred" --targets "$work/sim" --split all --json "$work/links/e.json"
has err "already exists"; intact
run 3 "$bin" clean "$eeg" -o "$work/links/clean.edf" --no-gradient --no-bcg -q; has err "already exists"; intact
run 3 "$bin" stream "$model" "$eeg" -o "$work/links/stream.tsv" --speed 0 -q; has err "already exists"; intact
run 3 "$bin" prepare "$work/sim" -o "$work/links/data.h5" --config neurobolt-tiny --rois calcarine,thalamus \
  --split cross-subject --val-subjects 02 --test-subjects 03 -q
has err "already exists"; intact
run 0 "$bin" eval "$work/pred" --targets "$work/sim" --split all --json "$work/links/e.json" --force
intact; [ ! -L "$work/links/e.json" ] && [ -s "$work/links/e.json" ] || fail "--force did not replace the link"
run 0 "$bin" clean "$eeg" -o "$work/links/clean.edf" --no-gradient --no-bcg -q --force
intact; [ ! -L "$work/links/clean.edf" ] || fail "--force did not replace the link"
run 0 "$bin" stream "$model" "$eeg" -o "$work/links/stream.tsv" --speed 0 -q --force
intact; [ ! -L "$work/links/stream.tsv" ] || fail "--force did not replace the link"
echo "ok: full_disk"
