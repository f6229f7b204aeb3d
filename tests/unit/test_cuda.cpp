// The CUDA paths, tagged [cuda]: the fused multi-scale spectra kernel against the CPU path (the
// reference), its boundary checks, and the reference model's forward on the GPU. What needs no
// GPU always runs; the device parts are skipped with a warning where there is no CUDA device or
// the build is not CUDA-wired (the default Debian LibTorch build).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>

#include "cuda/dispatch.hpp"
#include "io/h5.hpp"
#include "neurobolt/checkpoint.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/runtime.hpp"
#include "test_support.hpp"

using namespace neurobolt;
using Catch::Matchers::Contains;

namespace {

const std::vector<int64_t> kWindows{100, 200, 400, 800};

bool have_gpu() {
  if (neurobolt::detail::cuda_kernels_built() && torch::cuda::is_available()) return true;
  WARN("skipped: " << (neurobolt::detail::cuda_kernels_built() ? "no CUDA device" : "this build is not CUDA-wired"));
  return false;
}

// Batch x channels windows of 3200 samples: standard normal, or EEG-like (microvolt alpha, slow
// drift, noise and an offset).
torch::Tensor windows(int64_t batch, int64_t channels, bool eeg_like) {
  auto x = torch::randn({batch, channels, 3200});
  if (!eeg_like) return x;
  auto t = torch::arange(3200, torch::kFloat) / 200.0;
  auto phase = torch::arange(channels, torch::kFloat).view({1, channels, 1});
  return 40.0 * torch::sin(2 * M_PI * 10.0 * t + phase) + 15.0 * torch::sin(2 * M_PI * 0.3 * t) + 5.0 * x + 30.0;
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kCPU, torch::kDouble) - want.to(torch::kDouble)).abs().max().item<double>() /
         want.abs().max().item<double>();
}

}  // namespace

TEST_CASE("spectra dispatch: the torch path on CPU; the kernel refuses what it cannot take", "[cuda]") {
  torch::manual_seed(1);
  auto x = windows(2, 3, true);
  const auto mags = neurobolt::detail::multiscale_magnitudes(x, kWindows);
  REQUIRE(mags.size() == 4);
  for (std::size_t n = 0; n < 4; ++n) {
    const int64_t w = kWindows[n];
    CHECK(mags[n].sizes() == torch::IntArrayRef({2, 3, 3200 / w, w / 2 + 1}));
    CHECK(torch::equal(mags[n], torch::fft::rfft(x.reshape({2, 3, 3200 / w, w})).abs()));
  }
  if (neurobolt::detail::cuda_kernels_built()) {
    CHECK_THROWS_WITH(neurobolt::detail::multiscale_magnitudes_cuda(x, kWindows), Contains("expected a CUDA tensor"));
  } else {
    CHECK_THROWS_AS(neurobolt::detail::multiscale_magnitudes_cuda(x, kWindows), DeviceError);
  }
}

TEST_CASE("CUDA spectra kernel: every scale within 1e-5 of the CPU path", "[cuda]") {
  if (!have_gpu()) return;
  torch::manual_seed(2);
  double worst = 0.0;
  for (int64_t batch : {1, 3, 17}) {
    for (int64_t channels : {1, 7, 26, 64}) {
      for (bool eeg_like : {false, true}) {
        INFO("batch " << batch << " channels " << channels << (eeg_like ? " EEG-like" : " random"));
        auto x = windows(batch, channels, eeg_like);
        const auto cpu = neurobolt::detail::multiscale_magnitudes_torch(x, kWindows);
        const auto gpu = neurobolt::detail::multiscale_magnitudes_cuda(x.to(torch::kCUDA), kWindows);
        for (std::size_t n = 0; n < 4; ++n) {
          REQUIRE(gpu[n].sizes() == cpu[n].sizes());
          const double rel = relative_error(gpu[n], cpu[n]);
          worst = std::max(worst, rel);
          CHECK(rel < 1e-5);
        }
      }
    }
  }
  WARN("CUDA spectra kernel: worst relative error " << worst);
  auto g = windows(2, 4, false).to(torch::kCUDA);
  CHECK_THROWS_WITH(neurobolt::detail::multiscale_magnitudes_cuda(g.to(torch::kDouble), kWindows), Contains("float32"));
  CHECK_THROWS_WITH(neurobolt::detail::multiscale_magnitudes_cuda(g.transpose(0, 1), kWindows), Contains("contiguous"));
  CHECK_THROWS_WITH(neurobolt::detail::multiscale_magnitudes_cuda(g[0], kWindows), Contains("[batch, channels, samples]"));
  CHECK_THROWS_WITH(neurobolt::detail::multiscale_magnitudes_cuda(g, {112}), Contains("divisor"));
}

TEST_CASE("the reference model's forward on the GPU matches the fixture (fp32, TF32 off)", "[cuda][parity]") {
  if (!have_gpu()) return;
  const auto dir = test::shared_dir() / "fixtures" / "neurobolt_ref";
  auto imported = import_pth((dir / "neurobolt_r4_perturbed.pth").string(), ImportOptions{});
  auto model = imported.model;
  model->eval();
  auto io = h5::File::open_read((dir / "neurobolt_r4_perturbed_io.h5").string());
  auto read = [&](const std::string& name) {
    auto t = torch::empty(io.info(name).shape, torch::kFloat);
    io.read(name, h5::Type::f32, t.data_ptr());
    return t;
  };
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  torch::NoGradGuard no_grad;
  model->to(torch::kCUDA);
  const auto x = (read("x_flat") * 100.0).to(torch::kCUDA);  // the fixture input is divided by 100
  const auto want = read("output");
  const auto got = model->forward(x).to(torch::kCPU);
  const double error = (got - want).abs().max().item<double>();
  WARN("GPU fp32 forward: max abs difference " << error << " (output scale " << want.abs().max().item<double>() << ")");
  CHECK(error <= 1e-4);

  // bf16 autocast: the accuracy cost, reported, within a few percent of the output's scale; the
  // output stays float32.
  if (!neurobolt::detail::autocast_supported()) return;
  neurobolt::detail::set_cuda_bf16(true);
  const auto bf16 = model->forward(x).to(torch::kCPU);
  neurobolt::detail::set_cuda_bf16(false);
  CHECK(bf16.scalar_type() == torch::kFloat);
  const double bf16_error = (bf16 - want).abs().max().item<double>();
  WARN("GPU bf16 forward: max abs difference " << bf16_error);
  CHECK(bf16_error <= 0.05 * want.abs().max().item<double>());
}

TEST_CASE("precision: bf16 needs a CUDA device and LibTorch 2.4; autocast never touches CPU tensors", "[cuda]") {
  CHECK_THROWS_AS(configure_runtime(RuntimeOptions{1, "cpu", "fp16"}), UsageError);
  CHECK_THROWS_WITH(configure_runtime(RuntimeOptions{1, "cpu", "bf16"}), Contains("needs --device cuda"));
  CHECK(configure_runtime(RuntimeOptions{1, "cpu", "fp32"}).precision == "fp32");
  if (neurobolt::detail::autocast_supported()) {
    neurobolt::detail::set_cuda_bf16(true);
    {
      const neurobolt::detail::AutocastScope scope(torch::zeros({2}));
      CHECK_FALSE(scope.active());
    }
    neurobolt::detail::set_cuda_bf16(false);
  } else {
    CHECK_THROWS_AS(neurobolt::detail::set_cuda_bf16(true), DeviceError);
  }
  CHECK_FALSE(neurobolt::detail::cuda_bf16());
}
