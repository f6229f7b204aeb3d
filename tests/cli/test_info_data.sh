#!/usr/bin/env bash
# neurobolt info on data: an EEG recording, a simulated BIDS folder, a prepared dataset, a model
# as JSON, and paths that are none of these.
source "$(dirname "$0")/lib.sh"
real=$shared/data/real
eegfmri=$real/eegfmri_headers_only/bids_eeg_rest_fmri/derivatives/sub-32_task-rest_eeg.vhdr

# json_check EXPR: the last stdout is exactly one JSON object, and the Python expression EXPR is
# true with the object bound to j.
json_check() {
  python3 - "$work/out" "$1" <<'EOF' || { cat "$work/out"; fail "JSON check failed: $1"; }
import json, sys
with open(sys.argv[1]) as f:
    j = json.load(f)  # one object: trailing text would fail here
assert isinstance(j, dict), "not a JSON object"
assert eval(sys.argv[2]), sys.argv[2]
EOF
}

# A real EEG-fMRI recording (header and markers only: its data file is absent).
run 0 "$bin" info "$eegfmri"
has out "BrainVision, 250 Hz, 64 channels"; has out "2013-04-10T10:27:40"
has out "Scanner/Scan Start   <- volume trigger"; has out "Scan Start: 300 in EEG annotations"; has out "every 2.16 s"
run 0 "$bin" info "$eegfmri" --json
json_check 'j["kind"] == "recording" and j["num_channels"] == 64 and j["sample_rate"] == 250'
json_check 'set(j) >= {"path", "format", "duration", "start_time", "channels", "annotations", "triggers", "gaps", "warnings"}'
json_check 'j["triggers"][0]["label"] == "Scan Start" and j["triggers"][0]["count"] == 300'
json_check 'abs(j["triggers"][0]["median_interval"] - 2.16) < 1e-9'
json_check 'j["channels"][31] == {"name": "ECG", "type": "ecg", "unit": "uV"}'
run 0 "$bin" info "$real/edf/test_edf_overlapping_annotations.edf"
has out "EDF+C, 128 Hz, 64 channels"; has out "T0"; has out "triggers     none"

# A simulated BIDS dataset.
ds=$work/sim
run 0 "$bin" simulate --out "$ds" --subjects 2 --runs 1 --minutes 1 --sfreq 250 --tr 2 --seed 2 --threads 1 -q
run 0 "$bin" info "$ds"
has out "(BIDS dataset"; has out "subjects     2: 01 02"; has out "2 EEG runs (sub-01 1, sub-02 1), 2 with an fMRI target"
has out "EDF+C (2 runs); 250 Hz (2 runs); 32 channels (2 runs)"; has out "derivatives/neurobolt-sim (2 runs)"
has out "R128: 27 in EEG annotations"; has out "neurobolt-sim-truth' is simulation ground truth"
run 0 "$bin" info "$ds" --json
json_check 'j["kind"] == "bids" and j["num_runs"] == 2 and j["num_with_target"] == 2 and j["subjects"] == ["01", "02"]'
json_check 'set(j) >= {"name", "sessions", "tasks", "runs_per_subject", "formats", "sample_rates", "channel_counts", "target_origins", "repetition_times", "roi_names", "derivatives", "runs", "log"}'
json_check 'j["repetition_times"] == [{"value": 2.0, "runs": 2}] and len(j["roi_names"]) == 16'
json_check 'all(r["trigger"]["count"] == r["target"]["num_volumes"] == 27 and r["notes"] == [] for r in j["runs"])'
run 0 "$bin" info "$ds" --derivatives derivatives/neurobolt-sim --json
json_check 'j["derivatives"] == ["derivatives/neurobolt-sim"] and j["num_with_target"] == 2'
run 3 "$bin" info "$ds" --derivatives derivatives/nope; has err "nope"; one_line_error

# The dataset prepared from it.
run 0 "$bin" prepare "$ds" -o "$work/data.h5" --config neurobolt-tiny -q
run 0 "$bin" info "$work/data.h5"
has out "(prepared dataset"; has out "x 8 channels x 3200 samples (16 s at 200 Hz)"; has out "intra-run: train"
has out "sub-02_task-rest_run-1: 21 windows"; has out "fingerprint"
run 0 "$bin" info "$work/data.h5" --json
json_check 'j["kind"] == "dataset" and j["num_windows"] == 42 and j["num_channels"] == 8 and j["num_rois"] == 16'
json_check 'set(j["splits"]) == {"train", "val", "test", "excluded"} and sum(j["splits"].values()) == 42'
json_check 'len(j["runs"]) == 2 and j["subjects"] == ["01", "02"] and len(j["fingerprint"]) > 0'
json_check 'j["parameters"]["sample_rate"] == 200'

# Models keep their description; --json wraps the config.
run 0 "$bin" info neurobolt-tiny --json
json_check 'j["kind"] == "model" and j["config"]["embed_dim"] == 50 and j["parameters"]["total"] > 0'

# Paths that are none of these.
run 3 "$bin" info "$work/nothing"; has err "nothing"; has err "BIDS dataset folder"; one_line_error
echo "just text" >"$work/notes.txt"
run 4 "$bin" info "$work/notes.txt"; has err "notes.txt"; has err "extension '.txt'"; one_line_error
echo "just text" >"$work/broken.edf"
run 4 "$bin" info "$work/broken.edf"; has err "broken.edf"; one_line_error
run 2 "$bin" info "$eegfmri" --derivatives x; has err "BIDS"; one_line_error
echo "ok: info_data"
