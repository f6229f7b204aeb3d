#pragma once
// EDF/EDF+/BDF/BDF+ header and annotation (TAL) parsing from byte buffers, independent of any file.
// The reader runs this check before EDFlib opens a file: it validates every field against the
// specification and the header sizes against the file size, names the field in its errors, and
// notes the tolerable oddities that EDFlib itself refuses (so the reader can explain them instead
// of passing on EDFlib's bare error code). The fuzz target calls it directly.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "neurobolt/recording.hpp"

namespace neurobolt::io::edf {

struct Signal {
  std::string label;       // trimmed, UTF-8 (decoded from Latin-1 if the header was not ASCII)
  std::string transducer;  // trimmed
  std::string dimension;   // physical dimension, trimmed
  std::string prefilter;   // trimmed
  double physical_min = 0, physical_max = 0;
  int64_t digital_min = 0, digital_max = 0;
  int64_t samples_per_record = 0;
  bool annotation = false;    // an "EDF Annotations" / "BDF Annotations" signal
  int64_t record_offset = 0;  // byte offset of this signal's samples inside a data record

  // physical = digital * gain() + offset(), in the signal's physical dimension.
  double gain() const { return (physical_max - physical_min) / static_cast<double>(digital_max - digital_min); }
  double offset() const { return physical_min - static_cast<double>(digital_min) * gain(); }
};

struct Header {
  bool bdf = false;            // 24-bit samples
  bool plus = false;           // EDF+/BDF+ (has annotation signals with time-keeping)
  bool discontinuous = false;  // EDF+D/BDF+D
  std::string patient, recording, reserved;
  // Start of the recording as the header states it (local time); valid == false if unreadable.
  bool start_valid = false;
  int start_year = 0, start_month = 0, start_day = 0, start_hour = 0, start_minute = 0, start_second = 0;
  int64_t header_bytes = 0;
  int64_t num_records = 0;
  double record_duration = 0;  // seconds
  int64_t record_bytes = 0;
  std::vector<Signal> signals;
  std::vector<std::string> warnings;         // tolerable oddities, one line each
  std::vector<std::string> edflib_refusals;  // oddities for which EDFlib 1.23 refuses the file

  int bytes_per_sample() const { return bdf ? 3 : 2; }
  int64_t data_bytes() const { return num_records * record_bytes; }
  // "EDF", "EDF+C", "EDF+D", "BDF" or "BDF+".
  std::string format_name() const;
  // "signal 3 ('EEG Fp1')": how messages name a signal (1-based, as in the file).
  std::string signal_name(std::size_t index) const;
};

// Header bytes the file needs according to its first 256 bytes (256 * (number of signals + 1)).
// Throws FormatError naming the field when those bytes are too short or the count is unreadable.
int64_t required_header_bytes(std::string_view first_bytes, const std::string& path);

// Parses and checks the whole header. `bytes` is the beginning of the file (at least
// required_header_bytes of it; more is ignored) and `file_size` the size of the whole file.
// Throws FormatError naming the file, the field, and what was expected versus found.
Header parse_header(std::string_view bytes, int64_t file_size, const std::string& path);

// One annotation from a TAL, onset in seconds relative to the header's start time.
struct TalAnnotation {
  double onset = 0;
  double duration = 0;
  std::string text;  // UTF-8 (decoded from Latin-1 with a warning when it was not valid UTF-8)
};

// Parses the bytes of one annotation signal in one data record (a sequence of TALs padded with
// zero bytes). When `timekeeping` is set (the first annotation signal of a record) the first TAL
// must be the record's time-keeping TAL, whose onset goes to `record_onset`. Annotations are
// appended to `out`. Throws FormatError naming the record and signal.
void parse_tal_block(std::string_view bytes, bool timekeeping, const std::string& where, const std::string& path,
                     double* record_onset, std::vector<TalAnnotation>& out, std::vector<std::string>& warnings);

}  // namespace neurobolt::io::edf
