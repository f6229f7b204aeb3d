#pragma once
// Model benchmarks: inference throughput, training-step time and peak memory, measured on
// synthetic input of the configured shape.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "neurobolt/config.hpp"

namespace neurobolt {

struct ModelBenchOptions {
  ModelConfig config;
  int64_t batch = 16;
  int warmup = 1;         // untimed iterations before measuring
  int iterations = 3;     // timed iterations per phase
  bool inference = true;
  bool training = true;
  std::string device = "cpu";
  uint64_t seed = 0;
  // Also time each stage of the forward pass (iterations more forward passes, in inference mode,
  // timed at the model's stage boundaries): where the time goes.
  bool stages = false;
  std::function<void(const std::string&)> progress;  // one line per finished iteration
};

// Mean seconds per batch of one stage of the forward pass (ModelBenchOptions::stages).
struct StageTime {
  std::string name;
  double seconds = 0;
  double gflop = 0;  // per batch, from forward_flops (0 where not counted separately)
};

struct PhaseResult {
  bool ran = false;
  double mean_s = 0, min_s = 0, max_s = 0;  // seconds per batch
  long long peak_rss_bytes = 0;             // peak resident memory during the phase
  long long peak_device_bytes = -1;         // peak CUDA memory allocated by torch (-1: not on CUDA)
  double minor_faults_per_batch = 0;        // page faults (getrusage) per timed batch: 0 in a steady state
};

// The machine's own matrix-multiply speed, measured in the same process with the same threads:
// a square 1024 x 1024 product and the model's largest GEMM (the temporal MLP's first layer at
// this batch). The ratio of the model's achieved GFLOP/s to them shows how close to the
// arithmetic limit the model runs.
struct MatmulFigure {
  std::string shape;  // "1024x1024x1024" (m x k x n)
  double gflops = 0;
};

struct ModelBenchResult {
  std::string config_name;
  int64_t batch = 0;
  int threads = 0;
  std::string blas;
  std::string device;
  std::string precision;  // "fp32" or "bf16"
  int64_t parameters = 0;
  PhaseResult inference;  // forward in eval mode without autograd
  PhaseResult training;   // forward + MSE backward + AdamW step
  double forward_gflop_per_window = 0;  // forward_flops(config).total() / 1e9
  std::vector<MatmulFigure> matmul;     // the machine's matmul GFLOP/s (CPU runs)
  std::vector<StageTime> stages;        // with ModelBenchOptions::stages, in forward order
  double inference_windows_per_s() const { return inference.ran ? batch / inference.mean_s : 0.0; }
  double inference_gflops() const { return inference_windows_per_s() * forward_gflop_per_window; }
};

ModelBenchResult run_model_bench(const ModelBenchOptions& options);

// Human-readable report of a result (several lines).
std::string format_bench(const ModelBenchResult& result);

// The spectral front end alone: every scale's magnitude spectra of a batch [batch, channels,
// samples] by the fused CUDA kernel (one launch) against torch's per-scale path (torch::stft with
// a rectangular window, hop = window, no centring, then abs) on the same device; on CPU the
// torch path alone. Bandwidth counts the input read once and the magnitudes written once.
struct SpectralBenchOptions {
  std::string device = "cpu";
  int64_t batch = 256, channels = 26, samples = 3200;
  std::vector<int64_t> windows{100, 200, 400, 800};
  int iterations = 20, warmup = 3;
};
struct SpectralBenchResult {
  std::string device, device_summary;
  double torch_s = 0.0;        // per batch, per-scale stft + abs
  double fused_s = -1.0;       // per batch, the fused kernel (-1: not run: no CUDA kernels)
  double bytes = 0.0;          // input + magnitudes
  double peak_bandwidth = 0.0; // bytes/s of the device (0: unknown)
  double max_relative_difference = -1.0;  // fused vs torch, max abs / max magnitude
};
SpectralBenchResult run_spectral_bench(const SpectralBenchOptions& options);
std::string format_spectral_bench(const SpectralBenchResult& result);

// Reading speed of the EEG readers (torch-free: src/io/read_bench.cpp).
struct ReadBenchResult {
  std::string path;
  std::string format;      // Recording::format
  int64_t file_bytes = 0;  // the files read: EDF/BDF file, .vhdr + .vmrk + data file, .set + .fdt
  int64_t channels = 0;
  int64_t samples = 0;     // per channel
  int repeats = 0;
  int warmup = 0;          // untimed reads before the timed ones
  double best_s = 0, mean_s = 0;  // seconds per read_recording call
  double mb_per_s() const { return best_s > 0 ? file_bytes / best_s / 1e6 : 0.0; }
  double samples_per_s() const { return best_s > 0 ? static_cast<double>(channels) * samples / best_s : 0.0; }
};

// Reads `path` with read_recording `repeats` times after `warmup` untimed reads (one by default,
// so that the timed reads find the file in the page cache, as repeated reads in a pipeline do).
// MB/s = bytes / best time.
ReadBenchResult bench_read_recording(const std::string& path, int repeats, int warmup = 1);

// Human-readable report (several lines).
std::string format_read_bench(const ReadBenchResult& result);

}  // namespace neurobolt
