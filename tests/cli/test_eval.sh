#!/usr/bin/env bash
# neurobolt eval: numbers equal a hand computation from the files, both ways of evaluating agree,
# JSON and report are written, mismatches are one-line errors naming both sides.
source "$(dirname "$0")/lib.sh"

"$bin" simulate --out "$work/sim" --subjects 3 --runs 1 --minutes 1.5 --sfreq 250 --seed 8 --threads 1 -q \
  || fail "simulate"
# No fMRI low-pass, so that the hand computation below needs no filter.
"$bin" prepare "$work/sim" -o "$work/data.h5" --config neurobolt-tiny --rois calcarine,thalamus,cuneus \
  --lowpass-fmri none --split cross-subject --val-subjects 02 --test-subjects 03 -q || fail "prepare"
"$bin" train "$work/data.h5" -o "$work/run" --config neurobolt-tiny --epochs 2 --batch 4 --threads 1 -q \
  || fail "train"
"$bin" train "$work/data.h5" -o "$work/ridge" --arch ridge -q || fail "train ridge"
"$bin" infer "$work/run/best.h5" "$work/sim" -o "$work/pred" --threads 1 -q || fail "infer"

# From the prediction folder, against the BIDS targets, every row of subject 01.
run 0 "$bin" eval "$work/pred" --targets "$work/sim" --subjects 01 --split all --json "$work/e.json"
has out "calcarine"; has out "mean r"
python3 - "$work" <<'EOF' || fail "eval differs from the hand computation"
import json, math, sys
work = sys.argv[1]
stem = "sub-01/func/sub-01_task-rest_run-1"
pred_rows = [l.rstrip("\n").split("\t") for l in open(f"{work}/pred/{stem}_desc-neurobolt_timeseries.tsv")]
side = json.load(open(f"{work}/pred/{stem}_desc-neurobolt_timeseries.json"))
target_rows = [l.rstrip("\n").split("\t") for l in
               open(f"{work}/sim/derivatives/neurobolt-sim/{stem}_desc-roi_timeseries.tsv")]
result = json.load(open(f"{work}/e.json"))
for j, roi in enumerate(pred_rows[0]):
    col = target_rows[0].index(roi)
    mean, std = side["TargetNormalisation"]["Mean"][j], side["TargetNormalisation"]["Std"][j]
    pairs = [(float(p[j]), (float(t[col]) - mean) / std)
             for p, t in zip(pred_rows[1:], target_rows[1:]) if p[j] != "n/a"]
    n = len(pairs)
    mp = sum(p for p, _ in pairs) / n
    mt = sum(t for _, t in pairs) / n
    sxy = sum((p - mp) * (t - mt) for p, t in pairs)
    sxx = sum((p - mp) ** 2 for p, _ in pairs)
    syy = sum((t - mt) ** 2 for _, t in pairs)
    r = sxy / math.sqrt(sxx * syy)
    mse = sum((p - t) ** 2 for p, t in pairs) / n
    r2 = 1 - sum((p - t) ** 2 for p, t in pairs) / syy
    got = next(x for x in result["per_roi"] if x["roi"] == roi)
    assert got["n"] == n, (roi, got["n"], n)
    for key, want in (("r", r), ("mse", mse), ("r2", r2)):
        assert abs(got[key] - want) < 1e-5 * max(1, abs(want)), (roi, key, got[key], want)
    print(f"{roi}: r {r:.6f} mse {mse:.6f} r2 {r2:.6f} (n {n}) as computed by hand")
EOF

# From the checkpoint over the prepared dataset: the same test-split numbers as the folder way.
run 0 "$bin" eval "$work/run/best.h5" "$work/data.h5" --split test --baseline "$work/ridge/best.h5" \
  --json "$work/m.json" --report "$work/report.html"
has out "baseline r"; has out "noise ceiling"
run 0 "$bin" eval "$work/pred" --targets "$work/sim" --split test --json "$work/f.json"
python3 - "$work/m.json" "$work/f.json" <<'EOF' || fail "checkpoint and folder evaluations disagree"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
# The folder's TSV holds 6 significant digits.
assert abs(a["mean_r"] - b["mean_r"]) < 1e-4, (a["mean_r"], b["mean_r"])
assert "baseline" in a and "noise_ceiling" in a
EOF
grep -q "<svg" "$work/report.html" || fail "the report has no chart"
grep -q "ridge" "$work/report.html" || fail "the report lacks the baseline"
run 3 "$bin" eval "$work/run/best.h5" "$work/data.h5" --json "$work/m.json"; has err "--force"; one_line_error

# Mismatches: a model on other channels than the data, a folder without targets, a bad split.
"$bin" prepare "$work/sim" -o "$work/four.h5" --channels Fp1,Fp2,C3,C4 --rois calcarine \
  --split cross-subject --val-subjects 02 -q || fail "prepare four"
run 5 "$bin" eval "$work/run/best.h5" "$work/four.h5" -q; has err "T7"; has err "four.h5"; one_line_error
"$bin" prepare "$work/sim" -o "$work/roi.h5" --config neurobolt-tiny --rois calcarine,insula \
  --split cross-subject --val-subjects 02 -q || fail "prepare other ROIs"
run 5 "$bin" eval "$work/run/best.h5" "$work/roi.h5" -q; has err "thalamus"; has err "roi.h5"; one_line_error
python3 - "$src/models/neurobolt-tiny.json" "$work/tiny100.json" <<'EOF2'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(name="tiny-100hz", sample_rate=100, window_samples=1600, patch_size=100)
c["embed_dim"] = 26; c["temporal"].update(conv_channels=2, conv_groups=2, heads=2, max_patches=16)
c["spectral"].update(base_window=50, heads=2, dim_head=13)
json.dump(c, open(sys.argv[2], "w"))
EOF2
"$bin" prepare "$work/sim" -o "$work/100hz.h5" --config "$work/tiny100.json" --rois calcarine \
  --split cross-subject --val-subjects 02 -q || fail "prepare at 100 Hz"
run 5 "$bin" eval "$work/run/best.h5" "$work/100hz.h5" -q; has err "3200-sample windows at 200 Hz"
has err "1600-sample windows at 100 Hz"; one_line_error
run 2 "$bin" eval "$work/pred"; has err "--targets"
run 2 "$bin" eval "$work/pred" --targets "$work/sim" --split sideways
echo "ok: eval"
