#!/usr/bin/env bash
# Installs this build into a temporary prefix, then builds and runs tests/consumer/app against
# it with find_package(neurobolt): the "link neurobolt into your own C++ program" path.
set -euo pipefail
build_dir=$1 app_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >"$work/install.log"
# The installed tool starts from this non-system prefix (its RUNPATH is relative to itself).
if [ -x "$build_dir/tools/neurobolt" ]; then
  (cd / && env -u LD_LIBRARY_PATH "$work/prefix/bin/neurobolt" --version) | grep -q "^neurobolt " \
    || { echo "FAIL: the installed neurobolt does not start"; exit 1; }
  (cd / && env -u LD_LIBRARY_PATH "$work/prefix/bin/neurobolt" info neurobolt-tiny) | grep -q "total" \
    || { echo "FAIL: the installed neurobolt cannot describe a built-in model"; exit 1; }
fi
cmake -S "$app_dir" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log" \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2 >"$work/build.log" || { cat "$work/build.log"; exit 1; }
mkdir -p "$work/out"
# A sanitizer build of the library (tools/run-sanitized.sh --all) in a program built without
# one: ASan's runtime must be loaded before everything else, which only preloading does.
asan=$(ldd "$work/prefix/lib/libneurobolt.so" 2>/dev/null | awk '/libasan/ {print $3; exit}')
if [ -n "$asan" ]; then export LD_PRELOAD="$asan${LD_PRELOAD:+:$LD_PRELOAD}"; fi
"$work/build/consumer" "$work/out"
