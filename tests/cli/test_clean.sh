#!/usr/bin/env bash
# neurobolt clean: a simulated raw scanner recording (5 kHz, gradient + BCG) cleaned and compared
# with its ground truth; the report; outputs never replaced without --force; refusals (no
# triggers under an artefact, wrong trigger label, options that cannot apply); recordings without
# a scanner passed through; the real EEG-fMRI headers whose signal files are not shipped.
source "$(dirname "$0")/lib.sh"
base=sub-01_task-rest_run-1
chans=Fp1,F3,C3,P3,O1,Fp2,F4,C4,P4,O2,Cz,Pz,ECG

# Raw: volume triggers 'R128', the gradient and BCG at 5 kHz; truth: the clean EEG.
run 0 "$bin" simulate --out "$work/raw" --subjects 1 --minutes 1.5 --sfreq 5000 --channels "$chans" \
  --artefacts gradient,bcg --seed 3 --threads 1 -q
raw=$work/raw/sub-01/eeg/${base}_eeg.edf
truth=$work/raw/derivatives/neurobolt-sim-truth/sub-01/eeg/${base}_desc-clean_eeg.edf
run 0 "$bin" clean "$raw" -o "$work/clean.edf" --report "$work/report.json" --truth "$truth" --threads 2
has err "gradient: volume triggers 'R128'"; has err "30 slices per volume (inferred), slice period 65.00 ms"; has err "BCG: "
has out "median r"
median_r=$(sed -n 's/.*median r \([0-9.]*\),.*/\1/p' "$work/out")
awk -v r="$median_r" 'BEGIN { exit !(r > 0.92) }' || { cat "$work/out"; fail "median r $median_r with the truth, expected > 0.92"; }
grep -q '"applied": true' "$work/report.json" || fail "the report does not say the correction was applied"
grep -q '"median_r"' "$work/report.json" || fail "the report lacks the comparison"
run 0 "$bin" info "$work/clean.edf"; has out "250"; has out "R-peak"; has out "R128"
# The raw recording compared with the truth, for scale: far from it.
run 0 "$bin" clean "$raw" -o "$work/none.edf" --no-gradient --no-bcg --truth "$truth"
raw_r=$(sed -n 's/.*median r \([-0-9.]*\),.*/\1/p' "$work/out")
awk -v r="$raw_r" 'BEGIN { exit !(r < 0.5) }' || fail "uncorrected median r $raw_r, expected < 0.5"

# prepare --clean and infer --clean: windows and predictions from the cleaned EEG, said so.
run 0 "$bin" prepare "$work/raw" -o "$work/data.h5" --clean --threads 2
has err "cleaned (gradient: 42 volume epochs ('R128'); BCG: "
run 0 "$bin" train "$work/data.h5" -o "$work/ridge" --arch ridge -q
run 0 "$bin" infer "$work/ridge/best.h5" "$raw" -o "$work/pred" --clean --threads 2
has err "cleaned (gradient: 42 volume epochs"
side=$(ls "$work"/pred/*_desc-neurobolt_timeseries.json 2>/dev/null | head -1)
[ -n "$side" ] || side=$(find "$work/pred" -name '*_timeseries.json' | head -1)
grep -q '"Cleaning": "gradient: 42 volume epochs' "$side" || { cat "$side"; fail "the sidecar does not say how the EEG was cleaned"; }

# Outputs: never replaced without --force; the report is checked before the work.
run 3 "$bin" clean "$raw" -o "$work/clean.edf"; has err "--force"; one_line_error
touch "$work/r2.json"
run 3 "$bin" clean "$raw" -o "$work/c2.edf" --report "$work/r2.json"; has err "r2.json"; one_line_error
[ ! -e "$work/c2.edf" ] || fail "clean wrote its output although the report could not be written"
run 0 "$bin" clean "$raw" -o "$work/clean.edf" --force -q
[ ! -s "$work/err" ] || { cat "$work/err"; fail "-q printed notes"; }

# Triggers under another label: refused (the artefact is there), then named.
run 0 "$bin" simulate --out "$work/other" --subjects 1 --minutes 1 --sfreq 5000 --channels Cz,Pz,O1,ECG \
  --artefacts gradient --trigger Volume7 --seed 5 --threads 1 -q
other=$work/other/sub-01/eeg/${base}_eeg.edf
run 5 "$bin" clean "$other" -o "$work/o.edf"; has err "no scanner triggers"; has err "--trigger"; has err "Volume7"
one_line_error
run 0 "$bin" clean "$other" -o "$work/o.edf" --trigger Volume7 --no-bcg; has err "volume triggers 'Volume7'"

# Options that cannot apply are usage errors naming them.
run 2 "$bin" clean "$raw" -o "$work/x.edf" --no-bcg --ecg ECG; has err "--ecg"; one_line_error
run 2 "$bin" clean "$raw" -o "$work/x.edf" --no-gradient --template 10; has err "--template"; one_line_error
run 2 "$bin" clean "$raw" -o "$work/x.edf" --bcg-method aas --bcg-components 2; has err "--bcg-components"; one_line_error
run 2 "$bin" clean "$raw" -o "$work/x.edf" --template 1; has err "--template"; one_line_error
run 5 "$bin" clean "$raw" -o "$work/x.edf" --sfreq 10000; has err "at most the recording's 5000 Hz"; one_line_error
run 5 "$bin" clean "$raw" -o "$work/x.edf" --ecg EKG9 -q; has err "ECG channel 'EKG9' not found"; has err "Fp1, F3"
one_line_error
run 3 "$bin" clean "$work/nope.edf" -o "$work/x.edf"; has err "nope.edf"; one_line_error

# No scanner: real recordings from ordinary amplifiers are passed through (resampled), with a note.
for f in "$shared/data/real/brainvision/mne_test/test.vhdr" "$shared/data/real/edf/chtypes_edf.edf" \
         "$shared/data/real/bdf/mne_test.bdf"; do
  [ -f "$f" ] || continue
  run 0 "$bin" clean "$f" -o "$work/pass.edf" --sfreq 0 --force; has err "no MR scanner"
  has err "nothing to correct"
done

# The real simultaneous EEG-fMRI headers ship without their signal files: the raw 5 kHz header has
# no scanner markers, the corrected one is missing its data; both refusals name the file.
real=$shared/data/real/eegfmri_headers_only/bids_eeg_rest_fmri
if [ -d "$real" ]; then
  run 3 "$bin" clean "$real/raw/sub-32_task-rest_eeg.vhdr" -o "$work/real.edf"
  has err "sub-32_task-rest_eeg.eeg"; one_line_error
  run 3 "$bin" clean "$real/derivatives/sub-32_task-rest_eeg.vhdr" -o "$work/real.edf"
  has err "sub-32_task-rest_eeg.dat"; one_line_error
fi
echo "cli.clean: all checks passed"
