// Fused multi-scale magnitude spectra (see spectral_kernel.hpp).
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <climits>
#include <cmath>
#include <vector>

#include "cuda/spectral_kernel.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::cuda {
namespace {

constexpr int kThreads = 256;

__host__ __device__ __forceinline__ float2 cmul(float2 a, float2 b) {
  return make_float2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}
__host__ __device__ __forceinline__ float2 cadd(float2 a, float2 b) { return make_float2(a.x + b.x, a.y + b.y); }
__host__ __device__ __forceinline__ float2 csub(float2 a, float2 b) { return make_float2(a.x - b.x, a.y - b.y); }
// a * (-i)
__host__ __device__ __forceinline__ float2 mul_minus_i(float2 a) { return make_float2(a.y, -a.x); }

// In-register forward DFT of R points (R = 2, 3, 4, 5): v[k] = sum_r v[r] exp(-2 pi i k r / R).
__host__ __device__ __forceinline__ void small_dft(float2* v, int R) {
  if (R == 2) {
    const float2 a = v[0], b = v[1];
    v[0] = cadd(a, b);
    v[1] = csub(a, b);
  } else if (R == 4) {
    const float2 t0 = cadd(v[0], v[2]), t1 = csub(v[0], v[2]);
    const float2 t2 = cadd(v[1], v[3]), t3 = mul_minus_i(csub(v[1], v[3]));
    v[0] = cadd(t0, t2);
    v[2] = csub(t0, t2);
    v[1] = cadd(t1, t3);
    v[3] = csub(t1, t3);
  } else if (R == 3) {
    constexpr float c = -0.5f, s = 0.86602540378443864676f;
    const float2 sum = cadd(v[1], v[2]), diff = csub(v[1], v[2]);
    const float2 base = make_float2(v[0].x + c * sum.x, v[0].y + c * sum.y);
    const float2 rot = make_float2(s * diff.y, -s * diff.x);  // -i s (v1 - v2)
    v[0] = cadd(v[0], sum);
    v[1] = cadd(base, rot);
    v[2] = csub(base, rot);
  } else {  // R == 5
    constexpr float c1 = 0.30901699437494742410f, s1 = 0.95105651629515357212f;
    constexpr float c2 = -0.80901699437494742410f, s2 = 0.58778525229247312917f;
    const float2 a1 = cadd(v[1], v[4]), b1 = csub(v[1], v[4]);
    const float2 a2 = cadd(v[2], v[3]), b2 = csub(v[2], v[3]);
    const float2 x0 = v[0];
    const float2 r1 = make_float2(x0.x + c1 * a1.x + c2 * a2.x, x0.y + c1 * a1.y + c2 * a2.y);
    const float2 r2 = make_float2(x0.x + c2 * a1.x + c1 * a2.x, x0.y + c2 * a1.y + c1 * a2.y);
    // -i (s1 b1 + s2 b2) and -i (s2 b1 - s1 b2)
    const float2 i1 = mul_minus_i(make_float2(s1 * b1.x + s2 * b2.x, s1 * b1.y + s2 * b2.y));
    const float2 i2 = mul_minus_i(make_float2(s2 * b1.x - s1 * b2.x, s2 * b1.y - s1 * b2.y));
    v[0] = cadd(x0, cadd(a1, a2));
    v[1] = cadd(r1, i1);
    v[4] = csub(r1, i1);
    v[2] = cadd(r2, i2);
    v[3] = csub(r2, i2);
  }
}

// e^{i pi a} for a in (-2, 0]: sincospif on the device; on the host (the emulation) in double.
__host__ __device__ __forceinline__ float2 unit_phase(float a) {
#ifdef __CUDA_ARCH__
  float s, c;
  sincospif(a, &s, &c);
  return make_float2(c, s);
#else
  return make_float2(static_cast<float>(std::cos(M_PI * a)), static_cast<float>(std::sin(M_PI * a)));
#endif
}

// One work item of one Stockham stage of scale n: butterfly j of frame f (t = f * w / R + j).
// The first stage reads the real row, later ones `in`; the last writes the magnitudes of bins
// 0..w/2 to `mags` ([frames, bins] of this row), the others `dst`. Items of a stage are
// independent: they read only `in` (or `row`) and write distinct places.
__host__ __device__ __forceinline__ void stage_item(int t, int w, int R, int Ns, bool first, bool last, const float* row,
                                                    const float2* in, float2* dst, float* mags) {
  const int per_frame = w / R;
  const int f = t / per_frame;
  const int j = t - f * per_frame;
  const int base = f * w;
  const int k = j % Ns;
  float2 v[5];
#pragma unroll
  for (int q = 0; q < 5; ++q) {
    if (q < R) {
      const int idx = base + j + q * per_frame;
      v[q] = first ? make_float2(row[idx], 0.0f) : in[idx];
    }
  }
  if (k != 0) {
#pragma unroll
    for (int q = 1; q < 5; ++q) {
      if (q < R) v[q] = cmul(v[q], unit_phase(-2.0f * static_cast<float>(k * q) / static_cast<float>(Ns * R)));
    }
  }
  small_dft(v, R);
  const int idx_out = (j / Ns) * Ns * R + k;
  const int bins = w / 2 + 1;
#pragma unroll
  for (int q = 0; q < 5; ++q) {
    if (q < R) {
      const int o = idx_out + q * Ns;
      if (!last) {
        dst[base + o] = v[q];
      } else if (o < bins) {
        mags[f * bins + o] = hypotf(v[q].x, v[q].y);
      }
    }
  }
}

// One block per row (grid-stride): the row is staged in shared memory once, then every scale's
// frames go through the Stockham stages between two shared buffers; the last stage writes the
// magnitudes to global memory.
__global__ void __launch_bounds__(kThreads) multiscale_kernel(const float* __restrict__ x, MultiscalePlan plan,
                                                              float* __restrict__ out) {
  extern __shared__ float2 shared[];
  const int S = plan.samples;
  float2* buffer0 = shared;
  float2* buffer1 = shared + S;
  float* row = reinterpret_cast<float*>(shared + 2 * S);
  for (int64_t r = blockIdx.x; r < plan.rows; r += gridDim.x) {
    const float* src = x + r * S;
    for (int i = threadIdx.x; i < S; i += blockDim.x) row[i] = src[i];
    __syncthreads();
    for (int n = 0; n < plan.scales; ++n) {
      const int w = plan.windows[n];
      const int frames = S / w;
      float* mags = out + plan.offsets[n] + r * frames * (w / 2 + 1);
      const float2* in = nullptr;
      float2* dst = buffer0;
      int Ns = 1;
      for (int stage = 0; stage < plan.num_stages[n]; ++stage) {
        const int R = plan.radices[n][stage];
        const bool last = stage + 1 == plan.num_stages[n];
        for (int t = threadIdx.x; t < frames * (w / R); t += blockDim.x)
          stage_item(t, w, R, Ns, stage == 0, last, row, in, dst, mags);
        __syncthreads();
        in = dst;
        dst = dst == buffer0 ? buffer1 : buffer0;
        Ns *= R;
      }
    }
  }
}

std::string error_text(cudaError_t e, const char* what) {
  return fmt::format("{}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

}  // namespace

MultiscalePlan plan_multiscale(int64_t rows, int64_t samples, const std::vector<int64_t>& windows) {
  MultiscalePlan plan;
  if (rows < 1 || rows > INT_MAX) {
    throw ConfigError(fmt::format("CUDA spectra: rows (batch x channels): expected 1 to {}, found {}", INT_MAX, rows));
  }
  if (samples < 2 || samples > (1 << 20)) {
    throw ConfigError(fmt::format("CUDA spectra: samples per window: expected 2 to {}, found {}", 1 << 20, samples));
  }
  if (windows.empty() || windows.size() > static_cast<std::size_t>(kMaxScales)) {
    throw ConfigError(
        fmt::format("CUDA spectra: number of scales: expected 1 to {}, found {}", kMaxScales, windows.size()));
  }
  plan.rows = rows;
  plan.samples = static_cast<int>(samples);
  plan.scales = static_cast<int>(windows.size());
  int64_t offset = 0;
  for (std::size_t n = 0; n < windows.size(); ++n) {
    const int64_t w = windows[n];
    if (w < 2 || samples % w != 0) {
      throw ConfigError(fmt::format("CUDA spectra: scale {} frame length: expected a divisor >= 2 of the {} samples, "
                                    "found {}",
                                    n, samples, w));
    }
    // Radices, largest first: 5s, 3s, then 4s and a final 2.
    int64_t rest = w;
    int stages = 0;
    for (int radix : {5, 3, 4, 2}) {
      while (rest % radix == 0) {
        if (stages == kMaxStages) break;
        plan.radices[n][stages++] = radix;
        rest /= radix;
      }
    }
    if (rest != 1) {
      throw ConfigError(fmt::format("CUDA spectra: scale {} frame length {} has a prime factor other than 2, 3 and 5 "
                                    "(the kernel's FFT radices)",
                                    n, w));
    }
    plan.windows[n] = static_cast<int>(w);
    plan.num_stages[n] = stages;
    plan.offsets[n] = offset;
    offset += rows * (samples / w) * (w / 2 + 1);
  }
  plan.output_floats = offset;
  plan.shared_bytes = samples * static_cast<int64_t>(2 * sizeof(float2) + sizeof(float));
  return plan;
}

bool device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

double peak_bandwidth(int device) {
  int clock_khz = 0, bus_bits = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device) != cudaSuccess) return 0.0;
  if (cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device) != cudaSuccess) return 0.0;
  return 2.0 * clock_khz * 1e3 * (bus_bits / 8.0);
}

std::string device_summary(int device) {
  cudaDeviceProp p{};
  const cudaError_t e = cudaGetDeviceProperties(&p, device);
  if (e != cudaSuccess) return error_text(e, "cudaGetDeviceProperties");
  return fmt::format("{} (sm_{}{}, {} SMs, {:.0f} GiB, {:.2f} TB/s peak)", p.name, p.major, p.minor,
                     p.multiProcessorCount, static_cast<double>(p.totalGlobalMem) / (1ull << 30),
                     peak_bandwidth(device) / 1e12);
}

void run_multiscale_on_host(const MultiscalePlan& plan, const float* x, float* out) {
  const int S = plan.samples;
  std::vector<float2> buffer0(static_cast<std::size_t>(S)), buffer1(static_cast<std::size_t>(S));
  for (int64_t r = 0; r < plan.rows; ++r) {
    const float* row = x + r * S;
    for (int n = 0; n < plan.scales; ++n) {
      const int w = plan.windows[n];
      const int frames = S / w;
      float* mags = out + plan.offsets[n] + r * frames * (w / 2 + 1);
      const float2* in = nullptr;
      float2* dst = buffer0.data();
      int Ns = 1;
      for (int stage = 0; stage < plan.num_stages[n]; ++stage) {
        const int R = plan.radices[n][stage];
        const bool last = stage + 1 == plan.num_stages[n];
        for (int t = 0; t < frames * (w / R); ++t) stage_item(t, w, R, Ns, stage == 0, last, row, in, dst, mags);
        in = dst;
        dst = dst == buffer0.data() ? buffer1.data() : buffer0.data();
        Ns *= R;
      }
    }
  }
}

std::string launch_multiscale(const MultiscalePlan& plan, const float* x, float* out, void* stream) {
  int device = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return error_text(e, "cudaGetDevice");
  int max_shared = 0;
  e = cudaDeviceGetAttribute(&max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return error_text(e, "cudaDeviceGetAttribute");
  if (plan.shared_bytes > max_shared) {
    return fmt::format("CUDA spectra: {} samples per window need {} bytes of shared memory per block; device {} "
                       "allows {}",
                       plan.samples, plan.shared_bytes, device, max_shared);
  }
  // Raise the kernel's dynamic shared-memory limit once per device and size (a host-side
  // attribute call, but not one to repeat every launch).
  thread_local int raised_device = -1;
  thread_local int64_t raised_bytes = -1;
  if (raised_device != device || raised_bytes < plan.shared_bytes) {
    e = cudaFuncSetAttribute(multiscale_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(plan.shared_bytes));
    if (e != cudaSuccess) return error_text(e, "cudaFuncSetAttribute");
    raised_device = device;
    raised_bytes = plan.shared_bytes;
  }
  const auto blocks = static_cast<unsigned>(plan.rows);
  multiscale_kernel<<<blocks, kThreads, static_cast<size_t>(plan.shared_bytes), static_cast<cudaStream_t>(stream)>>>(
      x, plan, out);
  e = cudaGetLastError();
  if (e != cudaSuccess) return error_text(e, "CUDA spectra launch");
  return {};
}

}  // namespace neurobolt::cuda
