// libFuzzer target: NIfTI-1 and NIfTI-2 images (nifticlib, then our checks of dims, data type,
// scaling and size), header only and with the data. A gzip stream (1f 8b) is written as .nii.gz
// so that the compressed path is taken too.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_files.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/nifti.hpp"

namespace fz = neurobolt::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  fz::remove_files();
  const std::string path =
      fz::write_file(gz ? "fuzz.nii.gz" : "fuzz.nii", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    (void)neurobolt::read_nifti(path, true);
    const neurobolt::NiftiImage image = neurobolt::read_nifti(path);
    if (static_cast<int64_t>(image.data.size()) != image.grid.num_voxels() * image.num_volumes) __builtin_trap();
    fz::touch(image.data);
  } catch (const neurobolt::Error& e) {
    fz::report(e);
  }
  return 0;
}
