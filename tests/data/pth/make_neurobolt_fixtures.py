#!/usr/bin/python3
"""Writes .pth files shaped like the reference's own files for the tiny test config
tests/data/neurobolt-micro.json, so the importer is tested on every form users have:

  neurobolt_micro_training.pth  utils.save_model's dict: weights under 'model' (an OrderedDict
                                with _metadata) next to optimizer state, epoch, scaler and an
                                argparse.Namespace of args
  neurobolt_micro_module.pth    weights under 'module' (DistributedDataParallel-style)
  labram_micro.pth              a LaBraM pre-training checkpoint: 'student.' temporal weights,
                                the pre-training heads and a teacher copy, plus training state
  neurobolt_micro_expected.json float64 sum and sum of squares of every weight

Key names and shapes come from neurobolt_micro_keys.tsv (the C++ model's state dict for that
config; a unit test checks the two agree). Run with Debian's python3-torch:
  /usr/bin/python3 tests/data/pth/make_neurobolt_fixtures.py
"""
import argparse
import collections
import json
import os

import torch

here = os.path.dirname(os.path.abspath(__file__))
generator = torch.Generator().manual_seed(7)

state = collections.OrderedDict()
for line in open(os.path.join(here, "neurobolt_micro_keys.tsv")):
    key, dtype, shape = line.rstrip("\n").split("\t")
    shape = [int(s) for s in shape.strip(",").split(",") if s]
    if "long" in dtype:
        state[key] = torch.arange(shape[0])
    else:
        state[key] = torch.randn(shape, generator=generator) * 0.1
state._metadata = collections.OrderedDict({"": {"version": 1}})

optimizer = {
    "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(4), "exp_avg_sq": torch.zeros(4)}},
    "param_groups": [{"lr": 5e-4, "weight_decay": 0.05, "params": [0]}],
}
args = argparse.Namespace(lr=5e-4, model="neurobolt_default", labels_roi="V1", batch_size=16)
torch.save({"model": state, "optimizer": optimizer, "epoch": 7, "scaler": {"scale": 65536.0}, "args": args},
           os.path.join(here, "neurobolt_micro_training.pth"))
torch.save({"module": state, "epoch": 1}, os.path.join(here, "neurobolt_micro_module.pth"))

temporal = [k for k in state if not k.startswith(("mss_module.", "head.", "fc_norm."))]
labram = collections.OrderedDict()
for k in temporal:
    labram["student." + k] = state[k]
labram["student.mask_token"] = torch.randn(1, 1, 50, generator=generator)
labram["student.norm.weight"] = torch.ones(50)
labram["student.norm.bias"] = torch.zeros(50)
labram["student.lm_head.weight"] = torch.randn(16, 50, generator=generator)
labram["student.lm_head.bias"] = torch.zeros(16)
labram["lm_head.weight"] = torch.randn(16, 50, generator=generator)
labram["projection_head.0.weight"] = torch.randn(8, 50, generator=generator)
labram["teacher.cls_token"] = torch.randn(1, 1, 50, generator=generator)
torch.save({"model": labram, "optimizer": optimizer, "epoch": 99, "args": args},
           os.path.join(here, "labram_micro.pth"))

expected = {k: [float(v.double().sum()), float((v.double() ** 2).sum())] for k, v in state.items()}
with open(os.path.join(here, "neurobolt_micro_expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
