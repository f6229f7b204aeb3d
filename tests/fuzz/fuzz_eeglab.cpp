// libFuzzer target: the EEGLAB reader (matio) on a .set with its data inside or in an .fdt: the
// input is the .set, optionally followed by fz::kSeparator and the .fdt (the seeds name it
// fuzz.fdt). Read whole, then as a sample range, and summarised as `neurobolt info` prints it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_files.hpp"
#include "fuzz_recording.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"

namespace fz = neurobolt::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fz::split(std::string_view(reinterpret_cast<const char*>(data), size), 2);
  fz::remove_files();
  const std::string set = fz::write_file("fuzz.set", parts[0]);
  if (parts.size() > 1) fz::write_file("fuzz.fdt", parts[1]);
  try {
    fz::check_recording(neurobolt::read_eeglab(set));
    const neurobolt::RecordingReader reader(set);
    const int64_t n = reader.header().num_samples;
    fz::check_recording(reader.read(n / 2, -1));
  } catch (const neurobolt::Error& e) {
    fz::report(e);
  }
  return 0;
}
