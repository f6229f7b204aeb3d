// The common recording type and the dispatcher that picks a reader from the file extension.
#include "neurobolt/recording.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {

const char* to_string(ChannelType type) {
  switch (type) {
    case ChannelType::eeg: return "eeg";
    case ChannelType::eog: return "eog";
    case ChannelType::ecg: return "ecg";
    case ChannelType::emg: return "emg";
    case ChannelType::misc: return "misc";
    case ChannelType::trigger: return "trigger";
  }
  return "?";
}

std::string Annotation::description() const {
  if (!type.empty() && label.size() > type.size() && label.compare(0, type.size(), type) == 0 &&
      label[type.size()] == '/') {
    return label.substr(type.size() + 1);
  }
  return label;
}

int64_t Recording::find_channel(const std::string& name) const {
  for (std::size_t i = 0; i < channels.size(); ++i) {
    if (channels[i].name == name) return static_cast<int64_t>(i);
  }
  return -1;
}

Recording read_recording(const std::string& path, const ReadOptions& options) {
  const std::string extension = io::lowercase(std::filesystem::path(path).extension().string());
  if (extension == ".edf" || extension == ".bdf") return read_edf(path, options);
  if (extension == ".vhdr") return read_brainvision(path, options);
  if (extension == ".set") return read_eeglab(path, options);
  if (extension == ".vmrk" || extension == ".eeg" || extension == ".dat") {
    throw FormatError(
        fmt::format("'{}': unknown recording extension '{}' (a BrainVision recording is read from its "
                    ".vhdr header file)",
                    path, extension));
  }
  if (extension == ".fdt") {
    throw FormatError(
        fmt::format("'{}': unknown recording extension '.fdt' (an EEGLAB recording is read from its "
                    ".set file)",
                    path));
  }
  throw FormatError(fmt::format("'{}': unknown recording extension '{}' (expected .edf, .bdf, .vhdr or .set)", path,
                                extension.empty() ? std::string("none") : extension));
}

}  // namespace neurobolt
