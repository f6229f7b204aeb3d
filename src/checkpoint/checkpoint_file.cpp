// Reading a neurobolt checkpoint file without LibTorch (see checkpoint_file.hpp).
#include "checkpoint/checkpoint_file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "neurobolt/checkpoint_format.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::detail {
namespace {

bool carries_checkpoint_format(const h5::File& file) {
  return file.has_attribute("/", "format") && file.string_attribute("/", "format") == kCheckpointFormat;
}

h5::File open_checkpoint(const std::string& path) {
  auto file = h5::File::open_read(path);
  if (!carries_checkpoint_format(file)) {
    throw FormatError(fmt::format("'{}': not a neurobolt checkpoint (root attribute 'format' is not '{}')", path,
                                  kCheckpointFormat));
  }
  const int64_t version = file.int_attribute("/", "format_version");
  if (version > kCheckpointVersion) {
    throw FormatError(fmt::format("'{}': checkpoint format version {} is newer than this neurobolt reads ({})", path,
                                  version, kCheckpointVersion));
  }
  if (file.has_attribute("/", "arch") && file.string_attribute("/", "arch") != "neurobolt") {
    throw ConfigError(fmt::format("'{}' holds a '{}' model, not a NeuroBOLT network (infer and eval open every kind)",
                                  path, file.string_attribute("/", "arch")));
  }
  return file;
}

}  // namespace

CheckpointFile::CheckpointFile(const std::string& path)
    : file_(open_checkpoint(path)),
      config_(ModelConfig::from_json(file_.string_attribute("/", "config"), path + ": attribute 'config'")) {}

std::string CheckpointFile::metadata_json() const {
  return file_.has_attribute("/", "metadata") ? file_.string_attribute("/", "metadata") : "{}";
}

std::vector<CheckpointTensor> CheckpointFile::tensors() const {
  std::vector<CheckpointTensor> out;
  for (const auto& name : file_.list(kWeightsGroup)) {
    CheckpointTensor t;
    t.name = name;
    t.dataset = std::string(kWeightsGroup) + "/" + name;
    const auto info = file_.info(t.dataset);
    t.type = info.type;
    t.shape = info.shape;
    // LibTorch sizes are int64: a dimension of 2^63 or more (read as negative) or a product
    // past 2^62 elements is no weight of any model.
    constexpr int64_t kMaxElements = int64_t{1} << 62;
    t.numel = 1;
    for (const int64_t d : t.shape) {
      if (d < 0 || (d > 0 && t.numel > kMaxElements / d)) {
        const std::vector<uint64_t> dims(info.shape.begin(), info.shape.end());
        throw FormatError(fmt::format("'{}': dataset '{}': expected dimensions whose product is below 2^62, found {}",
                                      path(), t.dataset, fmt::join(dims, " x ")));
      }
      t.numel *= d;
    }
    out.push_back(std::move(t));
  }
  return out;
}

void CheckpointFile::read(const CheckpointTensor& tensor, h5::Type type, void* out) const {
  file_.read(tensor.dataset, type, out);
}

bool has_checkpoint_format(const std::string& path) {
  try {
    return carries_checkpoint_format(h5::File::open_read(path));
  } catch (const Error&) {
    return false;
  }
}

}  // namespace neurobolt::detail
