#pragma once
// Device dispatch of the model's own kernels, in one place: the fused CUDA kernels where the
// tensor is on a CUDA device and the build is CUDA-wired (NEUROBOLT_WITH_CUDA), torch's
// operators otherwise. The CPU path is the reference the kernel tests compare against.
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace neurobolt::detail {

// |rfft| of every non-overlapping rectangular frame of x [batch, channels, samples], one tensor
// [batch, channels, samples / w, w / 2 + 1] per frame length w in `windows`. On CUDA one fused
// launch for every scale (the result carries no autograd history: x is data); elsewhere, or when
// x requires grad, torch::fft::rfft per scale.
std::vector<torch::Tensor> multiscale_magnitudes(const torch::Tensor& x, const std::vector<int64_t>& windows);

// The per-scale torch path, whatever the device (reference and benchmark rival).
std::vector<torch::Tensor> multiscale_magnitudes_torch(const torch::Tensor& x, const std::vector<int64_t>& windows);

// The fused CUDA kernel alone: x must be a contiguous float32 [batch, channels, samples] CUDA
// tensor (a ConfigError names what is not); runs on torch's current stream without host
// synchronisation. A DeviceError when this build has no CUDA kernels.
std::vector<torch::Tensor> multiscale_magnitudes_cuda(const torch::Tensor& x, const std::vector<int64_t>& windows);

// Attention softmax(q k^T * scale) v for [B, H, N, d] on a GPU: at::scaled_dot_product_attention
// (flash / memory-efficient kernels) where this LibTorch has it (2.1 and later) and q is a CUDA
// tensor; nullopt otherwise (the caller then uses the fused CPU kernel or the composite path).
std::optional<torch::Tensor> device_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                              double scale, double dropout_p);

// bf16 autocast of the model on CUDA (--precision bf16), process-wide: configure_runtime sets it.
// Needs LibTorch 2.4 or later (its C++ autocast API); the loss and the metrics stay float32 (the
// model's output leaves the autocast region as float32).
bool autocast_supported();
void set_cuda_bf16(bool on);
bool cuda_bf16();

// Autocast (CUDA, bf16) for its lifetime when `x` is a CUDA tensor and bf16 is on and autocast is
// not already active; nothing otherwise.
class AutocastScope {
 public:
  explicit AutocastScope(const torch::Tensor& x);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;
  bool active() const { return active_; }

 private:
  bool active_ = false;
};

// Peak bytes torch's CUDA allocator has handed out on `device` since the last reset, and the
// reset; -1 / nothing without a CUDA-wired build.
long long cuda_peak_allocated_bytes(int device);
void cuda_reset_peak(int device);

// "NVIDIA H200 (sm_90, ...)" and the peak DRAM bandwidth (bytes/s) of a CUDA device; "" and 0
// without a CUDA-wired build.
std::string cuda_device_summary(int device);
double cuda_peak_bandwidth(int device);

// Whether this library was built with the CUDA kernels wired into the model.
bool cuda_kernels_built();

}  // namespace neurobolt::detail
