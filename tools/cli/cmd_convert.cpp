// neurobolt convert: import a reference NeuroBOLT or LaBraM .pth into a neurobolt checkpoint.
#include <fmt/format.h>

#include <iostream>

#include "common.hpp"
#include "core/plural.hpp"
#include "neurobolt/checkpoint.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::cli {

void register_convert(CLI::App& app) {
  struct Options {
    std::string input, output, config, from = "neurobolt";
    std::vector<std::string> rois;
    bool partial = false;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("convert", "Import a PyTorch .pth (reference NeuroBOLT or LaBraM) as a neurobolt checkpoint");
  cmd->add_option("INPUT", o->input, "PyTorch file: a state dict, an OrderedDict state dict, or a training checkpoint "
                                     "with the weights under 'model'/'module'")
      ->required();
  cmd->add_option("OUTPUT", o->output, "neurobolt checkpoint to write (HDF5, e.g. model.h5)")->required();
  cmd->add_option("--from", o->from, "What INPUT is: neurobolt (the reference model) or labram (LaBraM pre-training "
                                     "weights for the temporal branch; the rest is freshly initialised)")
      ->capture_default_str()
      ->check(CLI::IsMember({"neurobolt", "labram"}));
  cmd->add_option("--config", o->config, "Model config (JSON file or built-in name); default neurobolt-base with the "
                                         "ROI count taken from the checkpoint's head");
  cmd->add_option("--rois", o->rois, "ROI names, in head output order (comma-separated)")->delimiter(',');
  cmd->add_flag("--partial", o->partial, "Load the weights that match and initialise the rest instead of failing");
  cmd->add_option("--seed", o->seed, "Seed for weights the file does not provide")->capture_default_str();
  add_standard_options(*cmd);
  cmd->callback([o, cmd] {
    apply_cpu_runtime(*cmd);
    ImportOptions options;
    options.source = o->from == "labram" ? ImportSource::labram : ImportSource::neurobolt;
    if (!o->config.empty()) options.config = load_config(o->config);
    options.rois = o->rois;
    options.partial = o->partial;
    options.seed = o->seed;
    auto result = convert_pth(o->input, o->output, options, global_options().force);

    note(fmt::format("read {} tensors from '{}'{}", result.report.loaded.size() + result.report.unexpected.size() +
                                                        result.report.mismatched.size() + result.dropped.size(),
                     o->input, result.found_under.empty() ? "" : " (state dict under '" + result.found_under + "')"));
    for (const auto& s : result.skipped) note("  skipped non-tensor entry " + s);
    if (!result.dropped.empty()) {
      note(fmt::format("  dropped {} the model has no place for: {} (every name: neurobolt info {} --json)",
                       count_of(result.dropped.size(), "tensor"), summarize_names(result.dropped),
                       o->output));
    }
    if (!result.report.complete()) note(result.report.describe());
    for (const auto& n : result.notes) note("  " + n);
    print_result(fmt::format("wrote {} ({} loaded, {})\n", o->output,
                            count_of(result.report.loaded.size(), "weight"),
                            count_of(result.model->config().num_rois(), "ROI")));
  });
}

}  // namespace neurobolt::cli
