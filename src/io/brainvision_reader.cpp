// BrainVision: a .vhdr header, a .vmrk marker file and a binary data file (INT_16, UINT_16,
// INT_32 or IEEE_FLOAT_32; MULTIPLEXED or VECTORIZED; little- or big-endian).
//
// Samples are stored value x resolution in the channel's unit; voltages ("V", "mV", "µV", "uV",
// "nV"; µV when the unit is not given) are converted to microvolts. Channels with another unit
// ("µS", "C", "ARU", ...) keep it and are typed misc, as MNE-Python does. BrainVision has no
// channel types otherwise: voltage channels are EEG unless the name says EOG, ECG/EKG or EMG
// (channel_type_from_name). MNE-Python differs in two ways, both stated in the tests: it also
// calls channels misc whose [Coordinates] entry is all zeros (an electrode without a position),
// and it calls EOG/ECG channels EEG unless told their names.
//
// Markers become annotations labelled "<type>/<description>" with `type` set (as MNE-Python
// labels them, so "Scanner/Scan Start"); onset (position - 1) / rate and duration points / rate.
// The first New Segment marker's date gives the start time. A marker past the last sample is an
// error naming it (or left out with a warning: ReadOptions::drop_annotations_after_end).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/plural.hpp"
#include "io/brainvision_parser.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"

namespace neurobolt {
namespace {

namespace bv = io::brainvision;

template <typename T>
T load(const unsigned char* p, bool big_endian) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, p, sizeof(T));
  if (big_endian) std::reverse(bytes, bytes + sizeof(T));
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

double sample_value(const unsigned char* p, bv::BinaryFormat format, bool big_endian) {
  switch (format) {
    case bv::BinaryFormat::int16: return load<int16_t>(p, big_endian);
    case bv::BinaryFormat::uint16: return load<uint16_t>(p, big_endian);
    case bv::BinaryFormat::int32: return load<int32_t>(p, big_endian);
    case bv::BinaryFormat::float32: return load<float>(p, big_endian);
  }
  return 0;
}

std::string sibling(const std::string& header_path, const std::string& name) {
  return (std::filesystem::path(header_path).parent_path() / name).string();
}

// The samples of a BrainVision data file, read in blocks of about 8 MiB: frames for multiplexed
// files, one channel's stretch for vectorized ones (channel c's samples start at
// c * num_samples * bytes there).
class BrainVisionSource final : public io::SampleSource {
 public:
  BrainVisionSource(std::string data_path, const bv::Header& h, std::vector<int64_t> picked, std::vector<double> scale)
      : data_path_(std::move(data_path)),
        format_(h.format),
        big_endian_(h.big_endian),
        multiplexed_(h.orientation == bv::Orientation::multiplexed),
        bps_(h.bytes_per_sample()),
        frame_bytes_(h.num_channels * h.bytes_per_sample()),
        picked_(std::move(picked)),
        scale_(std::move(scale)) {}

  void load(Recording& rec, int64_t first, int64_t count) const override {
    rec.data.resize(static_cast<std::size_t>(rec.num_channels() * count));
    io::FileDescriptor fd(data_path_);
    constexpr int64_t kBlockBytes = 8 << 20;
    std::vector<unsigned char> buffer;
    if (multiplexed_) {
      const int64_t per_block = std::max<int64_t>(1, kBlockBytes / frame_bytes_);
      for (int64_t b = 0; b < count; b += per_block) {
        const int64_t n = std::min(per_block, count - b);
        buffer.resize(static_cast<std::size_t>(n * frame_bytes_));
        io::read_exact(fd.get(), buffer.data(), buffer.size(), (first + b) * frame_bytes_, data_path_);
        for (std::size_t k = 0; k < picked_.size(); ++k) {
          const auto c = picked_[k];
          float* out = rec.channel_data(static_cast<int64_t>(k)) + b;
          const double scale = scale_[static_cast<std::size_t>(c)];
          for (int64_t i = 0; i < n; ++i) {
            out[i] =
                static_cast<float>(sample_value(buffer.data() + i * frame_bytes_ + c * bps_, format_, big_endian_) * scale);
          }
        }
      }
      return;
    }
    const int64_t per_block = std::max<int64_t>(1, kBlockBytes / bps_);
    for (std::size_t k = 0; k < picked_.size(); ++k) {
      const auto c = picked_[k];
      float* out = rec.channel_data(static_cast<int64_t>(k));
      const double scale = scale_[static_cast<std::size_t>(c)];
      for (int64_t b = 0; b < count; b += per_block) {
        const int64_t n = std::min(per_block, count - b);
        buffer.resize(static_cast<std::size_t>(n * bps_));
        io::read_exact(fd.get(), buffer.data(), buffer.size(), (c * rec.num_samples + first + b) * bps_, data_path_);
        for (int64_t i = 0; i < n; ++i)
          out[b + i] = static_cast<float>(sample_value(buffer.data() + i * bps_, format_, big_endian_) * scale);
      }
    }
  }

 private:
  std::string data_path_;
  bv::BinaryFormat format_;
  bool big_endian_, multiplexed_;
  int64_t bps_, frame_bytes_;
  std::vector<int64_t> picked_;
  std::vector<double> scale_;
};

}  // namespace

Recording read_brainvision(const std::string& path, const ReadOptions& options) {
  return io::finish_read(io::open_brainvision(path, options), options);
}

io::OpenedRecording io::open_brainvision(const std::string& path, const ReadOptions& options) {
  OpenedRecording opened;
  Recording& rec = opened.header;
  rec.source = path;
  rec.format = "BrainVision";
  const bv::Header h = bv::parse_header(io::read_file_bytes(path), path);
  rec.warnings = h.warnings;
  rec.sample_rate = h.sample_rate();

  std::vector<Channel> all;
  std::vector<double> scale;  // stored value -> sample in Recording units
  for (const auto& info : h.channels) {
    Channel c;
    c.name = info.name;
    const auto uv = io::microvolts_per_unit(info.unit);
    c.unit = uv ? "uV" : info.unit;
    c.type = uv ? io::channel_type_from_name(info.name) : ChannelType::misc;
    all.push_back(c);
    scale.push_back(info.resolution * uv.value_or(1.0));
  }
  const std::vector<int64_t> picked = io::select_channels(all, options, path);
  for (auto p : picked) rec.channels.push_back(all[static_cast<std::size_t>(p)]);

  // Sample count: from the data file's size, which must agree with DataPoints when given. A
  // header-only read takes DataPoints unchecked only when there is no data file to check it with
  // (headers shared without their signals); it never trusts it over the file's real size.
  const std::string data_path = sibling(path, h.data_file);
  const int64_t frame_bytes = h.num_channels * h.bytes_per_sample();
  std::error_code exists_error;
  const bool data_exists = std::filesystem::exists(std::filesystem::symlink_status(data_path, exists_error));
  bool length_known = true;
  if (options.header_only && h.data_points && !data_exists) {
    rec.num_samples = *h.data_points;
    rec.warnings.push_back(fmt::format("data file '{}' not found: the number of samples ({}) is the header's "
                                       "DataPoints, unchecked",
                                       data_path, *h.data_points));
  } else if (data_exists || !options.header_only) {
    const int64_t size = io::regular_file_size(data_path);
    if (size % frame_bytes != 0) {
      io::fail_field(data_path, "file size",
                     fmt::format("a multiple of {} bytes ({} x {} bytes, NumberOfChannels and BinaryFormat in '{}')",
                                 frame_bytes, count_of(h.num_channels, "channel"), h.bytes_per_sample(), path),
                     fmt::format("{} bytes (the file is truncated or the header is wrong)", size));
    }
    rec.num_samples = size / frame_bytes;
    if (h.data_points && *h.data_points != rec.num_samples) {
      int64_t claimed = 0;
      const std::string claimed_bytes = __builtin_mul_overflow(*h.data_points, frame_bytes, &claimed)
                                            ? std::string("more than 2^63")
                                            : std::to_string(claimed);
      io::fail_field(data_path, "file size",
                     fmt::format("{} bytes ({} DataPoints x {} x {} bytes, as '{}' says)", claimed_bytes,
                                 *h.data_points, count_of(h.num_channels, "channel"), h.bytes_per_sample(), path),
                     fmt::format("{} bytes ({})", size, count_of(rec.num_samples, "sample")));
    }
    if (rec.num_samples == 0) io::fail_field(data_path, "file size", "at least one sample", "0 bytes");
  } else {
    length_known = false;
    rec.warnings.push_back(
        fmt::format("data file '{}' not found and the header has no DataPoints: the number of "
                    "samples is unknown",
                    data_path));
  }

  // Markers.
  if (!h.marker_file.empty()) {
    const std::string marker_path = sibling(path, h.marker_file);
    const bv::Markers markers = bv::parse_markers(io::read_file_bytes(marker_path), marker_path);
    for (const auto& w : markers.warnings) rec.warnings.push_back(fmt::format("'{}': {}", marker_path, w));
    std::string dropped;
    int64_t num_dropped = 0;
    for (const auto& mk : markers.markers) {
      if (length_known && mk.position > rec.num_samples) {
        if (!options.drop_annotations_after_end) {
          io::fail_field(marker_path,
                         fmt::format("[Marker Infos] Mk{} ('{}/{}') position", mk.number, io::printable(mk.type),
                                     io::printable(mk.description)),
                         fmt::format("a sample from 1 to {} (the recording's length)", rec.num_samples),
                         std::to_string(mk.position));
        }
        if (++num_dropped <= 5) {
          dropped += fmt::format("{}Mk{} at sample {}", dropped.empty() ? "" : ", ", mk.number, mk.position);
        }
        continue;
      }
      if (rec.start_time.empty() && mk.type == "New Segment") rec.start_time = bv::marker_date_to_iso(mk.date);
      Annotation a;
      a.onset = static_cast<double>(mk.position - 1) / rec.sample_rate;
      a.duration = static_cast<double>(mk.points) / rec.sample_rate;
      a.type = mk.type;
      a.label = mk.type + "/" + mk.description;
      rec.annotations.push_back(std::move(a));
    }
    if (num_dropped > 0) {
      rec.warnings.push_back(fmt::format("'{}': {} after the last sample ({}) left out: {}{}", marker_path,
                                         count_of(num_dropped, "marker"), rec.num_samples, dropped,
                                         num_dropped > 5 ? ", ..." : ""));
    }
  }

  if (length_known) opened.source = std::make_unique<BrainVisionSource>(data_path, h, picked, scale);
  opened.rules.length_known = length_known;
  opened.rules.check_finite = h.format == bv::BinaryFormat::float32;
  opened.rules.drop_after_end = options.drop_annotations_after_end;
  return opened;
}

}  // namespace neurobolt
