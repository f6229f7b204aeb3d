#pragma once
// BIDS datasets: every EEG run with its metadata (sidecar JSON, channels, events), and the fMRI
// target (ROI time series) that belongs to it.
//
// Matching rule: a target belongs to an EEG run when both have the same sub, ses, task and run
// entities, where an entity absent from one must be absent from the other and run indices compare
// as numbers (run-1 == run-01); acq may differ. Targets are derivatives TSV files
// (<derivatives>/sub-*/[ses-*/]func/*_<target_suffix>.tsv, fMRIPrep's *_desc-confounds_* files
// excepted), and, when an atlas is given, 4-D BOLD images (sub-*/[ses-*/]func/*_bold.nii[.gz]) in
// the dataset and in the derivatives folders. Only targets that carry every entity of
// BidsOptions::target_entities count. Two or more candidates for one run are a ConfigError that
// lists them; a run without a candidate has no target (still usable for inference).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "neurobolt/roi.hpp"

namespace neurobolt {

// The entities that identify a recording; "" when absent.
struct BidsEntities {
  std::string sub, ses, task, acq, run;

  // "sub-01_ses-02_task-rest_run-1" (absent entities left out).
  std::string to_string() const;
};

// A BIDS file name split into its parts: sub-01_task-rest_acq-x_eeg.vhdr ->
// {{sub,01},{task,rest},{acq,x}}, suffix "eeg", extension ".vhdr".
struct BidsFileName {
  std::vector<std::pair<std::string, std::string>> entities;  // in file-name order
  std::string suffix;
  std::string extension;  // from the first dot: ".vhdr", ".nii.gz", ".json"; "" if none

  BidsEntities core() const;  // sub, ses, task, acq, run
  // Value of an entity, "" when absent.
  std::string get(const std::string& key) const;
};

// Parses a file name (not a path). nullopt when it is not "key-value_..._suffix.ext" with
// alphanumeric keys, values and suffix, each key used once.
std::optional<BidsFileName> parse_bids_name(const std::string& filename);

struct EegSidecar {
  std::vector<std::string> sources;   // JSON files merged, outermost (dataset root) first
  std::string json;                   // the merged object, serialised
  std::string task_name;              // TaskName
  double sampling_frequency = 0.0;    // SamplingFrequency, Hz; 0 when absent
  double power_line_frequency = 0.0;  // PowerLineFrequency, Hz; 0 when absent or "n/a"
  std::string eeg_reference;          // EEGReference
};

struct BidsChannel {
  std::string name;
  std::string type;    // as written (BIDS uses upper case: EEG, EOG, ECG, EMG, MISC, TRIG, ...)
  std::string units;   // "" when absent or n/a
  std::string status;  // "good", or "" when the column is absent or n/a
  std::string status_description;
};

struct BidsEvent {
  double onset = 0.0;      // seconds from the first EEG sample
  double duration = 0.0;   // seconds; NaN when n/a
  std::string trial_type;  // "" when absent or n/a
  std::string value;       // "" when absent or n/a
};

struct EegRun {
  std::string path;  // the EEG data file (.edf, .bdf, .vhdr or .set)
  BidsEntities entities;
  EegSidecar sidecar;
  std::string channels_path;              // applicable _channels.tsv, "" if none
  std::vector<BidsChannel> channels;      // channels whose status is not "bad"
  std::vector<std::string> bad_channels;  // names of channels with status "bad" (excluded)
  std::string events_path;                // applicable _events.tsv, "" if none
  std::vector<BidsEvent> events;
  std::optional<TargetSeries> target;
};

struct BidsOptions {
  // Derivatives pipeline folders holding ROI time series (a relative path is taken from the
  // dataset root, e.g. "derivatives/roi"). Their BOLD images count too when an atlas is given.
  std::vector<std::string> derivatives;
  std::string target_suffix = "timeseries";
  // Entities a target must carry, e.g. {{"atlas", "Schaefer100"}} or {{"space", "MNI152NLin6Asym"}}.
  std::map<std::string, std::string> target_entities;
  // Atlas for 4-D BOLD targets: a label image (+ names file) or a 4-D weight map; "" for none.
  std::string atlas;
  std::string atlas_labels;
  // Detrending and confound regression of extracted series. With confound columns, each BOLD
  // image needs a *_desc-confounds_timeseries.tsv (or *_desc-confounds_regressors.tsv) with the
  // same sub, ses, task, acq and run, next to it or in a derivatives folder; confounds_path is
  // set per image.
  ExtractionOptions extraction;
  bool find_targets = true;  // false: index the EEG runs only
};

struct BidsDataset {
  std::string root;
  std::string name;          // dataset_description.json Name, "" if absent
  std::vector<EegRun> runs;  // sorted by path
  // What was skipped, excluded, inferred or not found: one line each, paths relative to root.
  std::vector<std::string> log;
  // Targets that match no EEG run (paths relative to root): a run whose EEG file is missing.
  std::vector<std::string> unmatched_targets;

  int64_t num_with_target() const;
};

// Indexes the EEG runs of a BIDS dataset: sub-*/[ses-*/]eeg/*_eeg.{edf,bdf,vhdr,set}.
//
// Metadata follow the inheritance principle: a metadata file (*_eeg.json, *_channels.tsv,
// *_events.tsv, *_bold.json, *_timeseries.json) applies to a data file when it sits in the data
// file's folder or a folder above it up to the dataset root, has the same suffix, and each of
// its entities has the data file's value. JSON objects are merged top-level key by key, nearer
// folders (and, within a folder, files with more entities) overriding; for TSV files the nearest,
// most specific one applies. Two applicable files with as many entities in one folder are a
// FormatError naming both.
//
// A target's RepetitionTime (s) comes from its JSON sidecar (for a TSV: the _timeseries.json;
// without one there, from the raw dataset's _bold.json for the same entities; for a BOLD image:
// the _bold.json, else the NIfTI header). StartTime comes from the same sidecar (0 if absent).
// A TSV target whose raw _bold.nii[.gz] is found is checked against its volume count.
//
// A missing root is an IoError; malformed JSON/TSV is a FormatError naming file, line or field;
// ambiguous targets and grid mismatches are ConfigErrors.
BidsDataset index_bids(const std::string& root, const BidsOptions& options = {});

// The derivatives pipelines searched for targets when none is named (prepare, eval, info): every
// folder of <root>/derivatives that holds sub-* folders, relative to root and sorted, except
// prediction folders written by `neurobolt infer` (is_prediction_folder), which go to `skipped`.
std::vector<std::string> target_derivatives(const std::string& root, std::vector<std::string>* skipped = nullptr);

// Whether a folder's dataset_description.json names `tool` (e.g. "neurobolt simulate") among its
// GeneratedBy; false when the file is missing or not valid JSON.
bool generated_by(const std::string& folder, const std::string& tool);
// Whether a folder's dataset_description.json names "neurobolt infer" among its GeneratedBy.
bool is_prediction_folder(const std::string& folder);
// Whether a folder is the ground truth of a simulation (derivatives/<pipeline>-truth): generated
// by "neurobolt simulate" and holding simulation.json. index_bids takes its time series for targets
// only when BidsOptions::target_entities names a desc.
bool is_simulation_truth_folder(const std::string& folder);

}  // namespace neurobolt
