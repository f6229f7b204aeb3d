#include "io/brainvision_parser.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <map>

#include "core/plural.hpp"
#include "io/reader_common.hpp"

namespace neurobolt::io::brainvision {
namespace {

void append_utf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out.push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code >> 6)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (code >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
}

// Windows-1252: Latin-1 except for 0x80-0x9F (undefined bytes there are kept as Latin-1).
std::string cp1252_to_utf8(std::string_view text) {
  static constexpr uint16_t kHigh[32] = {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                         0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
                                         0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                         0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    append_utf8(out, c >= 0x80 && c < 0xA0 ? kHigh[c - 0x80] : c);
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == text.size()) break;
    pos = end + 1;
  }
  return lines;
}

struct Entry {
  std::string key;  // lower case
  std::string value;
};

struct Ini {
  std::string first_line;
  std::map<std::string, std::vector<Entry>> sections;  // lower-case section name -> entries in order
};

Ini parse_ini(std::string_view text) {
  Ini ini;
  auto lines = split_lines(text);
  if (lines.empty()) return ini;
  ini.first_line = std::string(trim(lines[0]));
  std::string section;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    const std::string_view t = trim(line);
    if (t.empty() || t.front() == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      section = lowercase(trim(t.substr(1, t.size() - 2)));
      ini.sections[section];
      continue;
    }
    // [Comment] is free text (amplifier setup tables, impedances), never key=value data.
    if (section.empty() || section == "comment") continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    ini.sections[section].push_back({lowercase(trim(line.substr(0, eq))), std::string(line.substr(eq + 1))});
  }
  return ini;
}

const std::vector<Entry>* section(const Ini& ini, const std::string& name) {
  auto it = ini.sections.find(name);
  return it == ini.sections.end() ? nullptr : &it->second;
}

std::optional<std::string> value(const Ini& ini, const std::string& section_name, const std::string& key) {
  const auto* entries = section(ini, section_name);
  if (!entries) return std::nullopt;
  for (const auto& e : *entries) {
    if (e.key == key) return std::string(trim(e.value));
  }
  return std::nullopt;
}

std::optional<int64_t> to_integer(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<double> to_real(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::general);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Comma-separated fields with BrainVision's "\1" escape for commas inside a field.
std::vector<std::string> split_fields(std::string_view text) {
  std::vector<std::string> fields;
  std::size_t pos = 0;
  while (true) {
    const std::size_t comma = text.find(',', pos);
    std::string f(text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    for (std::size_t at = f.find("\\1"); at != std::string::npos; at = f.find("\\1", at + 1)) f.replace(at, 2, ",");
    fields.push_back(std::move(f));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return fields;
}

// Version from "Brain Vision Data Exchange <kind> File Version 1.0" and its variants
// ("BrainVision Core Data Format", "V-Amp", an optional comma); 0 when not recognised.
int identify(std::string_view first_line, std::string_view kind) {
  const std::string line = lowercase(first_line);
  const bool brainvision = line.rfind("brain vision", 0) == 0 || line.rfind("brainvision", 0) == 0;
  if (!brainvision || line.find(lowercase(kind) + " file") == std::string::npos) return -1;
  if (line.find("version 1.0") != std::string::npos) return 1;
  if (line.find("version 2.0") != std::string::npos) return 2;
  return 0;
}

std::string strip_bom(std::string_view bytes, bool& had_bom) {
  had_bom = bytes.substr(0, 3) == "\xEF\xBB\xBF";
  return std::string(had_bom ? bytes.substr(3) : bytes);
}

}  // namespace

std::string decode_text(std::string_view bytes, std::vector<std::string>& warnings) {
  bool bom = false;
  std::string raw = strip_bom(bytes, bom);
  std::string codepage;
  for (auto line : split_lines(raw)) {
    auto t = trim(line);
    if (lowercase(t.substr(0, 9)) == "codepage=") {
      codepage = lowercase(trim(t.substr(9)));
      break;
    }
  }
  const bool valid = is_valid_utf8(raw);
  if (codepage == "utf-8" || codepage == "utf8" || bom) {
    if (valid) return raw;
    warnings.push_back("Codepage is UTF-8 but the text is not valid UTF-8; decoded as Windows-1252 (Latin-1)");
    return cp1252_to_utf8(raw);
  }
  if (codepage == "ansi" || codepage == "latin-1" || codepage == "latin1" || codepage == "iso-8859-1" ||
      codepage == "cp1252" || codepage == "windows-1252") {
    return cp1252_to_utf8(raw);
  }
  if (!codepage.empty()) {
    warnings.push_back(fmt::format("unknown Codepage '{}'; decoded as {}", printable(codepage),
                                   valid ? "UTF-8" : "Windows-1252 (Latin-1)"));
  }
  return valid ? raw : cp1252_to_utf8(raw);
}

Header parse_header(std::string_view bytes, const std::string& path) {
  Header h;
  const std::string text = decode_text(bytes, h.warnings);
  const Ini ini = parse_ini(text);
  const int version = identify(ini.first_line, "header");
  if (version < 0) {
    fail_field(path, "first line", "'Brain Vision Data Exchange Header File Version 1.0' (or 2.0)",
               fmt::format("'{}'", printable(ini.first_line)));
  }
  if (version == 0) {
    h.warnings.push_back(fmt::format("unknown header version '{}'; read as version 1.0", printable(ini.first_line)));
  }
  h.version = version == 2 ? 2 : 1;
  if (!section(ini, "common infos")) fail_field(path, "[Common Infos]", "the section", "none");

  auto required = [&](const char* key) {
    auto v = value(ini, "common infos", lowercase(key));
    if (!v || v->empty()) fail_field(path, fmt::format("[Common Infos] {}", key), "an entry", "none");
    return *v;
  };
  h.data_file = required("DataFile");
  h.marker_file = value(ini, "common infos", "markerfile").value_or("");
  if (h.marker_file.empty()) h.warnings.push_back("no MarkerFile entry: the recording has no markers");

  const std::string data_format = value(ini, "common infos", "dataformat").value_or("BINARY");
  if (data_format != "BINARY") {
    fail_field(path, "[Common Infos] DataFormat", "BINARY (ASCII data is not supported)",
               fmt::format("'{}'", printable(data_format)));
  }
  const auto orientation = value(ini, "common infos", "dataorientation");
  if (!orientation) {
    h.warnings.push_back("no DataOrientation entry; read as MULTIPLEXED (the format's default)");
  } else if (*orientation == "VECTORIZED") {
    h.orientation = Orientation::vectorized;
  } else if (*orientation != "MULTIPLEXED") {
    fail_field(path, "[Common Infos] DataOrientation", "MULTIPLEXED or VECTORIZED",
               fmt::format("'{}'", printable(*orientation)));
  }
  if (auto type = value(ini, "common infos", "datatype"); type && *type != "TIMEDOMAIN") {
    fail_field(path, "[Common Infos] DataType", "TIMEDOMAIN (frequency-domain data is not supported)",
               fmt::format("'{}'", printable(*type)));
  }
  if (auto seg = value(ini, "common infos", "segmentationtype"); seg && *seg != "NOTSEGMENTED") {
    h.warnings.push_back(
        fmt::format("SegmentationType={}: the segments are read as one continuous recording", printable(*seg)));
  }

  const std::string channels_text = required("NumberOfChannels");
  const auto channels = to_integer(channels_text);
  if (!channels || *channels < 1) {
    fail_field(path, "[Common Infos] NumberOfChannels", "an integer >= 1",
               fmt::format("'{}'", printable(channels_text)));
  }
  if (*channels > 100000) {
    fail_field(path, "[Common Infos] NumberOfChannels", "at most 100000", std::to_string(*channels));
  }
  h.num_channels = *channels;
  if (auto points = value(ini, "common infos", "datapoints")) {
    auto n = to_integer(*points);
    if (!n || *n < 0)
      fail_field(path, "[Common Infos] DataPoints", "an integer >= 0", fmt::format("'{}'", printable(*points)));
    h.data_points = *n;
  }
  const std::string interval_text = required("SamplingInterval");
  const auto interval = to_real(interval_text);
  if (!interval || *interval <= 0) {
    fail_field(path, "[Common Infos] SamplingInterval", "a positive number of microseconds (a positive sampling rate)",
               fmt::format("'{}'", printable(interval_text)));
  }
  h.sampling_interval_us = *interval;

  const auto binary_format = value(ini, "binary infos", "binaryformat");
  if (!binary_format) fail_field(path, "[Binary Infos] BinaryFormat", "an entry", "none");
  if (*binary_format == "INT_16") {
    h.format = BinaryFormat::int16;
  } else if (*binary_format == "UINT_16") {
    h.format = BinaryFormat::uint16;
  } else if (*binary_format == "INT_32") {
    h.format = BinaryFormat::int32;
  } else if (*binary_format == "IEEE_FLOAT_32") {
    h.format = BinaryFormat::float32;
  } else {
    fail_field(path, "[Binary Infos] BinaryFormat", "INT_16, UINT_16, INT_32 or IEEE_FLOAT_32",
               fmt::format("'{}'", printable(*binary_format)));
  }
  if (auto endian = value(ini, "binary infos", "usebigendianorder")) h.big_endian = lowercase(*endian) == "yes";
  for (const char* key : {"channeloffset", "dataoffset"}) {
    if (auto offset = value(ini, "binary infos", key); offset && to_integer(*offset).value_or(1) != 0) {
      fail_field(path, fmt::format("[Binary Infos] {}", key[0] == 'c' ? "ChannelOffset" : "DataOffset"),
                 "0 (offsets into the data file are not supported)", fmt::format("'{}'", printable(*offset)));
    }
  }

  // Channel Infos: Ch<n>=<name>,<reference>,<resolution>,<unit>,... for n = 1..NumberOfChannels.
  const auto* infos = section(ini, "channel infos");
  if (!infos) fail_field(path, "[Channel Infos]", "the section", "none");
  h.channels.resize(static_cast<std::size_t>(h.num_channels));
  std::vector<bool> seen(static_cast<std::size_t>(h.num_channels), false);
  for (const auto& e : *infos) {
    if (e.key.rfind("ch", 0) != 0) continue;
    const auto n = to_integer(std::string_view(e.key).substr(2));
    const std::string key = fmt::format("[Channel Infos] Ch{}", e.key.substr(2));
    if (!n || *n < 1 || *n > h.num_channels) {
      fail_field(path, key, fmt::format("a channel number from 1 to {} (NumberOfChannels)", h.num_channels),
                 fmt::format("'{}'", printable(e.key)));
    }
    auto& ch = h.channels[static_cast<std::size_t>(*n - 1)];
    if (seen[static_cast<std::size_t>(*n - 1)]) fail_field(path, key, "one entry per channel", "a second entry");
    seen[static_cast<std::size_t>(*n - 1)] = true;
    const auto fields = split_fields(e.value);
    ch.name = std::string(trim(fields[0]));
    if (ch.name.empty()) {
      ch.name = fmt::format("Ch{}", *n);
      h.warnings.push_back(fmt::format("channel {} has no name; called '{}'", *n, ch.name));
    }
    if (fields.size() > 1) ch.reference = std::string(trim(fields[1]));
    if (fields.size() > 2 && !trim(fields[2]).empty()) {
      auto res = to_real(fields[2]);
      if (!res || *res == 0) {
        fail_field(path, key + " resolution", "a non-zero number", fmt::format("'{}'", printable(fields[2])));
      }
      ch.resolution = *res;
    }
    ch.unit = fields.size() > 3 ? std::string(trim(fields[3])) : "";
    if (ch.unit.empty()) ch.unit = "\xC2\xB5V";
  }
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) {
      fail_field(path, fmt::format("[Channel Infos] Ch{}", i + 1),
                 fmt::format("an entry for each of the {} (NumberOfChannels)", count_of(h.num_channels, "channel")), "none");
    }
  }
  return h;
}

Markers parse_markers(std::string_view bytes, const std::string& path) {
  Markers m;
  const std::string text = decode_text(bytes, m.warnings);
  const Ini ini = parse_ini(text);
  const int version = identify(ini.first_line, "marker");
  if (version < 0) {
    fail_field(path, "first line", "'Brain Vision Data Exchange Marker File, Version 1.0' (or 2.0)",
               fmt::format("'{}'", printable(ini.first_line)));
  }
  if (version == 0) {
    m.warnings.push_back(
        fmt::format("unknown marker file version '{}'; read as version 1.0", printable(ini.first_line)));
  }
  const auto* infos = section(ini, "marker infos");
  if (!infos) {
    m.warnings.push_back("no [Marker Infos] section: no markers");
    return m;
  }
  for (const auto& e : *infos) {
    if (e.key.rfind("mk", 0) != 0) continue;
    const std::string key = fmt::format("[Marker Infos] Mk{}", printable(e.key.substr(2)));
    const auto n = to_integer(std::string_view(e.key).substr(2));
    if (!n) fail_field(path, key, "'Mk<number>'", fmt::format("'{}'", printable(e.key)));
    auto fields = split_fields(e.value);
    if (fields.size() < 3) {
      fail_field(path, key, "'<type>,<description>,<position>,<points>,<channel>'",
                 fmt::format("'{}'", printable(e.value)));
    }
    Marker mk;
    mk.number = *n;
    mk.type = std::move(fields[0]);
    mk.description = std::move(fields[1]);
    const auto position = to_integer(fields[2]);
    if (!position || *position < 1) {
      fail_field(path, key + " position", "a 1-based sample number >= 1", fmt::format("'{}'", printable(fields[2])));
    }
    mk.position = *position;
    if (fields.size() > 3 && !trim(fields[3]).empty()) {
      const auto points = to_integer(fields[3]);
      if (!points || *points < 0) {
        fail_field(path, key + " size", "a number of samples >= 0", fmt::format("'{}'", printable(fields[3])));
      }
      mk.points = *points;
    }
    if (fields.size() > 4 && !trim(fields[4]).empty()) {
      const auto channel = to_integer(fields[4]);
      if (!channel || *channel < 0) {
        fail_field(path, key + " channel", "a channel number >= 0", fmt::format("'{}'", printable(fields[4])));
      }
      mk.channel = *channel;
    }
    if (fields.size() > 5) mk.date = std::string(trim(fields[5]));
    m.markers.push_back(std::move(mk));
  }
  return m;
}

std::string marker_date_to_iso(std::string_view date) {
  date = trim(date);
  if (date.size() != 20) return "";
  for (char c : date) {
    if (c < '0' || c > '9') return "";
  }
  auto num = [&](std::size_t at, std::size_t len) {
    int v = 0;
    for (std::size_t i = at; i < at + len; ++i) v = v * 10 + (date[i] - '0');
    return v;
  };
  const int year = num(0, 4), month = num(4, 2), day = num(6, 2), hour = num(8, 2), minute = num(10, 2),
            second = num(12, 2);
  if (year == 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return "";
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{}", year, month, day, hour, minute, second,
                     date.substr(14, 6));
}

}  // namespace neurobolt::io::brainvision
