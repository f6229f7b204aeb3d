#pragma once

namespace neurobolt::cli {

// Re-executes the process once with OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4
// unless the user set them (or NEUROBOLT_THREAD_ENV is set). Call first thing in main.
void ensure_thread_environment(char** argv);

}  // namespace neurobolt::cli
