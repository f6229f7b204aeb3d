#include "io/reader_common.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "core/plural.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::io {

void fail_field(const std::string& path, const std::string& field, const std::string& expected,
                const std::string& found) {
  throw FormatError(fmt::format("'{}': {}: expected {}, found {}", path, field, expected, found));
}

void fail_format(const std::string& path, const std::string& message) {
  throw FormatError(fmt::format("'{}': {}", path, message));
}

int64_t regular_file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw IoError(fmt::format("'{}': no such file", path));
    throw IoError(fmt::format("'{}': cannot access file: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) throw IoError(fmt::format("'{}': not a regular file", path));
  return static_cast<int64_t>(st.st_size);
}

FileDescriptor::FileDescriptor(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    if (errno == ENOENT) throw IoError(fmt::format("'{}': no such file", path));
    throw IoError(fmt::format("'{}': cannot open for reading: {}", path, std::strerror(errno)));
  }
}

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

void read_exact(int fd, void* buffer, std::size_t size, int64_t offset, const std::string& path) {
  auto* out = static_cast<char*>(buffer);
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + static_cast<int64_t>(done)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError(fmt::format("'{}': read error at byte {}: {}", path, offset + done, std::strerror(errno)));
    if (n == 0) {
      throw IoError(fmt::format("'{}': unexpected end of file at byte {} (needed {} more bytes)", path,
                                offset + static_cast<int64_t>(done), size - done));
    }
    done += static_cast<std::size_t>(n);
  }
}

std::string read_file_bytes(const std::string& path) {
  const int64_t size = regular_file_size(path);
  FileDescriptor fd(path);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  read_exact(fd.get(), bytes.data(), bytes.size(), 0, path);
  return bytes;
}

std::optional<double> microvolts_per_unit(std::string_view unit) {
  unit = trim(unit);
  if (unit == "V") return 1e6;
  if (unit == "mV") return 1e3;
  if (unit == "nV") return 1e-3;
  if (unit == "uV" || unit == "\xc2\xb5V" || unit == "\xce\xbcV") return 1.0;
  return std::nullopt;
}

ChannelType channel_type_from_name(std::string_view name) {
  const std::string n = lowercase(trim(name));
  auto has = [&](const char* part) { return n.find(part) != std::string::npos; };
  if (n == "status" || n == "trigger" || has("trig") || n.rfind("sti", 0) == 0) return ChannelType::trigger;
  if (has("eog")) return ChannelType::eog;
  if (has("ecg") || has("ekg")) return ChannelType::ecg;
  if (has("emg")) return ChannelType::emg;
  return ChannelType::eeg;
}

std::string_view trim(std::string_view text) {
  std::size_t begin = 0, end = text.size();
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0'; };
  while (begin < end && space(text[begin])) ++begin;
  while (end > begin && space(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      code = (code << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((extra == 1 && code < 0x80) || (extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000) ||
        (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string latin1_to_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

std::string printable(std::string_view text, std::size_t max_length) {
  // Valid UTF-8 text keeps its non-ASCII characters ("µV", "Fp1ä"); control bytes (NUL, newline,
  // ESC...) and bytes of invalid UTF-8 are escaped, so a message is one line shown in full.
  const bool utf8 = is_valid_utf8(text);
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool continuation = utf8 && (c & 0xC0) == 0x80;
    if (out.size() >= max_length && !continuation) {
      out += "...";
      break;
    }
    if ((c >= 32 && c < 127) || (utf8 && c >= 0x80)) {
      out.push_back(ch);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

std::vector<int64_t> select_channels(const std::vector<Channel>& channels, const ReadOptions& options,
                                     const std::string& path) {
  std::vector<int64_t> picked;
  if (options.channels.empty()) {
    picked.resize(channels.size());
    for (std::size_t i = 0; i < channels.size(); ++i) picked[i] = static_cast<int64_t>(i);
    return picked;
  }
  std::vector<std::string> unknown, ambiguous, repeated;
  for (const auto& wanted : options.channels) {
    int64_t found = -1;
    int matches = 0;
    for (std::size_t i = 0; i < channels.size(); ++i) {
      if (channels[i].name == wanted) {
        if (found < 0) found = static_cast<int64_t>(i);
        ++matches;
      }
    }
    if (matches == 0) {
      unknown.push_back(wanted);
    } else if (matches > 1) {
      ambiguous.push_back(wanted);
    } else if (std::find(picked.begin(), picked.end(), found) != picked.end()) {
      repeated.push_back(wanted);
    } else {
      picked.push_back(found);
    }
  }
  auto quoted = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "'" : ", '") + printable(n) + "'";
    return out;
  };
  if (!unknown.empty()) {
    std::vector<std::string> available;
    for (const auto& c : channels) available.push_back(c.name);
    if (available.size() > 12) {
      available.resize(12);
      available.push_back("...");
    }
    throw ConfigError(fmt::format("'{}': channel{} {} not in the file (it has {}: {})", path,
                                  unknown.size() > 1 ? "s" : "", quoted(unknown),
                                  count_of(static_cast<int64_t>(channels.size()), "channel"), quoted(available)));
  }
  if (!ambiguous.empty()) {
    throw ConfigError(fmt::format("'{}': channel name{} {} occur more than once in the file", path,
                                  ambiguous.size() > 1 ? "s" : "", quoted(ambiguous)));
  }
  if (!repeated.empty()) {
    throw ConfigError(fmt::format("'{}': channel{} {} requested more than once", path, repeated.size() > 1 ? "s" : "",
                                  quoted(repeated)));
  }
  return picked;
}

int64_t resolve_sample_range(Recording& recording, const ReadOptions& options) {
  const int64_t n = recording.num_samples;
  if (options.first_sample == 0 && options.sample_count == -1) return n;
  if (options.first_sample < 0 || options.first_sample > n) {
    throw ConfigError(fmt::format("'{}': first sample to read: expected 0 to {} (the recording's length), found {}",
                                  recording.source, n, options.first_sample));
  }
  if (options.sample_count < -1) {
    throw ConfigError(fmt::format("'{}': number of samples to read: expected -1 (to the end) or >= 0, found {}",
                                  recording.source, options.sample_count));
  }
  const int64_t left = n - options.first_sample;
  recording.data_first = options.first_sample;
  recording.data_samples = options.sample_count < 0 ? left : std::min(left, options.sample_count);
  return recording.data_samples;
}

Recording finish_read(OpenedRecording opened, const ReadOptions& options) {
  Recording rec = std::move(opened.header);
  if (!options.header_only && opened.source) {
    const int64_t count = resolve_sample_range(rec, options);
    opened.source->load(rec, rec.data_first, count);
  }
  validate_recording(rec, opened.rules);
  return rec;
}

void check_samples(const Recording& recording, const ValidationRules& rules) {
  const std::string& path = recording.source;
  const int64_t held = recording.samples_in_data();
  if (!recording.data.empty() &&
      recording.data.size() != static_cast<std::size_t>(recording.num_channels() * held)) {
    throw Error(ErrorKind::internal, fmt::format("'{}': {} samples for {} channels x {} samples", path,
                                                 recording.data.size(), recording.num_channels(), held));
  }
  if (rules.check_finite) {
    for (int64_t c = 0; c < recording.num_channels() && !recording.data.empty(); ++c) {
      const float* x = recording.channel_data(c);
      for (int64_t s = 0; s < held; ++s) {
        if (!std::isfinite(x[s])) {
          fail_field(path,
                     fmt::format("channel '{}' sample {}", printable(recording.channels[c].name),
                                 recording.data_first + s + 1),
                     "a finite value",
                     std::isnan(x[s]) ? "NaN" : (x[s] > 0 ? "+Inf" : "-Inf"));
        }
      }
    }
  }
}

void validate_recording(Recording& recording, const ValidationRules& rules) {
  const std::string& path = recording.source;
  if (recording.channels.empty()) {
    if (!rules.allow_no_channels) fail_format(path, "no signal channels");
  } else if (!(std::isfinite(recording.sample_rate) && recording.sample_rate > 0)) {
    fail_field(path, "sampling rate", "a positive number of Hz", fmt::format("{:g} Hz", recording.sample_rate));
  }
  if (recording.num_samples < 0)
    fail_field(path, "number of samples", "at least 0", std::to_string(recording.num_samples));
  check_samples(recording, rules);
  std::stable_sort(recording.annotations.begin(), recording.annotations.end(),
                   [](const Annotation& a, const Annotation& b) { return a.onset < b.onset; });
  const bool has_timeline = !recording.channels.empty() && rules.length_known && recording.sample_rate > 0;
  const double end = recording.duration();
  const double tolerance = has_timeline ? 0.5 / recording.sample_rate : 0.0;
  int64_t before_start = 0;
  std::vector<Annotation> kept;
  std::string dropped;
  int64_t num_dropped = 0;
  for (auto& a : recording.annotations) {
    if (!std::isfinite(a.onset) || !std::isfinite(a.duration) || a.duration < 0) {
      fail_field(path, fmt::format("annotation '{}'", printable(a.label)), "a finite onset and duration >= 0",
                 fmt::format("onset {:g} s, duration {:g} s", a.onset, a.duration));
    }
    if (has_timeline && a.onset > end + tolerance) {
      if (!rules.drop_after_end) {
        fail_field(path, fmt::format("annotation '{}' onset", printable(a.label)),
                   fmt::format("at most {:g} s (the end of the recording)", end), fmt::format("{:g} s", a.onset));
      }
      if (++num_dropped <= 5)
        dropped += fmt::format("{}'{}' at {:g} s", dropped.empty() ? "" : ", ", printable(a.label), a.onset);
      continue;
    }
    if (a.onset < -tolerance) ++before_start;
    kept.push_back(std::move(a));
  }
  recording.annotations = std::move(kept);
  if (num_dropped > 0) {
    recording.warnings.push_back(fmt::format("{} after the end of the recording ({:g} s) left out: {}{}",
                                             count_of(num_dropped, "annotation"), end, dropped,
                                             num_dropped > 5 ? ", ..." : ""));
  }
  if (before_start > 0) {
    recording.warnings.push_back(
        fmt::format("{} before the first sample (negative onset)", count_of(before_start, "annotation")));
  }
}

}  // namespace neurobolt::io
