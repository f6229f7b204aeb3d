#include "data/h5_tables.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::data {

RowAppender::RowAppender(h5::File& file, const std::string& name, std::vector<int64_t> row_shape, int64_t chunk_rows,
                         int gzip)
    : file_(&file), name_(name), row_shape_(std::move(row_shape)), chunk_rows_(std::max<int64_t>(chunk_rows, 1)) {
  for (auto d : row_shape_) row_size_ *= d;
  std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED}, chunk{static_cast<hsize_t>(chunk_rows_)};
  for (auto d : row_shape_) {
    dims.push_back(static_cast<hsize_t>(d));
    maxdims.push_back(static_cast<hsize_t>(d));
    chunk.push_back(static_cast<hsize_t>(std::max<int64_t>(d, 1)));
  }
  h5::Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data()));
  h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
  if (gzip > 0) {
    H5Pset_shuffle(dcpl.get());
    H5Pset_deflate(dcpl.get(), static_cast<unsigned>(gzip));
  }
  errno = 0;
  dataset_ = h5::Handle(H5Dcreate2(file.id(), name.c_str(), H5T_NATIVE_FLOAT, space.get(), H5P_DEFAULT, dcpl.get(),
                                   H5P_DEFAULT));
  if (!dataset_.valid()) {
    throw IoError(
        fmt::format("'{}': cannot create dataset '{}'{}", file.path(), name, h5::write_failure_reason()));
  }
  buffer_.resize(static_cast<std::size_t>(chunk_rows_ * row_size_));
}

float* RowAppender::next_row() { return buffer_.data() + buffered_ * row_size_; }

void RowAppender::commit_row() {
  if (++buffered_ == chunk_rows_) flush();
}

void RowAppender::finish() { flush(); }

void RowAppender::flush() {
  if (buffered_ == 0) return;
  std::vector<hsize_t> dims{static_cast<hsize_t>(written_ + buffered_)};
  std::vector<hsize_t> start{static_cast<hsize_t>(written_)}, count{static_cast<hsize_t>(buffered_)};
  for (auto d : row_shape_) {
    dims.push_back(static_cast<hsize_t>(d));
    start.push_back(0);
    count.push_back(static_cast<hsize_t>(d));
  }
  errno = 0;
  if (H5Dset_extent(dataset_.get(), dims.data()) < 0) {
    throw IoError(
        fmt::format("'{}': cannot extend dataset '{}'{}", file_->path(), name_, h5::write_failure_reason()));
  }
  h5::Handle space(H5Dget_space(dataset_.get()));
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  h5::Handle memspace(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
  errno = 0;
  if (H5Dwrite(dataset_.get(), H5T_NATIVE_FLOAT, memspace.get(), space.get(), H5P_DEFAULT, buffer_.data()) < 0) {
    throw IoError(fmt::format("'{}': cannot write rows {} to {} of dataset '{}'{}", file_->path(), written_,
                              written_ + buffered_, name_, h5::write_failure_reason()));
  }
  written_ += buffered_;
  buffered_ = 0;
}

void write_strings(h5::File& file, const std::string& name, const std::vector<std::string>& values) {
  h5::Handle type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const hsize_t n = values.size();
  h5::Handle space(H5Screate_simple(1, &n, nullptr));
  h5::Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  errno = 0;
  h5::Handle ds(H5Dcreate2(file.id(), name.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!ds.valid()) {
    throw IoError(
        fmt::format("'{}': cannot create dataset '{}'{}", file.path(), name, h5::write_failure_reason()));
  }
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  if (n > 0 && H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()) < 0) {
    throw IoError(fmt::format("'{}': cannot write dataset '{}'", file.path(), name));
  }
}

std::vector<std::string> read_strings(const h5::File& file, const std::string& name) {
  if (!file.exists(name)) throw FormatError(fmt::format("'{}': dataset '{}' not found", file.path(), name));
  h5::Handle ds(H5Dopen2(file.id(), name.c_str(), H5P_DEFAULT));
  h5::Handle stored(H5Dget_type(ds.get()));
  h5::Handle space(H5Dget_space(ds.get()));
  if (!ds.valid() || H5Tget_class(stored.get()) != H5T_STRING || H5Sget_simple_extent_ndims(space.get()) != 1) {
    throw FormatError(fmt::format("'{}': '{}' is not a 1-D string dataset", file.path(), name));
  }
  file.check_extent(ds.get(), name);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  std::vector<std::string> out;
  if (n == 0) return out;
  if (H5Tis_variable_str(stored.get()) > 0) {
    file.check_string_heaps(ds.get(), name);
    h5::Handle type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5Tget_cset(stored.get()));
    std::vector<char*> pointers(n, nullptr);
    if (H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()) < 0) {
      // The strings read before the failure are ours to free.
      H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, pointers.data());
      throw FormatError(fmt::format("'{}': cannot read strings '{}'", file.path(), name));
    }
    for (auto* p : pointers) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, pointers.data());
  } else {
    const std::size_t size = H5Tget_size(stored.get());
    std::vector<char> bytes(n * size);
    if (H5Dread(ds.get(), stored.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) < 0) {
      throw FormatError(fmt::format("'{}': cannot read strings '{}'", file.path(), name));
    }
    for (hsize_t i = 0; i < n; ++i) {
      const char* p = bytes.data() + i * size;
      out.emplace_back(p, strnlen(p, size));
    }
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!io::is_valid_utf8(out[i])) {
      throw FormatError(fmt::format("'{}': '{}' string {}: expected UTF-8 text, found '{}'", file.path(), name, i,
                                    io::printable(out[i])));
    }
  }
  return out;
}

void set_double_attribute(h5::File& file, const std::string& object_path, const std::string& name, double value) {
  h5::Handle space(H5Screate(H5S_SCALAR));
  h5::Handle attr(H5Acreate_by_name(file.id(), object_path.c_str(), name.c_str(), H5T_IEEE_F64LE, space.get(),
                                    H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0) {
    throw IoError(fmt::format("'{}': cannot write attribute '{}' of '{}'", file.path(), name, object_path));
  }
}

double double_attribute(const h5::File& file, const std::string& object_path, const std::string& name) {
  h5::Handle attr = file.open_attribute(object_path, name);
  double value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0) {
    throw FormatError(fmt::format("'{}': attribute '{}' of '{}' is not a number", file.path(), name, object_path));
  }
  return value;
}

h5::Handle open_cached(const h5::File& file, const std::string& name, std::size_t cache_bytes) {
  if (!file.exists(name)) throw FormatError(fmt::format("'{}': dataset '{}' not found", file.path(), name));
  h5::Handle dapl(H5Pcreate(H5P_DATASET_ACCESS));
  // A prime number of hash slots well above the number of cached chunks, as HDF5 advises.
  H5Pset_chunk_cache(dapl.get(), 10007, cache_bytes, 1.0);
  h5::Handle ds(H5Dopen2(file.id(), name.c_str(), dapl.get()));
  if (!ds.valid()) throw FormatError(fmt::format("'{}': '{}' is not a dataset", file.path(), name));
  file.check_extent(ds.get(), name);
  return ds;
}

void read_rows_f32(const h5::Handle& dataset, const std::string& what, int64_t first, int64_t count, float* out) {
  h5::Handle space(H5Dget_space(dataset.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 1)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  if (rank < 1 || first < 0 || count < 0 || static_cast<hsize_t>(first) + static_cast<hsize_t>(count) > dims[0]) {
    throw FormatError(fmt::format("{}: rows [{}, {}) are out of range (it has {})", what, first, first + count,
                                  rank < 1 ? 0 : dims[0]));
  }
  std::vector<hsize_t> start(dims.size(), 0), extent = dims;
  start[0] = static_cast<hsize_t>(first);
  extent[0] = static_cast<hsize_t>(count);
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr);
  h5::Handle memspace(H5Screate_simple(rank, extent.data(), nullptr));
  if (H5Dread(dataset.get(), H5T_NATIVE_FLOAT, memspace.get(), space.get(), H5P_DEFAULT, out) < 0) {
    throw FormatError(fmt::format("{}: cannot read rows [{}, {})", what, first, first + count));
  }
}

}  // namespace neurobolt::data
