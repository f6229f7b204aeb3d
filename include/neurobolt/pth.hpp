#pragma once
// Reading PyTorch `.pth` files (what `torch.save` writes) without Python.
//
// Supported: the zip archive format (torch >= 1.6, the default) and the legacy pickle-stream
// format (`_use_new_zipfile_serialization=False`). The top-level object may be
//   - a state dict: a dict or `collections.OrderedDict` (with `_metadata`) of name -> tensor;
//   - a training checkpoint: a dict whose state dict sits under one of `model_keys`, next to
//     entries that are not tensors (optimizer state, epoch, an argparse.Namespace ...), which
//     are skipped and listed in `skipped`.
#include <string>
#include <vector>

#include "neurobolt/state_dict.hpp"

namespace neurobolt {

struct PthContents {
  StateDict tensors;
  // Where the state dict was found: "" for the top level, else the key (e.g. "model").
  std::string found_under;
  // Entries that were not tensors and were skipped, as "name (python type)", e.g.
  // "optimizer (dict)", "epoch (int)", "args (argparse.Namespace)".
  std::vector<std::string> skipped;
};

// Throws IoError if the file cannot be opened, FormatError (naming the file and what was
// found) if it is not a readable .pth or holds no state dict.
PthContents read_pth(const std::string& path,
                     const std::vector<std::string>& model_keys = {"model", "module", "state_dict"});

}  // namespace neurobolt
