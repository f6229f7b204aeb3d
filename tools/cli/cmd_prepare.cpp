// neurobolt prepare: a BIDS dataset (or explicit EEG + target files) -> an HDF5 dataset of EEG
// windows paired with fMRI volumes, split for training (see include/neurobolt/dataset.hpp).
#include <fmt/format.h>

#include <fmt/ranges.h>

#include <iostream>
#include <set>

#include "common.hpp"
#include "core/plural.hpp"
#include "neurobolt/config.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/montage.hpp"
#include "prepare_options.hpp"

namespace neurobolt::cli {

void register_prepare(CLI::App& app) {
  struct Options {
    std::string bids_root, output, config, eeg, targets;
    double tr = 0;
    DataOptions data;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("prepare", "Pair EEG windows with fMRI volumes into an HDF5 training dataset");
  cmd->footer(
      "Volume k pairs with the EEG window [t_k - 16 s, t_k) before its onset t_k. Onsets come from trigger markers "
      "(a missing trigger is interpolated with a warning; a count that differs from the target's rows is an error) "
      "or, with --first-volume-offset, from offset + k * TR. Re-running with the same inputs and options does "
      "nothing; --force redoes it.");
  cmd->add_option("BIDS_ROOT", o->bids_root, "BIDS dataset with EEG runs and ROI time series (derivatives)");
  cmd->add_option("-o,--output", o->output, "HDF5 dataset to write")->required();
  cmd->add_option("--config", o->config,
                  "Model config (JSON file or built-in name): its channels, rate and window; default: the EEG "
                  "channels every run has, 200 Hz, 3200-sample (16 s) windows");
  cmd->add_option("--eeg", o->eeg, "Explicit mode: one EEG file (.edf .bdf .vhdr .set) instead of BIDS_ROOT")
      ->check(existing_file("--eeg"));
  cmd->add_option("--targets", o->targets, "Explicit mode: its ROI time series TSV")->check(existing_file("--targets"));
  cmd->add_option("--tr", o->tr, "Explicit mode: repetition time in seconds")->check(above(0));
  add_data_options(*cmd, o->data, "--seed");
  add_standard_options(*cmd);

  cmd->callback([o, cmd] {
    apply_cpu_runtime(*cmd);
    const bool explicit_mode = !o->eeg.empty();
    if (explicit_mode == !o->bids_root.empty()) throw UsageError("prepare: give one of BIDS_ROOT and --eeg FILE");
    if (explicit_mode && (o->targets.empty() || cmd->count("--tr") == 0)) {
      throw UsageError("prepare: --eeg needs --targets FILE.tsv and --tr SECONDS");
    }
    if (!explicit_mode && (!o->targets.empty() || cmd->count("--tr") > 0)) {
      throw UsageError("prepare: --targets and --tr go with --eeg (BIDS datasets name their own)");
    }
    if (explicit_mode) {
      for (const char* option : {"--derivatives", "--target-entity", "--atlas", "--atlas-labels"})
        refuse_option(*cmd, option, "chooses targets in a BIDS root; with --eeg the targets are --targets");
      if (o->data.split != "intra-run") {
        throw UsageError(fmt::format("--split {}: splits by subject, and --eeg gives one run (use intra-run, or a "
                                     "BIDS root)",
                                     o->data.split));
      }
    }
    PrepareOptions options = make_prepare_options(o->data, *cmd);
    if (!o->config.empty()) {
      const ModelConfig config = load_config(o->config);
      if (!options.channels.empty()) {
        // A dataset labelled for a model must carry that model's channels (in any order).
        auto keys = [](const std::vector<std::string>& names) {
          std::set<std::string> out;
          for (const auto& n : names) out.insert(channel_key(n));
          return out;
        };
        if (keys(options.channels) != keys(config.channels)) {
          throw UsageError(fmt::format(
              "--channels {}: the dataset is prepared for '{}', whose {} channels are {} (give its channels, or "
              "drop --config to prepare these without a model)",
              fmt::join(options.channels, ","), config.name, config.channels.size(), fmt::join(config.channels, ",")));
        }
      } else {
        options.channels = config.channels;
      }
      options.config_name = config.name;
      options.sample_rate = config.sample_rate;
      options.window_samples = config.window_samples;
    }
    options.force = global_options().force;
    ExplicitRun run;
    run.eeg_path = o->eeg;
    run.targets_path = o->targets;
    run.repetition_time = o->tr;
    const PrepareResult result = prepare_with_progress(o->bids_root, explicit_mode ? &run : nullptr, o->output, options);
    if (result.up_to_date) {
      print_result(fmt::format("{} is up to date (same inputs and options; --force redoes it)\n", o->output));
      return;
    }
    int64_t warnings = static_cast<int64_t>(result.warnings.size() + result.skipped_runs.size()), skipped = 0;
    for (const auto& r : result.runs) {
      warnings += static_cast<int64_t>(r.warnings.size());
      skipped += r.skipped();
    }
    std::string gaps;
    if (result.excluded_windows > 0) gaps = fmt::format("; {} in intra-run gaps", result.excluded_windows);
    const double rate = result.seconds > 0 ? static_cast<double>(result.num_windows) / result.seconds : 0.0;
    print_result(fmt::format("wrote {}: {} from {} (train {}, val {}, test {}{}), {} skipped, {}, {:.1f} s "
                            "({:.0f} windows/s)\n",
                            o->output, count_of(result.num_windows, "window"),
                            count_of(result.runs.size(), "run"), result.windows_per_split[0],
                            result.windows_per_split[1], result.windows_per_split[2], gaps,
                            count_of(skipped, "volume"), count_of(warnings, "warning"),
                            result.seconds, rate));
  });
}

}  // namespace neurobolt::cli
