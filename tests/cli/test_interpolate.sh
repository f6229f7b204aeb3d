#!/usr/bin/env bash
# CLI tests of prepare's channel handling: channels from the data by default, spherical-spline
# interpolation of absent and bad channels, and the --missing-channels policies.
# Usage: test_interpolate.sh NEUROBOLT_BINARY SOURCE_DIR SHARED_DIR
source "$(dirname "$0")/lib.sh"

ds=$work/sim
run 0 "$bin" simulate --out "$ds" --subjects 2 --runs 1 --minutes 1 --sfreq 250 --seed 5 -q --threads 1

# Every default: the 31 EEG electrodes of the simulated MR cap (its ECG is no EEG channel).
run 0 "$bin" prepare "$ds" -o "$work/data.h5"
has err "the EEG channels every run has"
cap="Fp1 Fp2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 Fz Cz Pz Oz FC1 FC2 CP1 CP2 FC5 FC6 CP5 CP6 TP9 TP10 POz"
has err "31 channels from the data: $cap"
grep -q "interpolated" "$work/err" && { cat "$work/err"; fail "nothing needed interpolating"; }

# The paper's 26 channels: FPZ, FT9 and FT10 are not on the cap and are interpolated.
run 0 "$bin" prepare "$ds" -o "$work/base.h5" --config neurobolt-base
has err "sub-01_task-rest_run-1: .*interpolated: FPZ FT9 FT10"
has err "sub-02_task-rest_run-1: .*interpolated: FPZ FT9 FT10"
if command -v h5dump >/dev/null; then
  h5dump -d /runs/interpolated_channels "$work/base.h5" >"$work/dump"
  grep -qF '"["FPZ","FT9","FT10"]", "["FPZ","FT9","FT10"]"' "$work/dump" || { cat "$work/dump"; fail "/runs/interpolated_channels"; }
  h5dump -a /parameters "$work/base.h5" >"$work/dump"
  grep -qF '"missing_channels": "interpolate"' "$work/dump" || { cat "$work/dump"; fail "policy not recorded"; }
fi

# The other policies.
run 0 "$bin" prepare "$ds" -o "$work/zero.h5" --config neurobolt-base --missing-channels zero
has err "zero-filled: FPZ FT9 FT10"
run 0 "$bin" prepare "$ds" -o "$work/alias.h5" --config neurobolt-base --allow-missing-channels -q
run 5 "$bin" prepare "$ds" -o "$work/strict.h5" --config neurobolt-base --missing-channels error -q
has err "3 required channels are missing: FPZ, FT9, FT10"; has err "--missing-channels interpolate"; one_line_error
run 2 "$bin" prepare "$ds" -o "$work/strict.h5" --missing-channels guess -q
run 2 "$bin" prepare "$ds" -o "$work/strict.h5" --allow-missing-channels --missing-channels error -q
has err "contradicts"
run 5 "$bin" prepare "$ds" -o "$work/exg.h5" --channels Cz,EXG1 -q
has err "'EXG1'"; has err "no position in the standard 10-05 system"; has err "--missing-channels zero"; one_line_error
[ ! -e "$work/strict.h5" ] && [ ! -e "$work/exg.h5" ] || fail "a failed prepare left an output"

# A channel marked bad in _channels.tsv is interpolated in that run only.
tsv=$ds/sub-01/eeg/sub-01_task-rest_run-1_channels.tsv
sed -i 's/^\(O2\t.*\)good$/\1bad/' "$tsv"
grep -q "bad" "$tsv" || fail "could not mark O2 bad"
run 0 "$bin" prepare "$ds" -o "$work/tiny.h5" --config neurobolt-tiny
has err "sub-01_task-rest_run-1: .*interpolated: O2"
grep "sub-02_task-rest_run-1:" "$work/err" | grep -q interpolated && { cat "$work/err"; fail "sub-02 has no bad channel"; }
run 5 "$bin" prepare "$ds" -o "$work/tiny2.h5" --config neurobolt-tiny --missing-channels error -q
has err "'O2' is marked bad"; one_line_error
echo "ok: interpolate"
