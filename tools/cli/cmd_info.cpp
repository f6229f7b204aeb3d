// neurobolt info: describe an EEG recording, a BIDS dataset, a prepared dataset or a model.
#include <fmt/format.h>

#include <iostream>

#include "common.hpp"
#include "neurobolt/channels.hpp"
#include "neurobolt/checkpoint.hpp"
#include "neurobolt/describe.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/predictor.hpp"
#include "neurobolt/ridge.hpp"

namespace neurobolt::cli {

void register_info(CLI::App& app) {
  struct Options {
    std::string target;
    bool json = false;
    bool channels = false;
    std::vector<std::string> derivatives, entities;
    std::string atlas, atlas_labels;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("info", "Describe an EEG recording, a BIDS dataset, a prepared dataset or a model");
  cmd->footer(
      "PATH is an EEG recording (.edf .bdf .vhdr .set: header, channels, annotations, volume triggers and the TR "
      "they imply; the samples are not read), a BIDS dataset folder (runs, EEG headers, fMRI targets, what "
      "indexing logged), a prepared dataset (.h5 from 'neurobolt prepare'), or a model: a checkpoint (.h5), a "
      "config (.json), a built-in config name (neurobolt-base, neurobolt-tiny) or a reference .pth.");
  cmd->add_option("PATH", o->target, "What to describe (see below)");
  cmd->add_flag("--json", o->json, "Print one JSON object whose \"kind\" is recording, bids, dataset or model");
  cmd->add_flag("--channels", o->channels, "List the electrode names the model can take and exit");
  cmd->add_option("--derivatives", o->derivatives,
                  "BIDS: derivatives folder(s) with *_timeseries.tsv targets (relative to PATH); default: every "
                  "folder of PATH/derivatives that holds sub-* folders");
  cmd->add_option("--target-entity", o->entities, "BIDS: entity a target must carry, KEY=VALUE");
  cmd->add_option("--atlas", o->atlas, "BIDS: atlas image to extract targets from 4-D BOLD images")
      ->check(existing_file("--atlas"));
  cmd->add_option("--atlas-labels", o->atlas_labels, "BIDS: ROI names of the atlas")->check(existing_file("--atlas-labels"));
  add_standard_options(*cmd);
  cmd->callback([o, cmd] {
    apply_cpu_runtime(*cmd);
    if (o->channels) {
      for (const auto& name : position_vocabulary()) std::cout << name << "\n";
      return;
    }
    if (o->target.empty()) throw UsageError("info: PATH is required (or --channels)");
    const InfoKind kind = info_kind(o->target);
    for (const char* bids_only : {"--derivatives", "--target-entity", "--atlas", "--atlas-labels"}) {
      if (kind != InfoKind::bids && cmd->count(bids_only) > 0)
        throw UsageError(fmt::format("info: {} applies to BIDS dataset folders; '{}' is a {}", bids_only, o->target,
                                     to_string(kind)));
    }
    switch (kind) {
      case InfoKind::recording: {
        const auto s = describe_recording(o->target);
        std::cout << (o->json ? recording_json(s) + "\n" : format_recording(s));
        break;
      }
      case InfoKind::bids: {
        BidsOptions options;
        options.derivatives = o->derivatives;
        for (const auto& e : o->entities) {
          const auto eq = e.find('=');
          if (eq == std::string::npos || eq == 0)
            throw UsageError(fmt::format("--target-entity: expected KEY=VALUE, found '{}'", e));
          options.target_entities[e.substr(0, eq)] = e.substr(eq + 1);
        }
        options.atlas = o->atlas;
        options.atlas_labels = o->atlas_labels;
        const auto s = describe_bids(o->target, options);
        std::cout << (o->json ? bids_json(s) + "\n" : format_bids(s));
        break;
      }
      case InfoKind::dataset: {
        const auto s = describe_dataset(o->target);
        std::cout << (o->json ? dataset_json(s) + "\n" : format_dataset(s));
        break;
      }
      case InfoKind::model: {
        if (is_checkpoint_file(o->target) && checkpoint_arch(o->target) == "ridge") {
          const auto ridge = read_ridge_checkpoint(o->target);
          std::cout << (o->json ? ridge_summary_json(o->target, ridge) + "\n" : format_ridge_summary(o->target, ridge));
          break;
        }
        const auto s = summarize_model(o->target);
        const std::array<int64_t, 3> counts{s.parameters.temporal, s.parameters.spectral, s.parameters.head};
        std::cout << (o->json ? model_json(s.source, s.config, counts, s.metadata_json) + "\n" : format_summary(s));
        break;
      }
    }
  });
}

}  // namespace neurobolt::cli
