// libFuzzer target: a neurobolt checkpoint (.h5) as load_checkpoint reads it, up to where
// LibTorch takes over: the HDF5 structure check, the format attributes, the model config (parsed
// and validated), the metadata, every weight's name, type and shape, and every weight read in its
// own type, as load_checkpoint reads those whose shape the model has. The fuzz build has no
// LibTorch; what is left (torch::empty of a shape the model itself has, then this read) allocates
// nothing the file decides.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "checkpoint/checkpoint_file.hpp"
#include "fuzz_files.hpp"
#include "neurobolt/error.hpp"

namespace fz = neurobolt::fuzz;

namespace {

// load_checkpoint reads a weight only when its shape equals the model's, so the model bounds what
// it reads; here a bound of the same order as neurobolt-base's largest weight (200 x 800) stands
// in for that comparison.
constexpr int64_t kMaxElements = int64_t{1} << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fz::write_file("fuzz.h5", std::string_view(reinterpret_cast<const char*>(data), size));
  (void)neurobolt::detail::has_checkpoint_format(path);
  try {
    const neurobolt::detail::CheckpointFile file(path);
    (void)file.config().to_json();
    (void)file.metadata_json();
    for (const auto& t : file.tensors()) {
      if (t.numel > kMaxElements) continue;
      std::vector<unsigned char> buffer(static_cast<std::size_t>(t.numel) * neurobolt::h5::type_size(t.type));
      file.read(t, t.type, buffer.data());
      fz::touch(buffer);
    }
  } catch (const neurobolt::Error& e) {
    fz::report(e);
  }
  return 0;
}
