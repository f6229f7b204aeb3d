#!/usr/bin/env bash
# The HTML evaluation report in a real browser: headless Chromium loads a demo report (written by
# neurobolt_core_tests "[.report-demo]": 17 ROIs, model + ridge + ceilings, 8 runs, 40 epochs).
# Fails on any console message (our page logs nothing: a message is an error), on a section
# missing from the rendered DOM, or when the page's script did not run (it sets
# data-report-ready and adds the run chooser). Takes a 1280x2400 screenshot; set
# NEUROBOLT_REPORT_SCREENSHOT=FILE.png to keep it. Prints SKIP and passes without Chromium.
source "$(dirname "$0")/lib.sh"

browser=""
for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then browser=$candidate; break; fi
done
if [ -z "$browser" ]; then
  echo "SKIP: no chromium found (tools/install-deps.sh installs Debian's chromium)"
  exit 0
fi

tests="$(dirname "$bin")/../tests/neurobolt_core_tests"
[ -x "$tests" ] || fail "no test program at $tests (build the neurobolt_core_tests target)"
NEUROBOLT_REPORT_DEMO="$work/report.html" "$tests" "[.report-demo]" >"$work/demo.log" 2>&1 ||
  { cat "$work/demo.log"; fail "the report demo did not write a report"; }
[ -s "$work/report.html" ] || fail "the report demo wrote no $work/report.html"

# A private profile and no first-run work, so runs do not interfere; no sandbox (containers, root).
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --no-default-browser-check
       --disable-extensions --user-data-dir="$work/profile" --enable-logging=stderr --v=0)
url="file://$work/report.html"

timeout 180 "$browser" "${flags[@]}" --dump-dom "$url" >"$work/dom.html" 2>"$work/console.log" ||
  { tail -20 "$work/console.log"; fail "$browser --dump-dom failed"; }
if grep -E ':CONSOLE[:(]|Uncaught' "$work/console.log" >"$work/errors.log"; then
  cat "$work/errors.log"
  fail "the report logged to the browser console"
fi
grep -q 'data-report-ready="1"' "$work/dom.html" || fail "the report's script did not run (no data-report-ready)"
grep -q 'id="run-select"' "$work/dom.html" || fail "the run chooser was not added"
for id in provenance summary metrics per-run per-subject per-split r-chart time-courses training; do
  grep -q "id=\"$id\"" "$work/dom.html" || fail "section '$id' is missing from the rendered page"
done
# 17 ROIs x 8 runs of time-course panels, and the three charts.
[ "$(grep -o '<svg class="panel"' "$work/dom.html" | wc -l)" -eq 136 ] || fail "expected 136 time-course panels"
[ "$(grep -o '<svg class="chart' "$work/dom.html" | wc -l)" -eq 3 ] || fail "expected the r chart and two training charts"
grep -q 'R&lt;&amp;&gt;"insula"' "$work/dom.html" || fail "the ROI name with markup is not shown as text"

timeout 180 "$browser" "${flags[@]}" --screenshot="$work/report.png" --window-size=1280,2400 "$url" \
  >"$work/shot.log" 2>&1 || { tail -20 "$work/shot.log"; fail "$browser --screenshot failed"; }
[ "$(stat -c %s "$work/report.png" 2>/dev/null || echo 0)" -gt 20000 ] || fail "the screenshot is missing or blank"
if [ -n "${NEUROBOLT_REPORT_SCREENSHOT:-}" ]; then cp "$work/report.png" "$NEUROBOLT_REPORT_SCREENSHOT"; fi
echo "report rendered in $browser without console messages; screenshot $(stat -c %s "$work/report.png") bytes"
