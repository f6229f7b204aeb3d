#!/usr/bin/env bash
# The README's first command must work when run a second time (and the second run must find the
# simulated study and its prepared dataset unchanged): tools/demo.sh twice, at a small scale,
# with this build's binary.
source "$(dirname "$0")/lib.sh"
export NEUROBOLT_DEMO_BIN=$bin NEUROBOLT_DEMO_MINUTES=1 NEUROBOLT_DEMO_EPOCHS=1
for attempt in 1 2; do
  bash "$src/tools/demo.sh" "$work/demo" >"$work/out" 2>"$work/err" \
    || { tail -20 "$work/out"; tail -20 "$work/err"; fail "demo run $attempt failed"; }
  has out "demo: done"
  [ -s "$work/demo/report.html" ] || fail "demo run $attempt wrote no report"
done
echo "ok: demo_twice"
