#pragma once

namespace neurobolt::cli {

// Re-executes the process once with OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4
// unless the user set them (or NEUROBOLT_THREAD_ENV is set). Call first thing in main.
void ensure_thread_environment(char** argv);

// A write past the file-size limit (ulimit -f) kills a process by default (SIGXFSZ); ignored, the
// write fails with EFBIG instead, the command reports it and leaves no partial output.
void report_file_size_limit_as_error();

}  // namespace neurobolt::cli
