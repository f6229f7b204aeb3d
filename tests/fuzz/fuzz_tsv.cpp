// libFuzzer target for the TSV parser: any input must parse or raise a neurobolt::Error, and every
// cell of a parsed table must convert to a number or raise one.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "neurobolt/error.hpp"
#include "neurobolt/tsv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const neurobolt::TsvTable table = neurobolt::parse_tsv(text, "fuzz.tsv");
    for (int64_t r = 0; r < table.num_rows(); ++r) {
      if (table.rows[r].size() != table.columns.size()) __builtin_trap();  // the parser's promise
      for (int64_t c = 0; c < table.num_columns(); ++c) {
        table.text(r, c);
        try {
          table.number(r, c);
        } catch (const neurobolt::Error&) {
        }
      }
    }
  } catch (const neurobolt::Error&) {
  }
  return 0;
}
