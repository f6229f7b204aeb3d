#pragma once
// What a file or folder holds, for users checking their data before feeding it in
// (`neurobolt info PATH`): an EEG recording (read from its header only), a BIDS dataset (its
// runs, their EEG headers and fMRI targets, and what indexing logged) or a prepared HDF5
// dataset. Each has a summary struct, a text form (format_*) and a JSON form (*_json: one
// object whose "kind" is "recording", "bids", "dataset" or "model").
//
// Volume triggers are recognised as `prepare` recognises them: annotations whose label (or its
// description after "type/") equals one of default_trigger_labels(), ignoring case; in a BIDS
// run without such annotations, the _events.tsv rows whose trial_type or value does.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "neurobolt/bids.hpp"
#include "neurobolt/config.hpp"
#include "neurobolt/recording.hpp"

namespace neurobolt {

// What a path given to `neurobolt info` is.
enum class InfoKind { recording, bids, dataset, model };
const char* to_string(InfoKind kind);  // "recording", "bids", "dataset", "model"

// Decides by what the path is: a folder is a BIDS dataset; .edf .bdf .vhdr .set (any case) a
// recording; an HDF5 file (.h5 .hdf5, or the HDF5 signature) by its root attribute `format`
// ("neurobolt-dataset": dataset, "neurobolt-checkpoint": model); .json .pth .pt a model; a
// missing path that is a built-in config name a model. A missing path otherwise is an IoError,
// any other file a FormatError; both name the path and what was expected.
InfoKind info_kind(const std::string& path);

// A value and how many times (runs, annotations) it occurs.
template <typename T>
struct Tally {
  T value{};
  int64_t count = 0;
};

struct LabelCount {
  std::string label;
  int64_t count = 0;
  bool trigger = false;  // matches one of default_trigger_labels()
};

// The markers that match one default trigger label.
struct TriggerSummary {
  std::string label;                // the default trigger label, e.g. "Scan Start"
  std::vector<std::string> labels;  // the marker labels it matched, e.g. "Scanner/Scan Start"
  std::string source;               // "EEG annotations" or "events.tsv"
  int64_t count = 0;
  double first_onset = 0.0;  // seconds from the first sample
  double last_onset = 0.0;
  // Median interval between consecutive triggers in time order (s): the TR they imply. NaN
  // with fewer than two triggers.
  double median_interval = 0.0;
  // Intervals more than 10 % away from the median: missing, extra or duplicated triggers.
  int64_t irregular_intervals = 0;
};

struct RecordingSummary {
  std::string path;
  std::string format;        // Recording::format
  double sample_rate = 0.0;  // Hz
  int64_t num_samples = 0;   // per channel, gaps included
  double duration = 0.0;     // seconds, gaps included
  std::string start_time;    // ISO 8601, "" when unknown
  std::vector<Channel> channels;
  int64_t num_annotations = 0;
  std::vector<LabelCount> labels;  // every distinct label, most frequent first, then by label
  // One per default trigger label that occurs, in default_trigger_labels() order: `prepare`
  // uses the first.
  std::vector<TriggerSummary> triggers;
  std::vector<Gap> gaps;  // EDF+D/BDF+D
  std::vector<std::string> warnings;
};

// Reads the header, channel list and annotations only (ReadOptions::header_only): the samples
// are not read, so large files take milliseconds. Reader errors propagate.
RecordingSummary describe_recording(const std::string& path);
// The same for a recording already read (with or without its samples).
RecordingSummary summarize_recording(const Recording& recording);
std::string format_recording(const RecordingSummary& summary);
std::string recording_json(const RecordingSummary& summary, int indent = 2);

struct BidsRunSummary {
  std::string path;  // the EEG file, relative to the dataset root
  BidsEntities entities;
  // The EEG header could not be read: the reader's message; the EEG fields below are then unset.
  std::string error;
  std::string format;
  double sample_rate = 0.0;
  int64_t num_channels = 0;
  double duration = 0.0;
  std::vector<std::string> bad_channels;  // status "bad" in _channels.tsv
  // The volume triggers `prepare` would use: the first default label found in the EEG
  // annotations, else in the run's _events.tsv; count 0 when none.
  TriggerSummary trigger;
  bool has_target = false;
  std::string target_path;    // relative to the dataset root
  std::string target_origin;  // the derivatives folder (relative), or "BOLD + atlas"
  double repetition_time = 0.0;
  int64_t num_volumes = 0;
  std::vector<std::string> roi_names;
  // What `prepare` would stop at or repair: no trigger, a trigger interval that contradicts the
  // TR, a trigger count that differs from the number of volumes.
  std::vector<std::string> notes;
};

struct BidsSummary {
  std::string root;
  std::string name;  // dataset_description.json Name
  // The derivatives folders searched for targets (relative to the root): those given, else,
  // as `prepare` does, every folder of <root>/derivatives that holds sub-* folders.
  std::vector<std::string> derivatives;
  std::string atlas;  // BOLD images were searched too, with this atlas
  std::vector<std::string> subjects, sessions, tasks;  // without their "sub-", "ses-", "task-"
  std::vector<Tally<std::string>> runs_per_subject;
  std::vector<BidsRunSummary> runs;  // by path
  int64_t num_with_target = 0;
  // Over the runs whose header was read (by value):
  std::vector<Tally<std::string>> formats;
  std::vector<Tally<double>> sample_rates;
  std::vector<Tally<int64_t>> channel_counts;
  // Over the runs with a target:
  std::vector<Tally<std::string>> target_origins;
  std::vector<Tally<double>> repetition_times;
  std::vector<std::string> roi_names;       // of the first run with a target (what `prepare` keeps)
  std::vector<std::string> roi_mismatches;  // runs whose targets have other ROIs
  // Matching targets failed (e.g. two candidates for one run): the message. The runs are then
  // described without targets.
  std::string target_error;
  std::vector<std::string> log;  // what index_bids logged
};

// Indexes the dataset (index_bids) and reads every run's EEG header. With no derivatives and no
// atlas in `options`, searches every folder of <root>/derivatives that holds sub-* folders.
// A missing root is an IoError; an unreadable EEG header is reported in its run (`error`),
// not thrown.
BidsSummary describe_bids(const std::string& root, const BidsOptions& options = {});
std::string format_bids(const BidsSummary& summary);
std::string bids_json(const BidsSummary& summary, int indent = 2);

struct DatasetRunSummary {
  std::string name;  // "sub-01_task-rest_run-1"
  std::string subject;
  int64_t windows = 0;
  std::array<int64_t, 3> windows_per_split{};  // train, val, test
};

struct DatasetSummary {
  std::string path;
  int64_t file_bytes = 0;
  int64_t num_windows = 0;
  int64_t num_channels = 0;
  int64_t window_samples = 0;
  double sample_rate = 0.0;
  int64_t num_rois = 0;
  std::vector<std::string> channel_names, roi_names, subjects;
  std::string split_mode;  // "intra-run", "cross-subject", "kfold"
  int64_t num_folds = 0;   // 0 unless kfold
  std::array<int64_t, 3> windows_per_split{};  // train, val, test (kfold: fold 0)
  int64_t excluded_windows = 0;                // intra-run gaps
  std::vector<DatasetRunSummary> runs;
  std::string parameters_json, provenance_json, fingerprint;
};

// Opens a prepared dataset with DatasetReader (IoError when missing, FormatError when not one).
DatasetSummary describe_dataset(const std::string& path);
std::string format_dataset(const DatasetSummary& summary);
std::string dataset_json(const DatasetSummary& summary, int indent = 2);

// The JSON object of a model (the parts of checkpoint.hpp's ModelSummary, which needs LibTorch):
// {"kind": "model", "name", "source", "config": {...}, "parameters": {"temporal", "spectral",
// "head", "total"}, "metadata": {...}}. `parameters` holds temporal, spectral, head.
std::string model_json(const std::string& source, const ModelConfig& config, const std::array<int64_t, 3>& parameters,
                       const std::string& metadata_json = "{}", int indent = 2);

}  // namespace neurobolt
