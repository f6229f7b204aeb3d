#!/usr/bin/env bash
# neurobolt stream (issue 12): a recording replayed through the real-time Streamer gives infer's
# predictions (same rows, values to the table's 6 digits), in real time and as fast as possible,
# with small and large chunks; latencies are printed; bad options and filtered checkpoints refused.
source "$(dirname "$0")/lib.sh"

trained_model 4 1
model=$work/run/best.h5
eeg=$work/sim/sub-01/eeg/sub-01_task-rest_run-1_eeg.edf

run 0 "$bin" infer "$model" "$eeg" -o "$work/pred" --threads 1
infer_tsv=$(find "$work/pred" -name '*_timeseries.tsv')
[ -s "$infer_tsv" ] || fail "infer wrote no table"

# compare A B: same header and rows, n/a in the same places, values within 2e-5 (6 digits).
compare() {
  python3 - "$1" "$2" <<'PY' || fail "stream's table differs from infer's"
import sys
a, b = (open(p).read().splitlines() for p in sys.argv[1:3])
assert a[0] == b[0], (a[0], b[0])
assert len(a) == len(b), (len(a), len(b))
worst = 0.0
for ra, rb in zip(a[1:], b[1:]):
    for x, y in zip(ra.split("\t"), rb.split("\t")):
        assert (x == "n/a") == (y == "n/a"), (ra, rb)
        if x != "n/a":
            worst = max(worst, abs(float(x) - float(y)) / max(1.0, abs(float(y))))
assert worst <= 2e-5, worst
print(f"{len(a) - 1} rows, largest difference {worst:.2g}")
PY
}

# As fast as possible, in 10 ms and in 3 s chunks.
run 0 "$bin" stream "$model" "$eeg" -o "$work/fast.tsv" --speed 0 --threads 1
has out "21 of 27 volumes predicted"; has out "latency median"; has err "volume 0 at .*: no full window"; has err "volume 26 at .*: latency"
compare "$work/fast.tsv" "$infer_tsv"
run 0 "$bin" stream "$model" "$eeg" -o "$work/chunks.tsv" --speed 0 --chunk-ms 3000 --threads 1
compare "$work/chunks.tsv" "$infer_tsv"
# Real time at 20x (3 s of wall time for the minute), values printed.
run 0 "$bin" stream "$model" "$eeg" -o "$work/paced.tsv" --speed 20 --threads 1 --values
compare "$work/paced.tsv" "$infer_tsv"
grep "latency median" "$work/out"

# Existing output without --force; bad options.
run 3 "$bin" stream "$model" "$eeg" -o "$work/fast.tsv" --speed 0; has err "already exists (use --force"
run 2 "$bin" stream "$model" "$eeg" --speed -1
run 2 "$bin" stream "$model" "$eeg" --chunk-ms 0
# A checkpoint trained with a zero-phase high-pass cannot stream: refused, naming the filter.
"$bin" prepare "$work/sim" -o "$work/hp.h5" --config neurobolt-tiny --rois calcarine,thalamus --highpass 0.5 \
  --split cross-subject --val-subjects 02 --test-subjects 03 -q || fail "prepare --highpass"
"$bin" train "$work/hp.h5" -o "$work/hp" --config neurobolt-tiny --epochs 1 --batch 4 --threads 1 -q || fail "train hp"
run 5 "$bin" stream "$work/hp/best.h5" "$eeg" --speed 0; has err "high-pass 0.5 Hz"; has err "zero-phase"; one_line_error
echo "ok: stream"
