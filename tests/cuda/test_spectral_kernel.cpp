// The fused multi-scale spectra kernel without LibTorch: its plan (sizes, radices, offsets,
// refusals) everywhere, and on a CUDA device its output against a double-precision DFT of every
// frame: within 1e-5 of the largest magnitude, for every scale, random and EEG-like inputs, odd
// batch sizes and 1 to 64 channels.
//
// usage: neurobolt_cuda_kernel_tests plan|device     (device: exit 77 = skipped, no GPU)
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/spectral_kernel.hpp"
#include "neurobolt/error.hpp"

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  }
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const neurobolt::Error& e) {
    return e.what();
  }
  return "";
}

// Magnitudes of every frame by a direct DFT in double.
std::vector<double> reference(const std::vector<float>& x, int64_t rows, int64_t samples, int64_t w) {
  const int64_t frames = samples / w, bins = w / 2 + 1;
  std::vector<double> out(static_cast<std::size_t>(rows * frames * bins));
  std::vector<double> c(static_cast<std::size_t>(w)), s(static_cast<std::size_t>(w));
  for (int64_t t = 0; t < w; ++t) {
    c[t] = std::cos(2 * M_PI * static_cast<double>(t) / static_cast<double>(w));
    s[t] = std::sin(2 * M_PI * static_cast<double>(t) / static_cast<double>(w));
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t f = 0; f < frames; ++f)
      for (int64_t k = 0; k < bins; ++k) {
        double re = 0, im = 0;
        const float* frame = x.data() + r * samples + f * w;
        for (int64_t t = 0; t < w; ++t) {
          const int64_t m = (k * t) % w;
          re += frame[t] * c[m];
          im -= frame[t] * s[m];
        }
        out[static_cast<std::size_t>((r * frames + f) * bins + k)] = std::hypot(re, im);
      }
  return out;
}

int test_plan() {
  using neurobolt::cuda::plan_multiscale;
  const auto plan = plan_multiscale(6, 3200, {100, 200, 400, 800});
  check(plan.scales == 4 && plan.samples == 3200 && plan.rows == 6, "plan sizes");
  check(plan.num_stages[0] == 3 && plan.radices[0][0] == 5 && plan.radices[0][1] == 5 && plan.radices[0][2] == 4 &&
            plan.radices[0][3] == 0,
        "100 = 5 x 5 x 4");
  check(plan.num_stages[3] == 5 && plan.radices[3][4] == 2, "800 = 5 x 5 x 4 x 4 x 2");
  // Offsets: scale n holds rows x frames x (w/2 + 1) floats.
  const int64_t sizes[4] = {6 * 32 * 51, 6 * 16 * 101, 6 * 8 * 201, 6 * 4 * 401};
  check(plan.offsets[0] == 0 && plan.offsets[1] == sizes[0] && plan.offsets[2] == sizes[0] + sizes[1] &&
            plan.offsets[3] == sizes[0] + sizes[1] + sizes[2],
        "offsets");
  check(plan.output_floats == sizes[0] + sizes[1] + sizes[2] + sizes[3], "output size");
  check(plan.shared_bytes == 3200 * 20, "shared memory: the row and two complex buffers");
  check(plan_multiscale(1, 12, {3, 4, 6, 12}).num_stages[3] == 2, "radix 3");
  check(error_of([] { plan_multiscale(2, 3360, {112}); }).find("prime factor other than 2, 3 and 5") != std::string::npos,
        "a window with a factor 7 is refused");
  check(error_of([] { plan_multiscale(2, 3200, {300}); }).find("divisor") != std::string::npos,
        "a window that does not divide the samples is refused");
  check(error_of([] { plan_multiscale(0, 3200, {100}); }).find("rows") != std::string::npos, "no rows");
  check(error_of([] { plan_multiscale(1, 3200, std::vector<int64_t>(9, 100)); }).find("scales") != std::string::npos,
        "too many scales");
  // The kernel's per-item code run on the host against a double DFT: every scale, odd sizes.
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (auto [rows, samples, windows] :
       {std::tuple<int64_t, int64_t, std::vector<int64_t>>{3, 3200, {100, 200, 400, 800}},
        {2, 360, {2, 3, 4, 5, 6, 8, 9, 12}}, {1, 1500, {15, 25, 30, 50, 60, 75, 125, 1500}}}) {
    std::vector<float> x(static_cast<std::size_t>(rows * samples));
    for (auto& v : x) v = 20.0f * normal(rng) + 10.0f;
    const auto p = plan_multiscale(rows, samples, windows);
    std::vector<float> out(static_cast<std::size_t>(p.output_floats), -1.0f);
    neurobolt::cuda::run_multiscale_on_host(p, x.data(), out.data());
    for (int n = 0; n < p.scales; ++n) {
      const auto ref = reference(x, rows, samples, windows[static_cast<std::size_t>(n)]);
      double max_err = 0, max_mag = 0;
      for (std::size_t i = 0; i < ref.size(); ++i) {
        max_err = std::max(max_err, std::abs(ref[i] - out[static_cast<std::size_t>(p.offsets[n]) + i]));
        max_mag = std::max(max_mag, ref[i]);
      }
      check(max_err / max_mag < 1e-5, fmt::format("host run of the kernel, {} samples, window {}: relative error {:.3g}",
                                                  samples, windows[static_cast<std::size_t>(n)], max_err / max_mag));
    }
    for (float v : out) check(v >= 0.0f, "every output written");
  }
  std::printf("plan: %s\n", failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}

#define CUDA_OK(call)                                                                 \
  do {                                                                                \
    const cudaError_t e_ = (call);                                                    \
    if (e_ != cudaSuccess) {                                                          \
      std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_));                \
      return 1;                                                                       \
    }                                                                                 \
  } while (0)

int test_device() {
  if (!neurobolt::cuda::device_available()) {
    std::printf("device: skipped (no CUDA device)\n");
    return 77;
  }
  std::printf("device: %s\n", neurobolt::cuda::device_summary(0).c_str());
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  double worst = 0.0;
  const std::vector<int64_t> windows{100, 200, 400, 800};
  for (int64_t batch : {1, 3, 17}) {
    for (int64_t channels : {1, 7, 26, 64}) {
      for (bool eeg_like : {false, true}) {
        const int64_t rows = batch * channels, samples = 3200;
        std::vector<float> x(static_cast<std::size_t>(rows * samples));
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t t = 0; t < samples; ++t) {
            float v = normal(rng);
            if (eeg_like) {  // microvolt-scale alpha and slow drift over noise, a DC offset
              const double time = static_cast<double>(t) / 200.0;
              v = static_cast<float>(40.0 * std::sin(2 * M_PI * 10.0 * time + r) + 15.0 * std::sin(2 * M_PI * 0.3 * time) +
                                     5.0 * v + 30.0);
            }
            x[static_cast<std::size_t>(r * samples + t)] = v;
          }
        const auto plan = neurobolt::cuda::plan_multiscale(rows, samples, windows);
        float *dx = nullptr, *dout = nullptr;
        CUDA_OK(cudaMalloc(&dx, x.size() * sizeof(float)));
        CUDA_OK(cudaMalloc(&dout, static_cast<std::size_t>(plan.output_floats) * sizeof(float)));
        CUDA_OK(cudaMemcpy(dx, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
        const std::string error = neurobolt::cuda::launch_multiscale(plan, dx, dout, nullptr);
        check(error.empty(), "launch: " + error);
        std::vector<float> out(static_cast<std::size_t>(plan.output_floats));
        CUDA_OK(cudaMemcpy(out.data(), dout, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
        cudaFree(dx);
        cudaFree(dout);
        for (int n = 0; n < 4; ++n) {
          const auto ref = reference(x, rows, samples, windows[n]);
          double max_err = 0, max_mag = 0;
          for (std::size_t i = 0; i < ref.size(); ++i) {
            max_err = std::max(max_err, std::abs(ref[i] - out[static_cast<std::size_t>(plan.offsets[n]) + i]));
            max_mag = std::max(max_mag, ref[i]);
          }
          const double rel = max_err / max_mag;
          worst = std::max(worst, rel);
          check(rel < 1e-5, fmt::format("batch {} channels {} {} window {}: relative error {:.3g}", batch, channels,
                                        eeg_like ? "EEG-like" : "random", windows[n], rel));
        }
      }
    }
  }
  std::printf("device: worst relative error %.3g (bound 1e-5): %s\n", worst, failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "plan";
  if (what == "plan") return test_plan();
  if (what == "device") return test_device();
  std::fprintf(stderr, "usage: %s plan|device\n", argv[0]);
  return 2;
}
