// Process-level settings the neurobolt executable makes before any work (not the library's
// business: programs that link libneurobolt choose their own).
#include "process_setup.hpp"

#include <unistd.h>

#include <csignal>

#include <cstdlib>

#ifdef NEUROBOLT_WITH_JEMALLOC
// jemalloc reads this at start-up. Freed pages are kept for reuse instead of being returned to
// the system: every training step and inference batch allocates the same tensor sizes again,
// and returning and re-faulting those pages cost up to 2x in throughput (measured with
// neurobolt bench); peak RSS is unchanged, and the process ends when the command is done.
extern "C" {
__attribute__((used)) const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}
#endif

namespace neurobolt::cli {

void ensure_thread_environment(char** argv) {
  // OpenMP (LibTorch's pool) and OpenBLAS (its own pthread pool) both busy-wait after each
  // parallel region by default; on a machine with few cores the two pools then steal each
  // other's cores (measured: 2.5 -> 5.4 windows/s on 2 cores with these settings). Both
  // libraries read these variables only when they are loaded, so the process re-executes
  // itself once with them set. Values the user already set are kept.
  if (std::getenv("NEUROBOLT_THREAD_ENV") != nullptr) return;
  bool changed = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  if (std::getenv("OPENBLAS_THREAD_TIMEOUT") == nullptr) {
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    changed = true;
  }
  setenv("NEUROBOLT_THREAD_ENV", "1", 1);
  if (changed) execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
}

void report_file_size_limit_as_error() { std::signal(SIGXFSZ, SIG_IGN); }

}  // namespace neurobolt::cli
