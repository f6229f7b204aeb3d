#pragma once
// Reading PyTorch `.pth` files without LibTorch (internal to libneurobolt; compiled into the
// torch-free core so that it is fuzzed and sanitised on its own). The zip archive is read with
// libzip, the pickles by checkpoint/pickle.cpp; every size a file declares (zip entries, pickle
// lengths, storage element counts, tensor geometry) is checked against the bytes really there
// before anything is allocated. read_pth (pth_reader.cpp) turns the result into torch tensors.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/pickle.hpp"

namespace neurobolt::pth {

// One tensor of the state dict, as a contiguous row-major copy of its elements.
struct RawTensor {
  std::string name;
  pickle::DType dtype = pickle::DType::float32;
  std::vector<int64_t> sizes;
  // numel * element_size(dtype) bytes; heap storage, so aligned for every dtype.
  std::shared_ptr<std::vector<uint8_t>> data;
};

struct RawContents {
  std::vector<RawTensor> tensors;
  std::string found_under;            // "" for the top level, else the key ("model", ...)
  std::vector<std::string> skipped;   // "name (python type)" of every entry that is not a tensor
};

// Reads the file at `path` (zip archive or legacy stream). Throws IoError when it cannot be
// read, FormatError (with "reading '<path>'" as context) for everything else.
RawContents read_file(const std::string& path, const std::vector<std::string>& model_keys);

// The same on bytes already in memory (the fuzz target and tests); `name` is used in messages.
RawContents read_bytes(const uint8_t* data, std::size_t size, const std::string& name,
                       const std::vector<std::string>& model_keys);

}  // namespace neurobolt::pth
