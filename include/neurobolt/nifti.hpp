#pragma once
// NIfTI-1 and NIfTI-2 images (.nii, .nii.gz): the voxel grid, 4-D BOLD series and atlases.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace neurobolt {

// Where the voxels of an image lie in space.
struct NiftiGrid {
  std::array<int64_t, 3> dims{1, 1, 1};             // voxels along i, j, k
  std::array<double, 3> voxel_size{1.0, 1.0, 1.0};  // mm (pixdim 1-3)
  // Voxel (i, j, k) -> world mm, rows of the 3x4 matrix: the sform when its code is set, else
  // the qform, else a diagonal of the voxel sizes ("pixdim").
  std::array<std::array<double, 4>, 3> affine{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}};
  std::string affine_source = "pixdim";  // "sform", "qform" or "pixdim"

  int64_t num_voxels() const { return dims[0] * dims[1] * dims[2]; }
  // Same dims and every affine entry within `tolerance` (mm).
  bool same_as(const NiftiGrid& other, double tolerance = 1e-3) const;
  // "91x109x91 voxels of 2x2x2 mm, sform [[-2 0 0 90] [0 2 0 -126] [0 0 2 -72]]"
  std::string describe() const;
};

struct NiftiImage {
  std::string path;
  NiftiGrid grid;
  int64_t num_volumes = 1;  // product of dims 4-7
  // Seconds, from pixdim[4] and the header's time unit; 0 when unknown. Some writers store
  // milliseconds with the unit "sec" (pixdim[4] = 2000): values above 100 s are read as ms,
  // with a warning.
  double repetition_time = 0.0;
  // Values scaled by scl_slope/scl_inter, x fastest, then y, z and volume:
  // data[v * grid.num_voxels() + (k * ny + j) * nx + i]. Empty after a header-only read.
  std::vector<float> data;
  std::vector<std::string> warnings;  // tolerable oddities of the header

  const float* volume(int64_t v) const { return data.data() + v * grid.num_voxels(); }
};

// Reads a NIfTI-1 or NIfTI-2 file. A missing file is an IoError; a header that nifticlib cannot
// read, unsupported dims or data type (complex, RGB), or truncated data is a FormatError.
NiftiImage read_nifti(const std::string& path, bool header_only = false);

// Writes a float32 NIfTI-1 image (gzip-compressed when the name ends in .gz), with the affine as
// both sform and qform (code 1, scanner anatomical), mm and seconds.
void write_nifti(const std::string& path, const NiftiImage& image);

}  // namespace neurobolt
