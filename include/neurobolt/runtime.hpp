#pragma once
// Process-wide compute settings: thread pools and the compute device.
#include <string>

namespace neurobolt {

struct RuntimeOptions {
  int threads = 0;             // intra-op threads; 0 = OMP_NUM_THREADS when set, else all cores
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
  // "fp32", or "bf16": the model runs under bf16 autocast on CUDA (loss and metrics stay
  // float32); needs a CUDA device and LibTorch 2.4 or later.
  std::string precision = "fp32";
};

struct RuntimeInfo {
  int threads = 0;        // torch intra-op threads in use
  int blas_threads = -1;  // OpenBLAS threads, -1 when not OpenBLAS
  std::string device;     // normalised device string
  std::string precision;  // "fp32" or "bf16"
  std::string blas;       // BLAS library in use, e.g. "OpenBLAS 0.3.21 (pthread)"
};

// Applies the options (thread counts of torch and OpenBLAS) and checks the device; throws
// DeviceError when a CUDA device is requested but unavailable.
RuntimeInfo configure_runtime(const RuntimeOptions& options);

// The settings in effect now (device is always "cpu" here).
RuntimeInfo current_runtime();

// Number of hardware threads (cores) available to this process.
int available_cores();

// Peak resident set size of this process in bytes (VmHWM), and a reset of that peak so a phase
// of work can be measured on its own (Linux /proc/self/clear_refs; no-op elsewhere).
long long peak_rss_bytes();
void reset_peak_rss();

}  // namespace neurobolt
