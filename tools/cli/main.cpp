// neurobolt: the command-line tool. Each subcommand lives in its own cmd_*.cpp file, parses its
// options and calls one library function; errors map to documented exit codes.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "common.hpp"
#include "process_setup.hpp"
#include <c10/util/Exception.h>

#include "neurobolt/error.hpp"

int main(int argc, char** argv) {
  neurobolt::cli::ensure_thread_environment(argv);
  neurobolt::cli::report_file_size_limit_as_error();
  CLI::App app{"neurobolt: EEG-to-fMRI synthesis with the NeuroBOLT model (Li et al., NeurIPS 2024)", "neurobolt"};
  app.set_version_flag("--version", std::string("neurobolt ") + NEUROBOLT_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 success, 1 internal error, 2 usage error, 3 I/O error, 4 file format error,\n"
      "5 configuration/mismatch error, 6 device error.  Run 'neurobolt COMMAND --help' for details.");
  neurobolt::cli::register_info(app);
  neurobolt::cli::register_convert(app);
  neurobolt::cli::register_bench(app);
  neurobolt::cli::register_clean(app);
  neurobolt::cli::register_prepare(app);
  neurobolt::cli::register_simulate(app);
  neurobolt::cli::register_train(app);
  neurobolt::cli::register_infer(app);
  neurobolt::cli::register_stream(app);
  neurobolt::cli::register_eval(app);
  neurobolt::cli::register_launch(app);

  std::vector<std::string> commands;
  for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) commands.push_back(sub->get_name());
  auto usage_error = [](const std::string& message) {
    std::cerr << "neurobolt: usage error: " << message << std::endl;
    return static_cast<int>(neurobolt::ErrorKind::usage);
  };
  try {
    // The first word names the command; anything else is refused before CLI11 could take it for
    // an extra argument or print the top-level help.
    if (argc > 1 && argv[1][0] != '-' &&
        std::find(commands.begin(), commands.end(), std::string(argv[1])) == commands.end()) {
      return usage_error(fmt::format("unknown command '{}' (commands: {})", argv[1], fmt::join(commands, ", ")));
    }
    app.parse(argc, argv);
  } catch (const CLI::RequiredError& e) {
    if (argc <= 1) return usage_error(fmt::format("a command is required: one of {} (neurobolt --help)",
                                                  fmt::join(commands, ", ")));
    return usage_error(e.what());
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; every real parse error is the documented usage status 2, one line.
    if (e.get_exit_code() == 0) return app.exit(e);
    return usage_error(e.what());
  } catch (const neurobolt::Error& e) {
    std::cerr << "neurobolt: " << neurobolt::to_string(e.kind()) << ": " << e.what() << std::endl;
    return e.exit_code();
  } catch (const c10::Error& e) {
    std::cerr << "neurobolt: torch error: " << e.what_without_backtrace() << std::endl;
    return static_cast<int>(neurobolt::ErrorKind::internal);
  } catch (const std::exception& e) {
    std::cerr << "neurobolt: internal error: " << e.what() << std::endl;
    return static_cast<int>(neurobolt::ErrorKind::internal);
  }
  return 0;
}
