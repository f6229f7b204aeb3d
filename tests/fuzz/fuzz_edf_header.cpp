// libFuzzer target: the EDF/BDF header check and the EDF+ TAL parser on arbitrary bytes, taken
// as a whole file (the header check compares sizes against the input's size).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/edf_header.hpp"
#include "neurobolt/error.hpp"

namespace edf = neurobolt::io::edf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<edf::TalAnnotation> annotations;
  std::vector<std::string> warnings;
  double onset = 0;
  try {
    const edf::Header h = edf::parse_header(bytes, static_cast<int64_t>(size), "fuzz.edf");
    // The annotation signals of the first records, as the reader parses them.
    const int64_t records = h.num_records < 64 ? h.num_records : 64;
    for (int64_t r = 0; r < records; ++r) {
      bool first = true;
      for (std::size_t s = 0; s < h.signals.size(); ++s) {
        if (!h.signals[s].annotation) continue;
        const int64_t at = h.header_bytes + r * h.record_bytes + h.signals[s].record_offset;
        const int64_t length = h.signals[s].samples_per_record * h.bytes_per_sample();
        edf::parse_tal_block(bytes.substr(static_cast<std::size_t>(at), static_cast<std::size_t>(length)), first,
                             "record", "fuzz.edf", &onset, annotations, warnings);
        first = false;
      }
    }
  } catch (const neurobolt::Error&) {
  }
  // The TAL parser on its own, with and without a time-keeping TAL.
  for (bool timekeeping : {true, false}) {
    try {
      edf::parse_tal_block(bytes, timekeeping, "record", "fuzz.edf", &onset, annotations, warnings);
    } catch (const neurobolt::Error&) {
    }
  }
  return 0;
}
