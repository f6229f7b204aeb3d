#include "neurobolt/nifti.hpp"

#include <fmt/format.h>
#include <nifti2_io.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

struct NiftiFree {
  void operator()(nifti_image* nim) const { nifti_image_free(nim); }
};
using NiftiPtr = std::unique_ptr<nifti_image, NiftiFree>;

// nifticlib prints its own diagnostics to stderr; ours are in the exceptions we throw.
void silence_nifticlib() {
  static std::once_flag once;
  std::call_once(once, [] { nifti_set_debug_level(0); });
}

template <typename T>
void convert(const void* raw, int64_t n, float* out, bool scale, double slope, double inter) {
  const T* in = static_cast<const T*>(raw);
  if (scale) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<double>(in[i]) * slope + inter);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]);
  }
}

bool supported_datatype(int datatype) {
  switch (datatype) {
    case DT_UINT8:
    case DT_INT8:
    case DT_UINT16:
    case DT_INT16:
    case DT_UINT32:
    case DT_INT32:
    case DT_UINT64:
    case DT_INT64:
    case DT_FLOAT32:
    case DT_FLOAT64: return true;
    default: return false;
  }
}

void convert_data(const nifti_image& nim, float* out) {
  // scl_slope == 0 means "no scaling" in NIfTI.
  const bool scale = nim.scl_slope != 0.0 && std::isfinite(nim.scl_slope) && std::isfinite(nim.scl_inter) &&
                     !(nim.scl_slope == 1.0 && nim.scl_inter == 0.0);
  const int64_t n = nim.nvox;
  const double a = nim.scl_slope, b = nim.scl_inter;
  switch (nim.datatype) {
    case DT_UINT8: convert<uint8_t>(nim.data, n, out, scale, a, b); break;
    case DT_INT8: convert<int8_t>(nim.data, n, out, scale, a, b); break;
    case DT_UINT16: convert<uint16_t>(nim.data, n, out, scale, a, b); break;
    case DT_INT16: convert<int16_t>(nim.data, n, out, scale, a, b); break;
    case DT_UINT32: convert<uint32_t>(nim.data, n, out, scale, a, b); break;
    case DT_INT32: convert<int32_t>(nim.data, n, out, scale, a, b); break;
    case DT_UINT64: convert<uint64_t>(nim.data, n, out, scale, a, b); break;
    case DT_INT64: convert<int64_t>(nim.data, n, out, scale, a, b); break;
    case DT_FLOAT32: convert<float>(nim.data, n, out, scale, a, b); break;
    case DT_FLOAT64: convert<double>(nim.data, n, out, scale, a, b); break;
    default: break;  // refused before loading
  }
}

double spatial_unit_to_mm(int units) {
  switch (units) {
    case NIFTI_UNITS_METER: return 1000.0;
    case NIFTI_UNITS_MICRON: return 0.001;
    default: return 1.0;  // mm, or unknown (taken as mm, as every neuroimaging tool does)
  }
}

NiftiGrid grid_of(const nifti_image& nim, const std::string& path, std::vector<std::string>& warnings) {
  NiftiGrid grid;
  grid.dims = {nim.nx, nim.ny, nim.nz};
  const double to_mm = spatial_unit_to_mm(nim.xyz_units);
  grid.voxel_size = {std::fabs(nim.dx) * to_mm, std::fabs(nim.dy) * to_mm, std::fabs(nim.dz) * to_mm};
  const nifti_dmat44* m = nullptr;
  if (nim.sform_code > 0) {
    m = &nim.sto_xyz;
    grid.affine_source = "sform";
  } else if (nim.qform_code > 0) {
    m = &nim.qto_xyz;
    grid.affine_source = "qform";
  }
  if (m) {
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) grid.affine[r][c] = m->m[r][c] * to_mm;
  } else {
    grid.affine_source = "pixdim";
    for (int r = 0; r < 3; ++r) {
      grid.affine[r] = {0.0, 0.0, 0.0, 0.0};
      grid.affine[r][r] = grid.voxel_size[r] > 0 ? grid.voxel_size[r] : 1.0;
    }
    warnings.push_back(
        fmt::format("'{}': neither sform nor qform is set; the grid is taken from the voxel sizes", path));
  }
  return grid;
}

double repetition_time_of(const nifti_image& nim, const std::string& path, int64_t num_volumes,
                          std::vector<std::string>& warnings) {
  const double value = nim.pixdim[4];
  if (num_volumes <= 1) return 0.0;
  if (!(value > 0.0) || !std::isfinite(value)) {
    warnings.push_back(fmt::format("'{}': pixdim[4] is {}; the repetition time is unknown", path, value));
    return 0.0;
  }
  double seconds = value;
  switch (nim.time_units) {
    case NIFTI_UNITS_MSEC: seconds = value / 1000.0; break;
    case NIFTI_UNITS_USEC: seconds = value / 1e6; break;
    case NIFTI_UNITS_SEC: break;
    default:
      warnings.push_back(fmt::format("'{}': time unit of pixdim[4] is '{}'; read as seconds", path,
                                     nifti_units_string(nim.time_units)));
      break;
  }
  if (seconds > 100.0) {
    warnings.push_back(
        fmt::format("'{}': pixdim[4] = {} with time unit '{}' would be a {} s repetition time; "
                    "read as milliseconds ({} s)",
                    path, value, nifti_units_string(nim.time_units), seconds, seconds / 1000.0));
    seconds /= 1000.0;
  }
  return seconds;
}

std::string format_number(double v) {
  if (std::fabs(v) < 5e-7) v = 0.0;  // no "-0" or "6.7e-19" from float round-off in messages
  return fmt::format("{:.6g}", v);
}

// nifticlib copies dim[1..dim[0]] into 8-element arrays before it checks dim[0]: a header whose
// dim[0] is outside 1..7 overruns the stack inside nifti_image_read (fuzz_nifti: a NIfTI-2 header
// with dim[0] = 1024). The header alone is read first (nifticlib reads it into the heap, in the
// machine's byte order) and checked.
void check_dimension_count(const std::string& path) {
  char* header_name = nifti_findhdrname(path.c_str());
  if (header_name == nullptr) return;  // nifti_image_read reports the missing header itself
  int version = 0;
  void* header = nifti_read_header(header_name, &version, 0);
  std::free(header_name);
  if (header == nullptr) return;
  // Only a header nifti_image_read would take as one (its size field says NIfTI-1 or -2);
  // anything else it refuses itself, with the message for a file that is not NIfTI.
  const bool nifti2 = version == 2 && static_cast<const nifti_2_header*>(header)->sizeof_hdr == 540;
  const bool nifti1 = version == 1 && static_cast<const nifti_1_header*>(header)->sizeof_hdr == 348;
  const int64_t dims = nifti2   ? static_cast<const nifti_2_header*>(header)->dim[0]
                       : nifti1 ? static_cast<const nifti_1_header*>(header)->dim[0]
                                : 1;
  std::free(header);
  if (dims < 1 || dims > 7)
    throw FormatError(fmt::format("'{}' field dim[0]: expected 1 to 7 dimensions, found {}", path, dims));
}

}  // namespace

bool NiftiGrid::same_as(const NiftiGrid& other, double tolerance) const {
  if (dims != other.dims) return false;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c)
      if (!(std::fabs(affine[r][c] - other.affine[r][c]) <= tolerance)) return false;
  return true;
}

std::string NiftiGrid::describe() const {
  std::string rows;
  for (int r = 0; r < 3; ++r)
    rows += fmt::format("{}[{} {} {} {}]", r ? " " : "", format_number(affine[r][0]), format_number(affine[r][1]),
                        format_number(affine[r][2]), format_number(affine[r][3]));
  return fmt::format("{}x{}x{} voxels of {}x{}x{} mm, {} [{}]", dims[0], dims[1], dims[2], format_number(voxel_size[0]),
                     format_number(voxel_size[1]), format_number(voxel_size[2]), affine_source, rows);
}

NiftiImage read_nifti(const std::string& path, bool header_only) {
  silence_nifticlib();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(fmt::format("cannot read NIfTI file '{}': {}", path,
                              std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  check_dimension_count(path);
  NiftiPtr nim(nifti_image_read(path.c_str(), 0));
  if (!nim)
    throw FormatError(
        fmt::format("'{}': not a readable NIfTI-1 or NIfTI-2 image (header missing, corrupt or of "
                    "another format)",
                    path));

  NiftiImage image;
  image.path = path;
  if (nim->nx < 1 || nim->ny < 1 || nim->nz < 1 || nim->nvox < 1)
    throw FormatError(fmt::format("'{}' field dim: expected positive sizes, found {}x{}x{} ({} voxels)", path, nim->nx,
                                  nim->ny, nim->nz, nim->nvox));
  // nifticlib multiplies the dims without checking (NIfTI-2 dims are 64-bit): the volume must be
  // representable and within the image's voxel count.
  int64_t volume_voxels = 0;
  if (__builtin_mul_overflow(static_cast<int64_t>(nim->nx), static_cast<int64_t>(nim->ny), &volume_voxels) ||
      __builtin_mul_overflow(volume_voxels, static_cast<int64_t>(nim->nz), &volume_voxels) ||
      volume_voxels > static_cast<int64_t>(nim->nvox)) {
    throw FormatError(fmt::format("'{}' field dim: expected a volume of at most {} voxels (the image's count), found "
                                  "{}x{}x{}",
                                  path, nim->nvox, nim->nx, nim->ny, nim->nz));
  }
  if (!supported_datatype(nim->datatype))
    throw FormatError(fmt::format("'{}' field datatype: expected a real integer or floating-point type, found {} ({})",
                                  path, nifti_datatype_string(nim->datatype), nim->datatype));
  image.grid = grid_of(*nim, path, image.warnings);
  image.num_volumes = nim->nvox / image.grid.num_voxels();
  image.repetition_time = repetition_time_of(*nim, path, image.num_volumes, image.warnings);
  if (header_only) return image;

  int64_t data_bytes = 0;
  if (__builtin_mul_overflow(static_cast<int64_t>(nim->nvox), static_cast<int64_t>(nim->nbyper), &data_bytes)) {
    throw FormatError(fmt::format("'{}' field dim: expected a voxel count that fits in memory, found {}x{}x{} x {} "
                                  "volumes",
                                  path, nim->nx, nim->ny, nim->nz, image.num_volumes));
  }
  // nifticlib allocates what the header claims before it opens the data file: a .hdr (or a
  // header without the NIfTI magic, read as ANALYZE) whose .img is missing must stop here.
  if (nim->iname && nifti_get_filesize(nim->iname) < 0) {
    throw FormatError(fmt::format("'{}': the voxel data file '{}' that the header points to cannot be read", path,
                                  nim->iname));
  }
  if (nim->iname_offset < 0) {
    throw FormatError(fmt::format("'{}' field vox_offset: expected an offset >= 0, found {}", path,
                                  static_cast<int64_t>(nim->iname_offset)));
  }
  if (nim->iname && !nifti_is_gzfile(nim->iname)) {
    const int64_t file_bytes = nifti_get_filesize(nim->iname);
    if (file_bytes >= 0 && (nim->iname_offset > file_bytes || file_bytes - nim->iname_offset < data_bytes))
      throw FormatError(
          fmt::format("'{}': truncated: the header promises {} bytes of voxel data from offset {}, "
                      "the file has {} bytes",
                      path, data_bytes, nim->iname_offset, file_bytes));
  } else if (nim->iname) {
    // Deflate expands at most about 1032:1, so a gzipped file bounds what it can hold before
    // nifticlib allocates what the header claims.
    const int64_t file_bytes = nifti_get_filesize(nim->iname);
    if (file_bytes >= 0 && data_bytes / 1032 > file_bytes) {
      throw FormatError(fmt::format("'{}': the header promises {} bytes of voxel data, more than a gzip file of {} "
                                    "bytes can hold",
                                    path, data_bytes, file_bytes));
    }
  }
  if (nifti_image_load(nim.get()) != 0 || !nim->data)
    throw FormatError(
        fmt::format("'{}': cannot read {} bytes of voxel data (truncated or corrupt file?)", path, data_bytes));
  image.data.resize(static_cast<std::size_t>(nim->nvox));
  convert_data(*nim, image.data.data());
  return image;
}

void write_nifti(const std::string& path, const NiftiImage& image) {
  silence_nifticlib();
  const auto& g = image.grid;
  const int64_t expected = g.num_voxels() * image.num_volumes;
  if (static_cast<int64_t>(image.data.size()) != expected)
    throw ConfigError(fmt::format("writing '{}': expected {} values ({}x{}x{}x{}), found {}", path, expected, g.dims[0],
                                  g.dims[1], g.dims[2], image.num_volumes, image.data.size()));
  const int64_t dims[8] = {image.num_volumes > 1 ? 4 : 3, g.dims[0], g.dims[1], g.dims[2], image.num_volumes, 1, 1, 1};
  NiftiPtr nim(nifti_make_new_nim(dims, DT_FLOAT32, 1));
  if (!nim) throw IoError(fmt::format("writing '{}': nifticlib could not allocate the image", path));
  std::memcpy(nim->data, image.data.data(), image.data.size() * sizeof(float));
  nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
  nim->dx = nim->pixdim[1] = g.voxel_size[0];
  nim->dy = nim->pixdim[2] = g.voxel_size[1];
  nim->dz = nim->pixdim[3] = g.voxel_size[2];
  nim->dt = nim->pixdim[4] = image.repetition_time;
  nim->xyz_units = NIFTI_UNITS_MM;
  nim->time_units = NIFTI_UNITS_SEC;
  nifti_dmat44 m{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) m.m[r][c] = g.affine[r][c];
  m.m[3][3] = 1.0;
  nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim->sto_xyz = m;
  nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
  double dx = 0, dy = 0, dz = 0;
  nifti_dmat44_to_quatern(m, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d, &nim->qoffset_x, &nim->qoffset_y,
                          &nim->qoffset_z, &dx, &dy, &dz, &nim->qfac);
  if (nifti_set_filenames(nim.get(), path.c_str(), 0, 1) != 0)
    throw IoError(fmt::format("writing '{}': not a valid NIfTI file name (expected .nii or .nii.gz)", path));
  std::error_code ec;
  const auto folder = std::filesystem::absolute(path, ec).parent_path();
  if (!std::filesystem::is_directory(folder, ec))
    throw IoError(fmt::format("cannot write NIfTI file '{}': folder '{}' does not exist", path, folder.string()));
  // nifticlib reports nothing back from a write; an absent or empty file afterwards is the failure.
  std::filesystem::remove(path, ec);
  nifti_image_write(nim.get());
  if (!std::filesystem::is_regular_file(path, ec) || std::filesystem::file_size(path, ec) == 0)
    throw IoError(fmt::format("cannot write NIfTI file '{}'", path));
}

}  // namespace neurobolt
