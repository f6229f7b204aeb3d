// The spectral front end alone: fused CUDA kernel vs torch's per-scale path (bench.hpp).
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>

#include "cuda/dispatch.hpp"
#include "neurobolt/bench.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

using Clock = std::chrono::steady_clock;

// Per-scale torch::stft (rectangular window, hop = window, no centring) + abs.
std::vector<torch::Tensor> torch_spectra(const torch::Tensor& x, const std::vector<int64_t>& windows) {
  const auto rows = x.reshape({x.size(0) * x.size(1), x.size(2)});
  std::vector<torch::Tensor> out;
  for (const int64_t w : windows) {
    const auto window = torch::ones({w}, x.options());
    out.push_back(torch::stft(rows, w, w, w, window, false, true, true).abs());
  }
  return out;
}

template <typename F>
double time_per_call(const torch::Device& device, int warmup, int iterations, F&& f) {
  for (int i = 0; i < warmup; ++i) f();
  if (device.is_cuda()) torch::cuda::synchronize();
  const auto start = Clock::now();
  for (int i = 0; i < iterations; ++i) f();
  if (device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(Clock::now() - start).count() / iterations;
}

}  // namespace

SpectralBenchResult run_spectral_bench(const SpectralBenchOptions& o) {
  if (o.batch < 1 || o.channels < 1 || o.iterations < 1 || o.warmup < 0) {
    throw UsageError(fmt::format("spectral bench: expected batch, channels, iterations >= 1, found {}, {}, {}", o.batch,
                                 o.channels, o.iterations));
  }
  for (const int64_t w : o.windows) {
    if (w < 2 || o.samples % w != 0) {
      throw UsageError(fmt::format("spectral bench: frame length {} does not divide {} samples", w, o.samples));
    }
  }
  const torch::Device device(o.device);
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto x = torch::randn({o.batch, o.channels, o.samples}, torch::TensorOptions().device(device)) * 30.0;
  SpectralBenchResult r;
  r.device = device.str();
  double floats = static_cast<double>(x.numel());
  for (const int64_t w : o.windows) floats += static_cast<double>(o.batch * o.channels * (o.samples / w) * (w / 2 + 1));
  r.bytes = 4.0 * floats;
  r.torch_s = time_per_call(device, o.warmup, o.iterations, [&] { torch_spectra(x, o.windows); });
  if (device.is_cuda() && detail::cuda_kernels_built()) {
    const int index = device.has_index() ? device.index() : 0;
    r.device_summary = detail::cuda_device_summary(index);
    r.peak_bandwidth = detail::cuda_peak_bandwidth(index);
    r.fused_s = time_per_call(device, o.warmup, o.iterations, [&] { detail::multiscale_magnitudes_cuda(x, o.windows); });
    const auto fused = detail::multiscale_magnitudes_cuda(x, o.windows);
    const auto reference = torch_spectra(x, o.windows);
    double worst = 0.0;
    for (std::size_t n = 0; n < fused.size(); ++n) {
      // torch::stft gives [rows, bins, frames]; the kernel [batch, channels, frames, bins].
      const auto want = reference[n].transpose(1, 2).reshape(fused[n].sizes());
      worst = std::max(worst, ((fused[n] - want).abs().max() / want.abs().max()).item<double>());
    }
    r.max_relative_difference = worst;
  }
  return r;
}

std::string format_spectral_bench(const SpectralBenchResult& r) {
  std::string out = fmt::format("spectra    device {}{}\n", r.device,
                                r.device_summary.empty() ? "" : " = " + r.device_summary);
  auto line = [&](const char* name, double s) {
    std::string text = fmt::format("{:<10} {:8.3f} ms/batch  {:7.1f} GB/s", name, s * 1e3, r.bytes / s / 1e9);
    if (r.peak_bandwidth > 0) text += fmt::format("  ({:.0f}% of the {:.2f} TB/s peak)", 100.0 * r.bytes / s / r.peak_bandwidth,
                                                  r.peak_bandwidth / 1e12);
    return text + "\n";
  };
  out += line("per-scale", r.torch_s);
  if (r.fused_s > 0) {
    out += line("fused", r.fused_s);
    out += fmt::format("speed-up   {:.2f}x; max relative difference {:.2e}\n", r.torch_s / r.fused_s,
                       r.max_relative_difference);
  } else {
    out += "fused      not run (needs --device cuda and a CUDA-wired build)\n";
  }
  return out;
}

}  // namespace neurobolt
