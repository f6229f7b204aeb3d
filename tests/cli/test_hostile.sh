#!/usr/bin/env bash
# CLI tests of hostile inputs (issue 13): sizes a file claims far beyond its real size, files of the
# wrong kind given as a model, names with control bytes, and links planted at output paths. Each
# runs under an 8 GB address-space limit and a timeout: a refusal must come quickly, as a
# one-line error with the documented exit status (4 format, 5 config, 3 I/O), never exit 1.
# Usage: test_hostile.sh NEUROBOLT_BINARY SOURCE_DIR SHARED_DIR
source "$(dirname "$0")/lib.sh"
real=$shared/data/real

# hostile CMD...: CMD limited to 8 GB of memory (limit_memory) and 60 s (timeout's 124 fails the
# status check).
hostile() { with_memory_limit 8000000 timeout 60 "$@"; }

# BrainVision: DataPoints of 4e18 against a 505,600-byte data file, read header-only by info.
bv=$work/bv
mkdir -p "$bv"
sed 's/^DataPoints=.*/DataPoints=4000000000000000000/' "$real/brainvision/mne_test/testv2.vhdr" >"$bv/testv2.vhdr"
cp "$real/brainvision/mne_test/test.vmrk" "$bv/testv2.vmrk"
cp "$real/brainvision/mne_test/test.eeg" "$bv/test.eeg"
run 4 hostile "$bin" info "$bv/testv2.vhdr"
has err "test.eeg': file size: expected more than 2^63 bytes (4000000000000000000 DataPoints x 32 channels"
has err "found 505600 bytes (7900 samples)"; one_line_error

# Model configs whose sizes have no upper bound would allocate until the process dies.
cfg() { sed "s/\"$1\": [0-9]*/\"$1\": $2/" "$src/models/neurobolt-tiny.json" >"$work/$3.json"; }
cfg depth 1000000000 deep
run 5 hostile "$bin" info "$work/deep.json"
has err "deep.json: key 'temporal.depth': expected at most 1024, found 1000000000"; one_line_error
cfg max_positions 4000000000000 positions
run 5 hostile "$bin" info "$work/positions.json"
has err "key 'spectral.max_positions': expected at most 1048576, found 4000000000000"; one_line_error
cfg vocabulary_rows 99999999999 vocabulary
run 5 hostile "$bin" info "$work/vocabulary.json"; has err "key 'temporal.vocabulary_rows': expected at most"
printf '{"name": "x", "num_rois": 100000000000}' >"$work/rois.json"
run 5 hostile "$bin" info "$work/rois.json"; has err "key 'num_rois': expected an integer from 1 to 1048576"

# A truncated checkpoint, and a foreign binary file, given as a model.
run 0 "$bin" convert "$src/tests/data/pth/neurobolt_micro_training.pth" "$work/micro.h5" \
  --config "$src/tests/data/neurobolt-micro.json"
head -c 2000 "$work/micro.h5" >"$work/cut.h5"
run 4 hostile "$bin" info "$work/cut.h5"
has err "cut.h5': an HDF5 file that HDF5 cannot open (truncated or damaged); expected a neurobolt checkpoint or prepared dataset"
one_line_error
run 4 hostile "$bin" bench --config "$work/cut.h5" --batch 1 --iterations 1
has err "cut.h5"; has err "expected a neurobolt checkpoint or a model config JSON"; one_line_error
grep -q "not valid JSON" "$work/err" && fail "a truncated HDF5 file reported as broken JSON"
printf 'PK\003\004\000\000\000' >"$work/model.zip"
run 4 hostile "$bin" info "$work/model.zip"; has err "model.zip': expected an EEG recording"; one_line_error
run 4 hostile "$bin" bench --config "$work/model.zip" --batch 1; has err "model.zip': a binary file"; one_line_error

# EDF: a NUL byte inside a label is escaped (the message is not cut there); a negative
# number of samples per record is called that, not "a sampling rate of 0 Hz".
python3 - "$real/edf/eeglab_test.edf" "$work/nul.edf" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
ns = int(b[252:256])
b[256:259] = b"A\0B"
b[256 + ns * 216:256 + ns * 216 + 8] = b"-256    "
open(sys.argv[2], "wb").write(b)
PY
run 4 hostile "$bin" info "$work/nul.edf"
has err "signal 1 ('A\\\\x00B"; has err "found -256 (a negative count)"; one_line_error

# A dangling symlink at the output path is an existing path: refused without --force, replaced
# (the link, not its target) with it.
ln -s "$work/nowhere.h5" "$work/link.h5"
run 3 "$bin" convert "$src/tests/data/pth/neurobolt_micro_training.pth" "$work/link.h5" \
  --config "$src/tests/data/neurobolt-micro.json"
has err "link.h5' already exists (use --force to overwrite)"; one_line_error
[ -e "$work/nowhere.h5" ] && fail "the symlink's target was written"
run 0 "$bin" convert "$src/tests/data/pth/neurobolt_micro_training.pth" "$work/link.h5" \
  --config "$src/tests/data/neurobolt-micro.json" --force
[ -L "$work/link.h5" ] && fail "--force wrote through the symlink instead of replacing it"
[ -e "$work/nowhere.h5" ] && fail "the symlink's target was written"
echo "ok: hostile"
