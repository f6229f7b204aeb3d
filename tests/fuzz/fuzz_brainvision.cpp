// libFuzzer target: the BrainVision header (.vhdr) and marker (.vmrk) parsers on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/brainvision_parser.hpp"
#include "neurobolt/error.hpp"

namespace bv = neurobolt::io::brainvision;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const bv::Header h = bv::parse_header(bytes, "fuzz.vhdr");
    (void)h.sample_rate();
  } catch (const neurobolt::Error&) {
  }
  try {
    for (const auto& m : bv::parse_markers(bytes, "fuzz.vmrk").markers) (void)bv::marker_date_to_iso(m.date);
  } catch (const neurobolt::Error&) {
  }
  return 0;
}
