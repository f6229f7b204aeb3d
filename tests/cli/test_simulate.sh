#!/usr/bin/env bash
# neurobolt simulate: what --force may replace, sizes refused before anything is allocated, bad
# option values (exit 2) against bad config values (exit 5), trigger labels with spaces, the -q
# contract, and the BIDS files it writes.
source "$(dirname "$0")/lib.sh"
small=(--subjects 1 --runs 1 --minutes 0.5 --sfreq 250 --seed 4 --threads 1)
no_temp() { ! ls -d "$work"/*.tmp-* >/dev/null 2>&1 || { ls -d "$work"/*.tmp-*; fail "a temporary folder was left behind"; }; }

# --force replaces only an earlier simulation output; a folder holding someone's file survives.
mkdir -p "$work/mine"; echo "keep me" >"$work/mine/notes.txt"
run 3 "$bin" simulate --out "$work/mine" "${small[@]}"; has err "--force"; one_line_error
run 3 "$bin" simulate --out "$work/mine" "${small[@]}" --force
has err "mine"; has err "not an earlier simulation output"; has err "neurobolt simulate"; one_line_error
[ "$(cat "$work/mine/notes.txt")" = "keep me" ] || fail "--force deleted a folder simulate never wrote"
(cd "$work/mine" && run 3 "$bin" simulate --out . "${small[@]}" --force -q) || exit 1
[ -f "$work/mine/notes.txt" ] || fail "--out . --force emptied the working directory"
ds=$work/sim
run 0 "$bin" simulate --out "$ds" "${small[@]}" -q
run 0 "$bin" simulate --out "$ds" --subjects 2 --minutes 0.5 --sfreq 250 --threads 1 --force -q
echo "mine" >"$ds/notes.txt"
run 3 "$bin" simulate --out "$ds" "${small[@]}" --force -q; has err "'notes.txt' is not written by neurobolt simulate"
[ -f "$ds/notes.txt" ] || fail "--force deleted a file added to a simulation"
rm "$ds/notes.txt"
no_temp

# Sizes and rates are checked before allocating, under a memory limit: a usage error for an
# option, a config error naming file and field for --config; never an internal error, never a
# temporary folder left behind.
(
  limit_memory 8000000
  run 2 "$bin" simulate --out "$work/big" --minutes 1e9 -q; has err "--minutes"; has err "1e+09"; one_line_error
  run 2 "$bin" simulate --out "$work/big" --minutes 200 --sfreq 20000 -q
  has err "--minutes, --sfreq"; has err "samples per channel and run"; one_line_error
  run 2 "$bin" simulate --out "$work/big" --subjects 999 --sessions 99 --runs 99 -q; has err "runs in all"; one_line_error
  echo '{"artefacts": {"blink_rate": 1e9}}' >"$work/blink.json"
  run 5 "$bin" simulate --out "$work/big" --config "$work/blink.json" -q
  has err "blink.json"; has err "artefacts.blink_rate"; has err "at most 120 per minute"; one_line_error
  echo '{"artefacts": {"muscle_rate": 1e9}}' >"$work/muscle.json"
  run 5 "$bin" simulate --out "$work/big" --config "$work/muscle.json" -q; has err "artefacts.muscle_rate"; one_line_error
  echo '{"minutes": 1e9}' >"$work/minutes.json"
  run 5 "$bin" simulate --out "$work/big" --config "$work/minutes.json" -q
  has err "minutes.json"; has err "minutes: expected at most 240"; one_line_error
  # A bad option over a good file: the option is named.
  echo '{"subjects": 2}' >"$work/two.json"
  run 2 "$bin" simulate --out "$work/big" --config "$work/two.json" --minutes 1e9 -q; has err "--minutes"; one_line_error
  echo '{"rois": [{"name": "r", "hrf": {"length": 1e9}}]}' >"$work/hrf.json"
  run 5 "$bin" simulate --out "$work/big" --config "$work/hrf.json" -q; has err "hrf.length"; one_line_error
  # A simulation that is allowed runs under the limit.
  run 0 "$bin" simulate --out "$work/limited" "${small[@]}" -q
) || exit 1
[ ! -e "$work/big" ] || fail "a refused simulation wrote its output"
no_temp

# Unknown names: a bad option value exits 2 naming the option and the value, alone or in a list;
# inside --config it exits 5 naming the file and the field.
run 2 "$bin" simulate --out "$work/x" --channels NOPE -q; has err "--channels"; has err "'NOPE'"; one_line_error
run 2 "$bin" simulate --out "$work/x" --channels O1,NOPE -q; has err "--channels"; has err "'NOPE'"; one_line_error
run 2 "$bin" simulate --out "$work/x" --channels O1,mr32 -q; has err "--channels"; has err "'mr32'"; one_line_error
run 2 "$bin" simulate --out "$work/x" --channels O1,O1 -q; has err "--channels"; has err "'O1' twice"; one_line_error
run 2 "$bin" simulate --out "$work/x" --rois calcarine,NOPE -q; has err "--rois"; has err "'NOPE'"; one_line_error
run 2 "$bin" simulate --out "$work/x" --reference NOPE -q; has err "--reference"; has err "'NOPE'"; one_line_error
run 2 "$bin" simulate --out "$work/x" --task "a_b" -q; has err "--task"; has err "'a_b'"; one_line_error
run 2 "$bin" simulate --out "$work/x" --sfreq 250.5 -q; has err "--sfreq"; has err "250.5"; one_line_error
echo '{"channels": ["O1", "NOPE"]}' >"$work/channels.json"
run 5 "$bin" simulate --out "$work/x" --config "$work/channels.json" -q
has err "channels.json"; has err "channels"; has err "'NOPE'"; one_line_error
echo '{"reference": "NOPE"}' >"$work/reference.json"
run 5 "$bin" simulate --out "$work/x" --config "$work/reference.json" -q
has err "reference.json"; has err "reference"; one_line_error
[ ! -e "$work/x" ] || fail "a refused simulation wrote its output"

# Trigger labels: any text an EDF+ annotation holds, spaces included.
run 0 "$bin" simulate --out "$work/scan" "${small[@]}" --trigger "Scan Start" -q
run 0 "$bin" info "$work/scan"; has out "Scan Start"
run 0 "$bin" simulate --dump-config --trigger "T  1" -q; has out '"trigger_label": "T  1"'
run 2 "$bin" simulate --out "$work/x" --trigger " R128" -q; has err "--trigger"; has err "starting or ending"
run 2 "$bin" simulate --out "$work/x" --trigger "$(printf 'R\t128')" -q; has err "--trigger"; has err "control"
run 2 "$bin" simulate --out "$work/x" --trigger "$(printf '%041d' 0)" -q; has err "--trigger"; has err "1 to 40 bytes"

# -q: nothing at all on success; without it, progress on stderr and the summary on stdout.
run 0 "$bin" simulate --out "$work/quiet" "${small[@]}" -q
[ ! -s "$work/out" ] && [ ! -s "$work/err" ] || { cat "$work/out" "$work/err"; fail "-q printed something"; }
run 0 "$bin" simulate --out "$work/loud" --subjects 1 --runs 1 --minutes 1.5 --sfreq 250 --seed 4 --threads 1
has err "sub-01 run-1"; has out "1 run (1 subject), 16 ROIs"; has out "EEG ceiling"
[ "$(wc -l <"$work/out")" -eq 18 ] || { cat "$work/out"; fail "expected the summary line and the 17-line table"; }
run 0 "$bin" simulate --out "$work/two" --subjects 2 --runs 2 --minutes 0.5 --sfreq 250 --threads 1
has out "4 runs (2 subjects), 16 ROIs"
run 0 "$bin" simulate --dump-config -q; has out '"subjects": 4'

# The BIDS files: placement scheme of the cap, sidecars, the ECG labelled as ECG, ground truth
# under BIDS-derivative names.
d=$work/loud
base=sub-01_task-rest_run-1
grep -q '"EEGPlacementScheme": "10-10"' "$d/sub-01/eeg/${base}_eeg.json" || fail "mr32 is a 10-10 cap"
grep -q "^ECG ECG	ECG	" "$d/sub-01/eeg/${base}_channels.tsv" || fail "no ECG row named as the EDF labels it"
for f in task-rest_events.json participants.json derivatives/neurobolt-sim-truth/README; do
  [ -s "$d/$f" ] || fail "simulate did not write $f"
done
for desc in noiseless visible drive visibledrive bandpower; do
  [ -s "$d/derivatives/neurobolt-sim-truth/sub-01/func/${base}_desc-${desc}_timeseries.tsv" ] || fail "no desc-$desc"
  [ -s "$d/derivatives/neurobolt-sim-truth/sub-01/func/${base}_desc-${desc}_timeseries.json" ] || fail "no desc-$desc JSON"
done
run 0 "$bin" info "$d" --json; has out '"num_with_target": *1'
run 0 "$bin" info "$d/sub-01/eeg/${base}_eeg.edf" --json; has out '"ECG ECG"'; has out '"ecg"'
# prepare still takes the 31 EEG channels of the cap, not its ECG.
run 0 "$bin" prepare "$d" -o "$work/data.h5"; has err "31 channels from the data"

# The scanner's artefacts at 5 kHz: the raw EEG with volume and slice triggers; the clean EEG and
# the true events as ground truth; option values that cannot apply are usage errors naming them.
sc=$work/scanner
run 0 "$bin" simulate --out "$sc" --subjects 1 --minutes 0.5 --sfreq 5000 --channels Fp1,T7,Cz,T8,O1,O2,Pz,ECG \
  --artefacts gradient,bcg --slice-triggers --heart-rate 70 --seed 2 --threads 1 -q
truth=$sc/derivatives/neurobolt-sim-truth/sub-01/eeg
for f in "$sc/sub-01/eeg/${base}_eeg.edf" "$truth/${base}_desc-clean_eeg.edf" "$truth/${base}_desc-scanner_events.tsv" \
         "$truth/${base}_desc-scanner_events.json"; do
  [ -s "$f" ] || fail "simulate --artefacts gradient,bcg did not write $f"
done
run 0 "$bin" info "$sc/sub-01/eeg/${base}_eeg.edf"
has out "372, 2 distinct labels"; has out " 12 *R128"; has out " 360 *Slice"; has out "5000"
run 0 "$bin" info "$truth/${base}_desc-clean_eeg.edf"; has out "R128"
[ "$(grep -c '	volume$' "$truth/${base}_desc-scanner_events.tsv")" -eq 12 ] || fail "expected 12 true volume onsets"
[ "$(grep -c '	heartbeat$' "$truth/${base}_desc-scanner_events.tsv")" -ge 28 ] || fail "expected ~35 heartbeats in 30 s at 70 bpm"
grep -q '"heart_rate": 70' "$sc/derivatives/neurobolt-sim-truth/simulation.json" || fail "simulation.json lacks the scanner"
grep -q "Slice" "$sc/task-rest_events.json" || fail "task-rest_events.json does not describe the slice triggers"
run 0 "$bin" info "$sc" --json; has out '"num_with_target": *1'
run 2 "$bin" simulate --out "$work/x" --artefacts gradient,foo -q; has err "--artefacts"; has err "'foo'"; one_line_error
run 2 "$bin" simulate --out "$work/x" --artefacts none,bcg -q; has err "--artefacts"; has err "'none'"; one_line_error
run 2 "$bin" simulate --out "$work/x" --slices 20 -q; has err "--slices"; has err "gradient"; one_line_error
run 2 "$bin" simulate --out "$work/x" --artefacts gradient --heart-rate 60 -q; has err "--heart-rate"; one_line_error
run 2 "$bin" simulate --out "$work/x" --artefacts gradient --slices 400 -q
has err "--slices"; has err "sampling too low for the slice frequency"; one_line_error
run 2 "$bin" simulate --out "$work/x" --artefacts bcg --heart-rate 500 -q; has err "--heart-rate"; one_line_error
[ ! -e "$work/x" ] || fail "a refused simulation wrote its output"
run 0 "$bin" simulate --dump-config --artefacts gradient --slices 24 -q; has out '"gradient": true'; has out '"slices": 24'
run 0 "$bin" simulate --dump-config --artefacts none -q; ! grep -q '"scanner"' "$work/out" || fail "scanner off in JSON"
no_temp
echo "ok: simulate"
