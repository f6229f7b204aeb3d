// neurobolt: the command-line tool. Each subcommand lives in its own cmd_*.cpp file, parses its
// options and calls one library function; errors map to documented exit codes.
#include <iostream>

#include "common.hpp"
#include "process_setup.hpp"
#include <c10/util/Exception.h>

#include "neurobolt/error.hpp"

int main(int argc, char** argv) {
  neurobolt::cli::ensure_thread_environment(argv);
  CLI::App app{"neurobolt: EEG-to-fMRI synthesis with the NeuroBOLT model (Li et al., NeurIPS 2024)", "neurobolt"};
  app.set_version_flag("--version", std::string("neurobolt ") + NEUROBOLT_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 success, 1 internal error, 2 usage error, 3 I/O error, 4 file format error,\n"
      "5 configuration/mismatch error, 6 device error.  Run 'neurobolt COMMAND --help' for details.");
  neurobolt::cli::register_info(app);
  neurobolt::cli::register_convert(app);
  neurobolt::cli::register_bench(app);
  neurobolt::cli::register_prepare(app);
  neurobolt::cli::register_simulate(app);
  neurobolt::cli::register_train(app);
  neurobolt::cli::register_infer(app);
  neurobolt::cli::register_eval(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; every real parse error is the documented usage status 2.
    return app.exit(e) == 0 ? 0 : static_cast<int>(neurobolt::ErrorKind::usage);
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
