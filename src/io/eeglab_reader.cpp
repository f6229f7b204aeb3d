// EEGLAB .set files (MATLAB v5, v7 or v7.3/HDF5, read with matio), the data either in the .set
// or in a separate .fdt file (float32, channels x points, column-major: multiplexed).
//
// The fields may sit in a struct variable "EEG" (pop_saveset) or be top-level variables (newer
// EEGLAB writes v7.3 files that way); both are read. Continuous data only: epoched files
// (trials > 1) are refused. EEGLAB data are in microvolts. Channel names come from
// chanlocs.labels, types from chanlocs.type when set ("EEG", "EOG", "ECG"/"EKG", "EMG", else
// misc), otherwise from the name (channel_type_from_name: "EOG1" is EOG; MNE-Python calls every
// EEGLAB channel EEG). Events: the label is the event type (a string, or a number written as
// text), onset (latency - 1) / srate with 1-based fractional latencies, duration / srate.
#include <fmt/format.h>
#include <matio.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "core/plural.hpp"
#include "io/mat_check.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"

namespace neurobolt {
namespace {

// matio reads v7.3 files through HDF5, which is not thread-safe in Debian's serial build.
std::mutex& matio_mutex() {
  static std::mutex mutex;
  return mutex;
}

void silence_matio() {
  static std::once_flag once;
  std::call_once(once, [] { Mat_LogInitFunc("neurobolt", [](int, char*) {}); });
}

struct MatCloser {
  void operator()(mat_t* m) const { Mat_Close(m); }
};
struct VarFreer {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};
using MatFile = std::unique_ptr<mat_t, MatCloser>;
using MatVar = std::unique_ptr<matvar_t, VarFreer>;

std::size_t element_count(const matvar_t* v) {
  if (!v || v->rank <= 0 || !v->dims) return 0;
  std::size_t n = 1;
  for (int i = 0; i < v->rank; ++i) {
    if (__builtin_mul_overflow(n, v->dims[i], &n)) return SIZE_MAX;  // never what a buffer holds
  }
  return n;
}

// Whether matio's buffer holds all `n` values of `each` bytes that the dims promise (a damaged file
// can declare more than matio read).
bool holds(const matvar_t* v, std::size_t n, std::size_t each) { return each > 0 && n <= v->nbytes / each; }

bool is_numeric(const matvar_t* v) {
  return v && v->class_type >= MAT_C_DOUBLE && v->class_type <= MAT_C_UINT64 && !v->isComplex && v->data &&
         holds(v, element_count(v), Mat_SizeOf(v->data_type));
}

// Numeric values converted to double, in MATLAB's column-major order.
std::vector<double> numbers(const matvar_t* v) {
  std::vector<double> out;
  if (!is_numeric(v)) return out;
  const std::size_t n = element_count(v);
  out.resize(n);
  auto copy = [&](auto tag) {
    using T = decltype(tag);
    const auto* p = static_cast<const T*>(v->data);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<double>(p[i]);
  };
  switch (v->data_type) {
    case MAT_T_DOUBLE: copy(double{}); break;
    case MAT_T_SINGLE: copy(float{}); break;
    case MAT_T_INT8: copy(int8_t{}); break;
    case MAT_T_UINT8: copy(uint8_t{}); break;
    case MAT_T_INT16: copy(int16_t{}); break;
    case MAT_T_UINT16: copy(uint16_t{}); break;
    case MAT_T_INT32: copy(int32_t{}); break;
    case MAT_T_UINT32: copy(uint32_t{}); break;
    case MAT_T_INT64: copy(int64_t{}); break;
    case MAT_T_UINT64: copy(uint64_t{}); break;
    default: out.clear(); break;
  }
  return out;
}

std::optional<std::string> text(const matvar_t* v) {
  if (!v || v->class_type != MAT_C_CHAR) return std::nullopt;
  const std::size_t n = element_count(v);
  if (n == 0 || !v->data) return std::string();
  if (v->data_size < 1 || !holds(v, n, static_cast<std::size_t>(v->data_size))) return std::nullopt;
  std::string out;
  if (v->data_size == 1) {
    out.assign(static_cast<const char*>(v->data), n);
    if (!io::is_valid_utf8(out)) out = io::latin1_to_utf8(out);
  } else if (v->data_size == 2) {
    const auto* p = static_cast<const uint16_t*>(v->data);
    for (std::size_t i = 0; i < n; ++i) {
      const uint32_t c = p[i];
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
      } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      } else {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      }
    }
  } else {
    return std::nullopt;
  }
  return std::string(io::trim(out));
}

// The EEG fields, from the struct "EEG" or from top-level variables.
class Fields {
 public:
  Fields(mat_t* mat, const std::string& path) : mat_(mat), path_(path) {
    eeg_.reset(Mat_VarRead(mat_, "EEG"));
    if (eeg_ && eeg_->class_type != MAT_C_STRUCT) {
      io::fail_field(path_, "variable 'EEG'", "a struct", "another MATLAB class");
    }
  }

  // nullptr when absent.
  const matvar_t* get(const char* name) {
    if (eeg_) return Mat_VarGetStructFieldByName(eeg_.get(), name, 0);
    auto it = loose_.find(name);
    if (it != loose_.end()) return it->second.get();
    matvar_t* v = Mat_VarRead(mat_, name);
    return loose_.emplace(name, MatVar(v)).first->second.get();
  }

  double number(const char* name) {
    const matvar_t* v = get(name);
    auto values = numbers(v);
    if (values.size() != 1) {
      io::fail_field(path_, fmt::format("field '{}'", name), "a number",
                     v ? count_of(static_cast<int64_t>(values.size()), "value") : std::string("no such field"));
    }
    return values[0];
  }

 private:
  mat_t* mat_;
  const std::string& path_;
  MatVar eeg_;
  std::map<std::string, MatVar> loose_;
};

const matvar_t* struct_field(const matvar_t* s, const char* name, std::size_t index) {
  if (!s || s->class_type != MAT_C_STRUCT) return nullptr;
  return Mat_VarGetStructFieldByName(const_cast<matvar_t*>(s), name, index);
}

ChannelType type_from_eeglab(const std::string& type, const std::string& name) {
  const std::string t = io::lowercase(type);
  if (t.empty()) return io::channel_type_from_name(name);
  if (t == "eeg") return ChannelType::eeg;
  if (t == "eog" || t == "heog" || t == "veog") return ChannelType::eog;
  if (t == "ecg" || t == "ekg") return ChannelType::ecg;
  if (t == "emg") return ChannelType::emg;
  if (t == "stim" || t == "trigger") return ChannelType::trigger;
  return ChannelType::misc;
}

// nbchan is checked against the data; without them (a header-only read of a .set whose .fdt is
// not there) it is bounded instead, far above any EEG system's channel count.
constexpr int64_t kMaxUncheckedChannels = 1 << 16;

int64_t positive_count(double value, const std::string& path, const char* field) {
  if (!(value >= 1) || value != std::floor(value) || value > 1e12) {
    io::fail_field(path, fmt::format("field '{}'", field), "a positive integer", fmt::format("{}", value));
  }
  return static_cast<int64_t>(value);
}

// The .fdt named in the "data" field, next to the .set. Like MNE-Python: the old transposed
// ".dat" format is refused; when the named file is missing, "<set name>.fdt" is used if present.
std::string data_file_path(const std::string& set_path, const std::string& name, std::vector<std::string>& warnings) {
  namespace fs = std::filesystem;
  const fs::path named = fs::path(set_path).parent_path() / fs::path(name).filename();
  const std::string extension = io::lowercase(named.extension().string());
  if (extension == ".dat") {
    io::fail_field(set_path, "field 'data'", "an .fdt file (the old .dat layout is not supported; resave in EEGLAB)",
                   fmt::format("'{}'", name));
  }
  if (extension != ".fdt") {
    io::fail_field(set_path, "field 'data'", "an .fdt file name or a numeric matrix",
                   fmt::format("'{}'", io::printable(name)));
  }
  std::error_code ec;
  if (fs::is_regular_file(named, ec)) return named.string();
  const fs::path fallback = fs::path(set_path).replace_extension(".fdt");
  if (fs::is_regular_file(fallback, ec)) {
    warnings.push_back(fmt::format("data file '{}' named in the .set not found; read '{}'", name, fallback.string()));
    return fallback.string();
  }
  if (fallback == named) {
    throw IoError(fmt::format("'{}': the data file '{}' named in field 'data' is missing", set_path, named.string()));
  }
  throw IoError(fmt::format("'{}': the data file is missing: tried '{}' (field 'data') and '{}'", set_path,
                            named.string(), fallback.string()));
}

// The samples of an EEGLAB recording: an .fdt read by range, or the matrix inside the .set (kept
// from the open). Both store nbchan values per sample (MATLAB's column-major nbchan x pnts).
class EeglabSource final : public io::SampleSource {
 public:
  EeglabSource(std::string fdt, std::vector<float> embedded, int64_t nbchan, std::vector<int64_t> picked)
      : fdt_(std::move(fdt)), embedded_(std::move(embedded)), nbchan_(nbchan), picked_(std::move(picked)) {}

  void load(Recording& rec, int64_t first, int64_t count) const override {
    rec.data.resize(static_cast<std::size_t>(rec.num_channels() * count));
    // frames: samples [first + b, first + b + n) of every channel.
    auto scatter = [&](const float* frames, int64_t b, int64_t n) {
      for (std::size_t k = 0; k < picked_.size(); ++k) {
        float* out = rec.channel_data(static_cast<int64_t>(k)) + b;
        for (int64_t s = 0; s < n; ++s) out[s] = frames[s * nbchan_ + picked_[k]];
      }
    };
    if (fdt_.empty()) {
      scatter(embedded_.data() + first * nbchan_, 0, count);
      return;
    }
    io::FileDescriptor fd(fdt_);
    const int64_t per_block = std::max<int64_t>(1, (8 << 20) / (nbchan_ * 4));
    std::vector<float> frames;
    for (int64_t b = 0; b < count; b += per_block) {
      const int64_t n = std::min(per_block, count - b);
      frames.resize(static_cast<std::size_t>(n * nbchan_));
      io::read_exact(fd.get(), frames.data(), frames.size() * sizeof(float), (first + b) * nbchan_ * 4, fdt_);
      scatter(frames.data(), b, n);
    }
  }

 private:
  std::string fdt_;
  std::vector<float> embedded_;
  int64_t nbchan_;
  std::vector<int64_t> picked_;
};

}  // namespace

Recording read_eeglab(const std::string& path, const ReadOptions& options) {
  return io::finish_read(io::open_eeglab(path, options), options);
}

io::OpenedRecording io::open_eeglab(const std::string& path, const ReadOptions& options) {
  OpenedRecording opened;
  Recording& rec = opened.header;
  rec.source = path;
  rec.format = "EEGLAB";
  io::regular_file_size(path);  // IoError for a missing file
  check_mat_structure(path);  // before matio sizes anything by what the file declares
  silence_matio();
  std::lock_guard<std::mutex> lock(matio_mutex());
  MatFile mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!mat) io::fail_format(path, "not a MATLAB .mat file (v5, v7 or v7.3) that matio can open");
  Fields f(mat.get(), path);

  const int64_t nbchan = positive_count(f.number("nbchan"), path, "nbchan");
  const int64_t pnts = positive_count(f.number("pnts"), path, "pnts");
  int64_t values = 0;
  if (__builtin_mul_overflow(nbchan, pnts, &values) || values > (int64_t{1} << 40)) {
    io::fail_field(path, "fields 'nbchan' x 'pnts'", "at most 2^40 samples", fmt::format("{} x {}", nbchan, pnts));
  }
  if (f.get("trials") && f.number("trials") != 1) {
    io::fail_field(path, "field 'trials'", "1 (continuous data; epoched data are not supported)",
                   fmt::format("{}", f.number("trials")));
  }
  const double srate = f.number("srate");
  if (!(std::isfinite(srate) && srate > 0)) {
    io::fail_field(path, "field 'srate'", "a positive sampling rate in Hz", fmt::format("{}", srate));
  }
  rec.sample_rate = srate;
  rec.num_samples = pnts;

  // The data, checked against nbchan x pnts before anything of that size is allocated: the .fdt's
  // size (also in a header-only read, when the file is there) or the embedded matrix's dims.
  bool size_checked = false;
  std::string fdt;
  const matvar_t* data = f.get("data");
  const bool embedded = !text(data) && is_numeric(data);
  if (auto file = text(data)) {
    std::vector<std::string> data_warnings;
    try {
      fdt = data_file_path(path, *file, data_warnings);
    } catch (const IoError&) {
      if (!options.header_only) throw;
    }
    if (!fdt.empty()) {
      const int64_t size = io::regular_file_size(fdt);
      if (size != values * 4) {
        io::fail_field(
            fdt, "file size",
            fmt::format("{} bytes ({} x {} x float32, as '{}' says)", values * 4, count_of(nbchan, "channel"),
                        count_of(pnts, "point"), path),
            fmt::format("{} bytes", size));
      }
      size_checked = true;
      for (auto& w : data_warnings) rec.warnings.push_back(std::move(w));
    }
  } else if (embedded) {
    const std::size_t n = element_count(data);
    if (data->rank < 2 || data->dims[0] != static_cast<std::size_t>(nbchan) || n != static_cast<std::size_t>(values)) {
      io::fail_field(path, "field 'data'", fmt::format("a {} x {} matrix (nbchan x pnts)", nbchan, pnts),
                     fmt::format("{} in {}", count_of(static_cast<int64_t>(n), "value"),
                                 count_of(data->rank >= 1 ? static_cast<int64_t>(data->dims[0]) : 0, "row")));
    }
    size_checked = true;
  } else if (!options.header_only) {
    io::fail_field(path, "field 'data'", "a numeric matrix or the name of an .fdt file",
                   data ? "another MATLAB class" : "no such field");
  }
  if (!size_checked && nbchan > kMaxUncheckedChannels) {
    io::fail_field(path, "field 'nbchan'",
                   fmt::format("at most {} channels (the data file is not there to check it against)",
                               kMaxUncheckedChannels),
                   std::to_string(nbchan));
  }

  // Channels.
  std::vector<Channel> all(static_cast<std::size_t>(nbchan));
  const matvar_t* chanlocs = f.get("chanlocs");
  const std::size_t located = chanlocs && chanlocs->class_type == MAT_C_STRUCT ? element_count(chanlocs) : 0;
  if (located != 0 && located != static_cast<std::size_t>(nbchan)) {
    io::fail_field(path, "field 'chanlocs'", fmt::format("{} (nbchan)", count_of(nbchan, "entry", "entries")), std::to_string(located));
  }
  if (located == 0) rec.warnings.push_back("no chanlocs: channels are named by number");
  for (int64_t c = 0; c < nbchan; ++c) {
    auto& ch = all[static_cast<std::size_t>(c)];
    ch.unit = "uV";
    if (located) {
      ch.name = text(struct_field(chanlocs, "labels", static_cast<std::size_t>(c))).value_or("");
      const std::string type = text(struct_field(chanlocs, "type", static_cast<std::size_t>(c))).value_or("");
      ch.type = type_from_eeglab(type, ch.name);
    }
    if (ch.name.empty()) ch.name = std::to_string(c + 1);
    if (!located) ch.type = io::channel_type_from_name(ch.name);
  }
  const std::vector<int64_t> picked = io::select_channels(all, options, path);
  for (auto p : picked) rec.channels.push_back(all[static_cast<std::size_t>(p)]);

  // Events.
  const matvar_t* events = f.get("event");
  if (events && events->class_type == MAT_C_STRUCT) {
    const std::size_t n = element_count(events);
    for (std::size_t i = 0; i < n; ++i) {
      Annotation a;
      const matvar_t* type = struct_field(events, "type", i);
      if (auto label = text(type)) {
        a.label = *label;
      } else if (auto value = numbers(type); value.size() == 1) {
        a.label = fmt::format("{}", value[0]);
      }
      const auto latency = numbers(struct_field(events, "latency", i));
      if (latency.size() != 1 || !std::isfinite(latency[0])) {
        io::fail_field(path, fmt::format("event {} ('{}') latency", i + 1, a.label), "a sample number",
                       latency.empty() ? std::string("none") : count_of(static_cast<int64_t>(latency.size()), "value"));
      }
      a.onset = (latency[0] - 1.0) / srate;
      const auto duration = numbers(struct_field(events, "duration", i));
      if (duration.size() == 1 && std::isfinite(duration[0])) a.duration = duration[0] / srate;
      rec.annotations.push_back(std::move(a));
    }
  }

  if (!options.header_only) {
    if (!fdt.empty()) {
      opened.source = std::make_unique<EeglabSource>(fdt, std::vector<float>{}, nbchan, picked);
    } else if (embedded) {
      const auto samples = numbers(data);
      opened.source = std::make_unique<EeglabSource>(std::string(), std::vector<float>(samples.begin(), samples.end()),
                                                     nbchan, picked);
    }
  }

  opened.rules.check_finite = true;
  opened.rules.drop_after_end = options.drop_annotations_after_end;
  return opened;
}

}  // namespace neurobolt
