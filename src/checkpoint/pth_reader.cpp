// read_pth: the torch-free reader (checkpoint/pth_archive.cpp) turned into torch tensors. The
// tensors share the reader's buffers (no copy).
#include <torch/torch.h>

#include "checkpoint/pth_archive.hpp"
#include "neurobolt/pth.hpp"

namespace neurobolt {
namespace {

c10::ScalarType scalar_type(pickle::DType dtype) {
  switch (dtype) {
    case pickle::DType::float32: return c10::ScalarType::Float;
    case pickle::DType::float64: return c10::ScalarType::Double;
    case pickle::DType::float16: return c10::ScalarType::Half;
    case pickle::DType::bfloat16: return c10::ScalarType::BFloat16;
    case pickle::DType::int64: return c10::ScalarType::Long;
    case pickle::DType::int32: return c10::ScalarType::Int;
    case pickle::DType::int16: return c10::ScalarType::Short;
    case pickle::DType::int8: return c10::ScalarType::Char;
    case pickle::DType::uint8: return c10::ScalarType::Byte;
    case pickle::DType::boolean: return c10::ScalarType::Bool;
    case pickle::DType::complex64: return c10::ScalarType::ComplexFloat;
    case pickle::DType::complex128: return c10::ScalarType::ComplexDouble;
  }
  return c10::ScalarType::Undefined;
}

}  // namespace

PthContents read_pth(const std::string& path, const std::vector<std::string>& model_keys) {
  pth::RawContents raw = pth::read_file(path, model_keys);
  PthContents out;
  out.found_under = std::move(raw.found_under);
  out.skipped = std::move(raw.skipped);
  out.tensors.reserve(raw.tensors.size());
  for (pth::RawTensor& t : raw.tensors) {
    const auto options = torch::TensorOptions().dtype(scalar_type(t.dtype));
    torch::Tensor tensor;
    if (t.data->empty()) {
      tensor = torch::empty(t.sizes, options);
    } else {
      std::shared_ptr<std::vector<uint8_t>> owner = std::move(t.data);
      tensor = torch::from_blob(owner->data(), t.sizes, [owner](void*) {}, options);
    }
    out.tensors.emplace_back(std::move(t.name), std::move(tensor));
  }
  return out;
}

}  // namespace neurobolt
