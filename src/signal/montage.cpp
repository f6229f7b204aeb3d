#include "neurobolt/montage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include "neurobolt/error.hpp"
#include "signal/standard_montages.hpp"

namespace neurobolt {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Trailing dots pad names to a fixed width in EDF headers ("Fc5.", "T10.", "Iz..").
std::string_view trim_name(std::string_view s) {
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || is_space(s.back()))) s.remove_suffix(1);
  return s;
}

Montage to_montage(const signal_detail::StandardMontageTable& table) {
  Montage m;
  m.name = table.name;
  m.unit = table.unit;
  for (std::size_t i = 0; i < table.size; ++i) {
    const auto& e = table.electrodes[i];
    m.names.emplace_back(e.name);
    m.positions.push_back({e.x, e.y, e.z});
  }
  return m;
}

// Upper-cased name -> spelling, for every name of the 10-05 system plus the 10-20 extras (O9, O10).
const std::unordered_map<std::string, std::string>& standard_spellings() {
  static const auto spellings = [] {
    std::unordered_map<std::string, std::string> map;
    for (const auto* table : {&signal_detail::standard_1005_table, &signal_detail::standard_1020_table})
      for (std::size_t i = 0; i < table->size; ++i) map.emplace(upper(table->electrodes[i].name), table->electrodes[i].name);
    return map;
  }();
  return spellings;
}

const std::unordered_map<std::string, std::string> kOldNames = {{"T3", "T7"}, {"T4", "T8"}, {"T5", "P7"}, {"T6", "P8"}};

const std::unordered_set<std::string> kReferenceSuffixes = {"REF", "LE", "RE", "AR", "AV", "AVG", "CAR", "A1",
                                                            "A2", "M1", "M2", "A1A2", "M1M2", "LM", "RM", "LINKED"};

// Steps 4-5 of canonical_channel_name for one electrode name; nullopt if it names none.
std::optional<std::string> standard_electrode(std::string_view name) {
  auto key = upper(trim(name));
  if (auto old = kOldNames.find(key); old != kOldNames.end()) key = old->second;
  const auto& spellings = standard_spellings();
  if (auto it = spellings.find(key); it != spellings.end()) return it->second;
  return std::nullopt;
}


std::string join(const std::vector<std::string>& names, std::size_t limit = 0) {
  std::string out;
  const std::size_t shown = limit > 0 ? std::min(limit, names.size()) : names.size();
  for (std::size_t i = 0; i < shown; ++i) out += (i > 0 ? ", " : "") + names[i];
  if (shown < names.size()) out += fmt::format(", ... ({} more)", names.size() - shown);
  return out;
}

double parse_number(std::string_view text, const std::string& path, int line_number) {
  text = trim(text);
  double value = 0.0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end)
    throw FormatError(fmt::format("'{}' line {}: expected a number, found '{}'", path, line_number, text));
  return value;
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    const std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) parts.push_back(s.substr(start, i - start));
  }
  return parts;
}

}  // namespace

std::optional<ElectrodePosition> Montage::find(std::string_view name) const {
  const auto key = channel_key(name);
  for (std::size_t i = 0; i < names.size() && i < positions.size(); ++i)
    if (channel_key(names[i]) == key) return positions[i];
  return std::nullopt;
}

const Montage& standard_montage(StandardMontage which) {
  static const Montage m1005 = to_montage(signal_detail::standard_1005_table);
  static const Montage m1020 = to_montage(signal_detail::standard_1020_table);
  return which == StandardMontage::standard_1020 ? m1020 : m1005;
}

ElectrodePosition electrode_position(std::string_view name, StandardMontage which) {
  // Canonical key -> position, first occurrence winning (T7 before its alias T3).
  using Index = std::unordered_map<std::string, ElectrodePosition>;
  auto build = [](const Montage& m) {
    Index index;
    for (std::size_t i = 0; i < m.names.size(); ++i) index.emplace(channel_key(m.names[i]), m.positions[i]);
    return index;
  };
  static const Index index_1005 = build(standard_montage(StandardMontage::standard_1005));
  static const Index index_1020 = build(standard_montage(StandardMontage::standard_1020));
  const auto& index = which == StandardMontage::standard_1020 ? index_1020 : index_1005;
  if (auto it = index.find(channel_key(name)); it != index.end()) return it->second;
  throw ConfigError(fmt::format("electrode '{}' (canonical '{}') is not in the {} montage", name,
                                canonical_channel_name(name), standard_montage(which).name));
}

Montage read_elc(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("cannot open electrode file '{}'", path));
  Montage montage;
  montage.name = path;
  std::optional<int64_t> declared;
  std::vector<std::string> labels, position_labels;
  enum class Block { header, positions, labels } block = Block::header;
  std::string raw;
  int line_number = 0;
  while (std::getline(in, raw)) {
    ++line_number;
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    if (line.rfind("UnitPosition", 0) == 0) {
      const auto parts = split_spaces(line);
      const std::string unit = parts.size() > 1 ? std::string(parts[1]) : "";
      if (unit != "mm" && unit != "cm" && unit != "m")
        throw FormatError(fmt::format("'{}' line {}: UnitPosition: expected mm, cm or m, found '{}'", path,
                                      line_number, unit));
      montage.unit = unit;
    } else if (line.rfind("NumberPositions=", 0) == 0) {
      const double n = parse_number(line.substr(16), path, line_number);
      if (n < 0 || n != static_cast<double>(static_cast<int64_t>(n)))
        throw FormatError(fmt::format("'{}' line {}: NumberPositions=: expected a count, found '{}'", path,
                                      line_number, line.substr(16)));
      declared = static_cast<int64_t>(n);
    } else if (line == "Positions") {
      block = Block::positions;
    } else if (line == "Labels") {
      block = Block::labels;
    } else if (block == Block::positions) {
      std::string_view values = line;
      if (const auto colon = line.find(':'); colon != std::string_view::npos) {
        position_labels.emplace_back(trim(line.substr(0, colon)));
        values = line.substr(colon + 1);
      }
      const auto parts = split_spaces(values);
      if (parts.size() != 3)
        throw FormatError(fmt::format("'{}' line {}: expected a position 'x y z', found '{}'", path, line_number, line));
      montage.positions.push_back({parse_number(parts[0], path, line_number), parse_number(parts[1], path, line_number),
                                   parse_number(parts[2], path, line_number)});
    } else if (block == Block::labels) {
      for (auto label : split_spaces(line)) labels.emplace_back(label);
    }
    // Other header lines (ReferenceLabel, ...) carry nothing we use.
  }
  if (montage.unit.empty()) throw FormatError(fmt::format("'{}': expected a UnitPosition line, found none", path));
  if (!declared) throw FormatError(fmt::format("'{}': expected a NumberPositions= line, found none", path));
  const auto found = static_cast<int64_t>(montage.positions.size());
  if (found != *declared)
    throw FormatError(fmt::format("'{}': NumberPositions= declares {} positions, found {}", path, *declared, found));
  if (!position_labels.empty()) {
    if (position_labels.size() != montage.positions.size())
      throw FormatError(fmt::format("'{}': expected a label on every position line, found {} labels for {} positions",
                                    path, position_labels.size(), montage.positions.size()));
    montage.names = std::move(position_labels);
  } else {
    if (static_cast<int64_t>(labels.size()) != found)
      throw FormatError(fmt::format("'{}': Labels: expected {} labels (one per position), found {}", path, found,
                                    labels.size()));
    montage.names = std::move(labels);
  }
  return montage;
}

std::string channel_key(std::string_view name) { return upper(canonical_channel_name(name)); }

std::string canonical_channel_name(std::string_view name) {
  std::string_view s = trim_name(name);
  if (s.size() > 3 && upper(s.substr(0, 3)) == "EEG" && is_space(s[3])) s = trim_name(s.substr(3));
  if (const auto dash = s.rfind('-'); dash != std::string_view::npos && dash > 0) {
    if (kReferenceSuffixes.count(upper(trim(s.substr(dash + 1)))) > 0) s = trim_name(s.substr(0, dash));
  }
  if (auto electrode = standard_electrode(s)) return *electrode;
  if (const auto dash = s.find('-'); dash != std::string_view::npos && s.find('-', dash + 1) == std::string_view::npos) {
    auto first = standard_electrode(s.substr(0, dash));
    auto second = standard_electrode(s.substr(dash + 1));
    if (first && second) return *first + "-" + *second;
  }
  return std::string(s);
}

std::string ChannelMapping::report() const {
  const auto mapped = std::count_if(source.begin(), source.end(), [](const auto& s) { return s.has_value(); });
  std::string out = fmt::format("mapped {} of {} required channels\n", mapped, source.size());
  if (!missing.empty()) out += fmt::format("missing ({}): {}\n", missing.size(), join(missing));
  if (!unmapped.empty()) out += fmt::format("unused recording channels ({}): {}\n", unmapped.size(), join(unmapped));
  for (const auto& w : warnings) out += "warning: " + w + "\n";
  return out;
}

ChannelMapping map_channels(const std::vector<std::string>& recording_names,
                            const std::vector<std::string>& required_names, bool allow_missing) {
  ChannelMapping mapping;
  std::unordered_map<std::string, int64_t> by_key;
  for (std::size_t i = 0; i < recording_names.size(); ++i) {
    const auto key = channel_key(recording_names[i]);
    auto [it, inserted] = by_key.emplace(key, static_cast<int64_t>(i));
    if (!inserted)
      mapping.warnings.push_back(fmt::format("recording channels '{}' and '{}' are both '{}'; using '{}'",
                                             recording_names[static_cast<std::size_t>(it->second)], recording_names[i],
                                             canonical_channel_name(recording_names[i]),
                                             recording_names[static_cast<std::size_t>(it->second)]));
  }
  std::unordered_map<std::string, std::size_t> required_keys;
  std::vector<bool> used(recording_names.size(), false);
  for (std::size_t r = 0; r < required_names.size(); ++r) {
    const auto key = channel_key(required_names[r]);
    auto [previous, inserted] = required_keys.emplace(key, r);
    if (!inserted)
      throw ConfigError(fmt::format("map_channels: required channels '{}' (#{}) and '{}' (#{}) are the same channel '{}'",
                                    required_names[previous->second], previous->second, required_names[r], r,
                                    canonical_channel_name(required_names[r])));
    if (auto it = by_key.find(key); it != by_key.end()) {
      mapping.source.emplace_back(it->second);
      used[static_cast<std::size_t>(it->second)] = true;
    } else {
      mapping.source.emplace_back(std::nullopt);
      mapping.missing.push_back(required_names[r]);
    }
  }
  for (std::size_t i = 0; i < recording_names.size(); ++i)
    if (!used[i]) mapping.unmapped.push_back(recording_names[i]);
  if (!mapping.missing.empty() && !allow_missing)
    throw ConfigError(fmt::format(
        "map_channels: {} required channel{} missing from the recording: {} (the recording has {} channels: {})",
        mapping.missing.size(), mapping.missing.size() == 1 ? " is" : "s are", join(mapping.missing),
        recording_names.size(), join(recording_names, 40)));
  return mapping;
}

}  // namespace neurobolt
