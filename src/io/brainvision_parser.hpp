#pragma once
// BrainVision header (.vhdr) and marker (.vmrk) parsing from the files' bytes, without touching
// the file system: the reader, the tests and the fuzz target all call these.
//
// Both files are INI-like text (Brain Products' "BrainVision Core Data Format 1.0", Recorder
// versions 1.0 and 2.0). Text is decoded to UTF-8 following the file's Codepage entry: "UTF-8"
// (falling back to Latin-1 with a warning when the bytes are not valid UTF-8), "ANSI" (Windows
// code page 1252); without an entry, UTF-8 when the bytes are valid UTF-8 and Windows-1252
// otherwise (as MNE-Python does).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurobolt::io::brainvision {

enum class BinaryFormat { int16, uint16, int32, float32 };
enum class Orientation { multiplexed, vectorized };

struct ChannelInfo {
  std::string name;  // "\1" decoded to ","
  std::string reference;
  double resolution = 1;  // physical units per stored unit (empty field: 1)
  std::string unit;       // "µV" when the field is absent or empty (the format's default)
};

struct Header {
  int version = 1;                     // 1 or 2 ("Version 1.0" / "Version 2.0" on the first line)
  std::string data_file, marker_file;  // as written in the header (relative to its folder)
  Orientation orientation = Orientation::multiplexed;
  BinaryFormat format = BinaryFormat::int16;
  bool big_endian = false;
  int64_t num_channels = 0;
  std::optional<int64_t> data_points;  // DataPoints, when the header states it
  double sampling_interval_us = 0;
  std::vector<ChannelInfo> channels;
  std::vector<std::string> warnings;

  int bytes_per_sample() const { return format == BinaryFormat::int16 || format == BinaryFormat::uint16 ? 2 : 4; }
  double sample_rate() const { return 1e6 / sampling_interval_us; }
};

struct Marker {
  int64_t number = 0;  // n of "Mk<n>"
  std::string type;    // "Stimulus", "Scanner", "New Segment", ...
  std::string description;
  int64_t position = 0;  // 1-based sample
  int64_t points = 0;    // length in samples
  int64_t channel = 0;   // 0: all channels
  std::string date;      // "YYYYMMDDhhmmssuuuuuu" (New Segment markers), else ""
};

struct Markers {
  std::vector<Marker> markers;
  std::vector<std::string> warnings;
};

// Both throw FormatError "'<path>': <field>: expected ..., found ...".
Header parse_header(std::string_view bytes, const std::string& path);
Markers parse_markers(std::string_view bytes, const std::string& path);

// Text of a .vhdr/.vmrk as UTF-8, following its Codepage entry (see the file comment).
std::string decode_text(std::string_view bytes, std::vector<std::string>& warnings);

// "YYYYMMDDhhmmssuuuuuu" as ISO 8601 "YYYY-MM-DDThh:mm:ss.uuuuuu"; "" when not a valid date
// (all zeros, wrong length, out-of-range fields).
std::string marker_date_to_iso(std::string_view date);

}  // namespace neurobolt::io::brainvision
