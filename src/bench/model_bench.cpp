#include <fmt/format.h>
#include <torch/torch.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "core/plural.hpp"
#include "cuda/dispatch.hpp"
#include "neurobolt/bench.hpp"
#include "neurobolt/model.hpp"
#include "neurobolt/runtime.hpp"

namespace neurobolt {
namespace {

using Clock = std::chrono::steady_clock;

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

PhaseResult summarize(const std::vector<double>& seconds, long long peak) {
  PhaseResult r;
  r.ran = true;
  r.mean_s = std::accumulate(seconds.begin(), seconds.end(), 0.0) / static_cast<double>(seconds.size());
  r.min_s = *std::min_element(seconds.begin(), seconds.end());
  r.max_s = *std::max_element(seconds.begin(), seconds.end());
  r.peak_rss_bytes = peak;
  return r;
}

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// GFLOP/s of C = A B for A [m, k], B [k, n], best of several after a warm-up.
double matmul_gflops(int64_t m, int64_t k, int64_t n) {
  auto a = torch::randn({m, k});
  auto b = torch::randn({k, n});
  auto c = torch::empty({m, n});
  torch::mm_out(c, a, b);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    torch::mm_out(c, a, b);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) / best / 1e9;
}

double gib(long long bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

// The stage a forward tap ends (names from NeuroBOLTImpl::forward and the spectral module).
std::string stage_of(std::string_view tap) {
  if (tap == "ts_patch_embed") return "temporal conv front end";
  if (tap == "ts_tokens_in") return "temporal token embedding";
  if (tap.substr(0, 8) == "ts_block") return "temporal transformer blocks";
  if (tap == "ts_feature") return "temporal pooling + norm";
  if (tap == "mss_tokens_in") return "spectral front end (spectra + projections)";
  if (tap == "mss_tokens_out") return "spectral transformer";
  if (tap == "mss_feature") return "spectral pooling";
  return "head";
}

// Forward passes timed at the model's stage boundaries (its taps): each stage's time is the time
// from the previous tap to the one that ends it, summed per stage and averaged over iterations.
std::vector<StageTime> time_stages(NeuroBOLT& model, const torch::Tensor& input, const ModelBenchOptions& options,
                                   const torch::Device& device) {
  model->eval();
  torch::NoGradGuard no_grad;
  std::vector<StageTime> stages;
  auto add = [&](const std::string& name, double seconds) {
    for (auto& s : stages) {
      if (s.name == name) {
        s.seconds += seconds;
        return;
      }
    }
    stages.push_back({name, seconds, 0.0});
  };
  for (int i = 0; i < options.iterations; ++i) {
    synchronize(device);
    auto last = Clock::now();
    model->forward(input, [&](std::string_view name, const torch::Tensor&) {
      synchronize(device);
      const auto now = Clock::now();
      add(stage_of(name), std::chrono::duration<double>(now - last).count());
      last = now;
    });
  }
  const ForwardFlops flops = forward_flops(options.config);
  const double windows = static_cast<double>(options.batch);
  for (auto& s : stages) {
    s.seconds /= options.iterations;
    double f = 0;
    if (s.name == "temporal conv front end") f = flops.temporal_conv;
    if (s.name == "temporal transformer blocks") f = flops.temporal_blocks;
    if (s.name == "spectral front end (spectra + projections)") f = flops.spectral_front;
    if (s.name == "spectral transformer") f = flops.spectral_blocks;
    if (s.name == "head") f = flops.head;
    s.gflop = f * windows / 1e9;
  }
  return stages;
}

}  // namespace

ModelBenchResult run_model_bench(const ModelBenchOptions& options) {
  const torch::Device device(options.device);
  torch::manual_seed(options.seed);
  NeuroBOLT model(options.config);
  model->to(device);

  ModelBenchResult result;
  const auto runtime = current_runtime();
  result.config_name = options.config.name;
  result.batch = options.batch;
  result.threads = runtime.threads;
  result.blas = runtime.blas;
  result.device = device.str();
  result.precision = runtime.precision;
  result.parameters = count_parameters(*model).total();
  result.forward_gflop_per_window = forward_flops(options.config).total() / 1e9;
  if (!device.is_cuda()) {
    result.matmul.push_back({"1024x1024x1024", matmul_gflops(1024, 1024, 1024)});
    const int64_t tokens = options.config.num_channels() * options.config.num_patches() + 1;
    const int64_t d = options.config.embed_dim;
    const auto hidden = static_cast<int64_t>(static_cast<double>(d) * options.config.temporal.mlp_ratio);
    result.matmul.push_back({fmt::format("{}x{}x{}", options.batch * tokens, d, hidden),
                             matmul_gflops(options.batch * tokens, d, hidden)});
  }
  const int cuda_index = device.is_cuda() && device.has_index() ? device.index() : 0;

  // EEG-like input scale: tens of microvolts.
  auto input = torch::randn({options.batch, options.config.num_channels(), options.config.window_samples},
                            torch::TensorOptions().device(device)) * 30.0;
  auto target = torch::randn({options.batch, options.config.num_rois()}, torch::TensorOptions().device(device));
  auto note = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };

  if (options.inference) {
    model->eval();
    torch::NoGradGuard no_grad;
    for (int i = 0; i < options.warmup; ++i) model->forward(input);
    synchronize(device);
    reset_peak_rss();
    if (device.is_cuda()) detail::cuda_reset_peak(cuda_index);
    std::vector<double> times;
    const long faults_before = minor_faults();
    for (int i = 0; i < options.iterations; ++i) {
      auto start = Clock::now();
      model->forward(input);
      synchronize(device);
      times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      note(fmt::format("inference {}/{}: {:.3f} s ({:.2f} windows/s)", i + 1, options.iterations, times.back(),
                       options.batch / times.back()));
    }
    result.inference = summarize(times, peak_rss_bytes());
    result.inference.minor_faults_per_batch =
        static_cast<double>(minor_faults() - faults_before) / static_cast<double>(options.iterations);
    if (device.is_cuda()) result.inference.peak_device_bytes = detail::cuda_peak_allocated_bytes(cuda_index);
  }

  if (options.stages) result.stages = time_stages(model, input, options, device);

  if (options.training) {
    model->train();
    torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(5e-4).weight_decay(0.05));
    auto step = [&] {
      optimizer.zero_grad();
      mse_forward_backward(model, input, target);  // as train's step does
      optimizer.step();
    };
    for (int i = 0; i < options.warmup; ++i) step();
    synchronize(device);
    reset_peak_rss();
    if (device.is_cuda()) detail::cuda_reset_peak(cuda_index);
    std::vector<double> times;
    const long faults_before = minor_faults();
    for (int i = 0; i < options.iterations; ++i) {
      auto start = Clock::now();
      step();
      synchronize(device);
      times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      note(fmt::format("training step {}/{}: {:.3f} s", i + 1, options.iterations, times.back()));
    }
    result.training = summarize(times, peak_rss_bytes());
    result.training.minor_faults_per_batch =
        static_cast<double>(minor_faults() - faults_before) / static_cast<double>(options.iterations);
    if (device.is_cuda()) result.training.peak_device_bytes = detail::cuda_peak_allocated_bytes(cuda_index);
  }
  return result;
}

std::string format_bench(const ModelBenchResult& r) {
  std::string out = fmt::format("model      {} ({:.2f} M parameters), batch {}\n", r.config_name, r.parameters / 1e6, r.batch);
  out += fmt::format("runtime    device {} ({}), {}, {}\n", r.device, r.precision, count_of(r.threads, "thread"), r.blas);
  if (r.inference.ran) {
    out += fmt::format("inference  {:.2f} windows/s  ({:.3f} s/batch, min {:.3f}, max {:.3f})  peak RSS {:.2f} GiB\n",
                       r.inference_windows_per_s(), r.inference.mean_s, r.inference.min_s, r.inference.max_s,
                       gib(r.inference.peak_rss_bytes));
    out += fmt::format("           {:.1f} GFLOP/s ({:.2f} GFLOP per window), {:.0f} page faults per batch\n",
                       r.inference_gflops(), r.forward_gflop_per_window, r.inference.minor_faults_per_batch);
    if (r.inference.peak_device_bytes >= 0)
      out += fmt::format("           peak GPU memory {:.2f} GiB\n", gib(r.inference.peak_device_bytes));
  }
  if (r.training.ran) {
    out += fmt::format("training   {:.3f} s/step (forward + MSE backward + AdamW; min {:.3f}, max {:.3f})  peak RSS {:.2f} GiB\n",
                       r.training.mean_s, r.training.min_s, r.training.max_s, gib(r.training.peak_rss_bytes));
    out += fmt::format("           {:.2f} windows/s, {:.0f} page faults per step", static_cast<double>(r.batch) / r.training.mean_s,
                       r.training.minor_faults_per_batch);
    if (r.training.peak_device_bytes >= 0) out += fmt::format("  peak GPU memory {:.2f} GiB", gib(r.training.peak_device_bytes));
    out += "\n";
  }
  if (!r.stages.empty()) {
    double total = 0;
    for (const auto& s : r.stages) total += s.seconds;
    out += fmt::format("stages     per batch, inference ({:.3f} s in all):\n", total);
    for (const auto& s : r.stages) {
      out += fmt::format("           {:<44} {:7.3f} s  {:5.1f}%", s.name, s.seconds, 100.0 * s.seconds / total);
      if (s.gflop > 0.01) out += fmt::format("  {:6.1f} GFLOP/s", s.gflop / s.seconds);
      out += "\n";
    }
  }
  for (const MatmulFigure& m : r.matmul) {
    out += fmt::format("matmul     {:.1f} GFLOP/s ({}, same threads)", m.gflops, m.shape);
    if (r.inference.ran && m.gflops > 0) out += fmt::format(": inference reaches {:.0f}%", 100.0 * r.inference_gflops() / m.gflops);
    out += "\n";
  }
  return out;
}

}  // namespace neurobolt
