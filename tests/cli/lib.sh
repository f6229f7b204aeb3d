#!/usr/bin/env bash
# Shared helpers of the per-area CLI test scripts (tests/cli/test_*.sh BIN SOURCE_DIR SHARED_DIR).
# Source it first; it sets bin, src, shared and a temporary work folder removed on exit.
set -u
bin=$1 src=$2 shared=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*"; [ -f "$work/err" ] && sed "s/^/  err: /" "$work/err" | head -5; exit 1; }
# run EXPECTED_STATUS CMD...: runs the command, keeps stdout/stderr in $work/out and $work/err,
# checks the exit status.
run() {
  local expected=$1; shift
  "$@" >"$work/out" 2>"$work/err"
  local status=$?
  if [ "$status" -ne "$expected" ]; then
    echo "--- stdout"; cat "$work/out"; echo "--- stderr"; cat "$work/err"
    fail "'$*' exited $status, expected $expected"
  fi
}
# limit_memory KB: the memory bound the "declared sizes are checked before allocating" tests run
# under, for the rest of the (sub)shell: an address-space limit (ulimit -v KB). An AddressSanitizer
# build (tools/run-sanitized.sh --all) reserves terabytes of address space for its shadow memory,
# so there the bound is ASan's own limit on resident memory (hard_rss_limit_mb: past it the
# process is killed with a report, which fails the test as an exceeded limit would).
limit_memory() {
  if ldd "$bin" 2>/dev/null | grep -q libasan; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}hard_rss_limit_mb=$(($1 / 1024))"
  else
    ulimit -v "$1"
  fi
}
# with_memory_limit KB CMD...: CMD under limit_memory KB.
with_memory_limit() { (limit_memory "$1"; shift; exec "$@"); }
# has out|err TEXT: the last command's stdout/stderr contains TEXT.
has() { grep -q -- "$2" "$work/$1" || { cat "$work/$1"; fail "$1 lacks '$2'"; }; }
one_line_error() {
  [ "$(wc -l <"$work/err")" -eq 1 ] || { cat "$work/err"; fail "expected a one-line error"; }
}
# trained_model SEED MINUTES: a simulated study of 3 subjects ($work/sim), prepared ($work/data.h5:
# calcarine and thalamus; subject 02 validates, 03 tests) and neurobolt-tiny trained on it for one
# epoch ($work/run/best.h5), for the tests that need some checkpoint and recordings it fits.
trained_model() {
  "$bin" simulate --out "$work/sim" --subjects 3 --runs 1 --minutes "$2" --sfreq 250 --seed "$1" --threads 1 -q \
    || fail "simulate"
  "$bin" prepare "$work/sim" -o "$work/data.h5" --config neurobolt-tiny --rois calcarine,thalamus \
    --split cross-subject --val-subjects 02 --test-subjects 03 -q || fail "prepare"
  "$bin" train "$work/data.h5" -o "$work/run" --config neurobolt-tiny --epochs 1 --batch 4 --threads 1 -q \
    || fail "train"
}
