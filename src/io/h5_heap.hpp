#pragma once
// What the HDF5 structure checks share (h5.cpp, h5_structure.cpp): decoding little-endian fields
// and global heap collections from the file's bytes, before HDF5 trusts them.
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

namespace neurobolt::h5::detail {

uint64_t little_endian(const unsigned char* p, int bytes);

// A global heap collection as HDF5 1.10 decodes it (H5HG__cache_heap_deserialize, format spec
// "Global Heap"): "GCOL", version 1, 3 reserved bytes, the collection's size (8 bytes), then
// objects of index (2), reference count (2), reserved (4), size (8) and data padded to 8 bytes;
// index 0 is the free space, whose size counts its header. HDF5 checks none of these sizes.
struct Collection {
  bool found = false;                    // the signature, version and reserved bytes are there
  std::string damage;                    // why it cannot be decoded safely, "" if it can
  std::map<uint32_t, uint64_t> objects;  // the bytes of each object by index (not 0)
};

// The collection at absolute offset `at` of a file of `file_size` bytes.
Collection read_collection(std::FILE* file, uint64_t at, uint64_t file_size);

}  // namespace neurobolt::h5::detail
