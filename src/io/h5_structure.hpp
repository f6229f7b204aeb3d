#pragma once
// A check of an HDF5 file's own structure, from its bytes, before HDF5 reads it.
//
// HDF5 1.10 trusts the sizes it finds in a file's metadata: an object header that declares a
// 4 GiB chunk, a fill value or link name longer than its message, an attribute whose extent
// exceeds its data, a variable-length value pointing to a global heap object that is not there
// or has another size. A crafted file makes it allocate gigabytes, read past its buffers or
// dereference a null pointer (fuzzing found each). Reading a file we did not write is routine
// (EEGLAB v7.3 .set files, checkpoints and datasets from elsewhere), so every file we open for
// reading is walked first: the superblock, then each object header reachable from the root
// group by hard links (with its continuation chunks), the group structures it points to (local
// heaps, fractal heap and v2 B-tree headers), its messages' internal sizes, and every compact
// attribute's data, variable-length values included. Anything inconsistent is a FormatError
// naming the file, the object and what was expected versus found.
//
// What it does not read: the contents of dense storage (fractal heap blocks: attributes and
// links there are read by HDF5 unchecked, their headers checked), shared object header messages,
// and the data of datasets (File::check_extent and the chunk storage bound cover those).
#include <hdf5.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace neurobolt::h5::detail {

class StructureCheck {
 public:
  // Reads the superblock and checks the root group's object header (and the superblock
  // extension's, if any): what H5Fopen reads. Throws FormatError or IoError.
  explicit StructureCheck(const std::string& path);
  ~StructureCheck();
  StructureCheck(const StructureCheck&) = delete;
  StructureCheck& operator=(const StructureCheck&) = delete;

  // Walks every object reachable from the root group of the opened `file` (the same file),
  // checking each object header before HDF5 reads it. Returns the paths of the datasets found.
  std::vector<std::string> walk(hid_t file);
  // Whether an object header at `address` (as HDF5 reports addresses) was checked: what an
  // object reference may point to.
  bool is_object(uint64_t address) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neurobolt::h5::detail
