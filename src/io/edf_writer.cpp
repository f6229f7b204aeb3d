// EDF+ output through EDFlib (edflib.h 1.23): the header and annotation layout come from EDFlib;
// samples are converted to 16-bit digital values here (rounded, not truncated as EDFlib's
// physical-sample calls do) and written one data record at a time.
#include "neurobolt/edf_writer.hpp"

#include <edflib.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <mutex>

#include "core/atomic_file.hpp"
#include "core/plural.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

// EDFlib keeps a process-wide table of open files and is not thread-safe.
std::mutex& edflib_write_mutex() {
  static std::mutex mutex;
  return mutex;
}

constexpr int kMaxSignals = 640;                 // EDFLIB_MAXSIGNALS
constexpr int kMaxAnnotationSignals = 64;        // EDFLIB_MAX_ANNOTATION_CHANNELS
constexpr std::size_t kMaxAnnotationBytes = 40;  // EDFLIB_WRITE_MAX_ANNOTATION_LEN: longer text is cut
constexpr int64_t kRecommendedRecordBytes = 61440;
constexpr int kDigitalMin = -32768;
constexpr int kDigitalMax = 32767;

bool printable_ascii(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 32 && c <= 126; });
}

// v rounded up to two significant digits; at least 1.
double nice_ceiling(double v) {
  if (!(v > 1.0)) return 1.0;
  const double step = std::pow(10.0, std::floor(std::log10(v)) - 1.0);
  return std::ceil(v / step - 1e-9) * step;
}

struct StartTime {
  int year = 1985, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int subsecond = 0;  // units of 100 ns
};

StartTime parse_start_time(const std::string& text, const std::string& path) {
  StartTime t;
  if (text.empty()) return t;
  int consumed = 0;
  const int fields = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &t.year, &t.month, &t.day, &t.hour,
                                 &t.minute, &t.second, &consumed);
  bool ok = fields == 6 && t.year >= 1985 && t.year <= 2084 && t.month >= 1 && t.month <= 12 && t.day >= 1 &&
            t.day <= 31 && t.hour >= 0 && t.hour <= 23 && t.minute >= 0 && t.minute <= 59 && t.second >= 0 &&
            t.second <= 59;
  if (ok && consumed < static_cast<int>(text.size())) {
    // Optional fraction of a second.
    const std::string rest = text.substr(static_cast<std::size_t>(consumed));
    ok = rest.size() >= 2 && rest[0] == '.' && rest.size() <= 8 &&
         std::all_of(rest.begin() + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (ok) {
      std::string digits = rest.substr(1);
      digits.resize(7, '0');
      t.subsecond = std::stoi(digits);
    }
  }
  if (!ok)
    throw ConfigError(
        fmt::format("writing '{}': start time: expected YYYY-MM-DDTHH:MM:SS[.ffffff] between 1985 and "
                    "2084 (EDF+), found '{}'",
                    path, text));
  return t;
}

// Samples per data record: a "round" record duration where one fits (1 s preferred), records
// of at most kRecommendedRecordBytes where possible, and always a divisor of the sample count.
// EDFlib stores the duration in units of 10 us.
int64_t choose_samples_per_record(double rate, int64_t num_samples, int64_t channels, const std::string& path) {
  auto representable = [&](int64_t k) {
    const double units = static_cast<double>(k) / rate * 1e5;
    return std::fabs(units - std::round(units)) < 1e-6 && units >= 100.0 && units <= 6e6;  // 1 ms .. 60 s
  };
  auto fits = [&](int64_t k) { return k * channels * 2 <= kRecommendedRecordBytes; };
  auto usable = [&](int64_t k) { return k >= 1 && num_samples % k == 0 && representable(k); };
  const double durations[] = {1.0, 0.5, 0.25, 0.2, 0.1, 0.05, 0.04, 0.025, 0.02, 0.01, 0.005, 0.004, 0.002, 0.001};
  for (bool require_fit : {true, false}) {
    for (double d : durations) {
      const double k = d * rate;
      if (std::fabs(k - std::round(k)) > 1e-9) continue;
      const auto ki = static_cast<int64_t>(std::llround(k));
      if (usable(ki) && (!require_fit || fits(ki))) return ki;
    }
  }
  // Any divisor of the sample count that makes a representable duration, the longest first.
  const auto longest = static_cast<int64_t>(std::min<double>(static_cast<double>(num_samples), 60.0 * rate));
  for (int64_t k = longest; k >= 1; --k)
    if (usable(k)) return k;
  throw ConfigError(
      fmt::format("writing '{}': {} samples at {} Hz cannot be split into EDF data records of "
                  "1 ms to 60 s (in steps of 10 us); trim the recording",
                  path, num_samples, rate));
}

// EDFlib reports a failed write as -1; the system's reason (a full disk, the file-size limit) is
// left in errno by the stdio call that failed.
std::string reason_of(int error) { return error != 0 ? ": " + detail::system_reason(error) : std::string(); }

void check(int status, const char* call, const std::string& path) {
  if (status != 0) throw IoError(fmt::format("writing '{}': EDFlib {} failed", path, call));
}

void check_recording(const Recording& rec, const std::string& path) {
  if (!(rec.sample_rate > 0.0) || !std::isfinite(rec.sample_rate))
    throw ConfigError(
        fmt::format("writing '{}': sample rate: expected a positive number of Hz, found {}", path, rec.sample_rate));
  if (rec.channels.empty() || rec.num_channels() > kMaxSignals)
    throw ConfigError(fmt::format("writing '{}': channels: expected 1 to {} (EDFlib's limit), found {}", path,
                                  kMaxSignals, rec.num_channels()));
  if (rec.num_samples < 1 || static_cast<int64_t>(rec.data.size()) != rec.num_channels() * rec.num_samples)
    throw ConfigError(fmt::format("writing '{}': data: expected {} x {} (at least 1), found {}", path,
                                  count_of(rec.num_channels(), "channel"), count_of(rec.num_samples, "sample"),
                                  count_of(static_cast<int64_t>(rec.data.size()), "value")));
  for (const auto& c : rec.channels) {
    if (c.name.empty() || c.name.size() > 16 || !printable_ascii(c.name))
      throw ConfigError(
          fmt::format("writing '{}': channel label '{}': expected 1 to 16 printable ASCII characters", path, c.name));
  }
  for (int64_t c = 0; c < rec.num_channels(); ++c) {
    const float* x = rec.channel_data(c);
    for (int64_t i = 0; i < rec.num_samples; ++i)
      if (!std::isfinite(x[i]))
        throw ConfigError(
            fmt::format("writing '{}': channel '{}' sample {}: expected a finite value (EDF has no "
                        "NaN), found {}",
                        path, rec.channels[static_cast<std::size_t>(c)].name, i, x[i]));
  }
  for (const auto& a : rec.annotations) {
    if (!(a.onset >= 0.0) || a.onset >= rec.duration())
      throw ConfigError(
          fmt::format("writing '{}': annotation '{}' at {} s: expected an onset within the recording "
                      "[0, {}) s",
                      path, a.label, a.onset, rec.duration()));
    if (!(a.duration >= 0.0) || !std::isfinite(a.duration))
      throw ConfigError(fmt::format("writing '{}': annotation '{}': expected a duration >= 0 s, found {}", path,
                                    a.label, a.duration));
    const bool control =
        std::any_of(a.label.begin(), a.label.end(), [](char c) { return static_cast<unsigned char>(c) < 32; });
    if (a.label.empty() || a.label.size() > kMaxAnnotationBytes || control)
      throw ConfigError(
          fmt::format("writing '{}': annotation '{}': expected 1 to {} bytes of text without control "
                      "characters (EDFlib's limit)",
                      path, a.label, kMaxAnnotationBytes));
  }
}

std::string edf_unit(const std::string& unit) {
  if (unit == "\xc2\xb5V" || unit == "\xce\xbcV") return "uV";
  return unit;
}

}  // namespace

void write_edf(const Recording& rec, const std::string& path, const EdfWriteOptions& options) {
  check_recording(rec, path);
  if (!(options.headroom >= 1.0))
    throw ConfigError(fmt::format("writing '{}': headroom: expected a factor >= 1, found {}", path, options.headroom));
  const StartTime start = parse_start_time(rec.start_time, path);
  const int64_t channels = rec.num_channels();
  const int64_t per_record = choose_samples_per_record(rec.sample_rate, rec.num_samples, channels, path);
  const int64_t records = rec.num_samples / per_record;
  const auto duration_units = std::llround(static_cast<double>(per_record) / rec.sample_rate * 1e5);

  const int64_t annotations = static_cast<int64_t>(rec.annotations.size());
  const int64_t annotation_signals = std::max<int64_t>(1, (annotations + records - 1) / records);
  if (annotation_signals > kMaxAnnotationSignals)
    throw ConfigError(
        fmt::format("writing '{}': {} do not fit into {} (EDFlib stores at most {} per record)", path,
                    count_of(annotations, "annotation"), count_of(records, "data record"), kMaxAnnotationSignals));

  std::vector<double> physical_max(static_cast<std::size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const float* x = rec.channel_data(c);
    double peak = 0.0;
    for (int64_t i = 0; i < rec.num_samples; ++i) peak = std::max(peak, static_cast<double>(std::fabs(x[i])));
    physical_max[static_cast<std::size_t>(c)] = nice_ceiling(options.headroom * peak);
    if (physical_max[static_cast<std::size_t>(c)] >= 1e7)
      throw ConfigError(fmt::format(
          "writing '{}': channel '{}': values up to {} {} do not fit an 8-character EDF "
          "physical range",
          path, rec.channels[static_cast<std::size_t>(c)].name, peak, rec.channels[static_cast<std::size_t>(c)].unit));
  }
  for (const auto& c : rec.channels) {
    const std::string unit = edf_unit(c.unit);
    if (unit.size() > 8 || !printable_ascii(unit))
      throw ConfigError(
          fmt::format("writing '{}': channel '{}' unit '{}': expected at most 8 printable ASCII "
                      "characters",
                      path, c.name, c.unit));
  }

  detail::AtomicOutput output(path, options.force);
  const std::string temp = output.temp_path().string();
  {
    std::lock_guard<std::mutex> lock(edflib_write_mutex());
    const int handle = edfopen_file_writeonly(temp.c_str(), EDFLIB_FILETYPE_EDFPLUS, static_cast<int>(channels));
    if (handle < 0) throw IoError(fmt::format("writing '{}': EDFlib cannot create the file (code {})", path, handle));
    struct Closer {
      int handle;
      bool open = true;
      ~Closer() {
        if (open) edfclose_file(handle);
      }
    } closer{handle};

    check(edf_set_datarecord_duration(handle, static_cast<int>(duration_units)), "edf_set_datarecord_duration", path);
    check(edf_set_number_of_annotation_signals(handle, static_cast<int>(annotation_signals)),
          "edf_set_number_of_annotation_signals", path);
    check(edf_set_startdatetime(handle, start.year, start.month, start.day, start.hour, start.minute, start.second),
          "edf_set_startdatetime", path);
    if (start.subsecond != 0)
      check(edf_set_subsecond_starttime(handle, start.subsecond), "edf_set_subsecond_starttime", path);
    check(edf_set_patientcode(handle, options.patient_code.c_str()), "edf_set_patientcode", path);
    check(edf_set_equipment(handle, options.equipment.c_str()), "edf_set_equipment", path);
    for (int64_t c = 0; c < channels; ++c) {
      const int s = static_cast<int>(c);
      const auto& channel = rec.channels[static_cast<std::size_t>(c)];
      const double pmax = physical_max[static_cast<std::size_t>(c)];
      check(edf_set_samplefrequency(handle, s, static_cast<int>(per_record)), "edf_set_samplefrequency", path);
      check(edf_set_physical_maximum(handle, s, pmax), "edf_set_physical_maximum", path);
      check(edf_set_physical_minimum(handle, s, -pmax), "edf_set_physical_minimum", path);
      check(edf_set_digital_maximum(handle, s, kDigitalMax), "edf_set_digital_maximum", path);
      check(edf_set_digital_minimum(handle, s, kDigitalMin), "edf_set_digital_minimum", path);
      check(edf_set_label(handle, s, channel.name.c_str()), "edf_set_label", path);
      check(edf_set_physical_dimension(handle, s, edf_unit(channel.unit).c_str()), "edf_set_physical_dimension", path);
    }

    // physical = (digital + 0.5) * step for the symmetric range (EDFlib's and the EDF reader's
    // offset), so digital = round(physical / step - 0.5).
    std::vector<short> block(static_cast<std::size_t>(per_record * channels));
    for (int64_t r = 0; r < records; ++r) {
      for (int64_t c = 0; c < channels; ++c) {
        const double step = 2.0 * physical_max[static_cast<std::size_t>(c)] / (kDigitalMax - kDigitalMin);
        const float* x = rec.channel_data(c) + r * per_record;
        short* out = block.data() + c * per_record;
        for (int64_t i = 0; i < per_record; ++i) {
          const double d = std::nearbyint(static_cast<double>(x[i]) / step - 0.5);
          out[i] =
              static_cast<short>(std::clamp(d, static_cast<double>(kDigitalMin), static_cast<double>(kDigitalMax)));
        }
      }
      errno = 0;
      if (edf_blockwrite_digital_short_samples(handle, block.data()) != 0)
        throw IoError(fmt::format("writing '{}': EDFlib could not write data record {} of {}{}", path, r + 1, records,
                                  reason_of(errno)));
    }
    for (const auto& a : rec.annotations) {
      const auto onset = static_cast<long long>(std::llround(a.onset * 1e4));
      const long long duration = a.duration > 0.0 ? static_cast<long long>(std::llround(a.duration * 1e4)) : -1;
      check(edfwrite_annotation_utf8(handle, onset, duration, a.label.c_str()), "edfwrite_annotation_utf8", path);
    }
    closer.open = false;
    errno = 0;
    if (edfclose_file(handle) != 0)
      throw IoError(fmt::format("writing '{}': EDFlib could not finish the file{}", path, reason_of(errno)));
  }
  output.commit();
}

}  // namespace neurobolt
