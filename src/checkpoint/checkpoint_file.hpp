#pragma once
// Reading a neurobolt checkpoint without LibTorch: the file's HDF5 structure (checked by
// h5::File::open_read before HDF5 reads anything), the format attributes, the model config, the
// metadata, and the names, types and shapes of the weights under /model. A weight is read only
// when asked, into the caller's buffer. load_checkpoint builds the model on top of it; the
// torch-free fuzzing build drives it on damaged files (tests/fuzz/fuzz_checkpoint.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include "io/h5.hpp"
#include "neurobolt/config.hpp"

namespace neurobolt::detail {

// The group holding the weights, one dataset per state-dict key.
inline constexpr const char* kWeightsGroup = "/model";

struct CheckpointTensor {
  std::string name;     // the state-dict key, e.g. "blocks.0.attn.qkv.weight"
  std::string dataset;  // its HDF5 path, "/model/<name>"
  h5::Type type;
  std::vector<int64_t> shape;  // every dimension checked: >= 0, product below 2^62
  int64_t numel = 0;
};

class CheckpointFile {
 public:
  // Opens `path` and checks that it is a neurobolt checkpoint this version reads, of a NeuroBOLT
  // network, with a valid config. Throws IoError / FormatError / ConfigError naming the file.
  explicit CheckpointFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const ModelConfig& config() const { return config_; }
  // The "metadata" attribute (a JSON object as text), "{}" when absent.
  std::string metadata_json() const;
  // Every dataset under /model, in the file's order, with its shape checked.
  std::vector<CheckpointTensor> tensors() const;
  // Reads one weight converted to `type`; `out` holds tensor.numel elements of it.
  void read(const CheckpointTensor& tensor, h5::Type type, void* out) const;

 private:
  h5::File file_;
  ModelConfig config_;
};

// True if `path` is an HDF5 file whose root attribute "format" names a neurobolt checkpoint
// (nothing else is checked; never throws for an unreadable or foreign file).
bool has_checkpoint_format(const std::string& path);

}  // namespace neurobolt::detail
