#pragma once
// The BIDS-to-dataset options that `prepare` and `train` (when given a BIDS root) share, defined
// once, and the prepare run with its progress display.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "neurobolt/dataset.hpp"

namespace neurobolt::cli {

struct DataOptions {
  std::string split = "intra-run", lowpass = "0.15", missing = "interpolate";
  std::vector<std::string> derivatives, channels, triggers, val_subjects, test_subjects, rois, entities;
  std::string atlas, atlas_labels;
  double highpass = 0, notch = 0, first_volume_offset = 0, val_fraction = 0.1, test_fraction = 0.1;
  int64_t folds = 5, dummy_scans = 0, chunk_windows = 1;
  uint64_t seed = 0;
  int gzip = 1;
  bool allow_missing = false, no_demean = false, clean = false;
  std::string seed_flag = "--seed";
};

// The option group the data options are registered under (shown as such in --help).
inline constexpr const char* kDataOptionGroup = "Preparing the data";

// The data options given on the command line, by name (e.g. to refuse them where they cannot apply).
std::vector<std::string> given_data_options(const CLI::App& cmd);

// Registers the options; the subject-shuffle seed goes under `seed_flag` ("--seed" in prepare,
// "--split-seed" in train, whose --seed is the training seed).
void add_data_options(CLI::App& cmd, DataOptions& o, const std::string& seed_flag);

// PrepareOptions from the parsed options (channels: o.channels; rate and window left at their
// defaults for the caller to set). UsageError for contradicting or malformed values, and for an
// option the chosen split or mode cannot use (e.g. --val-subjects without --split cross-subject).
PrepareOptions make_prepare_options(const DataOptions& o, const CLI::App& cmd);

// Runs prepare_bids (or prepare_files for `explicit_run`) with a progress bar on a terminal and one
// note per run; notes the channels taken from the data, skipped runs and warnings.
PrepareResult prepare_with_progress(const std::string& bids_root, const ExplicitRun* explicit_run,
                                    const std::string& output, const PrepareOptions& options);

}  // namespace neurobolt::cli
