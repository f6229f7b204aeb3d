#pragma once
// Writing a Recording as EDF+ (continuous, 16-bit) through EDFlib.
#include <string>

#include "neurobolt/recording.hpp"

namespace neurobolt {

struct EdfWriteOptions {
  bool force = false;  // replace an existing file
  // Each channel's physical range is +-(headroom x its largest |sample|), rounded up to two
  // significant digits (at least 1 unit), and mapped onto the full 16-bit digital range.
  double headroom = 1.25;
  std::string patient_code = "X";       // EDF+ patient identification: code (no spaces)
  std::string equipment = "neurobolt";  // EDF+ recording identification: equipment
};

// Writes `recording` to `path` as EDF+C: one data signal per channel (label = channel name,
// physical dimension = unit), annotations as EDF+ annotations (onset in 100 us steps; an
// annotation with duration 0 is written without a duration), and the start time from
// Recording::start_time ("YYYY-MM-DDTHH:MM:SS[.ffffff]"; 1985-01-01T00:00:00, the anonymised
// EDF+ date, when empty). Data records last one second where the sample count allows it and
// hold at most 61440 bytes (the EDF recommendation) where possible. The file is written to a
// temporary name beside `path` and renamed when complete.
//
// ConfigError when the recording cannot be stored as EDF+ (NaN or infinite samples, more than
// 640 channels, a sample count no record length divides, annotations outside the recording,
// labels or units that are not printable ASCII or too long), IoError when the file cannot be
// written or exists and `force` is not set.
void write_edf(const Recording& recording, const std::string& path, const EdfWriteOptions& options = {});

}  // namespace neurobolt
