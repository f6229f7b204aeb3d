#include "common.hpp"

#include <iostream>

#include "neurobolt/runtime.hpp"

namespace neurobolt::cli {

GlobalOptions& global_options() {
  static GlobalOptions options;
  return options;
}

void add_standard_options(CLI::App& command) {
  auto& g = global_options();
  command.add_option("--threads", g.threads, "Compute threads (0 = all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
  command.add_option("--device", g.device, "Compute device: cpu, cuda or cuda:N")->capture_default_str();
  command.add_option("--precision", g.precision, "fp32, or bf16 (autocast on CUDA; loss and metrics stay fp32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  command.add_flag("-q,--quiet", g.quiet, "Print no progress or notes (errors still go to stderr)");
  command.add_flag("-f,--force", g.force, "Overwrite existing outputs");
}

void apply_runtime() {
  auto& g = global_options();
  configure_runtime(RuntimeOptions{g.threads, g.device, g.precision});
}

void note(const std::string& line) {
  if (!global_options().quiet) std::cerr << line << std::endl;
}

}  // namespace neurobolt::cli
