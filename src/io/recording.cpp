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

io::OpenedRecording io::open_recording(const std::string& path, const ReadOptions& options) {
  const std::string extension = io::lowercase(std::filesystem::path(path).extension().string());
  if (extension == ".edf" || extension == ".bdf") return open_edf(path, options);
  if (extension == ".vhdr") return open_brainvision(path, options);
  if (extension == ".set") return open_eeglab(path, options);
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

Recording read_recording(const std::string& path, const ReadOptions& options) {
  return io::finish_read(io::open_recording(path, options), options);
}

struct RecordingReader::Impl {
  Recording header;
  io::ValidationRules rules;
  std::unique_ptr<io::SampleSource> source;
};

RecordingReader::RecordingReader(const std::string& path, const ReadOptions& options) : impl_(new Impl) {
  ReadOptions open = options;
  open.header_only = false;  // the data files are checked now
  open.first_sample = 0;
  open.sample_count = -1;
  io::OpenedRecording opened = io::open_recording(path, open);
  impl_->header = std::move(opened.header);
  impl_->rules = opened.rules;
  impl_->source = std::move(opened.source);
  io::validate_recording(impl_->header, impl_->rules);
}

RecordingReader::~RecordingReader() = default;

const Recording& RecordingReader::header() const { return impl_->header; }

Recording RecordingReader::read(int64_t first, int64_t count) const {
  Recording rec = impl_->header;
  ReadOptions range;
  range.first_sample = first;
  range.sample_count = count;
  const int64_t n = io::resolve_sample_range(rec, range);
  rec.data_first = first;  // also for the whole recording: data_first and data_samples say what is held
  rec.data_samples = n;
  if (impl_->source && n > 0) impl_->source->load(rec, first, n);
  io::check_samples(rec, impl_->rules);
  return rec;
}

}  // namespace neurobolt
