#pragma once
// Batch inference: fMRI ROI time courses synthesised from EEG recordings by a trained checkpoint,
// written as a BIDS derivative. Plain C++ (the model runs behind neurobolt::Predictor).
//
// Per recording:
//  * the checkpoint's own preprocessing (metadata "dataset.parameters" of the training data:
//    channel mapping, resampling to the model's rate, high-pass and notch, per-window demeaning;
//    see preprocess.hpp); a model channel the recording lacks (or has marked bad in BIDS
//    _channels.tsv) is interpolated, zero-filled or an error, by InferOptions::missing_channels
//    (default: the policy the training data was prepared with);
//  * one output row per fMRI volume: at each volume trigger (labels as `prepare`; duplicates
//    dropped and isolated missing triggers interpolated as `prepare` does, the TR taken from
//    `tr` or else the median trigger interval) when the recording has triggers; else, with `tr`,
//    at first_volume_offset + k * TR for every k whose onset lies inside the recording. Row k pairs
//    with the EEG window that ends at its onset (the window_seconds before it), as in training; a
//    row whose window does not lie inside the recording is n/a. With `stride`, rows are instead
//    every `stride` seconds from the end of the first full window (a denser grid, not aligned to
//    volumes);
//  * windows are cut and predicted in batches, so memory is the preprocessed recording at the
//    model's rate (a 2-hour 26-channel recording at 200 Hz: 150 MB) plus one channel group at the
//    file's rate while reading (EegPreprocessOptions::max_read_bytes) plus one batch.
//
// Output folder (a BIDS derivative):
//   dataset_description.json (DatasetType "derivative", GeneratedBy neurobolt infer)
//   sub-XX/[ses-YY/]func/sub-XX_[ses-YY_]task-T_[acq-A_][run-N_]desc-neurobolt_timeseries.tsv for
//     BIDS-named inputs, <file stem>_desc-neurobolt_timeseries.tsv at the top for others: header =
//     ROI names, one row per output time point, values (z-scored units of the training targets,
//     6 significant digits) or n/a;
//   a .json sidecar beside each: RepetitionTime (s between rows), StartTime (s of row 0 from the
//     first EEG sample), Grid ("triggers", "tr" or "stride"), VolumeOnsets (s, every row's onset),
//     OnsetSource, Units "z", TargetNormalisation {ROIs, Mean, Std, LowpassHz, LowpassOrder} (the
//     training targets' statistics: raw = z * Std + Mean), Checkpoint {Path, SHA256, Arch},
//     SoftwareVersion, GeneratedBy "neurobolt infer", Source (the EEG file), Windows, Channels
//     {Interpolated, ZeroFilled}, Preprocessing;
//   with an atlas: <stem>_desc-neurobolt_bold.nii.gz, a 4-D image on the atlas grid in which every
//     voxel of an atlas region carries the predicted time course of the ROI of that name (0
//     elsewhere and for n/a rows), TR = RepetitionTime.
// Outputs are written atomically (temporary file + rename), the sidecar last: a run whose sidecar
// exists and names the same checkpoint hash is complete and skipped unless `force`. No time stamps:
// the same inputs give the same bytes, so shards can be merged by copying.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "neurobolt/bids.hpp"
#include "neurobolt/clean.hpp"
#include "neurobolt/recording.hpp"
#include "neurobolt/hash.hpp"  // sha256_file, used for the checkpoint identity in sidecars

namespace neurobolt {

struct InferOptions {
  std::string output_dir;
  std::optional<double> tr;                // s; the grid without triggers, and the trigger spacing check
  double first_volume_offset = 0.0;        // s; onset of volume 0 on the `tr` grid
  std::optional<double> stride;            // s; a denser grid instead of one row per volume
  std::vector<std::string> trigger_labels;  // empty: the defaults of `prepare`
  int64_t dummy_scans = 0;                 // leading triggers to drop
  std::string missing_channels;            // "interpolate", "zero", "error"; "" = as the training data
  std::string atlas, atlas_labels;         // optional 4-D NIfTI output on this label image
  std::vector<std::string> subjects;      // BIDS inputs: only these subjects (labels with or without "sub-")
  int64_t shard_index = 0, shard_count = 1;  // this job takes runs i, i + N, i + 2N, ... of the sorted list
  int64_t batch = 16;
  // The EEG is read in time blocks of at most this many bytes at the file's rate (all needed
  // channels); with the model, the batch and the 200 Hz buffer it bounds the memory of a run
  // whatever the recording's length (a filter in the checkpoint keeps the 200 Hz recording whole).
  int64_t read_block_bytes = 64LL << 20;
  bool force = false;
  std::string device = "cpu";
  // Check instead of predicting: every run of the (unsharded) input list must have exactly one
  // complete prediction from this checkpoint in output_dir (status "skipped"), else "missing"
  // with the reason; predictions in output_dir for runs outside the list are listed as extra.
  // What a cluster job runs after the array of --shard jobs.
  bool verify = false;
  // Set: each raw recording is first cleaned of MR gradient and BCG artefacts (clean.hpp) at the
  // model's rate; the sidecar says what was done ("Cleaning").
  std::optional<CleanOptions> clean;
};

struct InferRunReport {
  std::string input;    // the EEG file
  std::string output;   // the TSV written (or found complete)
  std::string status;   // "done", "skipped" (complete from the same checkpoint), "failed", "missing" (verify)
  std::string error;    // why, when failed
  std::string grid;     // "triggers", "tr", "stride"
  int64_t rows = 0;
  int64_t windows = 0;  // rows with a prediction
  std::vector<std::string> interpolated, zero_filled, warnings;
  std::string cleaning;  // with InferOptions::clean: what the artefact correction did
  double seconds = 0.0;
};

struct InferSummary {
  int64_t runs = 0;  // in this shard
  int64_t done = 0, skipped = 0, failed = 0, missing = 0;
  std::vector<std::string> extra;  // verify: predictions in the output folder for no run of the list
  int64_t windows = 0;
  double seconds = 0.0;
  double predict_seconds = 0.0;  // in the model
  std::vector<InferRunReport> reports;
  int first_failure_exit_code = 0;  // the ErrorKind of the first failure (0 when none)
  double windows_per_s() const { return seconds > 0 ? static_cast<double>(windows) / seconds : 0.0; }
};

struct InferProgress {
  int64_t run = 0, runs = 0;  // index in this shard
  std::string name;
  std::string stage;        // "reading", "resampling", "filtering", "predicting"
  double fraction = 0.0;    // of this run
};

struct InferCallbacks {
  std::function<void(const InferProgress&)> progress;
  std::function<void(const InferRunReport&)> run_done;
};

// One EEG recording to predict, with what its BIDS sidecars say.
struct InferInput {
  std::string eeg_path;
  std::string output_stem;  // relative to the output folder, without "_desc-neurobolt_timeseries.tsv"
  std::vector<std::string> bad_channels;
  std::map<std::string, std::string> channel_types;  // BIDS _channels.tsv: name -> type
  std::string events_path;
  std::vector<BidsEvent> events;
};

// The times (s from the recording's start) `infer` predicts at for one input, each the end of a
// window: the volume onsets from its triggers (onsets_from_triggers: dummy scans dropped, gaps
// filled at the TR), else a --tr grid, or a --stride grid. ConfigError when there is neither a
// trigger nor --tr.
struct VolumeGrid {
  std::string kind;  // "triggers", "tr", "stride"
  std::vector<double> times;
  double spacing = 0.0;
  std::string source;
  std::vector<std::string> warnings;
};
VolumeGrid infer_volume_grid(const Recording& header, const InferInput& in, const InferOptions& o,
                             double window_seconds);

// The EEG recordings of `inputs` (BIDS roots, folders searched recursively, or EEG files), sorted
// by output name: what the shards split. IoError for a missing input; ConfigError when two inputs
// would write the same output.
// `subjects` (labels, with or without "sub-"; empty: all) keeps the BIDS-named recordings of those
// subjects.
std::vector<InferInput> collect_infer_inputs(const std::vector<std::string>& inputs,
                                             const std::vector<std::string>& subjects = {});

// Runs the checkpoint over every input of this shard. One unreadable recording does not stop the
// others: it is reported as failed. Errors that concern every run (the checkpoint, the output
// folder, the options) are thrown.
InferSummary run_inference(const std::string& checkpoint, const std::vector<std::string>& inputs,
                           const InferOptions& options, const InferCallbacks& callbacks = {});


}  // namespace neurobolt
