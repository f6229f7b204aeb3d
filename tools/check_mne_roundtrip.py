#!/usr/bin/env python3
"""Check that MNE-Python reads every EDF file of a BIDS dataset as its sidecars describe it.

For each sub-*/[ses-*/]eeg/*_eeg.edf: the channel names (those of _channels.tsv, in order), the
sampling rate (_eeg.json SamplingFrequency) and the number of annotations (rows of _events.tsv)
must match what mne.io.read_raw_edf finds. Used for datasets written by `neurobolt simulate`:

    /usr/bin/python3 tools/check_mne_roundtrip.py /tmp/sim

(Debian's python3-mne lives under /usr/bin/python3.) Exits with 1 on any mismatch.
"""
import csv
import json
import pathlib
import sys

import mne


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def main(root):
    root = pathlib.Path(root)
    files = sorted(root.glob("sub-*/eeg/*_eeg.edf")) + sorted(root.glob("sub-*/ses-*/eeg/*_eeg.edf"))
    if not files:
        print(f"no sub-*/[ses-*/]eeg/*_eeg.edf under {root}")
        return 1
    failures = 0
    for edf in files:
        stem = edf.name[: -len("_eeg.edf")]
        channels = [r["name"] for r in rows(edf.with_name(stem + "_channels.tsv"))]
        events = rows(edf.with_name(stem + "_events.tsv"))
        sidecar = json.loads(edf.with_name(stem + "_eeg.json").read_text())
        raw = mne.io.read_raw_edf(str(edf), preload=True, verbose="error")
        problems = []
        if raw.ch_names != channels:
            problems.append(f"channels {raw.ch_names} != {channels}")
        if raw.info["sfreq"] != sidecar["SamplingFrequency"]:
            problems.append(f"sfreq {raw.info['sfreq']} != {sidecar['SamplingFrequency']}")
        if len(raw.annotations) != len(events):
            problems.append(f"{len(raw.annotations)} annotations != {len(events)} events")
        else:
            worst = max((abs(a["onset"] - float(e["onset"])) for a, e in zip(raw.annotations, events)), default=0.0)
            if worst > 1e-4:
                problems.append(f"annotation onsets differ from events.tsv by up to {worst} s")
        duration = raw.n_times / raw.info["sfreq"]
        if abs(duration - sidecar["RecordingDuration"]) > 1e-6:
            problems.append(f"duration {duration} != RecordingDuration {sidecar['RecordingDuration']}")
        status = "ok" if not problems else "MISMATCH: " + "; ".join(problems)
        print(f"{edf.relative_to(root)}: {raw.info['sfreq']:g} Hz, {len(raw.ch_names)} channels, "
              f"{raw.n_times} samples, {len(raw.annotations)} annotations: {status}")
        failures += bool(problems)
    print(f"{len(files)} files, {failures} with mismatches (MNE-Python {mne.__version__})")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
