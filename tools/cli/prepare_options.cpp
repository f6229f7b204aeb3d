// Options shared by prepare and train, and prepare with its progress display.
#include "prepare_options.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cmath>
#include <iostream>

#include "common.hpp"
#include "core/plural.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/preprocess.hpp"

namespace neurobolt::cli {
namespace {

// A one-line bar on stderr, redrawn in place; only on a terminal.
class ProgressBar {
 public:
  ProgressBar() : enabled_(!global_options().quiet && ::isatty(STDERR_FILENO) == 1) {}
  void draw(const PrepareProgress& p) {
    if (!enabled_) return;
    const int width = 30;
    const int filled = static_cast<int>(std::lround(p.fraction * width));
    std::cerr << fmt::format("\r[{}{}] {:3.0f}% run {}/{} {}: {}\033[K", std::string(filled, '#'),
                             std::string(width - filled, ' '), 100 * p.fraction, p.run + 1, p.num_runs, p.run_name,
                             p.stage)
              << std::flush;
  }
  void clear() {
    if (enabled_) std::cerr << "\r\033[K" << std::flush;
  }

 private:
  bool enabled_;
};

}  // namespace

void add_data_options(CLI::App& cmd, DataOptions& o, const std::string& seed_flag) {
  o.seed_flag = seed_flag;
  // Every option added below joins the group (and given_data_options finds it by that group).
  cmd.option_defaults()->group(kDataOptionGroup);
  cmd.add_option("--derivatives", o.derivatives,
                 "Derivatives folder(s) with *_timeseries.tsv targets (relative to BIDS_ROOT); default: every "
                 "folder of BIDS_ROOT/derivatives that holds sub-* folders");
  cmd.add_option("--target-entity", o.entities, "Entity a target must carry, KEY=VALUE (e.g. atlas=Schaefer100)");
  cmd.add_option("--atlas", o.atlas, "Atlas image to extract targets from 4-D BOLD images")->check(existing_file("--atlas"));
  cmd.add_option("--atlas-labels", o.atlas_labels, "ROI names of the atlas")->check(existing_file("--atlas-labels"));
  cmd.add_option("--channels", o.channels,
                 "EEG channels to keep instead of the config's or the data's, comma-separated")
      ->delimiter(',');
  cmd.add_option("--rois", o.rois, "ROIs to keep, comma-separated (default: all of the first run's)")->delimiter(',');
  cmd.add_option("--trigger", o.triggers,
                 "Volume trigger label(s), tried in order; matched against the marker's label or description, "
                 "ignoring case (default: R128, Scan Start, R149, 'T  1', TR, volume)");
  cmd.add_option("--first-volume-offset", o.first_volume_offset,
                 "No triggers: volume k starts at this many seconds + k * TR after the first EEG sample");
  cmd.add_option("--dummy-scans", o.dummy_scans, "Drop this many leading triggers (volumes not in the targets)")
      ->capture_default_str()
      ->check(at_least(0));
  cmd.add_option("--split", o.split, "How windows are split into train/val/test")
      ->capture_default_str()
      ->check(CLI::IsMember({"intra-run", "cross-subject", "kfold"}));
  cmd.add_option("--val-subjects", o.val_subjects, "cross-subject: validation subjects (labels without sub-)")
      ->delimiter(',');
  cmd.add_option("--test-subjects", o.test_subjects, "cross-subject: test subjects")->delimiter(',');
  cmd.add_option("--val-fraction", o.val_fraction, "cross-subject without lists: fraction of subjects for validation")
      ->capture_default_str()
      ->check(between(0.0, 1.0));
  cmd.add_option("--test-fraction", o.test_fraction, "cross-subject without lists: fraction of subjects for test")
      ->capture_default_str()
      ->check(between(0.0, 1.0));
  cmd.add_option("--folds", o.folds, "kfold: number of folds (by subject)")->capture_default_str()->check(between(2, 100));
  cmd.add_option(seed_flag, o.seed, "Seed of the subject shuffle (cross-subject fractions, kfold)")->capture_default_str();
  cmd.add_option("--highpass", o.highpass, "EEG high-pass in Hz (Butterworth order 4, zero-phase); default off");
  cmd.add_option("--notch", o.notch, "EEG notch in Hz (Q 30, zero-phase), e.g. 50 or 60; default off");
  cmd.add_option("--lowpass-fmri", o.lowpass, "fMRI low-pass in Hz (Butterworth order 5, zero-phase), or none")
      ->capture_default_str();
  cmd.add_flag("--no-demean", o.no_demean, "Keep each window's channel means (the reference removes them)");
  cmd.add_flag("--clean", o.clean,
               "Raw scanner EEG: remove the MR gradient and BCG artefacts first (neurobolt clean's defaults; a run "
               "without a scanner is left as it is)");
  cmd.add_option("--missing-channels", o.missing,
                 "A required channel a run lacks or marks bad: interpolate (spherical splines from the run's good "
                 "EEG channels), zero (fill with zeros) or error")
      ->capture_default_str()
      ->check(CLI::IsMember({"interpolate", "zero", "error"}));
  cmd.add_flag("--allow-missing-channels", o.allow_missing, "The same as --missing-channels zero");
  cmd.add_option("--gzip", o.gzip, "gzip level of the windows: 1 is fast and compresses EEG floats nearly as "
                                     "well as 9; 0 (none) reads fastest, for GPU training")
      ->capture_default_str()
      ->check(between(0, 9));
  cmd.add_option("--chunk-windows", o.chunk_windows, "Windows per HDF5 chunk")->capture_default_str()->check(between(1, 1024));
  cmd.option_defaults()->group("Options");  // CLI11's default group, for the options added after these
}

std::vector<std::string> given_data_options(const CLI::App& cmd) {
  std::vector<std::string> given;
  for (const auto* option : cmd.get_options([](const CLI::Option* op) { return op->get_group() == kDataOptionGroup; }))
    if (option->count() > 0) given.push_back(option->get_name());
  return given;
}

PrepareOptions make_prepare_options(const DataOptions& o, const CLI::App& cmd) {
  if (o.allow_missing && cmd.count("--missing-channels") > 0 && o.missing != "zero") {
    throw UsageError(fmt::format("prepare: --allow-missing-channels means --missing-channels zero, which "
                                 "contradicts --missing-channels {}",
                                 o.missing));
  }
  // Options that only one split uses are refused under the others, rather than ignored.
  const std::string split_note = fmt::format("applies to --split {{}} only (this is --split {})", o.split);
  if (o.split != "cross-subject") {
    for (const char* option : {"--val-subjects", "--test-subjects", "--val-fraction", "--test-fraction"})
      refuse_option(cmd, option, fmt::format(fmt::runtime(split_note), "cross-subject"));
  }
  if (o.split != "kfold") refuse_option(cmd, "--folds", fmt::format(fmt::runtime(split_note), "kfold"));
  if (o.split == "intra-run") {
    refuse_option(cmd, o.seed_flag, "shuffles subjects for --split cross-subject or kfold only (this is --split intra-run)");
  }
  if (o.split == "cross-subject" && (!o.val_subjects.empty() || !o.test_subjects.empty())) {
    for (const char* option : {"--val-fraction", "--test-fraction"})
      refuse_option(cmd, option, "cannot be combined with --val-subjects/--test-subjects (the lists choose the subjects)");
    refuse_option(cmd, o.seed_flag, "shuffles subjects for --val-fraction/--test-fraction only (the lists choose them)");
  }
  if (o.atlas.empty()) refuse_option(cmd, "--atlas-labels", "names the labels of an --atlas image, and none is given");
  PrepareOptions options;
  options.channels = o.channels;
  options.missing_channels = parse_missing_channel_policy(o.allow_missing ? "zero" : o.missing);
  if (cmd.count("--highpass")) options.eeg_highpass_hz = o.highpass;
  if (cmd.count("--notch")) options.notch_hz = o.notch;
  options.demean_windows = !o.no_demean;
  if (o.clean) {
    options.clean = CleanOptions{};
    options.clean->threads = global_options().threads;
  }
  if (o.lowpass == "none") {
    options.fmri_lowpass_hz.reset();
  } else {
    try {
      std::size_t used = 0;
      options.fmri_lowpass_hz = std::stod(o.lowpass, &used);
      if (used != o.lowpass.size()) throw std::invalid_argument("trailing text");
    } catch (const std::exception&) {
      throw UsageError(fmt::format("--lowpass-fmri: expected a frequency in Hz or 'none', found '{}'", o.lowpass));
    }
  }
  options.rois = o.rois;
  options.trigger_labels = o.triggers;
  if (cmd.count("--first-volume-offset")) options.first_volume_offset = o.first_volume_offset;
  options.onsets.dummy_scans = o.dummy_scans;
  options.split.mode = parse_split_mode(o.split);
  options.split.val_subjects = o.val_subjects;
  options.split.test_subjects = o.test_subjects;
  options.split.val_subject_fraction = o.val_fraction;
  options.split.test_subject_fraction = o.test_fraction;
  options.split.folds = o.folds;
  options.split.seed = o.seed;
  options.bids.derivatives = o.derivatives;
  for (const auto& e : o.entities) {
    const auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError(fmt::format("--target-entity: expected KEY=VALUE, found '{}'", e));
    }
    options.bids.target_entities[e.substr(0, eq)] = e.substr(eq + 1);
  }
  options.bids.atlas = o.atlas;
  options.bids.atlas_labels = o.atlas_labels;
  options.gzip_level = o.gzip;
  options.chunk_windows = o.chunk_windows;
  return options;
}

PrepareResult prepare_with_progress(const std::string& bids_root, const ExplicitRun* explicit_run,
                                    const std::string& output, const PrepareOptions& options) {
  ProgressBar bar;
  PrepareCallbacks callbacks;
  const double window_seconds = static_cast<double>(options.window_samples) / options.sample_rate;
  callbacks.progress = [&bar](const PrepareProgress& p) { bar.draw(p); };
  callbacks.run_done = [&bar, window_seconds](const RunReport& r) {
    bar.clear();
    note(r.summary(window_seconds));
  };
  const bool from_data = options.channels.empty();
  note(fmt::format("preparing {} -> {} ({} at {} Hz, {:g} s windows, split {})",
                   explicit_run ? explicit_run->eeg_path : bids_root, output,
                   from_data ? std::string("the EEG channels every run has")
                             : count_of(static_cast<int64_t>(options.channels.size()), "channel"),
                   options.sample_rate, window_seconds, to_string(options.split.mode)));
  PrepareResult result;
  try {
    if (explicit_run) {
      result = prepare_files({*explicit_run}, output, options, callbacks);
    } else {
      result = prepare_bids(bids_root, output, options, callbacks);
    }
  } catch (...) {
    bar.clear();
    throw;
  }
  bar.clear();
  if (result.up_to_date) return result;
  for (const auto& s : result.skipped_runs) warn("skipped " + s);
  if (from_data) {
    const auto channels = DatasetReader(result.output).channel_names();
    note(fmt::format("{} from the data: {}", count_of(static_cast<int64_t>(channels.size()), "channel"),
                     fmt::join(channels, " ")));
  }
  for (const auto& r : result.runs)
    for (const auto& w : r.warnings) warn(w);
  for (const auto& w : result.warnings) warn(w);
  return result;
}

}  // namespace neurobolt::cli
