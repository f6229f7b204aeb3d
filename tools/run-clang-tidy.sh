#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy) on neurobolt's torch-free library sources: the files
# of neurobolt_core (readers, signal processing, BIDS, data, simulation, clean, eval, the .pth
# reader). The LibTorch files are left out: clang cannot read GCC's precompiled torch header, and
# parsing torch's headers per file takes minutes. Prints every finding; exits 1 if there is one.
#
# usage: tools/run-clang-tidy.sh [BUILD_DIR] [FILE...]   (BUILD_DIR default build: a configured
#        build's compile_commands.json; FILEs: only these sources)
# environment: JOBS  parallel clang-tidy processes (default: number of CPUs)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
shift || true
[ -f "$build/compile_commands.json" ] || {
  echo "run-clang-tidy: $build/compile_commands.json is missing: configure first (cmake -S . -B build)" >&2
  exit 2
}
command -v clang-tidy >/dev/null || { echo "run-clang-tidy: clang-tidy is not installed (apt-get install clang-tidy)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The core's compile commands, with GCC-only flags dropped (clang warns on them).
python3 - "$build/compile_commands.json" "$work/compile_commands.json" "$work/files" "$@" <<'PY'
import json, shlex, sys
src, dst, listing, *only = sys.argv[1:]
entries = [e for e in json.load(open(src)) if "neurobolt_core.dir" in e.get("command", "") + str(e.get("arguments", ""))]
if only:
    import os
    wanted = {os.path.realpath(f) for f in only}
    entries = [e for e in entries if os.path.realpath(e["file"]) in wanted]
gcc_only = ("-fno-fat-lto-objects", "-fconcepts-diagnostics-depth")
for e in entries:
    args = e.pop("arguments", None) or shlex.split(e.pop("command"))
    e["arguments"] = [a for a in args if not a.startswith(gcc_only)]
json.dump(entries, open(dst, "w"), indent=1)
open(listing, "w").write("\n".join(e["file"] for e in entries) + "\n")
PY
count=$(wc -l <"$work/files")
echo "run-clang-tidy: $count files of neurobolt_core"
xargs -a "$work/files" -P "${JOBS:-$(nproc)}" -n 1 \
  clang-tidy -p "$work" --quiet --extra-arg=-Wno-unknown-warning-option >"$work/out" 2>"$work/err" || true
grep -E "^/.*(warning|error):" "$work/out" | sort -u >"$work/findings" || true
cat "$work/out"
found=$(wc -l <"$work/findings")
echo "run-clang-tidy: $found findings in $count files"
[ "$found" -eq 0 ]
