#!/usr/bin/env bash
# CLI tests of untrusted .pth checkpoints (issue 11): pickles written by Python's own pickle module
# whose loading in Python would run a shell command are refused, naming the global, and nothing
# runs; a small file declaring a 1 TB tensor is refused at once under a 2 GB address-space limit.
# Usage: test_malicious_pth.sh NEUROBOLT_BINARY SOURCE_DIR SHARED_DIR
source "$(dirname "$0")/lib.sh"
config="$src/tests/data/neurobolt-micro.json"
marker="$work/pwned"

# make_pth OUT MODE: MODE system | eval | script | huge (see the Python below).
make_pth() {
  python3 - "$1" "$2" "$marker" <<'PY'
import collections, io, os, pickle, struct, sys, zipfile
out, mode, marker = sys.argv[1:]

class Evil:  # what a crafted checkpoint holds: loading it in Python runs the command
    def __reduce__(self):
        if mode == "eval":
            return (eval, ("__import__('os').system('touch %s')" % marker,))
        return (os.system, ("touch %s" % marker,))

class TrainConfig:  # a class of the training script, pickled by reference
    pass

class Storage:  # a storage, pickled as torch.save's persistent id ('storage', FloatStorage, key, 'cpu', numel)
    def __init__(self, numel): self.numel = numel

class Tensor:  # pickled as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
    def __init__(self, numel, size): self.numel, self.size = numel, size

# Python pickles classes and functions by module and name: fake torch modules provide the names.
import types
for mod, names in {"torch": ["FloatStorage"], "torch._utils": ["_rebuild_tensor_v2"]}.items():
    m = sys.modules.setdefault(mod, types.ModuleType(mod))
    for n in names:
        f = type(n, (), {})
        f.__module__, f.__qualname__ = mod, n
        setattr(m, n, f)

class P(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", sys.modules["torch"].FloatStorage, "0", "cpu", obj.numel)
        return None
    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            stride = (obj.size[1], 1) if len(obj.size) == 2 else (1,)
            return (sys.modules["torch._utils"]._rebuild_tensor_v2,
                    (Storage(obj.numel), 0, obj.size, stride, False, collections.OrderedDict()))
        return NotImplemented

if mode in ("system", "eval"):
    obj, storage = Evil(), None
elif mode == "script":
    obj, storage = {"model": collections.OrderedDict(w=Tensor(4, (4,))), "config": TrainConfig()}, struct.pack("<4f", 1, 2, 3, 4)
else:  # huge: a 1 TB tensor over 16 bytes
    obj, storage = collections.OrderedDict(w=Tensor(250_000_000_000, (500_000, 500_000))), struct.pack("<4f", 1, 2, 3, 4)
buf = io.BytesIO()
P(buf, protocol=2).dump(obj)
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", buf.getvalue())
    if storage is not None:
        z.writestr("archive/data/0", storage)
    z.writestr("archive/version", "3\n")
PY
}

# Each refusal: exit 4 (format error), one line naming the file and the global, nothing run, no output.
for mode in system eval script; do
  make_pth "$work/$mode.pth" "$mode" || fail "could not write $mode.pth"
  for cmd in "info $work/$mode.pth" "convert $work/$mode.pth $work/$mode.h5 --config $config"; do
    # shellcheck disable=SC2086
    run 4 "$bin" $cmd
    has err "$mode.pth"; has err "refused: the pickle names the global"; has err "nothing in the file was run"
    one_line_error
    echo "$mode: $(cat "$work/err")"
  done
  [ -e "$marker" ] && fail "$mode.pth ran its command"
  [ -e "$work/$mode.h5" ] && fail "convert wrote an output for $mode.pth"
done
has err "'__main__.TrainConfig'"
run 4 "$bin" info "$work/system.pth"; has err "'posix.system'"
run 4 "$bin" info "$work/eval.pth"; has err "'builtins.eval'"

# A 1 TB tensor declared in a file of a few hundred bytes: refused at once with bounded memory.
make_pth "$work/huge.pth" huge || fail "could not write huge.pth"
echo "huge.pth: $(stat -c %s "$work/huge.pth") bytes"
run 4 with_memory_limit 2000000 timeout 60 "$bin" convert "$work/huge.pth" "$work/huge.h5" --config "$config"
has err "huge.pth"; has err "tensor 'w'"; has err "storage 'data/0' has 16 bytes, expected 1000000000000"
one_line_error
echo "huge: $(cat "$work/err")"
echo "ok: malicious_pth"
