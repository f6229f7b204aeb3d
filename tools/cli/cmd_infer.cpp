// neurobolt infer: a checkpoint + EEG recordings -> predicted ROI time courses (BIDS derivative;
// rules and layout in include/neurobolt/infer.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>

#include "common.hpp"
#include "core/plural.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/infer.hpp"

namespace neurobolt::cli {

void register_infer(CLI::App& app) {
  struct Options {
    std::string model, shard;
    std::vector<std::string> inputs;
    InferOptions infer;
    bool allow_missing = false, clean = false;
    double read_block_mb = 64.0;
  };
  auto o = std::make_shared<Options>();
  auto& i = o->infer;
  auto* cmd = app.add_subcommand("infer", "Synthesise fMRI ROI time courses from EEG with a trained checkpoint");
  cmd->footer(
      "One row per fMRI volume: at each volume trigger when the recording has them, else on --tr. The checkpoint's own "
      "preprocessing is applied. Output: OUT_DIR/sub-*/[ses-*/]func/*_desc-neurobolt_timeseries.tsv + .json (a BIDS "
      "derivative). Runs already done with the same checkpoint are skipped unless --force; one failing recording does "
      "not stop the others, but makes the exit status non-zero.");
  cmd->add_option("MODEL", o->model, "Checkpoint (.h5 from neurobolt train or convert)")->required();
  cmd->add_option("INPUT", o->inputs, "BIDS roots, folders (searched for EEG files) or EEG files")->required();
  cmd->add_option("-o,--output", i.output_dir, "Output folder (a BIDS derivative)")->required();
  cmd->add_option("--tr", i.tr, "Repetition time (s): the grid of volumes when a recording has no triggers");
  cmd->add_option("--first-volume-offset", i.first_volume_offset, "With --tr and no triggers: onset of volume 0 (s)")
      ->capture_default_str();
  cmd->add_option("--stride", i.stride, "A denser grid: one prediction every this many seconds instead of per volume");
  cmd->add_option("--trigger", i.trigger_labels, "Volume trigger label(s) (default as prepare: R128, Scan Start, ...)");
  cmd->add_option("--dummy-scans", i.dummy_scans, "Drop this many leading triggers")->capture_default_str()->check(
      at_least(0));
  cmd->add_option("--missing-channels", i.missing_channels,
                  "A model channel the recording lacks or marks bad: interpolate, zero or error (default: as the "
                  "training data was prepared)")
      ->check(CLI::IsMember({"interpolate", "zero", "error"}));
  cmd->add_flag("--allow-missing-channels", o->allow_missing, "Same as --missing-channels zero");
  cmd->add_option("--atlas", i.atlas, "Label image: also write a 4-D NIfTI per run, each region carrying its ROI")
      ->check(existing_file("--atlas"));
  cmd->add_option("--atlas-labels", i.atlas_labels, "Names of the atlas labels (to match the model's ROIs)")
      ->check(existing_file("--atlas-labels"));
  cmd->add_option("--subjects", i.subjects, "BIDS inputs: only these subjects (e.g. 04,05)")->delimiter(',');
  cmd->add_option("--shard", o->shard, "i/N: this job does runs i, i+N, ... of the sorted list (cluster arrays)");
  cmd->add_option("--batch", i.batch, "Windows per model call")->capture_default_str()->check(between(1, 8192));
  cmd->add_option("--read-block-mb", o->read_block_mb,
                  "EEG read per block, MB at the file's rate: bounds memory whatever the recording's length")
      ->capture_default_str()
      ->check(between(0.001, 65536.0));
  cmd->add_flag("--clean", o->clean,
                "Raw scanner EEG: remove the MR gradient and BCG artefacts first (neurobolt clean's defaults; a run "
                "without a scanner is left as it is)");
  cmd->add_flag("--verify", i.verify,
                "Predict nothing: check that OUT_DIR holds exactly one complete prediction from this checkpoint for "
                "every run of the inputs (after the --shard jobs of a cluster array), listing what is missing or extra");
  add_standard_options(*cmd);

  cmd->callback([o, cmd] {
    if (cmd->count("--tr") == 0)
      refuse_option(*cmd, "--first-volume-offset", "places the grid that --tr defines, and --tr is not given");
    if (o->infer.atlas.empty())
      refuse_option(*cmd, "--atlas-labels", "names the labels of an --atlas image, and none is given");
    apply_runtime();
    auto& g = global_options();
    auto& i = o->infer;
    i.force = g.force;
    i.device = g.device;
    i.read_block_bytes = std::max<int64_t>(1, static_cast<int64_t>(o->read_block_mb * 1024.0 * 1024.0));
    if (o->clean) {
      i.clean = CleanOptions{};
      i.clean->threads = g.threads;
    }
    if (o->allow_missing) {
      if (!i.missing_channels.empty() && i.missing_channels != "zero") {
        throw UsageError("--allow-missing-channels contradicts --missing-channels " + i.missing_channels);
      }
      i.missing_channels = "zero";
    }
    if (!o->shard.empty()) {
      const auto slash = o->shard.find('/');
      try {
        if (slash == std::string::npos) throw std::invalid_argument("no slash");
        std::size_t used = 0;
        i.shard_index = std::stoll(o->shard.substr(0, slash), &used);
        if (used != slash) throw std::invalid_argument("index");
        i.shard_count = std::stoll(o->shard.substr(slash + 1), &used);
        if (used != o->shard.size() - slash - 1) throw std::invalid_argument("count");
      } catch (const std::exception&) {
        throw UsageError(fmt::format("--shard: expected i/N (e.g. 0/8), found '{}'", o->shard));
      }
    }
    const bool tty = ::isatty(STDERR_FILENO) == 1 && !g.quiet;
    auto last = std::chrono::steady_clock::now();
    InferCallbacks callbacks;
    callbacks.progress = [&](const InferProgress& p) {
      if (!tty) return;
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::milliseconds(200)) return;
      last = now;
      const int width = 20;
      const int filled = static_cast<int>(std::lround(width * p.fraction));
      std::cerr << fmt::format("\rrun {}/{} [{}{}] {} {}\033[K", p.run + 1, p.runs, std::string(filled, '#'),
                               std::string(width - filled, '.'), p.name, p.stage)
                << std::flush;
    };
    callbacks.run_done = [&](const InferRunReport& r) {
      if (tty) std::cerr << "\r\033[K";
      if (r.status == "missing") return;  // --verify: listed at the end
      if (r.status == "failed") {
        std::cerr << fmt::format("FAILED {}: {}", r.input, r.error) << std::endl;
        return;
      }
      std::string extra;
      if (!r.interpolated.empty()) extra += fmt::format(", interpolated: {}", fmt::join(r.interpolated, " "));
      if (!r.cleaning.empty()) extra += fmt::format(", cleaned ({})", r.cleaning);
      if (!r.zero_filled.empty()) extra += fmt::format(", zero-filled: {}", fmt::join(r.zero_filled, " "));
      if (r.status == "skipped") {
        note(fmt::format("{}: complete from this checkpoint, skipped", r.output));
      } else {
        note(fmt::format("{}: {} ({} grid), {}{}, {:.1f} s", r.output, count_of(r.rows, "row"), r.grid,
                         count_of(r.windows, "window"), extra,
                         r.seconds));
      }
      for (const auto& w : r.warnings) warn(w);
    };
    const auto summary = run_inference(o->model, o->inputs, i, callbacks);
    if (i.verify) {
      for (const auto& r : summary.reports)
        if (r.status == "missing") std::cout << fmt::format("missing: {}: {}\n", r.output, r.error);
      for (const auto& e : summary.extra) std::cout << fmt::format("extra: {}: no run of the inputs writes it\n", e);
      if (summary.missing > 0 || !summary.extra.empty()) {
        throw IoError(fmt::format("'{}': {} of {} missing, {} extra (listed above)", i.output_dir,
                                  count_of(summary.missing, "prediction"), summary.runs,
                                  summary.extra.size()));
      }
      print_result(fmt::format("'{}': all {} complete from this checkpoint, each exactly once\n", i.output_dir,
                               count_of(summary.runs, "run")));
      return;
    }
    print_result(fmt::format("{}: {} done, {} skipped, {} failed; {} in {:.1f} s ({:.1f} windows/s, {:.1f} s in the model)\n",
                       count_of(summary.runs, "run"), summary.done, summary.skipped, summary.failed,
                       count_of(summary.windows, "window"), summary.seconds, summary.windows_per_s(),
                       summary.predict_seconds));
    // Failures are listed whatever --quiet says (each was reported on stderr as it happened too).
    for (const auto& r : summary.reports)
      if (r.status == "failed") std::cout << fmt::format("failed: {}: {}\n", r.input, r.error);
    if (summary.failed > 0) {
      throw Error(static_cast<ErrorKind>(summary.first_failure_exit_code),
                  fmt::format("{} of {} runs failed (listed above)", summary.failed, summary.runs));
    }
  });
}

}  // namespace neurobolt::cli
