#pragma once
// What every subcommand shares: the standard options and how a command reports.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace neurobolt::cli {

struct GlobalOptions {
  int threads = 0;             // 0 = all cores
  std::string device = "cpu";
  std::string precision = "fp32";
  bool quiet = false;
  bool force = false;
};

GlobalOptions& global_options();

// Adds --threads, --device, --precision, --quiet, --force to a subcommand (defined once, here).
void add_standard_options(CLI::App& command);

// Applies --threads/--device/--precision; call first in every command that computes.
void apply_runtime();

// For commands that run on the CPU only (info, convert, prepare, simulate): refuses --device and
// --precision instead of ignoring them, then applies --threads.
void apply_cpu_runtime(const CLI::App& command);

// What a command prints, on every command alike:
//   stdout  the command's product when it is text (info, bench figures, eval tables, --dump-config),
//           and for commands that write files a short summary of what was written (print_result());
//   stderr  progress and notes (note()), warnings (warn()), errors.
// --quiet silences progress, notes and the summary of written files; never warnings, errors or a
// command's text product.
void note(const std::string& line);
void print_result(const std::string& text);  // stdout, unless --quiet
void warn(const std::string& line);    // "warning: ..." on stderr, always

// Option checks with one-line messages (CLI11's own print ranges to 300 digits). A missing input
// file is an I/O error (exit 3) naming the option, as for every other file the library opens.
CLI::Validator existing_file(const std::string& option);
CLI::Validator at_least(double low);                  // low <= x
CLI::Validator above(double low);                     // low < x
CLI::Validator between(double low, double high);      // low <= x <= high

// Throws a usage error when `option` was given although `reason` says it cannot apply.
void refuse_option(const CLI::App& command, const std::string& option, const std::string& reason);

// Subcommand registration, one per file.
void register_info(CLI::App& app);
void register_convert(CLI::App& app);
void register_bench(CLI::App& app);
void register_prepare(CLI::App& app);
void register_simulate(CLI::App& app);
void register_train(CLI::App& app);
void register_infer(CLI::App& app);
void register_eval(CLI::App& app);
void register_launch(CLI::App& app);
void register_clean(CLI::App& app);
void register_stream(CLI::App& app);

}  // namespace neurobolt::cli
