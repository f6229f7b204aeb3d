#!/usr/bin/env bash
# The conventions every command shares (README, "Command-line conventions"): one-line errors with
# the documented exit codes, unknown commands refused, options that cannot apply refused rather
# than ignored, and --quiet silencing notes but never warnings.
source "$(dirname "$0")/lib.sh"
tiny_sim() { "$bin" simulate --out "$1" --subjects 2 --runs 1 --minutes 1 --sfreq 250 --seed 2 -q --threads 1 >/dev/null; }

# Missing input files are I/O errors (3) naming the option, like every file the library opens.
run 3 "$bin" bench --read "$work/nonexist.edf"; has err "neurobolt: I/O error: --read: cannot open"; one_line_error
run 3 "$bin" prepare --eeg "$work/nope.vhdr" --targets "$work/x.tsv" --tr 2 -o "$work/z.h5"
has err "neurobolt: I/O error: --eeg: cannot open"; one_line_error
# Parse errors are one line with the usage prefix, numbers printed short.
run 2 "$bin" bench --threads -1; has err "neurobolt: usage error: --threads: expected a number from 0 to 4096, found -1"
one_line_error
run 2 "$bin" bench --batch 0; has err "--batch: expected a number from 1 to 8192, found 0"; one_line_error
run 2 "$bin" bench --batch 1e12; one_line_error
run 2 "$bin" train x.h5; has err "usage error"; one_line_error
# Unknown commands name themselves, with or without --help; no command at all is a usage error.
run 2 "$bin" nosuch; has err "unknown command 'nosuch'"; has err "train"; one_line_error
run 2 "$bin" nosuch --help; has err "unknown command 'nosuch'"; one_line_error
run 2 "$bin"; has err "a command is required"; one_line_error

# Options that cannot apply are usage errors naming the option.
sim=$work/sim
tiny_sim "$sim"
run 2 "$bin" prepare "$sim" -o "$work/v.h5" --val-subjects 01; has err "^neurobolt: usage error: --val-subjects: applies to --split cross-subject"
run 2 "$bin" prepare "$sim" -o "$work/v.h5" --folds 3; has err "--folds: applies to --split kfold"
run 2 "$bin" prepare "$sim" -o "$work/v.h5" --seed 3; has err "--seed: shuffles subjects"
run 2 "$bin" prepare "$sim" -o "$work/v.h5" --split cross-subject --val-subjects 01 --val-fraction 0.3
has err "--val-fraction: cannot be combined"
run 2 "$bin" prepare "$sim" -o "$work/v.h5" --atlas-labels "$src/README.md"; has err "--atlas-labels: names the labels"
run 2 "$bin" prepare "$sim" -o "$work/v.h5" --channels O1,O2,Pz --config neurobolt-tiny
has err "neurobolt-tiny', whose 8 channels are"; one_line_error
[ ! -e "$work/v.h5" ] || fail "a refused prepare wrote its output"
edf=$sim/sub-01/eeg/sub-01_task-rest_run-1_eeg.edf
targets=$sim/derivatives/neurobolt-sim/sub-01/func/sub-01_task-rest_run-1_desc-roi_timeseries.tsv
run 2 "$bin" prepare --eeg "$edf" --targets "$targets" --tr 2 -o "$work/v.h5" --split cross-subject
has err "--split cross-subject: splits by subject"
run 2 "$bin" prepare --eeg "$edf" --targets "$targets" --tr 2 -o "$work/v.h5" --derivatives x
has err "--derivatives: chooses targets in a BIDS root"
run 2 "$bin" prepare "$sim" -o "$work/v.h5" --device cuda; has err "--device: 'prepare' runs on the CPU"
run 2 "$bin" info neurobolt-tiny --precision bf16; has err "--precision: 'info' runs on the CPU"
run 2 "$bin" simulate --dump-config --out "$work/dump"; has err "--out: --dump-config prints the config"
# The same channels in another order and old names are the config's channels.
run 0 "$bin" prepare "$sim" -o "$work/order.h5" --config neurobolt-tiny --channels O2,O1,T4,T3,C4,C3,FP2,FP1 -q
run 2 "$bin" bench --read "$edf" --batch 4; has err "--batch: does not apply to --read"
run 2 "$bin" bench --read "$edf" --device cuda; has err "--device: does not apply to --read"
run 2 "$bin" bench --spectral --config neurobolt-tiny; has err "--config: does not apply to --spectral"
run 2 "$bin" bench --channels 4 --config neurobolt-tiny; has err "--channels: applies to --spectral only"
run 0 "$bin" bench --read "$edf" --warmup 0 --iterations 1; has out "no untimed read first"; has out "over 1 read "
run 0 "$bin" bench --read "$edf" --warmup 2 --iterations 2; has out "after 2 untimed reads"
run 0 "$bin" prepare "$sim" -o "$work/data.h5" --config neurobolt-tiny --split cross-subject --val-subjects 02 -q
run 2 "$bin" train "$work/data.h5" -o "$work/run" --config neurobolt-tiny --val-subjects 01
has err "--val-subjects: prepares a BIDS root, but"; one_line_error

run 2 "$bin" train "$work/data.h5" -o "$work/ridge" --arch ridge --epochs 3
has err "--epochs: trains NeuroBOLT, not the ridge baseline"; one_line_error
run 2 "$bin" train "$work/data.h5" -o "$work/nb" --config neurobolt-tiny --alphas 1
has err "--alphas: applies to the ridge baseline only"; one_line_error
run 2 "$bin" infer "$src/models/neurobolt-tiny.json" "$sim" -o "$work/pred" --stride 1e-9
has err "--stride: expected at least 0.01 s, found 1e-09"; one_line_error
run 2 "$bin" infer "$work/nothing.h5" "$sim" -o "$work/pred" --first-volume-offset 3
has err "--first-volume-offset: places the grid that --tr defines"; one_line_error

# --quiet: nothing on stdout or stderr for a file-writing command that has nothing to warn of ...
run 0 "$bin" convert "$shared/fixtures/neurobolt_ref/neurobolt_r4_perturbed.pth" "$work/ref.h5" -q
[ ! -s "$work/out" ] && [ ! -s "$work/err" ] || fail "convert -q printed something"
run 0 "$bin" prepare "$sim" -o "$work/q.h5" --config neurobolt-tiny --split cross-subject --val-subjects 02 -q
[ ! -s "$work/out" ] || fail "prepare -q printed to stdout"
# ... but warnings still show (1-minute runs leave intra-run validation empty: a warning per run).
run 0 "$bin" prepare "$sim" -o "$work/w.h5" --config neurobolt-tiny -q
[ ! -s "$work/out" ] || fail "prepare -q printed to stdout"
has err "^warning: sub-01_task-rest_run-1: .* leave the intra-run validation split empty"
# "Same inputs" means the same bytes: a byte-identical rewrite (simulate --force, same seed)
# leaves the dataset up to date; other content or options are named when refusing.
run 0 "$bin" prepare "$sim" -o "$work/fp.h5" --config neurobolt-tiny -q
"$bin" simulate --out "$sim" --subjects 2 --runs 1 --minutes 1 --sfreq 250 --seed 2 -q --threads 1 --force >/dev/null
run 0 "$bin" prepare "$sim" -o "$work/fp.h5" --config neurobolt-tiny; has out "is up to date"
run 3 "$bin" prepare "$sim" -o "$work/fp.h5" --config neurobolt-tiny --notch 50 -q
has err "option 'notch_hz' changed from null to 50"; one_line_error
"$bin" simulate --out "$sim" --subjects 2 --runs 1 --minutes 1 --sfreq 250 --seed 3 -q --threads 1 --force >/dev/null
run 3 "$bin" prepare "$sim" -o "$work/fp.h5" --config neurobolt-tiny -q
has err "input '.*sub-01_task-rest_run-1_eeg.edf' changed (its content differs)"; one_line_error
# The text a command exists to print is printed with -q too.
run 0 "$bin" info neurobolt-tiny -q; has out "total"
echo "ok: conventions"
