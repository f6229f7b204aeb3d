#pragma once
// A thin RAII layer over the HDF5 C API: just what neurobolt's files need (numeric datasets of
// any rank, optional chunking/compression, string and integer attributes), with errors that name
// the file and the object.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace neurobolt::h5 {

namespace detail {
class StructureCheck;
}

// Owns one HDF5 identifier and closes it with the right H5?close.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.id_;
      other.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();
  // Gives up ownership: the caller closes the identifier.
  hid_t release() {
    const hid_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  hid_t id_ = -1;
};

enum class Type { f32, f64, i64, i32, i16, u8, i8 };
std::size_t type_size(Type t);
const char* type_name(Type t);

struct DatasetInfo {
  Type type;
  std::vector<int64_t> shape;
  int64_t numel() const;
};

class File {
 public:
  // Opens an existing file read-only. Throws IoError (missing/unreadable) or FormatError (not HDF5).
  static File open_read(const std::string& path);
  // Creates (truncates) a file for writing.
  static File create(const std::string& path);

  const std::string& path() const { return path_; }
  hid_t id() const { return file_.get(); }

  bool exists(const std::string& object_path) const;
  void create_group(const std::string& group_path);
  // Names of the links in a group, in creation order when tracked, else by name.
  std::vector<std::string> list(const std::string& group_path) const;

  // Writes a dataset from contiguous row-major data. chunk_rows > 0 chunks along the first axis
  // and enables gzip (deflate level `gzip`) with the shuffle filter.
  void write(const std::string& name, Type type, const std::vector<int64_t>& shape, const void* data,
             int64_t chunk_rows = 0, int gzip = 4);
  DatasetInfo info(const std::string& name) const;
  // Reads the whole dataset, converting to `type` (HDF5 converts numeric types). `out` must hold
  // info(name).numel() elements of `type`.
  void read(const std::string& name, Type type, void* out) const;
  // Reads rows [first, first+count) along axis 0.
  void read_rows(const std::string& name, Type type, int64_t first, int64_t count, void* out) const;

  void set_attribute(const std::string& object_path, const std::string& name, const std::string& value);
  void set_attribute(const std::string& object_path, const std::string& name, int64_t value);
  bool has_attribute(const std::string& object_path, const std::string& name) const;
  // Opens an attribute that holds exactly one value (a scalar or a one-element array): what every
  // reader of ours expects, and what makes reading it into one variable safe. FormatError
  // otherwise, and when it is missing.
  Handle open_attribute(const std::string& object_path, const std::string& name) const;
  std::string string_attribute(const std::string& object_path, const std::string& name) const;
  int64_t int_attribute(const std::string& object_path, const std::string& name) const;

  // Writes what HDF5 still holds in memory to the file. Throws IoError when the system refuses
  // (a full disk, a file-size limit).
  void flush();
  // Flushes and closes the file, checking both (a writer calls it before publishing the file; the
  // destructor closes without being able to report). The File is unusable afterwards.
  void close();

  // Checks the extent of an open dataset (`name` for the message) before anything of its declared
  // size is allocated, by us or by HDF5: its rank, its values (dims x stored type size) and its
  // chunks must fit what this file can hold, at most 1032 times its size (deflate's largest
  // ratio). FormatError naming the dataset otherwise. Files being written are not bounded.
  void check_extent(hid_t dataset, const std::string& name) const;
  // Checks the global-heap collections that a contiguous dataset of variable-length strings points
  // into, before HDF5 reads them: HDF5 1.10 trusts the object sizes there, and a damaged one made
  // it copy gigabytes or loop without end. FormatError naming the dataset when a collection is
  // damaged, an element points to no object, or the strings are not stored contiguously (as we
  // and h5py write them).
  void check_string_heaps(hid_t dataset, const std::string& name) const;

 private:
  File(std::string path, Handle file, uint64_t max_bytes = 0)
      : path_(std::move(path)), file_(std::move(file)), max_bytes_(max_bytes) {}
  Handle open_dataset(const std::string& name) const;
  // At open: a dataset found by the structure check, within bounds (check_extent), its stored
  // bytes (chunks) within the file, its object references (if any) to objects the check saw.
  void check_stored_dataset(const std::string& name, const detail::StructureCheck& structure) const;
  std::string checked_utf8(std::string text, const std::string& name, const std::string& object_path) const;
  std::string path_;
  Handle file_;
  uint64_t max_bytes_ = 0;  // what a value may take at most; 0: unbounded (a file being written)
};

// Why a write failed, for an error message: the system's reason HDF5 left in errno (": No space
// left on device"), or a guess when it left none. Set errno to 0 before the HDF5 call.
std::string write_failure_reason();

// Checks every global-heap collection in a file (found by its signature "GCOL") as
// File::check_string_heaps does, for files whose variable-length data a library reads (matio's
// v7.3 attributes). Reads the whole file once.
void check_all_heap_collections(const std::string& path);

// Silences HDF5's own error printing (we report errors ourselves). Idempotent.
void silence_library_errors();

}  // namespace neurobolt::h5
