#include "neurobolt/runtime.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <cstdlib>
#include <sys/resource.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <thread>

#include "cuda/dispatch.hpp"
#include "runtime/blas_threads.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

// The BLAS is found at run time (LibTorch links whatever libblas.so.3 the system provides, or a
// preloaded one), so its thread control is looked up dynamically rather than linked, and in the
// library that provides the sgemm_ LibTorch calls: with BLIS as libblas.so.3, OpenBLAS's
// liblapack.so.3 is loaded too and its openblas_* calls would name the wrong library.
struct BlasLibrary {
  void* handle = RTLD_DEFAULT;
  std::string path;  // "" when sgemm_ is not found
};

const BlasLibrary& blas_library() {
  static const BlasLibrary library = [] {
    BlasLibrary found;
    Dl_info info{};
    void* gemm = dlsym(RTLD_DEFAULT, "sgemm_");
    if (gemm != nullptr && dladdr(gemm, &info) != 0 && info.dli_fname != nullptr) {
      found.path = info.dli_fname;
      if (void* handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD)) found.handle = handle;
    }
    return found;
  }();
  return library;
}

template <typename Fn>
Fn blas_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(blas_library().handle, name));
}

using GetThreads = int (*)();
using SetThreads = void (*)(int);

// OpenBLAS's thread control (null without OpenBLAS) and the SingleThreadedBlas count.
struct BlasThreadsState {
  GetThreads get = blas_symbol<GetThreads>("openblas_get_num_threads");
  SetThreads set = blas_symbol<SetThreads>("openblas_set_num_threads");
  std::mutex mutex;
  int users = 0;
  int saved = 0;
};

BlasThreadsState& blas_threads_state() {
  static BlasThreadsState state;
  return state;
}

// OpenBLAS with its own pthread pool (openblas_get_parallel() == 1). Its OpenMP build runs a GEMM
// called inside a parallel region on one thread by itself, and its openblas_set_num_threads would
// set OpenMP's thread count for the calling thread, i.e. switch off the region's own threads.
bool blas_has_own_threads() {
  static const bool own = [] {
    const auto parallel = blas_symbol<GetThreads>("openblas_get_parallel");
    return parallel != nullptr && parallel() == 1;
  }();
  return own;
}

}  // namespace

detail::SingleThreadedBlas::SingleThreadedBlas() {
  auto& state = blas_threads_state();
  if (!blas_has_own_threads() || !state.get || !state.set) return;
  std::lock_guard<std::mutex> lock(state.mutex);
  if (state.users++ == 0) {
    state.saved = state.get();
    if (state.saved != 1) state.set(1);
  }
}

detail::SingleThreadedBlas::~SingleThreadedBlas() {
  auto& state = blas_threads_state();
  if (!blas_has_own_threads() || !state.get || !state.set) return;
  std::lock_guard<std::mutex> lock(state.mutex);
  if (--state.users == 0 && state.saved != 1) state.set(state.saved);
}

bool detail::blas_allows_parts() {
  static const bool allows = blas_library().path.find("blis-pthread") == std::string::npos;
  return allows;
}

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

namespace {

// The BLAS behind LibTorch's sgemm_, named by its own version call (OpenBLAS, oneMKL) or by its
// file (Debian's BLIS exports the BLAS interface only); anything else may be the reference BLAS.
std::string blas_name() {
  using GetConfig = char* (*)();
  using MklVersion = void (*)(char*, int);
  if (auto config = blas_symbol<GetConfig>("openblas_get_config")) {
    // openblas_get_config() reads "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." in the versions we know.
    const std::string text = config() != nullptr ? config() : "";
    return text.rfind("OpenBLAS", 0) == 0 ? text : "OpenBLAS " + text;
  }
  if (auto version = blas_symbol<MklVersion>("mkl_get_version_string")) {
    char text[256] = {};
    version(text, sizeof(text) - 1);
    std::string name = text;
    name.erase(name.find_last_not_of(' ') + 1);
    return name;
  }
  const std::string& path = blas_library().path;
  if (path.find("blis") != std::string::npos) return fmt::format("BLIS ({})", path);
  return fmt::format("{} (not OpenBLAS, BLIS or oneMKL; the reference BLAS is ~30x slower: install "
                     "libopenblas0-pthread)", path.empty() ? "unknown BLAS" : path);
}

// Tells the BLAS to use `threads` threads, by whichever thread call it has (Debian's BLIS has
// none in its libblas.so.3: BLIS_NUM_THREADS sets it).
void set_blas_threads(int threads) {
  if (auto set = blas_symbol<SetThreads>("openblas_set_num_threads")) {
    set(threads);
  } else if (auto set_mkl = blas_symbol<SetThreads>("MKL_Set_Num_Threads")) {
    set_mkl(threads);
  }
}

}  // namespace

RuntimeInfo current_runtime() {
  RuntimeInfo info;
  info.threads = torch::get_num_threads();
  if (auto get = blas_symbol<GetThreads>("openblas_get_num_threads")) info.blas_threads = get();
  info.blas = blas_name();
  info.device = "cpu";
  info.precision = detail::cuda_bf16() ? "bf16" : "fp32";
  return info;
}

RuntimeInfo configure_runtime(const RuntimeOptions& options) {
  if (options.threads < 0) throw UsageError(fmt::format("--threads: expected 0 (all cores) or more, found {}", options.threads));
  // 0: OMP_NUM_THREADS when set (neurobolt launch and torchrun set it to cores / processes), else
  // every core this process may run on.
  int threads = options.threads;
  if (threads == 0) {
    const char* omp = std::getenv("OMP_NUM_THREADS");
    const int from_env = omp != nullptr ? std::atoi(omp) : 0;
    threads = from_env > 0 ? std::min(from_env, 4096) : available_cores();
  }
  torch::set_num_threads(threads);
  set_blas_threads(threads);
  RuntimeInfo info = current_runtime();

  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(options.device);
  } catch (const std::exception&) {
    throw UsageError(fmt::format("--device: expected cpu, cuda or cuda:N, found '{}'", options.device));
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw DeviceError(fmt::format("--device {}: no CUDA device is available (no GPU found, or LibTorch built without CUDA)",
                                    options.device));
    }
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    if (device.has_index() && device.index() >= count) {
      throw DeviceError(fmt::format("--device {}: only {} CUDA device(s) present", options.device, count));
    }
  }
  info.device = device.str();
  if (options.precision != "fp32" && options.precision != "bf16") {
    throw UsageError(fmt::format("--precision: expected fp32 or bf16, found '{}'", options.precision));
  }
  if (options.precision == "bf16" && !device.is_cuda()) {
    throw UsageError(fmt::format("--precision bf16: needs --device cuda (bf16 autocast runs on GPUs), found --device {}",
                                 device.str()));
  }
  detail::set_cuda_bf16(options.precision == "bf16");
  info.precision = options.precision;
  return info;
}

long long peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<long long>(usage.ru_maxrss) * 1024;
}

void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  if (clear) clear << "5";
}

}  // namespace neurobolt
