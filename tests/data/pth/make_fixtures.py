#!/usr/bin/python3
"""Writes the small .pth fixtures for tests/unit/test_pth.cpp, and expected.json.

Run with a Python that has torch (the tests themselves do not need Python):
    /usr/bin/python3 tests/data/pth/make_fixtures.py
The files are committed; rerunning with the same torch version reproduces them, except
legacy_format.pth, whose storage keys are memory addresses.

expected.json holds, per file: where the state dict sits (`found_under`), the skipped entries,
and for each tensor its name, dtype, shape, the float64 sum and sum of squares, and its first
values (flattened, at most 4; bool as 0/1).
"""
import argparse
import collections
import json
import os
import pathlib

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Small(nn.Module):
    """Linear + LayerNorm + an int64 Parameter (requires_grad=False) + a buffer."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.index = nn.Parameter(torch.arange(5, dtype=torch.int64), requires_grad=False)
        self.register_buffer("running", torch.randn(3, dtype=torch.float64))

    def forward(self, x):
        return self.norm(self.fc(x)) * self.running.float().sum()


def perturbed(module):
    # Make every float entry non-trivial (LayerNorm starts at ones/zeros).
    with torch.no_grad():
        for p in module.parameters():
            if p.is_floating_point():
                p.add_(0.1 * torch.randn_like(p))
    return module


def describe(tensor):
    t = tensor.detach()
    flat = t.reshape(-1).to(torch.float64)
    return {
        "dtype": str(t.dtype).replace("torch.", ""),
        "shape": list(t.shape),
        "sum": float(flat.sum()),
        "sumsq": float((flat * flat).sum()),
        "first": [float(x) for x in flat[:4]],
    }


def expectation(state_dict, found_under="", skipped=()):
    tensors = [dict(name=k, **describe(v)) for k, v in state_dict.items() if isinstance(v, torch.Tensor)]
    return {"found_under": found_under, "skipped": list(skipped), "tensors": tensors}


def to_json(expected):
    """expected.json with one line per tensor, so that diffs stay readable."""
    files = []
    for name, e in expected.items():
        tensors = ",\n".join("   " + json.dumps(t) for t in e["tensors"])
        files.append(f' {json.dumps(name)}: {{\n  "found_under": {json.dumps(e["found_under"])},\n'
                     f'  "skipped": {json.dumps(e["skipped"])},\n  "tensors": [\n{tensors}\n  ]\n }}')
    return "{\n" + ",\n".join(files) + "\n}\n"


def save(name, obj, **kwargs):
    path = os.path.join(HERE, name)
    torch.save(obj, path, **kwargs)
    size = os.path.getsize(path)
    assert size < 200_000, (name, size)
    return path


def main():
    torch.manual_seed(1234)
    expected = {}

    # plain dict: several dtypes, a 0-d tensor, non-contiguous views, shared storage.
    base = torch.arange(10, dtype=torch.float32) * 0.5
    weight = torch.randn(3, 4)
    tagged = torch.randn(2)
    tagged.note = "python attribute"  # makes torch pickle it via _rebuild_from_type_v2
    plain = {
        "weight": torch.randn(3, 4),
        "weight_t": weight.t(),  # strides (1, 4)
        "counts": torch.arange(6, dtype=torch.int64).reshape(2, 3) - 2,
        "double": torch.randn(5, dtype=torch.float64),
        "scalar": torch.tensor(3.25),
        "shared_a": base[2:6],  # storage offset 2
        "shared_b": base[5:].view(5, 1),  # same storage, offset 5
        "expanded": torch.tensor([1.0, -2.0, 3.0]).expand(2, 3),  # stride (0, 1)
        "empty": torch.zeros(0, 3),
        "param": nn.Parameter(torch.randn(2, 2)),
        "tagged": tagged,
        "half": torch.randn(4).half(),
        "bfloat": torch.randn(4).bfloat16(),
        "mask": torch.tensor([True, False, True]),
        "int32": torch.tensor([-7, 8, 2**31 - 1], dtype=torch.int32),
        "int16": torch.tensor([-300, 300], dtype=torch.int16),
        "int8": torch.tensor([-128, 127, 5], dtype=torch.int8),
        "uint8": torch.tensor([0, 200, 255], dtype=torch.uint8),
    }
    save("plain_dict.pth", plain)
    expected["plain_dict.pth"] = expectation(plain)

    # The same dict, pickled with protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE).
    save("protocol4.pth", plain, pickle_protocol=4)
    expected["protocol4.pth"] = expectation(plain)

    # OrderedDict with _metadata, as model.state_dict() returns it.
    model = perturbed(Small())
    state = model.state_dict()
    save("ordered_dict.pth", state)
    expected["ordered_dict.pth"] = expectation(state)

    # A training checkpoint: state dict under 'model' next to non-tensor entries.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model(torch.randn(2, 4)).pow(2).sum()
    loss.backward()
    optimizer.step()
    state = model.state_dict()
    checkpoint = {
        "model": state,
        "optimizer": optimizer.state_dict(),
        "epoch": 3,
        "args": argparse.Namespace(lr=1e-3, model="x", roi=["a"]),
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                   "growth_interval": 2000, "_growth_tracker": 0},
        "best_metric": np.float64(0.75),
        "out_dir": pathlib.PosixPath("/tmp/run"),
        "amp_dtype": torch.bfloat16,
        "tags": {3, 1, 2},  # ints: a set of str would change order with the hash seed
        "note": None,
    }
    save("training_checkpoint.pth", checkpoint)
    expected["training_checkpoint.pth"] = expectation(state, "model", [
        "optimizer (dict)", "epoch (int)", "args (argparse.Namespace)", "scaler (dict)",
        "best_metric (numpy.core.multiarray.scalar)", "out_dir (pathlib.PosixPath)",
        "amp_dtype (torch.dtype)", "tags (set)", "note (NoneType)"])

    # Legacy (pre-1.6) stream format.
    legacy_model = perturbed(Small())
    state = legacy_model.state_dict()
    state["fc_weight_t"] = legacy_model.fc.weight.detach().t()  # a view sharing fc.weight's storage
    save("legacy_format.pth", state, _use_new_zipfile_serialization=False)
    expected["legacy_format.pth"] = expectation(state)

    # LaBraM-style pre-training checkpoint: prefixed names under 'model'.
    labram = collections.OrderedDict([
        ("student.cls_token", torch.randn(1, 1, 8)),
        ("student.blocks.0.norm1.weight", 1 + 0.1 * torch.randn(8)),
        ("student.lm_head.weight", torch.randn(16, 8)),
        ("lm_head.weight", torch.randn(16, 8)),
    ])
    save("labram_like.pth", {"model": labram, "epoch": 1,
                             "args": argparse.Namespace(model="labram_base_patch200_200", epochs=50)})
    expected["labram_like.pth"] = expectation(labram, "model", ["epoch (int)", "args (argparse.Namespace)"])

    # The state dict under 'state_dict', holding a few non-tensor entries.
    mixed = {"a.weight": torch.randn(2, 3), "a.note": "not a tensor", "a.extra": None,
             "b.bias": torch.randn(3), "b.config": {"k": 1}}
    save("mixed_state.pth", {"meta": {"version": 2}, "state_dict": mixed})
    expected["mixed_state.pth"] = expectation(mixed, "state_dict", [
        "meta (dict)", "state_dict.a.note (str)", "state_dict.a.extra (NoneType)",
        "state_dict.b.config (dict)"])

    # No state dict anywhere (error cases).
    save("no_state_dict.pth", {"epoch": 7, "weights": [torch.zeros(2)], "name": "run"})
    save("list_top.pth", [torch.zeros(2), torch.ones(2)])

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        f.write(to_json(expected))


if __name__ == "__main__":
    main()
