#!/usr/bin/env bash
# neurobolt infer: BIDS derivative output, skipping complete runs, --force, one corrupt recording
# among good ones, shards whose union equals the unsharded output byte for byte, the --tr grid on
# a recording without triggers, reading in small time blocks, and model/data mismatches.
source "$(dirname "$0")/lib.sh"

trained_model 6 1.5
model=$work/run/best.h5

run 0 "$bin" infer "$model" "$work/sim" -o "$work/pred" --threads 1
has out "3 runs: 3 done, 0 skipped, 0 failed"
tsv=$work/pred/sub-01/func/sub-01_task-rest_run-1_desc-neurobolt_timeseries.tsv
[ -s "$tsv" ] && [ -s "${tsv%.tsv}.json" ] && [ -s "$work/pred/dataset_description.json" ] || fail "missing outputs"
[ "$(head -1 "$tsv")" = "$(printf 'calcarine\tthalamus')" ] || fail "TSV header is not the ROI names"
# One row per volume (42: TR 2 s from 5 s to 1.5 min), n/a before the first full 16 s window.
[ "$(($(wc -l <"$tsv") - 1))" -eq 42 ] || fail "expected 42 rows, found $(($(wc -l <"$tsv") - 1))"
sed -n 2p "$tsv" | grep -q "n/a" || fail "the first volume has no full window and should be n/a"
python3 - "${tsv%.tsv}.json" "$model" <<'EOF' || fail "sidecar"
import hashlib, json, sys
s = json.load(open(sys.argv[1]))
assert s["Grid"] == "triggers" and s["RepetitionTime"] == 2.0, s
assert len(s["VolumeOnsets"]) == 42 and s["VolumeOnsets"][0] == 5.0 and s["Units"] == "z"
assert s["Checkpoint"]["SHA256"] == hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
assert len(s["TargetNormalisation"]["Mean"]) == 2 and s["Windows"] == 42 - 6
EOF

# Complete runs from the same checkpoint are skipped; --force redoes them.
run 0 "$bin" infer "$model" "$work/sim" -o "$work/pred" --threads 1; has out "0 done, 3 skipped"
run 0 "$bin" infer "$model" "$work/sim" -o "$work/pred" --threads 1 --force; has out "3 done, 0 skipped"

# Predictions written into the dataset's own derivatives are never taken for targets afterwards.
run 0 "$bin" infer "$model" "$work/sim" -o "$work/sim/derivatives/neurobolt" --threads 1
run 0 "$bin" prepare "$work/sim" -o "$work/again.h5" --config neurobolt-tiny --rois calcarine,thalamus -q
run 0 "$bin" eval "$work/sim/derivatives/neurobolt" --targets "$work/sim" --split all
has err "not searched for targets: it holds predictions"
rm -rf "$work/sim/derivatives/neurobolt"

# Shards: the union of 0/2 and 1/2 is the unsharded output, byte for byte.
run 0 "$bin" infer "$model" "$work/sim" -o "$work/union" --shard 0/2 --threads 1; has out "2 runs"
run 0 "$bin" infer "$model" "$work/sim" -o "$work/union" --shard 1/2 --threads 1; has out "1 run: 1 done"
diff -r "$work/pred" "$work/union" >/dev/null || fail "the union of the shards differs from the whole"
run 2 "$bin" infer "$model" "$work/sim" -o "$work/x" --shard 2/2

# Reading the EEG in tiny time blocks (0.02 MB: 40 samples of 250 Hz x 32 channels read at a time,
# far less than one 16 s window) on a dense grid gives the same bytes as the default blocks.
run 0 "$bin" infer "$model" "$work/sim" -o "$work/dense" --stride 0.5 --threads 1
run 0 "$bin" infer "$model" "$work/sim" -o "$work/dense_blocks" --stride 0.5 --threads 1 --read-block-mb 0.02
diff -r "$work/dense" "$work/dense_blocks" >/dev/null || fail "small read blocks change the predictions"
run 2 "$bin" infer "$model" "$work/sim" -o "$work/x" --read-block-mb 0

# A corrupt recording among good ones: the others are done, the exit status says it failed.
cp -r "$work/sim" "$work/sim2"
edf=$work/sim2/sub-02/eeg/sub-02_task-rest_run-1_eeg.edf
head -c 3000 "$edf" >"$work/cut.edf" && mv "$work/cut.edf" "$edf"
run 4 "$bin" infer "$model" "$work/sim2" -o "$work/pred2" --threads 1
has out "3 runs: 2 done, 0 skipped, 1 failed"; has out "sub-02_task-rest_run-1_eeg.edf"
[ -s "$work/pred2/sub-01/func/sub-01_task-rest_run-1_desc-neurobolt_timeseries.tsv" ] || fail "good run not done"
[ ! -e "$work/pred2/sub-02/func/sub-02_task-rest_run-1_desc-neurobolt_timeseries.tsv" ] || fail "output of a failed run"

# A recording without triggers: the --tr grid (EEGMMIDB EDF, 64 channels incl. the tiny model's 8).
real=$shared/data/real/edf/test_edf_overlapping_annotations.edf
if [ -f "$real" ]; then
  run 5 "$bin" infer "$model" "$real" -o "$work/real" --trigger NO_SUCH_MARKER; has err "--tr"
  run 0 "$bin" infer "$model" "$real" -o "$work/real" --trigger NO_SUCH_MARKER --tr 2
  out_tsv=$(ls "$work"/real/*_desc-neurobolt_timeseries.tsv)
  grep -q '"Grid": "tr"' "${out_tsv%.tsv}.json" || fail "no tr grid"
fi

# A model channel the recordings lack (FT9 is not on the simulated MR cap): prepare interpolated it
# for training; infer does the same by default and says so, or fails naming it on request.
"$bin" prepare "$work/sim" -o "$work/ft9.h5" --channels Fp1,Fp2,C3,C4,O1,O2,FT9 --rois calcarine \
  --split cross-subject --val-subjects 02 -q || fail "prepare with FT9"
"$bin" train "$work/ft9.h5" -o "$work/ft9" --config neurobolt-tiny --epochs 1 --batch 4 --threads 1 -q \
  || fail "train with FT9"
run 0 "$bin" infer "$work/ft9/best.h5" "$work/sim" -o "$work/p4" --threads 1; has err "interpolated: FT9"
grep -q '"FT9"' "$work/p4/sub-01/func/sub-01_task-rest_run-1_desc-neurobolt_timeseries.json" \
  || fail "the sidecar does not list the interpolated channel"
run 5 "$bin" infer "$work/ft9/best.h5" "$work/sim" -o "$work/p5" --missing-channels error --threads 1
has out "3 failed"; has out "FT9"
run 2 "$bin" infer "$work/ft9/best.h5" "$work/sim" -o "$work/p5" --missing-channels sometimes
# --atlas: a 4-D image per run on the atlas grid, one volume per row, regions carrying their ROI.
"$bin" simulate --out "$work/simn" --subjects 1 --runs 1 --minutes 1 --sfreq 250 --nifti --seed 3 --threads 1 -q \
  || fail "simulate --nifti"
atlas=$work/simn/derivatives/neurobolt-sim/atlas/atlas-roi_dseg
run 0 "$bin" infer "$model" "$work/simn" -o "$work/pn" --atlas "$atlas.nii.gz" --atlas-labels "$atlas.tsv" --threads 1
image=$work/pn/sub-01/func/sub-01_task-rest_run-1_desc-neurobolt_bold.nii.gz
python3 - "$image" "$atlas.nii.gz" "$work/pn/sub-01/func/sub-01_task-rest_run-1_desc-neurobolt_timeseries.tsv" \
  <<'EOF2' || fail "the atlas image does not carry the predictions"
import gzip, struct, sys
def load(path):
    raw = gzip.open(path).read()
    dims = struct.unpack("<8h", raw[40:56])
    datatype = struct.unpack("<h", raw[70:72])[0]
    offset = int(struct.unpack("<f", raw[108:112])[0])
    return dims, datatype, raw, offset
dims, datatype, raw, offset = load(sys.argv[1])
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[3])]
assert dims[0] == 4 and dims[4] == len(rows) - 1, dims
assert datatype == 16, datatype  # float32
adims, atype, araw, aoffset = load(sys.argv[2])
n = dims[1] * dims[2] * dims[3]
fmt = {2: "B", 4: "h", 8: "i", 16: "f", 512: "H", 768: "I"}[atype]
labels = struct.unpack("<%d%s" % (n, fmt), araw[aoffset:aoffset + n * struct.calcsize(fmt)])
names = {int(l.split("\t")[0]): l.split("\t")[1].strip() for l in open(sys.argv[2].replace(".nii.gz", ".tsv")).readlines()[1:]}
voxel = next(i for i, v in enumerate(labels) if names.get(int(v)) == rows[0][0])
last = len(rows) - 2
value = struct.unpack("<f", raw[offset + 4 * (last * n + voxel):offset + 4 * (last * n + voxel + 1)])[0]
assert abs(value - float(rows[-1][0])) < 1e-5 * max(1, abs(value)), (value, rows[-1][0])
EOF2
echo "ok: infer"
