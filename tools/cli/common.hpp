#pragma once
// What every subcommand shares: the standard options and how a command reports.
#include <CLI/CLI.hpp>

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

// Progress and notes go to stderr (data goes to stdout), silenced by --quiet.
void note(const std::string& line);

// Subcommand registration, one per file.
void register_info(CLI::App& app);
void register_convert(CLI::App& app);
void register_bench(CLI::App& app);
void register_prepare(CLI::App& app);
void register_simulate(CLI::App& app);
void register_train(CLI::App& app);
void register_infer(CLI::App& app);
void register_eval(CLI::App& app);

}  // namespace neurobolt::cli
