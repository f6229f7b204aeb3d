#pragma once
// The fused multi-scale magnitude spectra of the spectral branch on a CUDA device, behind a plain
// C++ interface (no torch, no CUDA headers): the kernel library builds with nvcc alone, and the
// torch wrapper (spectral_torch.cpp) is the only caller in the model.
//
// For `rows` windows of `samples` float32 samples each (row-major [rows, samples], e.g. a batch
// [batch, channels, samples] flattened), scale n with frame length windows[n] writes
// |rfft| of every non-overlapping rectangular frame (hop = window, no centring) as
// [rows, samples / windows[n], windows[n] / 2 + 1] float32 at out + offsets[n]: the layout of
// torch::fft::rfft(x.reshape({rows, frames, window})).abs(). One launch does every scale: each row
// is read from global memory once into shared memory and every frame is transformed there by a
// mixed-radix (2, 3, 4, 5) Stockham FFT.
#include <cstdint>
#include <string>
#include <vector>

namespace neurobolt::cuda {

constexpr int kMaxScales = 8;
constexpr int kMaxStages = 24;

struct MultiscalePlan {
  int64_t rows = 0;
  int samples = 0;
  int scales = 0;
  int windows[kMaxScales] = {};
  int64_t offsets[kMaxScales] = {};  // in floats, into the output
  int num_stages[kMaxScales] = {};
  int radices[kMaxScales][kMaxStages] = {};
  int64_t output_floats = 0;   // the whole output
  int64_t shared_bytes = 0;    // dynamic shared memory per block
};

// The plan for these sizes, or a ConfigError naming what is wrong: a window that does not divide
// `samples`, is below 2 or has a prime factor other than 2, 3 and 5; more than kMaxScales scales;
// rows < 1 or above 2^31 - 1.
MultiscalePlan plan_multiscale(int64_t rows, int64_t samples, const std::vector<int64_t>& windows);

// True when a CUDA device can be used (the runtime finds a driver and at least one device).
bool device_available();
// Device properties for messages and benchmarks: "NVIDIA H200 (sm_90, 132 SMs, 4.8 TB/s peak)".
std::string device_summary(int device);
// Peak DRAM bandwidth of a device in bytes/s (memory clock x bus width x 2), 0 when unknown.
double peak_bandwidth(int device);

// The kernel's own code (the same per-item function) run on the CPU, item by item, stage by
// stage: checks the algorithm and its indexing where there is no GPU. x and out are host memory.
void run_multiscale_on_host(const MultiscalePlan& plan, const float* x, float* out);

// Runs the kernel on `stream` (a cudaStream_t; nullptr = the legacy default stream) for device
// pointers x [plan.rows * plan.samples] and out [plan.output_floats] on the current device.
// Returns "" or the CUDA error text (a launch failure, too little shared memory on this device).
std::string launch_multiscale(const MultiscalePlan& plan, const float* x, float* out, void* stream);

}  // namespace neurobolt::cuda
