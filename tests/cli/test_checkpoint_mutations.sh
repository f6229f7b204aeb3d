#!/usr/bin/env bash
# Damaged checkpoints (issue 11): the torch checkpoint reader is not in the torch-free fuzzing
# build, so this replays seeded random damage to a real trained checkpoint through the real
# binary: bytes flipped or overwritten (mostly in the HDF5 metadata at the start), or the file cut
# short. Every run of `infer` must end as a success (damage in unused bytes or weight values) or
# a one-line I/O, format or mismatch error (exit 3, 4, 5): never a crash, a signal or an internal
# error (exit 1). A failing input is kept in the test's work folder and its path printed.
source "$(dirname "$0")/lib.sh"

trained_model 5 1
model=$work/run/best.h5
eeg=$work/sim/sub-01/eeg/sub-01_task-rest_run-1_eeg.edf
run 0 "$bin" infer "$model" "$eeg" -o "$work/clean" --threads 1 -q

count=${NEUROBOLT_MUTATIONS:-120}
mkdir -p "$work/m"
python3 - "$model" "$work/m" "$count" <<'PY' || fail "could not write the damaged copies"
import random, sys
src, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read()
rng = random.Random(11)
for i in range(count):
    b = bytearray(data)
    kind = i % 4
    head = min(len(b), 65536)  # superblock, object headers, heaps, B-trees live here
    if kind == 0:      # a few bytes flipped in the metadata
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(head)] ^= 1 << rng.randrange(8)
    elif kind == 1:    # a size or address field overwritten with a huge value
        at = rng.randrange(head - 8)
        b[at:at + 8] = rng.choice([b"\xff" * 8, b"\x00\x00\x00\x80" * 2, (1 << 40).to_bytes(8, "little")])
    elif kind == 2:    # bytes anywhere
        for _ in range(rng.randint(1, 32)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    else:              # cut short
        b = b[:rng.randrange(1, len(b))]
    open(f"{out}/{i:04d}.h5", "wb").write(bytes(b))
PY

outcomes=""
for f in "$work"/m/*.h5; do
  rc=0
  "$bin" infer "$f" "$eeg" -o "$work/pred" --threads 1 -q --force >"$work/pred.txt" 2>"$work/err" || rc=$?
  case $rc in
    0) ;;
    3|4|5)
      [ "$(wc -l <"$work/err")" -eq 1 ] || fail "$f: exit $rc with an error of $(wc -l <"$work/err") lines: $(cat "$work/err")" ;;
    *) fail "$f: exit $rc (expected 0, 3, 4 or 5): $(tail -n 3 "$work/err")" ;;
  esac
  outcomes="$outcomes $rc"
  [ "$rc" = 0 ] || sed 's/[0-9]\{4\}\.h5/N.h5/; s/[0-9][0-9]*/#/g' "$work/err" >>"$work/messages"
done
echo "exit codes over $count damaged checkpoints:$(echo "$outcomes" | tr ' ' '\n' | grep . | sort | uniq -c | awk '{printf " %s x exit %s", $1, $2}')"
echo "most frequent errors (numbers as #):"
sort "$work/messages" | uniq -c | sort -rn | head -n 8
echo "ok: checkpoint_mutations"
