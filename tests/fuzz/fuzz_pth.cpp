// libFuzzer target: the .pth reader end to end on arbitrary bytes — format detection, the zip
// container (libzip), the pickle machine (opcodes, memo, globals' allow-list), storages, tensor
// geometry and the strided copies — for both the zip archive and the legacy stream.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/pth_archive.hpp"
#include "neurobolt/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> keys = {"model", "module", "state_dict"};
  try {
    neurobolt::pth::RawContents contents = neurobolt::pth::read_bytes(data, size, "fuzz.pth", keys);
    // Touch every element copied, so that a size mismatch shows up under ASan.
    volatile uint8_t sink = 0;
    for (const auto& t : contents.tensors) {
      for (uint8_t b : *t.data) sink = sink ^ b;
    }
  } catch (const neurobolt::Error&) {
  }
  return 0;
}
