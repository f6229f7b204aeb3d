// libFuzzer target: the EDF/BDF reader end to end on a whole file — our header check, EDFlib's
// second opinion, the sample conversion of every channel, EDF+ annotations (TALs) and EDF+D
// records placed at their times with gaps — read whole and then as a sample range, and
// summarised as `neurobolt info` prints it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_files.hpp"
#include "fuzz_recording.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"

namespace fz = neurobolt::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // A BDF starts with byte 0xFF; the extension tells the reader which format to expect.
  const std::string path = fz::write_file(size > 0 && data[0] == 0xFF ? "fuzz.bdf" : "fuzz.edf", bytes);
  try {
    fz::check_recording(neurobolt::read_edf(path));
    const neurobolt::RecordingReader reader(path);
    const int64_t n = reader.header().num_samples;
    fz::check_recording(reader.read(n / 3, n / 3 + 1));
  } catch (const neurobolt::Error& e) {
    fz::report(e);
  }
  return 0;
}
