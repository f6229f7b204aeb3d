#include "neurobolt/tsv.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_set>

#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

// Cells are quoted in messages; a fuzzer's megabyte cell should not become a megabyte message.
std::string quote_cell(std::string_view cell) {
  constexpr std::size_t max_chars = 40;
  if (cell.size() <= max_chars) return fmt::format("'{}'", cell);
  std::size_t cut = max_chars;
  while (cut > 0 && (static_cast<unsigned char>(cell[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
  return fmt::format("'{}...' ({} bytes)", cell.substr(0, cut), cell.size());
}

// Length of the UTF-8 sequence starting at text[i], or 0 when it is invalid (overlong forms,
// surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t length;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < length; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  return length;
}

void check_encoding(std::string_view text, const std::string& source) {
  int64_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = i + 1;
      ++i;
      continue;
    }
    if (c == '\0')
      throw FormatError(fmt::format("'{}' line {}: NUL byte at byte {} of the line (a binary file, or not UTF-8?)",
                                    source, line, i - line_start + 1));
    if (c == '\r' && (i + 1 >= text.size() || text[i + 1] != '\n'))
      throw FormatError(
          fmt::format("'{}' line {}: carriage return not followed by a line feed at byte {} of the "
                      "line; lines must end in LF or CRLF",
                      source, line, i - line_start + 1));
    const std::size_t n = utf8_sequence_length(text, i);
    if (n == 0)
      throw FormatError(fmt::format("'{}' line {}: invalid UTF-8 at byte {} of the line (found byte 0x{:02X})", source,
                                    line, i - line_start + 1, static_cast<unsigned char>(c)));
    i += n;
  }
}

std::vector<std::string> split_tabs(std::string_view line) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  while (true) {
    const std::size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      cells.emplace_back(line.substr(start));
      return cells;
    }
    cells.emplace_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

bool is_missing_value(std::string_view cell) {
  cell = trim_spaces(cell);
  return cell == "n/a" || equals_ignoring_case(cell, "nan");
}

int64_t TsvTable::find_column(std::string_view name) const {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return static_cast<int64_t>(i);
  return -1;
}

int64_t TsvTable::require_column(std::string_view name) const {
  const int64_t index = find_column(name);
  if (index < 0) {
    std::string header;
    for (const auto& c : columns) header += (header.empty() ? "" : ", ") + quote_cell(c);
    throw FormatError(fmt::format("'{}': required column '{}' is missing; the header has {}", source, name, header));
  }
  return index;
}

std::string TsvTable::where(int64_t row, int64_t column) const {
  return fmt::format("'{}' line {}, column {} ({})", source, row_lines.at(static_cast<std::size_t>(row)), column + 1,
                     quote_cell(columns.at(static_cast<std::size_t>(column))));
}

double TsvTable::number(int64_t row, int64_t column) const {
  const std::string& cell = rows.at(static_cast<std::size_t>(row)).at(static_cast<std::size_t>(column));
  if (is_missing_value(cell)) return std::numeric_limits<double>::quiet_NaN();
  std::string_view s = trim_spaces(cell);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double value = 0.0;
  // from_chars is locale-independent and rejects hex floats with chars_format::general.
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, std::chars_format::general);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value))
    throw FormatError(fmt::format("{}: expected a finite number or n/a, found {}", where(row, column),
                                  cell.empty() ? std::string("an empty cell") : quote_cell(cell)));
  return value;
}

std::vector<double> TsvTable::numeric_column(int64_t column) const {
  std::vector<double> values(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) values[r] = number(static_cast<int64_t>(r), column);
  return values;
}

std::string TsvTable::text(int64_t row, int64_t column) const {
  const std::string& cell = rows.at(static_cast<std::size_t>(row)).at(static_cast<std::size_t>(column));
  return cell == "n/a" ? std::string() : cell;
}

TsvTable parse_tsv(std::string_view text, const std::string& source) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  check_encoding(text, source);

  // Lines without their terminator; trailing empty lines dropped.
  std::vector<std::string_view> lines;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) throw FormatError(fmt::format("'{}': empty file; expected a header row of column names", source));

  TsvTable table;
  table.source = source;
  table.columns = split_tabs(lines[0]);
  std::unordered_set<std::string> seen;
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    const auto& name = table.columns[c];
    if (name.empty())
      throw FormatError(fmt::format("'{}' line 1: column {} of the header has an empty name", source, c + 1));
    if (!seen.insert(name).second)
      throw FormatError(fmt::format("'{}' line 1: column name {} appears more than once", source, quote_cell(name)));
  }

  table.rows.reserve(lines.size() - 1);
  table.row_lines.reserve(lines.size() - 1);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const int64_t line_number = static_cast<int64_t>(i) + 1;
    if (lines[i].empty() && table.columns.size() > 1)
      throw FormatError(
          fmt::format("'{}' line {}: empty line inside the table; expected {} tab-separated cells "
                      "(write n/a for a missing value)",
                      source, line_number, table.columns.size()));
    auto cells = split_tabs(lines[i]);
    if (cells.size() != table.columns.size())
      throw FormatError(fmt::format("'{}' line {}: expected {} tab-separated cells as in the header, found {}", source,
                                    line_number, table.columns.size(), cells.size()));
    table.rows.push_back(std::move(cells));
    table.row_lines.push_back(line_number);
  }
  return table;
}

TsvTable read_tsv(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(fmt::format("cannot read TSV file '{}': {}", path,
                              std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open TSV file '{}' for reading", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_tsv(buffer.str(), path);
}

}  // namespace neurobolt
