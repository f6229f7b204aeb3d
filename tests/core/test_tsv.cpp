#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>

#include "neurobolt/error.hpp"
#include "neurobolt/tsv.hpp"
#include "test_support.hpp"

using Catch::Matchers::Contains;
using neurobolt::FormatError;
using neurobolt::parse_tsv;

namespace {

// The message of the FormatError that parsing `text` throws ("" if none).
std::string parse_error(const std::string& text) {
  try {
    const auto table = parse_tsv(text, "t.tsv");
    for (int64_t c = 0; c < table.num_columns(); ++c) table.numeric_column(c);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("TSV: header, rows, numbers and n/a", "[tsv]") {
  const auto table = parse_tsv("onset\tduration\ttrial_type\n1.5\tn/a\tgo\n+2e1\t 0.25 \tn/a\n", "events.tsv");
  REQUIRE(table.columns == std::vector<std::string>{"onset", "duration", "trial_type"});
  REQUIRE(table.num_rows() == 2);
  CHECK(table.row_lines == std::vector<int64_t>{2, 3});
  CHECK(table.number(0, 0) == 1.5);
  CHECK(std::isnan(table.number(0, 1)));
  CHECK(table.number(1, 0) == 20.0);
  CHECK(table.number(1, 1) == 0.25);
  CHECK(table.text(0, 2) == "go");
  CHECK(table.text(1, 2).empty());
  CHECK(table.find_column("duration") == 1);
  CHECK(table.find_column("value") == -1);
  CHECK(neurobolt::is_missing_value("NaN"));
  CHECK(neurobolt::is_missing_value("n/a"));
  CHECK_FALSE(neurobolt::is_missing_value("N/A "));
}

TEST_CASE("TSV: CRLF, byte-order mark, UTF-8 and trailing empty lines are tolerated", "[tsv]") {
  const auto table = parse_tsv("\xEF\xBB\xBFname\tunits\r\nFp1\t\xC2\xB5V\r\nCz\tuV\r\n\r\n\n", "channels.tsv");
  REQUIRE(table.columns == std::vector<std::string>{"name", "units"});
  REQUIRE(table.num_rows() == 2);
  CHECK(table.rows[0][1] == "\xC2\xB5V");
  CHECK(table.rows[1][1] == "uV");
}

TEST_CASE("TSV: a header without rows is an empty table", "[tsv]") {
  const auto table = parse_tsv("a\tb\n", "t.tsv");
  CHECK(table.num_rows() == 0);
  CHECK(table.num_columns() == 2);
}

TEST_CASE("TSV: malformed tables are FormatErrors naming file, line and column", "[tsv]") {
  CHECK_THAT(parse_error("a\tb\tc\n1\t2\t3\n4\t5\n"),
             Contains("'t.tsv' line 3: expected 3 tab-separated cells as in the header, found 2"));
  CHECK_THAT(parse_error("a\tb\n1\t2\n3\t4\t5\n"), Contains("line 3: expected 2 tab-separated cells"));
  CHECK_THAT(parse_error("a\tb\n1\tabc\n"),
             Contains("'t.tsv' line 2, column 2 ('b'): expected a finite number or n/a, found 'abc'"));
  CHECK_THAT(parse_error("a\tb\n1\t\n"),
             Contains("line 2, column 2 ('b'): expected a finite number or n/a, found an empty cell"));
  CHECK_THAT(parse_error("a\n1\ninf\n"), Contains("line 3, column 1 ('a')"));
  CHECK_THAT(parse_error("a\n1e999\n"), Contains("found '1e999'"));
  CHECK_THAT(parse_error("a\n0x10\n"), Contains("found '0x10'"));
  CHECK_THAT(parse_error("a\n1,5\n"), Contains("found '1,5'"));
  CHECK_THAT(parse_error("a\tb\n1\t2\n\n3\t4\n"), Contains("'t.tsv' line 3: empty line inside the table"));
  CHECK_THAT(parse_error(""), Contains("'t.tsv': empty file"));
  CHECK_THAT(parse_error("\n\n"), Contains("empty file"));
  CHECK_THAT(parse_error("a\t\tc\n"), Contains("line 1: column 2 of the header has an empty name"));
  CHECK_THAT(parse_error("a\tb\ta\n"), Contains("column name 'a' appears more than once"));
  CHECK_THAT(parse_error("a\n1\n\xFF\n"),
             Contains("'t.tsv' line 3: invalid UTF-8 at byte 1 of the line (found byte 0xFF)"));
  CHECK_THAT(parse_error("a\n\xC0\xAF\n"), Contains("invalid UTF-8"));      // overlong '/'
  CHECK_THAT(parse_error("a\n\xED\xA0\x80\n"), Contains("invalid UTF-8"));  // surrogate
  CHECK_THAT(parse_error(std::string("a\n1\0002\n", 6)), Contains("line 2: NUL byte at byte 2"));
  CHECK_THAT(parse_error("a\r1\r"), Contains("line 1: carriage return not followed by a line feed"));
}

TEST_CASE("TSV: a long bad cell is shortened in the message", "[tsv]") {
  const std::string message = parse_error("a\n" + std::string(5000, 'x') + "\n");
  CHECK_THAT(message, Contains("(5000 bytes)"));
  CHECK(message.size() < 300);
}

TEST_CASE("TSV: require_column names the file, the column and the header", "[tsv]") {
  const auto table = parse_tsv("name\tunits\nCz\tuV\n", "channels.tsv");
  CHECK(table.require_column("units") == 1);
  try {
    table.require_column("type");
    FAIL("expected a FormatError");
  } catch (const FormatError& e) {
    CHECK_THAT(e.what(), Contains("'channels.tsv': required column 'type' is missing; the header has 'name', 'units'"));
  }
}

TEST_CASE("TSV: files are read from disk; a missing file is an IoError", "[tsv]") {
  neurobolt::test::TempDir dir;
  const auto path = (dir / "x.tsv").string();
  std::ofstream(path) << "a\tb\n1\t2\n";
  const auto table = neurobolt::read_tsv(path);
  CHECK(table.source == path);
  CHECK(table.number(0, 1) == 2.0);
  CHECK_THROWS_AS(neurobolt::read_tsv((dir / "missing.tsv").string()), neurobolt::IoError);
  CHECK_THROWS_WITH(neurobolt::read_tsv((dir / "missing.tsv").string()), Contains("missing.tsv': no such file"));
}
