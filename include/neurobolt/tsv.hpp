#pragma once
// Tab-separated tables as BIDS writes them (_channels.tsv, _events.tsv, _timeseries.tsv,
// confounds): a header row of column names, one record per line, "n/a" for a missing value.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace neurobolt {

struct TsvTable {
  std::string source;                          // the file (or other label) that messages name
  std::vector<std::string> columns;            // header names, unique and non-empty
  std::vector<std::vector<std::string>> rows;  // every row has exactly columns.size() cells
  std::vector<int64_t> row_lines;              // 1-based line of each row in the source

  int64_t num_rows() const { return static_cast<int64_t>(rows.size()); }
  int64_t num_columns() const { return static_cast<int64_t>(columns.size()); }
  // Index of a column by exact name, or -1.
  int64_t find_column(std::string_view name) const;
  // Index of a column; a FormatError naming the file, the column and the header otherwise.
  int64_t require_column(std::string_view name) const;
  // One cell as a number: NaN for a missing value; a FormatError naming the file, line and
  // column for anything that is not a finite decimal number.
  double number(int64_t row, int64_t column) const;
  // A whole column as numbers, as number() reads each cell.
  std::vector<double> numeric_column(int64_t column) const;
  // One cell as text, "" for a missing value.
  std::string text(int64_t row, int64_t column) const;
  // "'file' line 7, column 2 ('onset')", the location prefix of messages about one cell.
  std::string where(int64_t row, int64_t column) const;
};

// Whether a cell is a missing value: BIDS's "n/a", or "NaN" in any case (as numpy writes it).
bool is_missing_value(std::string_view cell);

// Parses TSV text. The text must be UTF-8 (a leading byte-order mark is skipped); lines end in
// LF or CRLF; trailing empty lines are ignored. A missing header, an empty or repeated column
// name, an empty line inside the table, a row whose cell count differs from the header's, a
// NUL byte, a lone carriage return or invalid UTF-8 is a FormatError naming `source` and the line.
TsvTable parse_tsv(std::string_view text, const std::string& source);

// Reads and parses a TSV file; a missing or unreadable file is an IoError.
TsvTable read_tsv(const std::string& path);

}  // namespace neurobolt
