// Device dispatch of the model's kernels (see dispatch.hpp).
#include "cuda/dispatch.hpp"

#include <fmt/format.h>

#include <torch/version.h>

#include "neurobolt/error.hpp"

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define NEUROBOLT_HAVE_SDPA 1
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define NEUROBOLT_HAVE_AUTOCAST_API 1
#include <ATen/autocast_mode.h>
#endif

#include <atomic>

#ifdef NEUROBOLT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda/spectral_kernel.hpp"
#endif

namespace neurobolt::detail {

bool cuda_kernels_built() {
#ifdef NEUROBOLT_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::vector<torch::Tensor> multiscale_magnitudes_torch(const torch::Tensor& x, const std::vector<int64_t>& windows) {
  std::vector<torch::Tensor> out;
  for (const int64_t w : windows) {
    // Rectangular window, hop = window, no centring: |rfft| of each non-overlapping frame.
    auto frames = x.reshape({x.size(0), x.size(1), x.size(2) / w, w});
    out.push_back(torch::fft::rfft(frames).abs());
  }
  return out;
}

std::vector<torch::Tensor> multiscale_magnitudes_cuda(const torch::Tensor& x, const std::vector<int64_t>& windows) {
#ifdef NEUROBOLT_WITH_CUDA
  if (!x.is_cuda()) throw ConfigError(fmt::format("CUDA spectra: input: expected a CUDA tensor, found one on {}", x.device().str()));
  if (x.scalar_type() != torch::kFloat) {
    throw ConfigError(fmt::format("CUDA spectra: input dtype: expected float32, found {}", c10::toString(x.scalar_type())));
  }
  if (x.dim() != 3) {
    throw ConfigError(fmt::format("CUDA spectra: input shape: expected [batch, channels, samples], found {} dimensions",
                                  x.dim()));
  }
  if (!x.is_contiguous()) throw ConfigError("CUDA spectra: input: expected a contiguous tensor, found a strided view");
  const int64_t batch = x.size(0), channels = x.size(1), samples = x.size(2);
  const cuda::MultiscalePlan plan = cuda::plan_multiscale(batch * channels, samples, windows);
  const c10::cuda::CUDAGuard guard(x.device());
  auto out = torch::empty({plan.output_floats}, x.options());
  const auto stream = c10::cuda::getCurrentCUDAStream(x.device().index());
  const std::string error = cuda::launch_multiscale(plan, x.data_ptr<float>(), out.data_ptr<float>(), stream.stream());
  if (!error.empty()) throw DeviceError(error);
  std::vector<torch::Tensor> views;
  for (int n = 0; n < plan.scales; ++n) {
    const int64_t w = plan.windows[n], frames = samples / w, bins = w / 2 + 1;
    views.push_back(out.narrow(0, plan.offsets[n], batch * channels * frames * bins).view({batch, channels, frames, bins}));
  }
  return views;
#else
  (void)x;
  (void)windows;
  throw DeviceError("CUDA spectra: this neurobolt was built without CUDA (configure with a CUDA-enabled LibTorch)");
#endif
}

namespace {
std::atomic<bool> g_cuda_bf16{false};
}

bool autocast_supported() {
#ifdef NEUROBOLT_HAVE_AUTOCAST_API
  return true;
#else
  return false;
#endif
}

void set_cuda_bf16(bool on) {
  if (on && !autocast_supported()) {
    throw DeviceError(fmt::format("--precision bf16: needs LibTorch 2.4 or later (this is {}.{})", TORCH_VERSION_MAJOR,
                                  TORCH_VERSION_MINOR));
  }
  g_cuda_bf16 = on;
}

bool cuda_bf16() { return g_cuda_bf16; }

AutocastScope::AutocastScope(const torch::Tensor& x) {
#ifdef NEUROBOLT_HAVE_AUTOCAST_API
  if (!g_cuda_bf16 || !x.is_cuda() || at::autocast::is_autocast_enabled(at::kCUDA)) return;
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  at::autocast::increment_nesting();
  active_ = true;
#else
  (void)x;
#endif
}

AutocastScope::~AutocastScope() {
#ifdef NEUROBOLT_HAVE_AUTOCAST_API
  if (!active_) return;
  at::autocast::set_autocast_enabled(at::kCUDA, false);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#endif
}

long long cuda_peak_allocated_bytes(int device) {
#ifdef NEUROBOLT_WITH_CUDA
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  return stats.allocated_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
#else
  (void)device;
  return -1;
#endif
}

std::string cuda_device_summary(int device) {
#ifdef NEUROBOLT_WITH_CUDA
  return cuda::device_summary(device);
#else
  (void)device;
  return {};
#endif
}

double cuda_peak_bandwidth(int device) {
#ifdef NEUROBOLT_WITH_CUDA
  return cuda::peak_bandwidth(device);
#else
  (void)device;
  return 0.0;
#endif
}

void cuda_reset_peak(int device) {
#ifdef NEUROBOLT_WITH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(device);
#else
  (void)device;
#endif
}

std::optional<torch::Tensor> device_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                              double scale, double dropout_p) {
#ifdef NEUROBOLT_HAVE_SDPA
  if (q.is_cuda()) return at::scaled_dot_product_attention(q, k, v, {}, dropout_p, false, scale);
#else
  (void)q, (void)k, (void)v, (void)scale, (void)dropout_p;
#endif
  return std::nullopt;
}

std::vector<torch::Tensor> multiscale_magnitudes(const torch::Tensor& x, const std::vector<int64_t>& windows) {
#ifdef NEUROBOLT_WITH_CUDA
  if (x.is_cuda() && !x.requires_grad()) {
    return multiscale_magnitudes_cuda(x.scalar_type() == torch::kFloat ? x.contiguous() : x.to(torch::kFloat).contiguous(),
                                      windows);
  }
#endif
  return multiscale_magnitudes_torch(x, windows);
}

}  // namespace neurobolt::detail
