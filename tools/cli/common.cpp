#include "common.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <iostream>

#include "neurobolt/error.hpp"
#include "neurobolt/runtime.hpp"

namespace neurobolt::cli {

GlobalOptions& global_options() {
  static GlobalOptions options;
  return options;
}

void add_standard_options(CLI::App& command) {
  auto& g = global_options();
  command.add_option("--threads", g.threads, "Compute threads (0 = all cores)")->capture_default_str()->check(between(0, 4096));
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

void apply_cpu_runtime(const CLI::App& command) {
  const std::string reason = fmt::format("'{}' runs on the CPU (devices and precisions are for train, infer, eval and "
                                         "bench)",
                                         command.get_name());
  refuse_option(command, "--device", reason);
  refuse_option(command, "--precision", reason);
  apply_runtime();
}

void note(const std::string& line) {
  if (!global_options().quiet) std::cerr << line << std::endl;
}

void print_result(const std::string& text) {
  if (!global_options().quiet) std::cout << text << std::flush;
}

void warn(const std::string& line) { std::cerr << "warning: " << line << std::endl; }

namespace {

// The option's value as a number, or the reason it is not one.
std::string number_check(const std::string& text, double& value) {
  std::size_t used = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(value)) return fmt::format("expected a number, found '{}'", text);
  return {};
}

CLI::Validator numeric(std::string description, std::function<bool(double)> ok, std::string expected) {
  return CLI::Validator(
      [ok = std::move(ok), expected = std::move(expected)](std::string& text) -> std::string {
        double value = 0;
        if (auto error = number_check(text, value); !error.empty()) return error;
        if (!ok(value)) return fmt::format("expected {}, found {}", expected, text);
        return {};
      },
      std::move(description));
}

}  // namespace

CLI::Validator existing_file(const std::string& option) {
  return CLI::Validator(
      [option](std::string& path) -> std::string {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0)
          throw IoError(fmt::format("{}: cannot open '{}': {}", option, path, std::strerror(errno)));
        if (S_ISDIR(st.st_mode)) throw IoError(fmt::format("{}: '{}' is a folder, expected a file", option, path));
        return {};
      },
      "FILE");
}

CLI::Validator at_least(double low) {
  return numeric(fmt::format(">= {:g}", low), [low](double v) { return v >= low; }, fmt::format("a number >= {:g}", low));
}

CLI::Validator above(double low) {
  return numeric(fmt::format("> {:g}", low), [low](double v) { return v > low; }, fmt::format("a number > {:g}", low));
}

CLI::Validator between(double low, double high) {
  return numeric(fmt::format("{:g}-{:g}", low, high), [low, high](double v) { return v >= low && v <= high; },
                 fmt::format("a number from {:g} to {:g}", low, high));
}

void refuse_option(const CLI::App& command, const std::string& option, const std::string& reason) {
  if (command.count(option) > 0) throw UsageError(fmt::format("{}: {}", option, reason));
}

}  // namespace neurobolt::cli
