#!/usr/bin/env bash
# Inputs that are well-formed but wrong: prepare refuses or warns instead of writing silent
# garbage with exit 0 (issue 13, class 11).
source "$(dirname "$0")/lib.sh"
limit_memory 8000000
sim=$work/sim
"$bin" simulate --out "$sim" --subjects 2 --runs 1 --minutes 1 --sfreq 250 --seed 5 -q --threads 1 >/dev/null \
  || fail "simulate failed"
edf=$sim/sub-01/eeg/sub-01_task-rest_run-1_eeg.edf
targets=$sim/derivatives/neurobolt-sim/sub-01/func/sub-01_task-rest_run-1_desc-roi_timeseries.tsv

# One absurd value in an ROI table: refused, naming the row and the ROI (it used to turn whole
# columns into NaN after the low-pass, with exit 0).
awk 'NR == 5 { $2 = "1e308" } { print }' OFS='\t' "$targets" >"$work/huge.tsv"
run 4 timeout 60 "$bin" prepare --eeg "$edf" --targets "$work/huge.tsv" --tr 2 -o "$work/huge.h5" -q
has err "huge.tsv' row 4 (volume 3), ROI 'cuneus': expected a value within +-1e+30, found 1e+308"; one_line_error
[ ! -e "$work/huge.h5" ] || fail "a refused prepare wrote its output"

# Zero-filling every required channel would never read the file: refused.
run 5 "$bin" prepare "$sim" -o "$work/zero.h5" --channels FT9,FT10 --missing-channels zero -q
has err "none of the 2 required channels (FT9, FT10) is in the recording"; one_line_error

# A channel constant over the whole run: a warning naming it, also with -q.
python3 - "$edf" "$work/flat.edf" <<'PY'
import sys
data = bytearray(open(sys.argv[1], 'rb').read())
header_bytes = int(data[184:192]); ns = int(data[252:256]); nrec = int(data[236:244])
labels = [data[256 + 16 * i:256 + 16 * (i + 1)].decode().strip() for i in range(ns)]
off = 256 + ns * 216
spr = [int(data[off + 8 * i:off + 8 * (i + 1)]) for i in range(ns)]
k = labels.index('O1')
record = sum(spr) * 2
for r in range(nrec):
    start = header_bytes + r * record + sum(spr[:k]) * 2
    data[start:start + spr[k] * 2] = b'\x00\x00' * spr[k]
open(sys.argv[2], 'wb').write(data)
PY
[ -s "$work/flat.edf" ] || fail "could not make the flat-channel EDF"
run 0 "$bin" prepare --eeg "$work/flat.edf" --targets "$targets" --tr 2 -o "$work/flat.h5" --config neurobolt-tiny -q
has err "^warning: .*flat.edf': 1 channel is constant over the whole run .*: O1"

# A BIDS run whose EEG file is missing is reported, not dropped without a word.
rm "$sim"/sub-02/eeg/*_eeg.edf
run 0 "$bin" prepare "$sim" -o "$work/one.h5" --config neurobolt-tiny -q
has err "^warning: skipped 'derivatives/neurobolt-sim/sub-02/.*': no EEG run matches this target (is its EEG file missing?)"
# Legitimate but large: 3000 ROI names (over HDF5's 64 KiB compact-attribute limit as one JSON
# list) are written and read back, not refused after all the work (class 12).
python3 - "$work/wide.tsv" <<'PY'
import random, sys
random.seed(1)
rows = ["\t".join(f"roi_{i:04d}_with_a_long_descriptive_name" for i in range(3000))]
for v in range(27):
    rows.append("\t".join(f"{random.gauss(0, 1):.4f}" for _ in range(3000)))
open(sys.argv[1], "w").write("\n".join(rows) + "\n")
PY
run 0 "$bin" prepare --eeg "$edf" --targets "$work/wide.tsv" --tr 2 -o "$work/wide.h5" --config neurobolt-tiny -q
run 0 "$bin" info "$work/wide.h5" --json; has out "roi_2999_with_a_long_descriptive_name"
# (a 3000-ROI checkpoint's write and read: tests/unit/test_checkpoint.cpp)

# A BrainVision header whose data file is missing: an I/O error naming that file (it used to be
# "no samples to window").
mkdir "$work/bv"
cp "$shared/data/real/brainvision/mne_test/test.vhdr" "$shared/data/real/brainvision/mne_test/test.vmrk" "$work/bv/"
run 3 "$bin" prepare --eeg "$work/bv/test.vhdr" --targets "$targets" --tr 2 -o "$work/bv.h5" -q
has err "bv/test.eeg': no such file"; one_line_error
# A target-entity filter that leaves nothing: the reason comes first, with the values found.
run 5 "$bin" prepare "$sim" -o "$work/e.h5" --target-entity atlas=Schaefer100 -q
sed -n 2p "$work/err" | grep -q "left out for lacking atlas=Schaefer100 (they have atlas: none)" \
  || { cat "$work/err"; fail "the entity filter's reason is not the first line"; }
grep -q "holds no target" "$work/err" && fail "a folder whose targets were filtered is called empty"
echo "ok: bad_data"
