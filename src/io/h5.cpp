#include "io/h5.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "core/atomic_file.hpp"
#include "io/h5_heap.hpp"
#include "io/h5_structure.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::h5 {
namespace {

hid_t native_type(Type t) {
  switch (t) {
    case Type::f32: return H5T_NATIVE_FLOAT;
    case Type::f64: return H5T_NATIVE_DOUBLE;
    case Type::i64: return H5T_NATIVE_INT64;
    case Type::i32: return H5T_NATIVE_INT32;
    case Type::i16: return H5T_NATIVE_INT16;
    case Type::u8: return H5T_NATIVE_UINT8;
    case Type::i8: return H5T_NATIVE_INT8;
  }
  return H5T_NATIVE_FLOAT;
}

// Deflate, the only filter we write, expands data at most 1032-fold: a readable file holds no
// dataset or attribute larger than that times its size.
constexpr uint64_t kMaxExpansion = 1032;

// The bytes of `dims` values of `value_bytes` each, a zero extent counted as one (so that a
// dataset [0, 2^60] is no more acceptable than [1, 2^60]); UINT64_MAX on overflow.
uint64_t extent_bytes(const std::vector<hsize_t>& dims, uint64_t value_bytes) {
  uint64_t bytes = value_bytes;
  for (hsize_t d : dims) {
    if (__builtin_mul_overflow(bytes, std::max<uint64_t>(d, 1), &bytes)) return UINT64_MAX;
  }
  return bytes;
}

std::string dims_text(const std::vector<hsize_t>& dims) {
  std::string out = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

namespace detail {

uint64_t little_endian(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

Collection read_collection(std::FILE* file, uint64_t at, uint64_t file_size) {
  Collection c;
  unsigned char header[16];
  if (at > file_size || file_size - at < 16 || std::fseek(file, static_cast<long>(at), SEEK_SET) != 0 ||
      std::fread(header, 1, 16, file) != 16) {
    c.damage = "no collection header there";
    return c;
  }
  if (std::memcmp(header, "GCOL", 4) != 0 || header[4] != 1 || header[5] || header[6] || header[7]) {
    c.damage = "no collection signature there";
    return c;
  }
  c.found = true;
  const uint64_t size = little_endian(header + 8, 8);
  if (size < 16 || size > file_size - at) {
    c.damage = fmt::format("a collection of {} bytes at offset {} of a {}-byte file", size, at, file_size);
    return c;
  }
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size - 16));
  if (std::fread(bytes.data(), 1, bytes.size(), file) != bytes.size()) {
    c.damage = "a collection that cannot be read";
    return c;
  }
  uint64_t pos = 16;
  while (pos + 16 <= size) {  // a tail shorter than an object header is free space
    const unsigned char* p = bytes.data() + (pos - 16);
    const auto index = static_cast<uint32_t>(little_endian(p, 2));
    const uint64_t object = little_endian(p + 8, 8);
    const uint64_t need = index == 0 ? object : 16 + (object + 7) / 8 * 8;
    if (object > size || need < 16 || need > size - pos) {
      c.damage = fmt::format("object {} of {} bytes at byte {} of a {}-byte collection", index, object, pos, size);
      return c;
    }
    if (index != 0) c.objects[index] = object;
    pos += need;
  }
  return c;
}

}  // namespace detail

using detail::Collection;
using detail::little_endian;
using detail::read_collection;

void File::check_string_heaps(hid_t dataset, const std::string& name) const {
  if (max_bytes_ == 0) return;
  Handle space(H5Dget_space(dataset));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n <= 0) return;
  const haddr_t offset = H5Dget_offset(dataset);
  if (offset == HADDR_UNDEF) {
    throw FormatError(fmt::format("'{}': strings '{}': expected them stored contiguously, found another layout", path_,
                                  name));
  }
  Handle fcpl(H5Fget_create_plist(file_.get()));
  hsize_t base = 0;  // the user block before the HDF5 data (512 bytes in MATLAB's files)
  if (!fcpl.valid() || H5Pget_userblock(fcpl.get(), &base) < 0) base = 0;
  const uint64_t file_size = max_bytes_ / kMaxExpansion;
  // Each element: its length (4 bytes), then the heap ID: collection address (8), object index (4).
  const uint64_t bytes = static_cast<uint64_t>(n) * 16;
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path_.c_str(), "rb"));
  std::vector<unsigned char> ids(static_cast<std::size_t>(std::min<uint64_t>(bytes, file_size)));
  if (!file || base + offset > file_size || bytes > file_size - base - offset ||
      std::fseek(file.get(), static_cast<long>(base + offset), SEEK_SET) != 0 ||
      std::fread(ids.data(), 1, ids.size(), file.get()) != ids.size()) {
    throw FormatError(fmt::format("'{}': strings '{}': expected {} bytes of string references at offset {}, found "
                                  "the end of the file",
                                  path_, name, bytes, base + offset));
  }
  std::map<uint64_t, Collection> collections;
  for (hssize_t i = 0; i < n; ++i) {
    const unsigned char* p = ids.data() + i * 16;
    if (little_endian(p, 4) == 0) continue;  // an empty string points nowhere
    const uint64_t length = little_endian(p, 4);
    const uint64_t address = little_endian(p + 4, 8);
    const auto index = static_cast<uint32_t>(little_endian(p + 12, 4));
    auto it = collections.find(address);
    if (it == collections.end()) {
      it = collections.emplace(address, read_collection(file.get(), base + address, file_size)).first;
    }
    const auto object = it->second.objects.find(index);
    if (!it->second.damage.empty() || object == it->second.objects.end()) {
      throw FormatError(fmt::format("'{}': strings '{}' string {}: expected an object of a global heap collection, "
                                    "found {}",
                                    path_, name, i,
                                    it->second.damage.empty() ? fmt::format("no object {} in it", index)
                                                              : it->second.damage));
    }
    // HDF5 allocates the length the string claims, then copies the whole object into it: the
    // two must agree (as HDF5 writes them), or it allocates too much or writes past the end.
    if (length != object->second) {
      throw FormatError(fmt::format("'{}': strings '{}' string {}: expected a length of {} bytes (its heap object), "
                                    "found {}",
                                    path_, name, i, object->second, length));
    }
  }
}

void check_all_heap_collections(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw IoError(fmt::format("cannot open '{}' for reading", path));
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw IoError(fmt::format("cannot read the size of '{}'", path));
  // Read in blocks that overlap by 3 bytes, so that no signature falls between two.
  std::vector<unsigned char> block(1 << 20);
  std::vector<uint64_t> found;
  for (uint64_t at = 0; at < file_size;) {
    std::fseek(file.get(), static_cast<long>(at), SEEK_SET);
    const std::size_t got = std::fread(block.data(), 1, block.size(), file.get());
    if (got < 4) break;
    for (std::size_t i = 0; i + 4 <= got; ++i) {
      if (block[i] == 'G' && std::memcmp(&block[i], "GCOL", 4) == 0) found.push_back(at + i);
    }
    if (got < block.size()) break;
    at += got - 3;
  }
  for (uint64_t at : found) {
    const Collection c = read_collection(file.get(), at, file_size);
    // "GCOL" inside other data is no collection unless version and reserved bytes agree too.
    if (c.found && !c.damage.empty()) {
      throw FormatError(fmt::format("'{}': a damaged global heap collection: {}", path, c.damage));
    }
  }
}

void silence_library_errors() {
  static std::once_flag once;
  std::call_once(once, [] {
    // No clean-up at exit: after a failed write (a full disk) HDF5 1.10 cannot close the file, and
    // its exit handler, trying again, crashes. Our files are closed by then; the OS frees the rest.
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

void Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = -1;
}

std::size_t type_size(Type t) {
  switch (t) {
    case Type::f32: return 4;
    case Type::f64: return 8;
    case Type::i64: return 8;
    case Type::i32: return 4;
    case Type::i16: return 2;
    case Type::u8: return 1;
    case Type::i8: return 1;
  }
  return 0;
}

const char* type_name(Type t) {
  switch (t) {
    case Type::f32: return "float32";
    case Type::f64: return "float64";
    case Type::i64: return "int64";
    case Type::i32: return "int32";
    case Type::i16: return "int16";
    case Type::u8: return "uint8";
    case Type::i8: return "int8";
  }
  return "?";
}

int64_t DatasetInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

File File::open_read(const std::string& path) {
  silence_library_errors();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IoError(fmt::format("'{}': no such file", path));
  if (H5Fis_hdf5(path.c_str()) <= 0) throw FormatError(fmt::format("'{}': not an HDF5 file", path));
  // HDF5 trusts the sizes in a file's metadata: check them first (io/h5_structure.hpp).
  detail::StructureCheck structure(path);
  Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!f.valid()) {
    // The signature was found, so the file is readable; what HDF5 cannot open is its content.
    throw FormatError(fmt::format("'{}': an HDF5 file that HDF5 cannot open (truncated or damaged)", path));
  }
  hsize_t size = 0;
  if (H5Fget_filesize(f.get(), &size) < 0 || size == 0) {
    throw FormatError(fmt::format("'{}': an HDF5 file whose size HDF5 cannot tell (damaged)", path));
  }
  File file(path, std::move(f), size > UINT64_MAX / kMaxExpansion ? UINT64_MAX : size * kMaxExpansion);
  for (const auto& name : structure.walk(file.id())) file.check_stored_dataset(name, structure);
  return file;
}

void File::check_stored_dataset(const std::string& name, const detail::StructureCheck& structure) const {
  Handle ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  if (!ds.valid()) throw FormatError(fmt::format("'{}': dataset '{}' cannot be opened (damaged)", path_, name));
  check_extent(ds.get(), name);
  // HDF5 allocates each chunk's stored size (from the chunk index) before reading it.
  const uint64_t file_size = max_bytes_ / kMaxExpansion;
  const hsize_t stored = H5Dget_storage_size(ds.get());
  if (stored > file_size) {
    throw FormatError(fmt::format("'{}': dataset '{}': expected its stored data within the file's {} bytes, found {} "
                                  "bytes of chunks (damaged chunk sizes)",
                                  path_, name, file_size, stored));
  }
  // An object reference leads HDF5 (and matio, for cells and structs) to an object header at any
  // address: it must be one the structure check read.
  Handle type(H5Dget_type(ds.get()));
  if (H5Tget_class(type.get()) != H5T_REFERENCE || H5Tequal(type.get(), H5T_STD_REF_OBJ) <= 0) return;
  Handle space(H5Dget_space(ds.get()));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n <= 0) return;
  std::vector<hobj_ref_t> refs(static_cast<std::size_t>(n));
  if (H5Dread(ds.get(), H5T_STD_REF_OBJ, H5S_ALL, H5S_ALL, H5P_DEFAULT, refs.data()) < 0) {
    throw FormatError(fmt::format("'{}': cannot read the object references of dataset '{}'", path_, name));
  }
  for (std::size_t i = 0; i < refs.size(); ++i) {
    if (refs[i] != 0 && !structure.is_object(refs[i])) {
      throw FormatError(fmt::format("'{}': dataset '{}' reference {}: expected an object of this file, found "
                                    "address {}, where there is none",
                                    path_, name, i, refs[i]));
    }
  }
}

File File::create(const std::string& path) {
  silence_library_errors();
  Handle fcpl(H5Pcreate(H5P_FILE_CREATE));
  H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  // The HDF5 1.8 object format lets an attribute of any size move to dense storage, so long lists
  // (ROI and channel names, configs) fit as attributes; the 1.6 format stops at 64 KiB. HDF5 1.8
  // and later (h5py, h5ls, MATLAB) read these files, and files written before are read unchanged.
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18);
  errno = 0;
  Handle f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()));
  if (!f.valid()) throw IoError(fmt::format("'{}': cannot create HDF5 file{}", path, write_failure_reason()));
  return File(path, std::move(f));
}

bool File::exists(const std::string& object_path) const {
  if (object_path == "/") return true;
  // Check each prefix: H5Lexists fails on a path whose intermediate group is missing.
  std::size_t pos = 0;
  while (true) {
    pos = object_path.find('/', pos + 1);
    std::string prefix = object_path.substr(0, pos);
    if (!prefix.empty() && prefix != "/" && H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

void File::create_group(const std::string& group_path) {
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE));
  H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  errno = 0;
  Handle g(H5Gcreate2(file_.get(), group_path.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT));
  if (!g.valid())
    throw IoError(fmt::format("'{}': cannot create group '{}'{}", path_, group_path, write_failure_reason()));
}

std::vector<std::string> File::list(const std::string& group_path) const {
  Handle g(H5Gopen2(file_.get(), group_path.c_str(), H5P_DEFAULT));
  if (!g.valid()) throw FormatError(fmt::format("'{}': group '{}' not found", path_, group_path));
  H5G_info_t info;
  if (H5Gget_info(g.get(), &info) < 0) throw FormatError(fmt::format("'{}': cannot list group '{}'", path_, group_path));
  Handle gcpl(H5Gget_create_plist(g.get()));
  unsigned order_flags = 0;
  H5Pget_link_creation_order(gcpl.get(), &order_flags);
  const H5_index_t index = (order_flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(g.get(), ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw FormatError(fmt::format("'{}': cannot read link {} of group '{}'", path_, i, group_path));
    std::string name(static_cast<std::size_t>(len), '\0');
    H5Lget_name_by_idx(g.get(), ".", index, H5_ITER_INC, i, name.data(), name.size() + 1, H5P_DEFAULT);
    names.push_back(std::move(name));
  }
  return names;
}

void File::write(const std::string& name, Type type, const std::vector<int64_t>& shape, const void* data,
                 int64_t chunk_rows, int gzip) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  if (chunk_rows > 0 && !dims.empty() && dims[0] > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min<hsize_t>(dims[0], static_cast<hsize_t>(chunk_rows));
    for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    H5Pset_shuffle(dcpl.get());
    H5Pset_deflate(dcpl.get(), static_cast<unsigned>(gzip));
  }
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  errno = 0;
  Handle ds(H5Dcreate2(file_.get(), name.c_str(), native_type(type), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT));
  if (!ds.valid())
    throw IoError(fmt::format("'{}': cannot create dataset '{}'{}", path_, name, write_failure_reason()));
  errno = 0;
  if (data != nullptr && H5Dwrite(ds.get(), native_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    throw IoError(fmt::format("'{}': cannot write dataset '{}'{}", path_, name, write_failure_reason()));
  }
}

Handle File::open_dataset(const std::string& name) const {
  if (!exists(name)) throw FormatError(fmt::format("'{}': dataset '{}' not found", path_, name));
  Handle ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  if (!ds.valid()) throw FormatError(fmt::format("'{}': '{}' is not a dataset", path_, name));
  check_extent(ds.get(), name);
  return ds;
}

void File::check_extent(hid_t dataset, const std::string& name) const {
  if (max_bytes_ == 0) return;
  Handle space(H5Dget_space(dataset));
  Handle dtype(H5Dget_type(dataset));
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0 || rank > H5S_MAX_RANK || !dtype.valid()) {
    throw FormatError(fmt::format("'{}': dataset '{}' has an unreadable shape or type", path_, name));
  }
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  const std::size_t value_bytes = H5Tget_size(dtype.get());
  const uint64_t bytes = extent_bytes(dims, std::max<std::size_t>(value_bytes, 1));
  if (value_bytes == 0 || bytes > max_bytes_) {
    throw FormatError(fmt::format("'{}': dataset '{}': expected at most {} bytes (1032 times the file's size), found "
                                  "{} values of {} bytes",
                                  path_, name, max_bytes_, dims_text(dims), value_bytes));
  }
  Handle dcpl(H5Dget_create_plist(dataset));
  if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(H5S_MAX_RANK);
    const int chunk_rank = H5Pget_chunk(dcpl.get(), H5S_MAX_RANK, chunk.data());
    if (chunk_rank != rank) {
      throw FormatError(fmt::format("'{}': dataset '{}': chunks of rank {} for a rank-{} dataset", path_, name,
                                    chunk_rank, rank));
    }
    chunk.resize(static_cast<std::size_t>(rank));
    if (extent_bytes(chunk, value_bytes) > max_bytes_) {
      throw FormatError(fmt::format("'{}': dataset '{}': expected chunks of at most {} bytes (1032 times the file's "
                                    "size), found chunks of {} values of {} bytes",
                                    path_, name, max_bytes_, dims_text(chunk), value_bytes));
    }
  }
}

DatasetInfo File::info(const std::string& name) const {
  Handle ds = open_dataset(name);
  Handle space(H5Dget_space(ds.get()));
  Handle dtype(H5Dget_type(ds.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) throw FormatError(fmt::format("'{}': dataset '{}' has an unreadable shape", path_, name));
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  DatasetInfo info;
  info.shape.assign(dims.begin(), dims.end());
  const H5T_class_t cls = H5Tget_class(dtype.get());
  const std::size_t size = H5Tget_size(dtype.get());
  if (cls == H5T_FLOAT) {
    info.type = size == 8 ? Type::f64 : Type::f32;
  } else if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(dtype.get()) == H5T_SGN_2;
    if (size == 8) info.type = Type::i64;
    else if (size == 4) info.type = Type::i32;
    else if (size == 2) info.type = Type::i16;
    else info.type = is_signed ? Type::i8 : Type::u8;
  } else {
    throw FormatError(fmt::format("'{}': dataset '{}' is not numeric", path_, name));
  }
  return info;
}

void File::read(const std::string& name, Type type, void* out) const {
  Handle ds = open_dataset(name);
  if (H5Dread(ds.get(), native_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
    throw FormatError(fmt::format("'{}': cannot read dataset '{}' as {}", path_, name, type_name(type)));
  }
}

void File::read_rows(const std::string& name, Type type, int64_t first, int64_t count, void* out) const {
  Handle ds = open_dataset(name);
  Handle space(H5Dget_space(ds.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 1) throw FormatError(fmt::format("'{}': dataset '{}' has no rows", path_, name));
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  if (first < 0 || count < 0 || static_cast<hsize_t>(first) + static_cast<hsize_t>(count) > dims[0]) {
    throw FormatError(fmt::format("'{}': rows [{}, {}) of dataset '{}' are out of range (it has {})", path_, first,
                                  first + count, name, dims[0]));
  }
  std::vector<hsize_t> start(dims.size(), 0), extent = dims;
  start[0] = static_cast<hsize_t>(first);
  extent[0] = static_cast<hsize_t>(count);
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr);
  Handle memspace(H5Screate_simple(rank, extent.data(), nullptr));
  if (H5Dread(ds.get(), native_type(type), memspace.get(), space.get(), H5P_DEFAULT, out) < 0) {
    throw FormatError(fmt::format("'{}': cannot read rows of dataset '{}'", path_, name));
  }
}

void File::set_attribute(const std::string& object_path, const std::string& name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), std::max<std::size_t>(value.size(), 1));
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR));
  if (H5Aexists_by_name(file_.get(), object_path.c_str(), name.c_str(), H5P_DEFAULT) > 0) {
    H5Adelete_by_name(file_.get(), object_path.c_str(), name.c_str(), H5P_DEFAULT);
  }
  errno = 0;
  Handle attr(H5Acreate_by_name(file_.get(), object_path.c_str(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT));
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  if (!attr.valid() || H5Awrite(attr.get(), type.get(), padded.data()) < 0) {
    throw IoError(fmt::format("'{}': cannot write attribute '{}' of '{}'{}", path_, name, object_path,
                              write_failure_reason()));
  }
}

void File::set_attribute(const std::string& object_path, const std::string& name, int64_t value) {
  Handle space(H5Screate(H5S_SCALAR));
  if (H5Aexists_by_name(file_.get(), object_path.c_str(), name.c_str(), H5P_DEFAULT) > 0) {
    H5Adelete_by_name(file_.get(), object_path.c_str(), name.c_str(), H5P_DEFAULT);
  }
  errno = 0;
  Handle attr(H5Acreate_by_name(file_.get(), object_path.c_str(), name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0) {
    throw IoError(fmt::format("'{}': cannot write attribute '{}' of '{}'{}", path_, name, object_path,
                              write_failure_reason()));
  }
}

bool File::has_attribute(const std::string& object_path, const std::string& name) const {
  return exists(object_path) && H5Aexists_by_name(file_.get(), object_path.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

Handle File::open_attribute(const std::string& object_path, const std::string& name) const {
  if (!has_attribute(object_path, name)) {
    throw FormatError(fmt::format("'{}': attribute '{}' of '{}' not found", path_, name, object_path));
  }
  Handle attr(H5Aopen_by_name(file_.get(), object_path.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  Handle space(attr.valid() ? H5Aget_space(attr.get()) : -1);
  const hssize_t values = space.valid() ? H5Sget_simple_extent_npoints(space.get()) : -1;
  if (values != 1) {
    throw FormatError(fmt::format("'{}': attribute '{}' of '{}': expected one value, found {}", path_, name,
                                  object_path, values < 0 ? std::string("an unreadable extent") : std::to_string(values)));
  }
  return attr;
}

std::string File::string_attribute(const std::string& object_path, const std::string& name) const {
  Handle attr = open_attribute(object_path, name);
  Handle type(H5Aget_type(attr.get()));
  if (H5Tget_class(type.get()) != H5T_STRING) {
    throw FormatError(fmt::format("'{}': attribute '{}' of '{}' is not a string", path_, name, object_path));
  }
  if (H5Tis_variable_str(type.get()) > 0) {
    char* value = nullptr;
    Handle memtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(memtype.get(), H5T_VARIABLE);
    H5Tset_cset(memtype.get(), H5Tget_cset(type.get()));
    if (H5Aread(attr.get(), memtype.get(), &value) < 0 || value == nullptr) {
      throw FormatError(fmt::format("'{}': cannot read attribute '{}' of '{}'", path_, name, object_path));
    }
    std::string out(value);
    H5free_memory(value);
    return checked_utf8(std::move(out), name, object_path);
  }
  const std::size_t size = H5Tget_size(type.get());
  if (size == 0 || (max_bytes_ != 0 && size > max_bytes_)) {
    throw FormatError(fmt::format("'{}': attribute '{}' of '{}': expected a string of at most {} bytes, found {} bytes",
                                  path_, name, object_path, max_bytes_, size));
  }
  std::string out(size, '\0');
  if (H5Aread(attr.get(), type.get(), out.data()) < 0) {
    throw FormatError(fmt::format("'{}': cannot read attribute '{}' of '{}'", path_, name, object_path));
  }
  out.resize(std::strlen(out.c_str()));
  return checked_utf8(std::move(out), name, object_path);
}

// Our files hold UTF-8 text (names, JSON); anything else would break whatever shows or parses it.
std::string File::checked_utf8(std::string text, const std::string& name, const std::string& object_path) const {
  if (!io::is_valid_utf8(text)) {
    throw FormatError(fmt::format("'{}': attribute '{}' of '{}': expected UTF-8 text, found '{}'", path_, name,
                                  object_path, io::printable(text)));
  }
  return text;
}

int64_t File::int_attribute(const std::string& object_path, const std::string& name) const {
  Handle attr = open_attribute(object_path, name);
  int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0) {
    throw FormatError(fmt::format("'{}': attribute '{}' of '{}' is not an integer", path_, name, object_path));
  }
  return value;
}

std::string write_failure_reason() {
  const int error = errno;
  return error != 0 ? ": " + ::neurobolt::detail::system_reason(error) : std::string(" (disk full?)");
}

void File::flush() {
  errno = 0;
  if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0)
    throw IoError(fmt::format("'{}': HDF5 could not write the file to disk{}", path_, write_failure_reason()));
}

void File::close() {
  flush();
  errno = 0;
  if (H5Fclose(file_.release()) < 0)
    throw IoError(fmt::format("'{}': HDF5 could not finish the file{}", path_, write_failure_reason()));
}

}  // namespace neurobolt::h5
