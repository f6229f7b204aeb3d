// EDF, EDF+ (continuous and discontinuous), BDF and BDF+.
//
// How a file is read:
//  1. neurobolt's own header check (io/edf_header.hpp) parses every field from the header bytes
//     and checks the sizes against the file size; its errors name the field.
//  2. EDFlib opens the file as an independent second check of the header. Where EDFlib's view
//     of a value that determines the samples differs from ours the file is refused. Where the
//     header has an oddity EDFlib is known to refuse but which does not affect the samples
//     (numbers with leading spaces, a non-blank prefiltering field on the annotation signal,
//     ...), EDFlib is not asked and the file is read with a warning that says why. EDFlib 1.23
//     opens no discontinuous (EDF+D/BDF+D) file at all; those are checked by our parser only.
//  3. The data block is read directly in large blocks (in parallel over records) and scaled to
//     physical units: EDFlib's per-signal sample calls are far slower on large files. A sample
//     range (ReadOptions::first_sample) reads only the records that hold it.
//  4. EDF+ annotations (every annotation signal) and the time-keeping TAL of each data record
//     come from neurobolt's TAL parser; EDF+D records are placed at their true times, the gaps
//     between them filled with NaN and listed in Recording::gaps.
//
// Channels: names are the labels as the file has them (trailing spaces removed), as MNE-Python
// keeps them ("EEG Fp1", "Fc5."). Types come from the label's first word where it is a known
// type ("EEG", "EOG", "ECG"/"EKG", "EMG"; "Resp", "SaO2", "SpO2", "Temp", "Pleth", "Misc" are
// misc), else from the name (channel_type_from_name: "Status", "...TRIG..." are triggers);
// a channel without a type prefix whose unit is not a voltage is misc. MNE-Python 1.3 calls
// every EDF/BDF channel EEG by default (its infer_types is off) — see tests/core/test_readers.cpp.
// Voltages are converted to microvolts; other channels keep their physical dimension as unit.
// Only one sampling rate per recording: when signals differ, the channels at the highest rate
// are loaded and the others are left out with a warning (naming them in ReadOptions::channels
// together with channels at another rate is an error).
#include <edflib.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "io/edf_header.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the EDF sample conversion assumes a little-endian host");

namespace neurobolt {
namespace {

using io::edf::Header;

// EDFlib keeps a process-wide table of open files and is not thread-safe.
std::mutex& edflib_mutex() {
  static std::mutex mutex;
  return mutex;
}

const char* edflib_error_text(int code) {
  switch (code) {
    case EDFLIB_MALLOC_ERROR: return "out of memory";
    case EDFLIB_NO_SUCH_FILE_OR_DIRECTORY: return "no such file or directory";
    case EDFLIB_FILE_CONTAINS_FORMAT_ERRORS: return "the file contains format errors";
    case EDFLIB_MAXFILES_REACHED: return "too many files open in EDFlib";
    case EDFLIB_FILE_READ_ERROR: return "read error";
    case EDFLIB_FILE_ALREADY_OPENED: return "the file is already open in EDFlib";
    case EDFLIB_FILETYPE_ERROR: return "not an EDF/BDF file";
    case EDFLIB_NUMBER_OF_SIGNALS_INVALID: return "invalid number of signals";
    case EDFLIB_FILE_IS_DISCONTINUOUS: return "the file is discontinuous";
    case EDFLIB_ARCH_ERROR: return "unsupported architecture";
    default: return "unknown error";
  }
}

// EDFlib's view of the header, compared with ours. See the file comment.
void check_with_edflib(const std::string& path, const Header& h, std::vector<std::string>& warnings) {
  if (!h.edflib_refusals.empty()) {
    std::string reasons;
    for (const auto& r : h.edflib_refusals) reasons += (reasons.empty() ? "" : "; ") + r;
    warnings.push_back(fmt::format("EDFlib {:.2f} refuses this file ({}); read with neurobolt's own EDF parser",
                                   edflib_version() / 100.0, reasons));
    return;
  }
  // EDFlib 1.23 opens no EDF+D/BDF+D file (EDFLIB_FILE_IS_DISCONTINUOUS): nothing to compare.
  if (h.discontinuous) return;
  auto hdr = std::make_unique<edf_hdr_struct>();
  std::lock_guard<std::mutex> lock(edflib_mutex());
  if (edfopen_file_readonly(path.c_str(), hdr.get(), EDFLIB_DO_NOT_READ_ANNOTATIONS) != 0) {
    const int code = hdr->filetype;
    if (code == EDFLIB_FILE_CONTAINS_FORMAT_ERRORS) {
      warnings.push_back(
          fmt::format("EDFlib {:.2f} reports format errors (code {}) that neurobolt's header check "
                      "does not find; read with neurobolt's own EDF parser",
                      edflib_version() / 100.0, code));
      return;
    }
    if (code == EDFLIB_MALLOC_ERROR) throw Error(ErrorKind::internal, fmt::format("'{}': EDFlib: out of memory", path));
    if (code == EDFLIB_FILETYPE_ERROR || code == EDFLIB_NUMBER_OF_SIGNALS_INVALID) {
      io::fail_format(path, fmt::format("EDFlib: {} (code {})", edflib_error_text(code), code));
    }
    throw IoError(fmt::format("'{}': EDFlib cannot open the file: {} (code {})", path, edflib_error_text(code), code));
  }
  struct Closer {
    int handle;
    ~Closer() { edfclose_file(handle); }
  } closer{hdr->handle};

  auto disagree = [&](const std::string& field, const std::string& ours, const std::string& theirs) {
    io::fail_format(path, fmt::format("{}: neurobolt reads {}, EDFlib reads {}; refusing an ambiguous header", field,
                                      ours, theirs));
  };
  const int expected_type = h.bdf ? (h.plus ? EDFLIB_FILETYPE_BDFPLUS : EDFLIB_FILETYPE_BDF)
                                  : (h.plus ? EDFLIB_FILETYPE_EDFPLUS : EDFLIB_FILETYPE_EDF);
  if (hdr->filetype != expected_type) disagree("file type", h.format_name(), std::to_string(hdr->filetype));
  if (hdr->datarecords_in_file != h.num_records) {
    disagree("number of data records", std::to_string(h.num_records), std::to_string(hdr->datarecords_in_file));
  }
  if (std::llabs(hdr->datarecord_duration - std::llround(h.record_duration * EDFLIB_TIME_DIMENSION)) > 1) {
    disagree("duration of a data record", fmt::format("{} s", h.record_duration),
             fmt::format("{} s", hdr->datarecord_duration / static_cast<double>(EDFLIB_TIME_DIMENSION)));
  }
  int data_index = 0;
  for (std::size_t i = 0; i < h.signals.size(); ++i) {
    const auto& s = h.signals[i];
    if (s.annotation) continue;
    if (data_index >= hdr->edfsignals) disagree("number of data signals", "more", std::to_string(hdr->edfsignals));
    const auto& e = hdr->signalparam[data_index++];
    const std::string name = h.signal_name(i);
    auto close = [](double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(a)); };
    if (e.smp_in_datarecord != s.samples_per_record) {
      disagree(name + " samples per data record", std::to_string(s.samples_per_record),
               std::to_string(e.smp_in_datarecord));
    }
    if (e.dig_min != s.digital_min || e.dig_max != s.digital_max) {
      disagree(name + " digital range", fmt::format("[{}, {}]", s.digital_min, s.digital_max),
               fmt::format("[{}, {}]", e.dig_min, e.dig_max));
    }
    if (!close(e.phys_min, s.physical_min) || !close(e.phys_max, s.physical_max)) {
      disagree(name + " physical range", fmt::format("[{}, {}]", s.physical_min, s.physical_max),
               fmt::format("[{}, {}]", e.phys_min, e.phys_max));
    }
  }
  if (data_index != hdr->edfsignals) {
    disagree("number of data signals", std::to_string(data_index), std::to_string(hdr->edfsignals));
  }
}

ChannelType edf_channel_type(const std::string& label, bool voltage) {
  if (const auto space = label.find(' '); space != std::string::npos) {
    const std::string prefix = io::lowercase(label.substr(0, space));
    if (prefix == "eeg") return ChannelType::eeg;
    if (prefix == "eog") return ChannelType::eog;
    if (prefix == "ecg" || prefix == "ekg") return ChannelType::ecg;
    if (prefix == "emg") return ChannelType::emg;
    if (prefix == "resp" || prefix == "sao2" || prefix == "spo2" || prefix == "temp" || prefix == "pleth" ||
        prefix == "misc") {
      return ChannelType::misc;
    }
  }
  const ChannelType type = io::channel_type_from_name(label);
  if (type == ChannelType::eeg && !voltage) return ChannelType::misc;
  return type;
}

// ISO 8601 local time of the header's start plus `offset_s` seconds (EDF+ sub-second start).
std::string start_time_text(const Header& h, double offset_s) {
  if (!h.start_valid) return "";
  std::tm tm{};
  tm.tm_year = h.start_year - 1900;
  tm.tm_mon = h.start_month - 1;
  tm.tm_mday = h.start_day;
  tm.tm_hour = h.start_hour;
  tm.tm_min = h.start_minute;
  tm.tm_sec = h.start_second;
  const double whole = std::floor(offset_s);
  int64_t micro = std::llround((offset_s - whole) * 1e6);
  std::time_t t = timegm(&tm) + static_cast<std::time_t>(whole);
  if (micro >= 1000000) {
    t += 1;
    micro -= 1000000;
  }
  std::tm out{};
  gmtime_r(&t, &out);
  std::string text = fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}", out.tm_year + 1900, out.tm_mon + 1,
                                 out.tm_mday, out.tm_hour, out.tm_min, out.tm_sec);
  if (micro != 0) text += fmt::format(".{:06d}", micro);
  return text;
}

// One output channel: which signal, where in a record, and the scale to physical units (x1e6
// etc. for voltages: microvolts).
struct Conversion {
  int64_t record_offset;
  int64_t samples_per_record;
  double gain, offset;
  float* out;
};

template <int kBytes>
void convert_signal(const unsigned char* src, int64_t n, double gain, double offset, float* dst) {
  for (int64_t i = 0; i < n; ++i) {
    int32_t digital;
    if constexpr (kBytes == 2) {
      int16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      digital = v;
    } else {
      const unsigned char* p = src + 3 * i;
      digital = static_cast<int32_t>(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                                     (static_cast<uint32_t>(static_cast<int8_t>(p[2])) << 16));
    }
    dst[i] = static_cast<float>(digital * gain + offset);
  }
}

// Reads records [first, last) in blocks and converts the samples of each that fall in
// [window_first, window_first + window_count): sample s of record r (at record_start[r] + s) goes
// to conversion.out + record_start[r] + s - window_first.
void convert_records(int fd, const std::string& path, const Header& h, int64_t first, int64_t last,
                     const std::vector<Conversion>& conversions, const std::vector<int64_t>& record_start,
                     int64_t window_first, int64_t window_count) {
  constexpr int64_t kBlockBytes = 4 << 20;
  const int64_t per_block = std::max<int64_t>(1, kBlockBytes / std::max<int64_t>(1, h.record_bytes));
  const int64_t bytes = h.bdf ? 3 : 2;
  const int64_t window_end = window_first + window_count;
  std::vector<unsigned char> buffer(static_cast<std::size_t>(std::min(per_block, last - first) * h.record_bytes));
  for (int64_t r0 = first; r0 < last; r0 += per_block) {
    const int64_t count = std::min(per_block, last - r0);
    io::read_exact(fd, buffer.data(), static_cast<std::size_t>(count * h.record_bytes),
                   h.header_bytes + r0 * h.record_bytes, path);
    for (int64_t k = 0; k < count; ++k) {
      const unsigned char* record = buffer.data() + k * h.record_bytes;
      const int64_t start = record_start[static_cast<std::size_t>(r0 + k)];
      for (const auto& c : conversions) {
        const int64_t lo = std::max(window_first, start);
        const int64_t hi = std::min(window_end, start + c.samples_per_record);
        if (hi <= lo) continue;
        const unsigned char* src = record + c.record_offset + (lo - start) * bytes;
        float* dst = c.out + (lo - window_first);
        if (h.bdf) {
          convert_signal<3>(src, hi - lo, c.gain, c.offset, dst);
        } else {
          convert_signal<2>(src, hi - lo, c.gain, c.offset, dst);
        }
      }
    }
  }
}

// Zero-filled sample storage; on large sizes asks for transparent huge pages first, which
// halves the time the kernel spends faulting in the pages.
void allocate_samples(std::vector<float>& data, std::size_t n) {
  data.reserve(n);
  constexpr std::size_t kHuge = 2u << 20;
  if (n * sizeof(float) >= 4 * kHuge) {
    auto begin = reinterpret_cast<uintptr_t>(data.data());
    const uintptr_t aligned = (begin + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t end = (begin + n * sizeof(float)) & ~(kHuge - 1);
    if (end > aligned) madvise(reinterpret_cast<void*>(aligned), end - aligned, MADV_HUGEPAGE);
  }
  data.resize(n);
}

struct Timeline {
  std::vector<double> record_onsets;  // seconds from the header start (EDF+), else k * duration
  std::vector<io::edf::TalAnnotation> annotations;
};

// Reads the annotation signals of every record: time-keeping and annotations.
Timeline read_timeline(int fd, const std::string& path, const Header& h, std::vector<std::string>& warnings) {
  Timeline t;
  t.record_onsets.resize(static_cast<std::size_t>(h.num_records));
  if (!h.plus) {
    for (int64_t r = 0; r < h.num_records; ++r) t.record_onsets[static_cast<std::size_t>(r)] = r * h.record_duration;
    return t;
  }
  std::vector<std::size_t> annotation_signals;
  for (std::size_t i = 0; i < h.signals.size(); ++i) {
    if (h.signals[i].annotation) annotation_signals.push_back(i);
  }
  std::string block;
  std::set<std::string> seen;
  std::vector<std::string> tal_warnings;
  for (int64_t r = 0; r < h.num_records; ++r) {
    for (std::size_t k = 0; k < annotation_signals.size(); ++k) {
      const auto& s = h.signals[annotation_signals[k]];
      block.resize(static_cast<std::size_t>(s.samples_per_record * h.bytes_per_sample()));
      io::read_exact(fd, block.data(), block.size(), h.header_bytes + r * h.record_bytes + s.record_offset, path);
      const std::string where = fmt::format("data record {} {}", r + 1, h.signal_name(annotation_signals[k]));
      io::edf::parse_tal_block(block, k == 0, where, path, &t.record_onsets[static_cast<std::size_t>(r)], t.annotations,
                               tal_warnings);
    }
  }
  for (auto& w : tal_warnings) {
    if (seen.insert(w).second && seen.size() <= 5) warnings.push_back(std::move(w));
  }
  return t;
}

// The samples of an EDF/BDF file: records converted to physical units (see the file comment).
class EdfSource final : public io::SampleSource {
 public:
  struct Signal {
    int64_t record_offset, samples_per_record;
    double gain, offset;
  };
  EdfSource(std::string path, Header h, std::vector<Signal> signals, std::vector<int64_t> record_start,
            int64_t samples_per_record, bool has_gaps)
      : path_(std::move(path)),
        h_(std::move(h)),
        signals_(std::move(signals)),
        record_start_(std::move(record_start)),
        samples_per_record_(samples_per_record),
        has_gaps_(has_gaps) {}

  void load(Recording& rec, int64_t window_first, int64_t window_count) const override {
    io::FileDescriptor fd(path_);
    allocate_samples(rec.data, static_cast<std::size_t>(rec.num_channels() * window_count));
    if (has_gaps_) std::fill(rec.data.begin(), rec.data.end(), std::nanf(""));
    std::vector<Conversion> conversions;
    for (std::size_t k = 0; k < signals_.size(); ++k) {
      const auto& s = signals_[k];
      conversions.push_back(
          {s.record_offset, s.samples_per_record, s.gain, s.offset, rec.channel_data(static_cast<int64_t>(k))});
    }
    // The records that hold samples of the window (record_start increases).
    const auto begin_it =
        std::upper_bound(record_start_.begin(), record_start_.end(), window_first - samples_per_record_);
    const auto end_it = std::lower_bound(record_start_.begin(), record_start_.end(), window_first + window_count);
    const auto first_record = static_cast<int64_t>(begin_it - record_start_.begin());
    const int64_t num_records = std::max<int64_t>(0, static_cast<int64_t>(end_it - begin_it));
    const int64_t data_bytes = num_records * h_.record_bytes;
    const int64_t hardware = std::max(1u, std::thread::hardware_concurrency());
    const int64_t threads = std::clamp<int64_t>(std::min<int64_t>(hardware, data_bytes / (8 << 20)), 1,
                                                std::max<int64_t>(1, std::min<int64_t>(8, num_records)));
    auto convert = [&](int64_t first, int64_t last) {
      convert_records(fd.get(), path_, h_, first_record + first, first_record + last, conversions, record_start_,
                      window_first, window_count);
    };
    if (threads == 1) {
      if (num_records > 0) convert(0, num_records);
      return;
    }
    std::vector<std::thread> workers;
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
    for (int64_t t = 0; t < threads; ++t) {
      const int64_t first = num_records * t / threads, last = num_records * (t + 1) / threads;
      workers.emplace_back([&, t, first, last] {
        try {
          convert(first, last);
        } catch (...) {
          errors[static_cast<std::size_t>(t)] = std::current_exception();
        }
      });
    }
    for (auto& w : workers) w.join();
    for (auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  }

 private:
  std::string path_;
  Header h_;
  std::vector<Signal> signals_;
  std::vector<int64_t> record_start_;
  int64_t samples_per_record_;
  bool has_gaps_;
};

}  // namespace

Recording read_edf(const std::string& path, const ReadOptions& options) {
  return io::finish_read(io::open_edf(path, options), options);
}

io::OpenedRecording io::open_edf(const std::string& path, const ReadOptions& options) {
  OpenedRecording opened;
  Recording& rec = opened.header;
  rec.source = path;
  const int64_t file_size = io::regular_file_size(path);
  io::FileDescriptor fd(path);

  std::string header_bytes(static_cast<std::size_t>(std::min<int64_t>(file_size, 256)), '\0');
  io::read_exact(fd.get(), header_bytes.data(), header_bytes.size(), 0, path);
  const int64_t needed = io::edf::required_header_bytes(header_bytes, path);
  header_bytes.resize(static_cast<std::size_t>(std::min(needed, file_size)));
  io::read_exact(fd.get(), header_bytes.data() + 256, header_bytes.size() - 256, 256, path);
  const Header h = io::edf::parse_header(header_bytes, file_size, path);
  rec.format = h.format_name();
  rec.warnings = h.warnings;
  check_with_edflib(path, h, rec.warnings);

  // Channels: every data signal, then the selection and the common sampling rate.
  std::vector<Channel> all;
  std::vector<std::size_t> signal_of;
  std::vector<double> scale_of;
  for (std::size_t i = 0; i < h.signals.size(); ++i) {
    const auto& s = h.signals[i];
    if (s.annotation) continue;
    const auto uv = io::microvolts_per_unit(s.dimension);
    constexpr double kFloatMax = 3.0e38;
    if (!(std::fabs(s.physical_min) * uv.value_or(1.0) < kFloatMax &&
          std::fabs(s.physical_max) * uv.value_or(1.0) < kFloatMax)) {
      io::fail_field(path, h.signal_name(i) + " physical range",
                     "values that fit in float32 (in microvolts for voltages)",
                     fmt::format("[{}, {}] {}", s.physical_min, s.physical_max, s.dimension));
    }
    Channel c;
    c.name = s.label;
    c.type = edf_channel_type(s.label, uv.has_value());
    c.unit = uv ? "uV" : s.dimension;
    all.push_back(c);
    signal_of.push_back(i);
    scale_of.push_back(uv.value_or(1.0));
  }
  std::set<std::string> names;
  for (const auto& c : all) {
    if (!names.insert(c.name).second) {
      rec.warnings.push_back(fmt::format("channel name '{}' occurs more than once", c.name));
    }
  }
  std::vector<int64_t> picked = io::select_channels(all, options, path);
  int64_t samples_per_record = 0;
  for (auto p : picked) {
    samples_per_record =
        std::max(samples_per_record, h.signals[signal_of[static_cast<std::size_t>(p)]].samples_per_record);
  }
  {
    std::vector<int64_t> kept;
    std::string left_out;
    for (auto p : picked) {
      const auto& s = h.signals[signal_of[static_cast<std::size_t>(p)]];
      if (s.samples_per_record == samples_per_record) {
        kept.push_back(p);
      } else {
        left_out += fmt::format("{}'{}' ({} Hz)", left_out.empty() ? "" : ", ", s.label,
                                s.samples_per_record / h.record_duration);
      }
    }
    if (!left_out.empty()) {
      const std::string rate = fmt::format("{} Hz", samples_per_record / h.record_duration);
      if (!options.channels.empty()) {
        throw ConfigError(
            fmt::format("'{}': the requested channels have different sampling rates: {} besides {}; "
                        "a recording has one rate",
                        path, left_out, rate));
      }
      rec.warnings.push_back(
          fmt::format("channels at other sampling rates than {} are not loaded: {}", rate, left_out));
    }
    picked = std::move(kept);
  }
  for (auto p : picked) rec.channels.push_back(all[static_cast<std::size_t>(p)]);

  const bool annotation_only = all.empty();
  if (annotation_only) rec.warnings.push_back("no data signals: the file holds annotations only");
  rec.sample_rate = annotation_only ? 0.0 : samples_per_record / h.record_duration;

  // Record times: continuous (EDF, EDF+C) or from the time-keeping TALs (EDF+D).
  Timeline timeline = read_timeline(fd.get(), path, h, rec.warnings);
  const double first_onset = timeline.record_onsets.empty() ? 0.0 : timeline.record_onsets.front();
  std::vector<int64_t> record_start(static_cast<std::size_t>(h.num_records));
  const double tolerance = 1e-6;  // seconds; TAL times have 100 ns resolution in EDFlib
  constexpr double kMaxSpan = 7 * 24 * 3600.0;
  if (!annotation_only && h.discontinuous) {
    const double span = timeline.record_onsets.back() - first_onset;
    if (!(span <= kMaxSpan)) {
      io::fail_field(path, fmt::format("data record {} time-keeping TAL", h.num_records),
                     fmt::format("a start within a week of the first record (+{} s)", first_onset),
                     fmt::format("+{} s; refusing to fill such gaps with NaN", timeline.record_onsets.back()));
    }
  }
  bool off_grid = false;
  for (int64_t r = 0; r < h.num_records; ++r) {
    const double onset = timeline.record_onsets[static_cast<std::size_t>(r)];
    if (r > 0 && !annotation_only) {
      const double previous = timeline.record_onsets[static_cast<std::size_t>(r - 1)];
      if (!h.discontinuous && std::fabs(onset - (previous + h.record_duration)) > tolerance) {
        io::fail_field(path, fmt::format("data record {} time-keeping TAL", r + 1),
                       fmt::format("+{} s (records of a continuous {} file follow each other; a file with gaps must "
                                   "be {}D)",
                                   previous + h.record_duration, rec.format, h.bdf ? "BDF+" : "EDF+"),
                       fmt::format("+{} s", onset));
      }
      if (onset < previous + h.record_duration - tolerance) {
        io::fail_field(path, fmt::format("data record {} time-keeping TAL", r + 1),
                       fmt::format("at least +{} s (the end of the previous record)", previous + h.record_duration),
                       fmt::format("+{} s (records overlap)", onset));
      }
    }
    const double position = (onset - first_onset) * rec.sample_rate;
    record_start[static_cast<std::size_t>(r)] = std::llround(position);
    if (std::fabs(position - std::round(position)) > 1e-3) off_grid = true;
    if (r > 0 && !annotation_only) {
      const int64_t previous_end = record_start[static_cast<std::size_t>(r - 1)] + samples_per_record;
      if (record_start[static_cast<std::size_t>(r)] < previous_end)
        record_start[static_cast<std::size_t>(r)] = previous_end;
      if (record_start[static_cast<std::size_t>(r)] > previous_end) {
        Gap g;
        g.onset = static_cast<double>(previous_end) / rec.sample_rate;
        g.duration = static_cast<double>(record_start[static_cast<std::size_t>(r)] - previous_end) / rec.sample_rate;
        rec.gaps.push_back(g);
      }
    }
  }
  if (off_grid) rec.warnings.push_back("some data records start between samples; placed at the nearest sample");
  rec.num_samples = annotation_only || h.num_records == 0 ? 0 : record_start.back() + samples_per_record;
  rec.start_time = start_time_text(h, first_onset);
  for (auto& a : timeline.annotations) {
    Annotation out;
    out.onset = a.onset - first_onset;
    out.duration = a.duration;
    out.label = std::move(a.text);
    rec.annotations.push_back(std::move(out));
  }

  if (!rec.channels.empty()) {
    std::vector<EdfSource::Signal> signals;
    for (auto p : picked) {
      const auto& s = h.signals[signal_of[static_cast<std::size_t>(p)]];
      const double scale = scale_of[static_cast<std::size_t>(p)];
      signals.push_back({s.record_offset, s.samples_per_record, s.gain() * scale, s.offset() * scale});
    }
    opened.source = std::make_unique<EdfSource>(path, h, std::move(signals), std::move(record_start),
                                                samples_per_record, !rec.gaps.empty());
  }

  opened.rules.allow_no_channels = annotation_only;
  opened.rules.drop_after_end = options.drop_annotations_after_end;
  return opened;
}

}  // namespace neurobolt
