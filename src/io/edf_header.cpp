#include "io/edf_header.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <optional>

#include "io/reader_common.hpp"

namespace neurobolt::io::edf {
namespace {

constexpr int64_t kFixedBytes = 256;
// EDFlib's limits (edflib.h / edflib.c 1.23): more signals or bigger records and it refuses.
constexpr int64_t kEdflibMaxSignals = 640;
constexpr int64_t kEdflibMaxRecordBytesEdf = 10 * 1024 * 1024;
constexpr int64_t kEdflibMaxRecordBytesBdf = 15 * 1024 * 1024;

bool is_printable_ascii(std::string_view text) {
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 32 || c > 126) return false;
  }
  return true;
}

// Header text as UTF-8: ASCII as is, else UTF-8 when valid, else Latin-1.
std::string decode_text(std::string_view raw) {
  if (is_printable_ascii(raw) || is_valid_utf8(raw)) return std::string(raw);
  return latin1_to_utf8(raw);
}

struct NumberText {
  std::string_view text;  // trimmed
  bool leading_space = false;
};

NumberText number_text(std::string_view field) {
  NumberText out;
  out.leading_space = !field.empty() && field.front() == ' ' && !trim(field).empty();
  out.text = trim(field);
  return out;
}

std::optional<int64_t> parse_integer(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_real(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::general);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

class Parser {
 public:
  Parser(std::string_view bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  std::string_view field(int64_t offset, int64_t width) const {
    return bytes_.substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(width));
  }

  int64_t integer(std::string_view raw, const std::string& name, const char* expected) {
    auto t = number_text(raw);
    auto value = parse_integer(t.text);
    if (!value) fail_field(path_, name, expected, fmt::format("'{}'", printable(raw)));
    if (t.leading_space) leading_spaces_.push_back(name);
    return *value;
  }

  double real(std::string_view raw, const std::string& name, const char* expected) {
    auto t = number_text(raw);
    auto value = parse_real(t.text);
    if (!value) fail_field(path_, name, expected, fmt::format("'{}'", printable(raw)));
    if (t.leading_space) leading_spaces_.push_back(name);
    return *value;
  }

  std::vector<std::string> leading_spaces_;

 private:
  std::string_view bytes_;
  const std::string& path_;
};

// "dd.mm.yy" / "hh.mm.ss": three two-digit numbers separated by dots.
bool parse_triplet(std::string_view text, int& a, int& b, int& c) {
  if (text.size() != 8 || text[2] != '.' || text[5] != '.') return false;
  auto two = [&](std::size_t at, int& out) {
    if (text[at] < '0' || text[at] > '9' || text[at + 1] < '0' || text[at + 1] > '9') return false;
    out = (text[at] - '0') * 10 + (text[at + 1] - '0');
    return true;
  };
  return two(0, a) && two(3, b) && two(6, c);
}

// The 4-digit year of an EDF+ recording field "Startdate dd-MMM-yyyy ...", or 0.
int edfplus_year(std::string_view recording) {
  if (recording.substr(0, 10) != "Startdate " || recording.size() < 21) return 0;
  auto date = recording.substr(10, 11);
  if (date[2] != '-' || date[6] != '-') return 0;
  int year = 0;
  for (std::size_t i = 7; i < 11; ++i) {
    if (date[i] < '0' || date[i] > '9') return 0;
    year = year * 10 + (date[i] - '0');
  }
  return year;
}

// EDF+ identification fields as EDFlib checks them: "code sex birthdate name ..." and
// "Startdate dd-MMM-yyyy admincode technician equipment ...", subfields separated by one space.
bool edfplus_field_ok(std::string_view text, int subfields) {
  text = trim(text);
  int count = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') return false;  // two spaces in a row
    std::size_t end = text.find(' ', i);
    ++count;
    if (end == std::string_view::npos) break;
    i = end + 1;
  }
  return count >= subfields;
}

void note(Header& h, std::string warning, std::string refusal) {
  h.warnings.push_back(std::move(warning));
  if (!refusal.empty()) h.edflib_refusals.push_back(std::move(refusal));
}

}  // namespace

std::string Header::format_name() const {
  if (bdf) return plus ? "BDF+" : "BDF";
  if (!plus) return "EDF";
  return discontinuous ? "EDF+D" : "EDF+C";
}

std::string Header::signal_name(std::size_t index) const {
  return fmt::format("signal {} ('{}')", index + 1, index < signals.size() ? printable(signals[index].label) : "?");
}

int64_t required_header_bytes(std::string_view first_bytes, const std::string& path) {
  if (static_cast<int64_t>(first_bytes.size()) < kFixedBytes) {
    fail_field(path, "file size", "at least 256 bytes (the fixed EDF header)",
               fmt::format("{} bytes", first_bytes.size()));
  }
  Parser p(first_bytes, path);
  const int64_t ns = p.integer(p.field(252, 4), "number of signals", "an integer");
  if (ns < 1) fail_field(path, "number of signals", "at least 1", std::to_string(ns));
  return kFixedBytes * (ns + 1);
}

Header parse_header(std::string_view bytes, int64_t file_size, const std::string& path) {
  Header h;
  const int64_t needed = required_header_bytes(bytes, path);
  Parser p(bytes, path);

  // Version: "0" padded with spaces (EDF) or 0xFF "BIOSEMI" (BDF).
  const auto version = p.field(0, 8);
  if (static_cast<unsigned char>(version[0]) == 0xFF && version.substr(1) == "BIOSEMI") {
    h.bdf = true;
  } else if (version[0] != '0' || !trim(version.substr(1)).empty()) {
    fail_field(path, "version", "'0' (EDF) or '\\xffBIOSEMI' (BDF)", fmt::format("'{}'", printable(version)));
  } else if (version != "0       ") {
    note(h, fmt::format("version field '{}' is not space-padded", printable(version)), "version field not '0       '");
  }

  h.patient = decode_text(trim(p.field(8, 80)));
  h.recording = decode_text(trim(p.field(88, 80)));
  if (!is_printable_ascii(p.field(8, 80)) || !is_printable_ascii(p.field(88, 80))) {
    note(h, "patient or recording identification contains non-ASCII characters",
         "non-ASCII characters in the identification fields");
  }

  // Reserved field: EDF+C/EDF+D (BDF+C/BDF+D) mark the "plus" variants.
  h.reserved = std::string(trim(p.field(192, 44)));
  const auto kind = h.reserved.substr(0, 5);
  if (kind == (h.bdf ? "BDF+C" : "EDF+C") || kind == (h.bdf ? "BDF+D" : "EDF+D")) {
    h.plus = true;
    h.discontinuous = kind[4] == 'D';
  } else if (h.bdf && (kind == "EDF+C" || kind == "EDF+D")) {
    h.plus = true;
    h.discontinuous = kind[4] == 'D';
    note(h, fmt::format("BDF file marked '{}' in the reserved field; read as BDF+", kind), "a BDF file marked EDF+");
  } else if (!h.reserved.empty() && !(h.bdf && h.reserved == "24BIT")) {
    note(
        h,
        fmt::format("reserved field '{}' is not blank; read as plain {}", printable(h.reserved), h.bdf ? "BDF" : "EDF"),
        "");
  }

  // Start date and time; an unreadable one only loses the start time.
  int dd = 0, mm = 0, yy = 0, hh = 0, mi = 0, ss = 0;
  const auto date = p.field(168, 8), time = p.field(176, 8);
  const bool date_ok = parse_triplet(date, dd, mm, yy) && dd >= 1 && dd <= 31 && mm >= 1 && mm <= 12;
  const bool time_ok = parse_triplet(time, hh, mi, ss) && hh <= 23 && mi <= 59 && ss <= 59;
  if (date_ok && time_ok) {
    h.start_valid = true;
    // EDF: years 85-99 are 19yy, 00-84 are 20yy; EDF+ states the full year in the recording field.
    const int plus_year = h.plus ? edfplus_year(h.recording) : 0;
    h.start_year = plus_year > 0 && plus_year % 100 == yy ? plus_year : (yy >= 85 ? 1900 + yy : 2000 + yy);
    h.start_month = mm;
    h.start_day = dd;
    h.start_hour = hh;
    h.start_minute = mi;
    h.start_second = ss;
  } else {
    note(h,
         fmt::format("start date/time '{}' '{}' is not 'dd.mm.yy' 'hh.mm.ss'; start time unknown", printable(date),
                     printable(time)),
         "malformed start date or time");
  }

  h.header_bytes = p.integer(p.field(184, 8), "number of header bytes", "an integer");
  const int64_t ns = needed / kFixedBytes - 1;
  if (h.header_bytes != needed) {
    fail_field(path, "number of header bytes", fmt::format("{} (256 + 256 x {} signals)", needed, ns),
               std::to_string(h.header_bytes));
  }
  if (static_cast<int64_t>(bytes.size()) < needed) {
    fail_field(path, "file size", fmt::format("at least {} bytes for the header of {} signals", needed, ns),
               fmt::format("{} bytes", file_size));
  }
  if (ns > kEdflibMaxSignals) h.edflib_refusals.push_back(fmt::format("more than {} signals", kEdflibMaxSignals));

  const int64_t num_records = p.integer(p.field(236, 8), "number of data records", "an integer");
  h.record_duration = p.real(p.field(244, 8), "duration of a data record", "a number of seconds");
  if (h.record_duration < 0) {
    fail_field(path, "duration of a data record", "a number of seconds >= 0", fmt::format("{}", h.record_duration));
  }

  // Signal headers, field by field for all signals (the EDF layout).
  h.signals.resize(static_cast<std::size_t>(ns));
  auto at = [&](int64_t field_offset, int64_t width, int64_t i) {
    return p.field(kFixedBytes + ns * field_offset + i * width, width);
  };
  bool non_ascii = false;
  for (int64_t i = 0; i < ns; ++i) {
    auto& s = h.signals[static_cast<std::size_t>(i)];
    const auto raw_label = at(0, 16, i);
    s.label = decode_text(trim(raw_label));
    s.transducer = decode_text(trim(at(16, 80, i)));
    s.dimension = decode_text(trim(at(96, 8, i)));
    s.prefilter = decode_text(trim(at(136, 80, i)));
    for (auto f : {raw_label, at(16, 80, i), at(96, 8, i), at(136, 80, i), at(224, 32, i)}) {
      if (!is_printable_ascii(f)) non_ascii = true;
    }
    const std::string trimmed(trim(raw_label));
    if (trimmed == "EDF Annotations" || (h.bdf && trimmed == "BDF Annotations")) s.annotation = true;
  }
  if (non_ascii) {
    note(h, "signal headers contain non-ASCII characters (decoded as UTF-8 or Latin-1)",
         "non-ASCII characters in the signal headers");
  }

  int annotation_signals = 0;
  for (const auto& s : h.signals) annotation_signals += s.annotation ? 1 : 0;
  if (annotation_signals > 0 && !h.plus) {
    h.plus = true;
    note(h, fmt::format("plain {0} with an annotation signal; read as {0}+ (continuous)", h.bdf ? "BDF" : "EDF"),
         "an annotation signal in a plain EDF/BDF file");
  } else if (h.plus && annotation_signals == 0) {
    if (h.discontinuous) {
      fail_field(path, "signals", "an 'EDF Annotations' signal (EDF+D needs it for the data record times)", "none");
    }
    h.plus = false;
    note(h, fmt::format("{} without an annotation signal; read as plain {}", kind, h.bdf ? "BDF" : "EDF"),
         "an EDF+ file without an annotation signal");
  }
  if (h.bdf && h.plus) {
    for (const auto& s : h.signals) {
      if (s.annotation && s.label != "BDF Annotations") {
        h.edflib_refusals.push_back("a BDF+ annotation signal labelled 'EDF Annotations'");
        break;
      }
    }
  }

  const int64_t dig_lo = h.bdf ? -8388608 : -32768, dig_hi = h.bdf ? 8388607 : 32767;
  int64_t offset_in_record = 0;
  bool annotation_fields_odd = false;
  for (int64_t i = 0; i < ns; ++i) {
    auto& s = h.signals[static_cast<std::size_t>(i)];
    const std::string name = h.signal_name(static_cast<std::size_t>(i));
    s.physical_min = p.real(at(104, 8, i), name + " physical minimum", "a number");
    s.physical_max = p.real(at(112, 8, i), name + " physical maximum", "a number");
    s.digital_min = p.integer(at(120, 8, i), name + " digital minimum", "an integer");
    s.digital_max = p.integer(at(128, 8, i), name + " digital maximum", "an integer");
    s.samples_per_record = p.integer(at(216, 8, i), name + " number of samples in each data record", "an integer");
    for (auto [value, field] :
         {std::pair{s.digital_min, "digital minimum"}, std::pair{s.digital_max, "digital maximum"}}) {
      if (value < dig_lo || value > dig_hi) {
        fail_field(path, fmt::format("{} {}", name, field),
                   fmt::format("an integer in [{}, {}] ({})", dig_lo, dig_hi, h.bdf ? "24-bit BDF" : "16-bit EDF"),
                   std::to_string(value));
      }
    }
    if (s.annotation) {
      if (s.samples_per_record < 1) {
        fail_field(path, name + " number of samples in each data record", "at least 1",
                   std::to_string(s.samples_per_record));
      }
      if (!s.transducer.empty() || !s.prefilter.empty() || s.digital_min != dig_lo || s.digital_max != dig_hi) {
        annotation_fields_odd = true;
      }
    } else {
      if (s.samples_per_record < 1) {
        fail_field(path, name + " number of samples in each data record", "at least 1 (a positive sampling rate)",
                   s.samples_per_record == 0 ? std::string("0 (a sampling rate of 0 Hz)")
                                             : fmt::format("{} (a negative count)", s.samples_per_record));
      }
      if (s.digital_max <= s.digital_min) {
        fail_field(path, name + " digital maximum", fmt::format("more than the digital minimum ({})", s.digital_min),
                   std::to_string(s.digital_max));
      }
      if (s.physical_max == s.physical_min) {
        fail_field(path, name + " physical maximum",
                   fmt::format("different from the physical minimum ({}); the gain is undefined", s.physical_min),
                   fmt::format("{}", s.physical_max));
      }
    }
    s.record_offset = offset_in_record;
    int64_t signal_bytes = 0;
    if (__builtin_mul_overflow(s.samples_per_record, static_cast<int64_t>(h.bytes_per_sample()), &signal_bytes) ||
        __builtin_add_overflow(offset_in_record, signal_bytes, &offset_in_record)) {
      fail_field(path, name + " number of samples in each data record", "a data record size that fits in memory",
                 std::to_string(s.samples_per_record));
    }
  }
  if (annotation_fields_odd) {
    note(h, "an annotation signal has a non-blank transducer/prefiltering field or non-standard digital range",
         "annotation signal fields not as EDF+ specifies (blank transducer and prefiltering, full digital range)");
  }
  h.record_bytes = offset_in_record;
  if (h.record_bytes > (h.bdf ? kEdflibMaxRecordBytesBdf : kEdflibMaxRecordBytesEdf)) {
    h.edflib_refusals.push_back(fmt::format("data records of {} bytes", h.record_bytes));
  }

  const bool has_data_signals = annotation_signals < ns;
  if (has_data_signals && h.record_duration <= 0) {
    fail_field(path, "duration of a data record", "a positive number of seconds (a positive sampling rate)",
               fmt::format("{} (a sampling rate of 0 Hz)", printable(trim(p.field(244, 8)))));
  }

  // Data size against the file size; "-1" records (a recording that was not closed) are counted.
  const int64_t available = file_size - needed;
  if (num_records == -1) {
    h.num_records = h.record_bytes > 0 ? available / h.record_bytes : 0;
    note(h, fmt::format("number of data records is -1 (unknown); {} complete records found in the file", h.num_records),
         "number of data records -1");
  } else if (num_records < 1) {
    fail_field(path, "number of data records", "at least 1", std::to_string(num_records));
  } else {
    h.num_records = num_records;
  }
  if (h.num_records < 1)
    fail_field(path, "file size", "at least one complete data record after the header",
               fmt::format("{} bytes", file_size));
  int64_t data_bytes = 0;
  if (__builtin_mul_overflow(h.num_records, h.record_bytes, &data_bytes) || data_bytes > available) {
    fail_field(path, "file size",
               fmt::format("{} bytes ({} header bytes + {} data records x {} bytes)", needed + data_bytes, needed,
                           h.num_records, h.record_bytes),
               fmt::format("{} bytes (the file is truncated or the header is wrong)", file_size));
  }
  if (available > data_bytes) {
    const int64_t extra = available - data_bytes;
    if (extra % h.record_bytes == 0) {
      note(h,
           fmt::format("the file holds {} more data records than its header says; they are ignored",
                       extra / h.record_bytes),
           "");
    } else {
      note(h, fmt::format("{} bytes after the last data record are ignored", extra), "");
    }
  }

  if (!p.leading_spaces_.empty()) {
    std::string fields;
    for (const auto& f : p.leading_spaces_) fields += (fields.empty() ? "" : ", ") + f;
    note(h, fmt::format("numbers with leading spaces in: {}", fields), "numbers with leading spaces");
  }
  if (h.plus && (!edfplus_field_ok(h.patient, 4) || !edfplus_field_ok(h.recording, 5) ||
                 h.recording.rfind("Startdate ", 0) != 0)) {
    h.edflib_refusals.push_back("EDF+ patient/recording identification not in the EDF+ layout");
  }
  return h;
}

void parse_tal_block(std::string_view bytes, bool timekeeping, const std::string& where, const std::string& path,
                     double* record_onset, std::vector<TalAnnotation>& out, std::vector<std::string>& warnings) {
  bool first = true;
  bool decoded_latin1 = false;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes[pos] == '\0') {  // padding after the last TAL (or between TALs)
      ++pos;
      continue;
    }
    const std::size_t end = bytes.find('\0', pos);
    if (end == std::string_view::npos) {
      fail_field(path, where, "TALs that end with a zero byte",
                 fmt::format("'{}' running to the end", printable(bytes.substr(pos))));
    }
    const std::string_view tal = bytes.substr(pos, end - pos);
    pos = end + 1;
    // TAL: +onset[\x15duration]\x14[text\x14]...
    const std::size_t onset_end = tal.find('\x14');
    if (onset_end == std::string_view::npos || tal.back() != '\x14') {
      fail_field(path, where, "a TAL '+onset[\\x15duration]\\x14text\\x14'", fmt::format("'{}'", printable(tal)));
    }
    std::string_view timing = tal.substr(0, onset_end);
    std::string_view onset_text = timing, duration_text;
    if (auto d = timing.find('\x15'); d != std::string_view::npos) {
      onset_text = timing.substr(0, d);
      duration_text = timing.substr(d + 1);
    }
    if (onset_text.empty() || (onset_text[0] != '+' && onset_text[0] != '-')) {
      fail_field(path, where + " TAL onset", "a signed number of seconds ('+1.5')",
                 fmt::format("'{}'", printable(onset_text)));
    }
    auto onset = parse_real(onset_text[0] == '-' ? onset_text : onset_text.substr(1));
    if (!onset || onset_text.find_first_of("eE") != std::string_view::npos) {
      fail_field(path, where + " TAL onset", "a signed number of seconds ('+1.5')",
                 fmt::format("'{}'", printable(onset_text)));
    }
    double duration = 0;
    if (timing.find('\x15') != std::string_view::npos) {
      auto d = parse_real(duration_text);
      if (!d || *d < 0 || duration_text[0] == '-' || duration_text[0] == '+' ||
          duration_text.find_first_of("eE") != std::string_view::npos) {
        fail_field(path, where + " TAL duration", "a number of seconds >= 0",
                   fmt::format("'{}'", printable(duration_text)));
      }
      duration = *d;
    }
    // The texts between the \x14 separators; the last separator closes the TAL.
    std::vector<std::string_view> texts;
    std::size_t t = onset_end + 1;
    while (t < tal.size()) {
      const std::size_t next = tal.find('\x14', t);
      texts.push_back(tal.substr(t, next - t));
      t = next + 1;
    }
    std::size_t first_text = 0;
    if (first && timekeeping) {
      if (texts.empty() || !texts[0].empty()) {
        fail_field(path, where, "a time-keeping TAL ('+onset\\x14\\x14') first", fmt::format("'{}'", printable(tal)));
      }
      if (timing.find('\x15') != std::string_view::npos) {
        fail_field(path, where + " time-keeping TAL", "no duration", fmt::format("'{}'", printable(tal)));
      }
      *record_onset = *onset;
      first_text = 1;
    }
    first = false;
    for (std::size_t k = first_text; k < texts.size(); ++k) {
      TalAnnotation a;
      a.onset = *onset;
      a.duration = duration;
      if (is_valid_utf8(texts[k])) {
        a.text = std::string(texts[k]);
      } else {
        a.text = latin1_to_utf8(texts[k]);
        decoded_latin1 = true;
      }
      out.push_back(std::move(a));
    }
  }
  if (first && timekeeping) fail_field(path, where, "a time-keeping TAL ('+onset\\x14\\x14')", "no TAL");
  if (decoded_latin1) warnings.push_back(where + ": annotation text is not UTF-8; decoded as Latin-1");
}

}  // namespace neurobolt::io::edf
