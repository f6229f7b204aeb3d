#!/usr/bin/env bash
# What the MR artefact correction is worth where it matters: a simulated study recorded inside
# the scanner (5 kHz EEG with the gradient artefact and the BCG; the clean EEG kept as ground
# truth), evaluated three ways with the ridge baseline under the cross-subject protocol:
#   clean    the true clean EEG (the ceiling: what a perfect correction would give)
#   cleaned  the raw EEG through `prepare --clean`
#   raw      the raw EEG as it is (no correction)
# plus `neurobolt clean --truth` on one run: per-channel r with the true EEG and the residual
# power at the gradient and heart-rate harmonics relative to the clean EEG's.
#
#   bash tools/clean-eval.sh [WORK_DIR] [NEUROBOLT]   (default: /tmp/neurobolt-clean-eval, build/tools/neurobolt)
# Environment: SUBJECTS (4), MINUTES (8), CHANNELS (mr32), VAL (03) and TEST (04) subjects.
set -euo pipefail
work=${1:-/tmp/neurobolt-clean-eval}
bin=${2:-$(dirname "$0")/../build/tools/neurobolt}
subjects=${SUBJECTS:-4} minutes=${MINUTES:-8} channels=${CHANNELS:-mr32}
mkdir -p "$work"
cd "$work"
split=(--split cross-subject --val-subjects "${VAL:-03}" --test-subjects "${TEST:-04}")

echo "== simulate: $subjects subjects x $minutes min, 5 kHz, gradient + BCG"
"$bin" simulate --out raw --subjects "$subjects" --minutes "$minutes" --sfreq 5000 --channels "$channels" \
  --artefacts gradient,bcg --seed 1 --force -q
# The clean twin: the same study with each raw EEG replaced by its ground truth.
rm -rf clean && cp -r raw clean
for truth in clean/derivatives/neurobolt-sim-truth/sub-*/eeg/*_desc-clean_eeg.edf; do
  sub=$(basename "$(dirname "$(dirname "$truth")")")
  name=$(basename "$truth" | sed 's/_desc-clean_eeg.edf/_eeg.edf/')
  cp "$truth" "clean/$sub/eeg/$name"
done

echo "== clean one run against its truth"
run=$(ls raw/sub-01/eeg/*_eeg.edf | head -1)
truth=$(ls raw/derivatives/neurobolt-sim-truth/sub-01/eeg/*_desc-clean_eeg.edf | head -1)
/usr/bin/time -f "clean: %e s wall, %M KiB peak" "$bin" clean "$run" -o run-cleaned.edf --report run-cleaned.json \
  --truth "$truth" --force
"$bin" bench --read "$run" 2>/dev/null | tail -3 || true

for variant in clean cleaned raw; do
  echo "== $variant"
  case $variant in
    clean) "$bin" prepare clean -o clean.h5 "${split[@]}" --force -q ;;
    cleaned) /usr/bin/time -f "prepare --clean: %e s wall, %M KiB peak" \
               "$bin" prepare raw -o cleaned.h5 --clean "${split[@]}" --force -q ;;
    raw) "$bin" prepare raw -o raw.h5 "${split[@]}" --force -q ;;
  esac
  "$bin" train "$variant.h5" -o "ridge-$variant" --arch ridge --force -q
  "$bin" eval "ridge-$variant/best.h5" "$variant.h5" --split test --json "eval-$variant.json" -q
  python3 -c "import json,sys; d=json.load(open('eval-$variant.json')); print('$variant: test mean r %.3f' % d['mean_r'])"
done
