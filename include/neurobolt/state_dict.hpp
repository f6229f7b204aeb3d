#pragma once
// Named tensors as checkpoints hold them, and loading them into a model with a full report of
// what matched.
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace neurobolt {

class NeuroBOLTImpl;

// An ordered list of (name, tensor) pairs, in the order the file stores them.
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;     // model keys the state dict lacks
  std::vector<std::string> unexpected;  // state-dict keys the model lacks
  std::vector<std::string> mismatched;  // "key: checkpoint [a, b] vs model [c, d]" (shape or dtype)
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // Multi-line human-readable listing of every non-loaded key.
  std::string describe() const;
  // One line: the counts and the first few keys of each kind.
  std::string summary() const;
};

// Copies every state-dict tensor whose name and shape match into the model (dtype converted for
// floating-point tensors). With `strict`, a state dict that is not an exact match throws a
// one-line ConfigError summarising the missing, unexpected and mismatched keys (the first few
// of each; load non-strictly and use LoadReport::describe for all), and the model is unchanged.
LoadReport load_state_dict(NeuroBOLTImpl& model, const StateDict& state, bool strict);

}  // namespace neurobolt
