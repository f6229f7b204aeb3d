// neurobolt info: describe a checkpoint, config or reference .pth.
#include <iostream>

#include "common.hpp"
#include "neurobolt/channels.hpp"
#include "neurobolt/checkpoint.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::cli {

void register_info(CLI::App& app) {
  struct Options {
    std::string target;
    bool json = false;
    bool channels = false;
  };
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("info", "Print a model's config and parameter count per branch");
  cmd->add_option("MODEL", options->target,
                  "A neurobolt checkpoint (.h5), a config (.json), a built-in config name "
                  "(neurobolt-base, neurobolt-tiny) or a reference .pth");
  cmd->add_flag("--json", options->json, "Print the config as JSON only");
  cmd->add_flag("--channels", options->channels, "List the electrode names the model can take and exit");
  add_standard_options(*cmd);
  cmd->callback([options] {
    apply_runtime();
    if (options->channels) {
      for (const auto& name : position_vocabulary()) std::cout << name << "\n";
      return;
    }
    if (options->target.empty()) throw UsageError("info: MODEL is required (or --channels)");
    auto summary = summarize_model(options->target);
    std::cout << (options->json ? summary.config.to_json() + "\n" : format_summary(summary));
  });
}

}  // namespace neurobolt::cli
