// libFuzzer target: a whole BrainVision recording — header, markers and binary data — read with
// every sample. The input holds the three files separated by fz::kSeparator: the .vhdr, then the
// .vmrk, then the data (the seeds' headers name them fuzz.vmrk and fuzz.eeg; a header naming
// other files gives the reader's missing-file error). Header, markers and data then vary
// together: format (INT_16, UINT_16, INT_32, IEEE_FLOAT_32, ASCII), orientation (MULTIPLEXED,
// VECTORIZED), byte order, channel count and resolutions against the data's size. Each read is
// also summarised as `neurobolt info` prints it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_files.hpp"
#include "fuzz_recording.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"

namespace fz = neurobolt::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fz::split(std::string_view(reinterpret_cast<const char*>(data), size), 3);
  fz::remove_files();
  const std::string header = fz::write_file("fuzz.vhdr", parts[0]);
  if (parts.size() > 1) fz::write_file("fuzz.vmrk", parts[1]);
  if (parts.size() > 2) fz::write_file("fuzz.eeg", parts[2]);
  try {
    fz::check_recording(neurobolt::read_brainvision(header));
    const neurobolt::RecordingReader reader(header);
    const int64_t n = reader.header().num_samples;
    fz::check_recording(reader.read(n / 2, n - n / 2));
  } catch (const neurobolt::Error& e) {
    fz::report(e);
  }
  return 0;
}
