#!/usr/bin/env bash
# neurobolt train on a tiny simulated study: outputs, refusing to overwrite, SIGKILL + --resume
# equals the uninterrupted run tensor for tensor, Ctrl-C exits 130 with a resumable last.h5, the
# ridge baseline, and one-line errors for config/checkpoint/data mismatches.
source "$(dirname "$0")/lib.sh"

"$bin" simulate --out "$work/sim" --subjects 2 --runs 1 --minutes 1.5 --sfreq 250 --seed 4 --threads 1 -q \
  || fail "simulate"
"$bin" prepare "$work/sim" -o "$work/data.h5" --config neurobolt-tiny --rois calcarine,thalamus \
  --split cross-subject --val-subjects 02 -q || fail "prepare"
train=("$bin" train "$work/data.h5" --config neurobolt-tiny --batch 2 --warmup-epochs 1 --seed 7 --threads 1)

# An uninterrupted run.
run 0 "${train[@]}" --epochs 3 -o "$work/whole"
has out "trained 3 epochs"; has err "epoch 3:"
for f in best.h5 last.h5 metrics.jsonl; do [ -s "$work/whole/$f" ] || fail "train did not write $f"; done
[ "$(wc -l <"$work/whole/metrics.jsonl")" -eq 3 ] || fail "metrics.jsonl should have one line per epoch"
python3 - "$work/whole/metrics.jsonl" <<'EOF' || fail "metrics.jsonl lines lack keys"
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert {"epoch", "train_loss", "val_mean_r", "val_r", "val_mse", "lr", "windows_per_s"} <= set(e), e.keys()
    assert len(e["val_r"]) == 2
EOF
run 0 "$bin" info "$work/whole/best.h5"; has out "2 ROIs: calcarine thalamus"

# Refuses to overwrite a run.
run 3 "${train[@]}" --epochs 3 -o "$work/whole"; has err "--resume"; has err "--force"; one_line_error

# SIGKILL in the middle of an epoch, then --resume: the same weights and optimizer state.
"${train[@]}" --epochs 3 -o "$work/killed" --checkpoint-steps 2 >"$work/killed.out" 2>"$work/killed.err" &
pid=$!
for _ in $(seq 1 600); do
  grep -q "checkpoint:" "$work/killed.err" && break
  sleep 0.02
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
grep -q "checkpoint:" "$work/killed.err" || { cat "$work/killed.err"; fail "no mid-epoch checkpoint was written"; }
grep -q "trained 3 epochs" "$work/killed.out" && fail "the run finished before it could be killed: nothing tested"
run 0 "${train[@]}" --epochs 3 -o "$work/killed" --resume; has err "resuming"; has out "trained 3 epochs"
h5diff "$work/whole/last.h5" "$work/killed/last.h5" /model /model >/dev/null \
  || fail "resumed weights differ from the uninterrupted run"
h5diff "$work/whole/last.h5" "$work/killed/last.h5" /optimizer /optimizer >/dev/null \
  || fail "resumed optimizer state differs from the uninterrupted run"
h5diff "$work/whole/best.h5" "$work/killed/best.h5" /model /model >/dev/null || fail "best.h5 differs"

# Ctrl-C: last.h5 is written and the exit status is 130.
"${train[@]}" -o "$work/interrupted" --epochs 50 >"$work/int.out" 2>"$work/int.err" &
pid=$!
for _ in $(seq 1 600); do
  grep -q "step" "$work/int.err" && break
  sleep 0.02
done
kill -INT $pid
wait $pid
status=$?
[ "$status" -eq 130 ] || { cat "$work/int.err"; fail "SIGINT: exit $status, expected 130"; }
grep -q "\-\-resume continues it" "$work/int.err" || { cat "$work/int.err"; fail "SIGINT: no resume hint"; }
[ -s "$work/interrupted/last.h5" ] || fail "SIGINT: no last.h5"

# The ridge baseline.
run 0 "$bin" train "$work/data.h5" -o "$work/ridge" --arch ridge --threads 1
has out "validation mean r"
[ -s "$work/ridge/best.h5" ] || fail "ridge: no best.h5"

# Mismatches are one-line errors naming both sides.
run 5 "${train[@]}" -o "$work/m1" --set window_samples=1600 --set temporal.max_patches=8
has err "1600"; has err "3200"; one_line_error
run 5 "${train[@]}" -o "$work/m2" --set temporal.no_such_key=1; has err "temporal.no_such_key"; one_line_error
"$bin" prepare "$work/sim" -o "$work/other.h5" --channels Fp1,Fp2,C3,C4 --rois calcarine,thalamus \
  --split cross-subject --val-subjects 02 -q || fail "prepare other"
run 5 "$bin" train "$work/other.h5" -o "$work/m3" --init "$work/whole/best.h5" --epochs 1 --batch 2 -q
has err "T7"; has err "other.h5"; has err "whole/best.h5"; one_line_error
# Initial weights: LaBraM pre-training weights, a reference .pth (2 ROIs: the head is re-initialised
# for the data's 3) and one of our checkpoints.
"$bin" prepare "$work/sim" -o "$work/micro.h5" --channels Fp1,Fp2,Cz --rois calcarine,thalamus,cuneus \
  --split cross-subject --val-subjects 02 -q || fail "prepare micro"
micro=("$bin" train "$work/micro.h5" --config "$src/tests/data/neurobolt-micro.json" --epochs 1 --batch 4 --threads 1)
run 0 "${micro[@]}" -o "$work/from-labram" --init "$src/tests/data/pth/labram_micro.pth"
has err "init: weights from"; has err "(labram)"
run 0 "${micro[@]}" -o "$work/from-ref" --init "$src/tests/data/pth/neurobolt_micro_training.pth"
has err "(neurobolt)"; has err "head re-initialised for 3 ROIs"
run 0 "${micro[@]}" -o "$work/from-ours" --init "$work/from-ref/best.h5"; has err "(checkpoint)"

# A BIDS root as DATA: prepared into RUN_DIR.data.h5 with prepare's options, reused the second time.
bids=("$bin" train "$work/sim" -o "$work/bids" --config neurobolt-tiny --epochs 1 --batch 4 --threads 1
      --rois calcarine --split cross-subject --val-subjects 02)
run 0 "${bids[@]}"; has err "dataset: prepared"; has out "trained 1 epoch;"
[ -s "$work/bids.data.h5" ] || fail "no cached dataset beside the run folder"
run 0 "${bids[@]}" --force; has err "prepared before from the same inputs"
run 0 "${bids[@]}" --force --lowpass-fmri none; has err "dataset: prepared"
echo "ok: train"
