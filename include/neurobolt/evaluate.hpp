#pragma once
// Evaluation of predicted fMRI against the measured targets: per-ROI metrics, grouped by run,
// subject and split, their JSON form, and reading the predictions that `neurobolt infer` writes.
// Plain C++ (no LibTorch).
//
// The paper's two protocols:
//  * intra-run: every run is split in time (train, val, test = its final part); a model is scored
//    on each run's test rows and the paper reports the mean over runs. Label the rows
//    (label_splits, label_splits_from_record), set EvaluationInput::evaluated_split = "test": then
//    per_run holds each run's test-part metrics and mean_run_r their mean over runs.
//  * cross-subject: whole runs of held-out subjects. Give those runs (split "test", or all runs
//    with evaluated_split = "test"): per_roi / mean_r are pooled over all their rows, per_run and
//    mean_run_r per scan, per_subject per held-out subject.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "neurobolt/bids.hpp"

namespace neurobolt {

class DatasetReader;

// Agreement of one ROI's predicted and true series.
//   n    pairs used: rows where neither value is NaN
//   r    Pearson correlation over those pairs; NaN when n < 3 or either series is constant
//        (`note` says which)
//   mse  mean of (predicted - target)^2; NaN when n = 0
//   r2   1 - SSE / SST, SST the target's squared deviations about its own mean over the same
//        pairs (so a prediction of that mean scores 0 and a worse one is negative); NaN when
//        n = 0 or the target is constant
// All sums are accumulated in double (two passes: means, then deviations).
struct RoiMetrics {
  double r = std::numeric_limits<double>::quiet_NaN();
  double mse = std::numeric_limits<double>::quiet_NaN();
  double r2 = std::numeric_limits<double>::quiet_NaN();
  int64_t n = 0;
  std::string note;  // why r is NaN ("fewer than 3 pairs", "constant prediction", "constant target"), else ""
};

// Metrics of each column of two row-major [rows, rois] arrays.
std::vector<RoiMetrics> roi_metrics(const float* predicted, const float* target, int64_t rows, int64_t rois);

// Mean of the defined (non-NaN) r values; NaN when none is defined.
double mean_r(const std::vector<RoiMetrics>& metrics);

// ------------------------------------------------------------------------------------------------
// Runs, groups and protocols

// One run's predicted and true series, on the same rows (row k = fMRI volume k for predictions
// read by evaluate_against_bids).
struct RunSeries {
  std::string run;      // unique name, e.g. "sub-01_task-rest_run-1" (BidsEntities::to_string)
  std::string subject;  // "01"
  std::string split;    // "train", "val", "test" or "" (unlabelled): the split of every row...
  // ...unless given per row (one label per row, same values), e.g. the parts of one run under the
  // intra-run protocol.
  std::vector<std::string> row_splits;
  std::vector<double> time;  // seconds from the first EEG sample, one per row (empty: unknown)
  int64_t rows = 0;
  std::vector<float> predicted, target;  // [rows, R] each, ROI order of EvaluationInput::rois; NaN = missing
  double repetition_time = 0.0;          // s between rows; 0 when unknown
  std::string prediction_path, target_path;  // the files it was read from ("" when made in memory)

  const std::string& split_of(int64_t row) const { return row_splits.empty() ? split : row_splits[row]; }
};

struct EvaluationInput {
  std::vector<std::string> rois;
  std::vector<RunSeries> runs;
  std::string protocol;  // free text recorded in the result, e.g. "intra-run", "cross-subject"
  // Rows that count for per_roi, per_run, per_subject, mean_r and mean_run_r: every row when "",
  // else only rows of this split. per_split always covers every labelled row.
  std::string evaluated_split;
  std::string provenance_json = "{}";  // what the predictions came from (a JSON object)
  std::vector<std::string> log;        // notes from reading: one line each
};

// Metrics of a group of rows: one run, one subject's runs, or one split.
struct GroupMetrics {
  std::string name;     // the run name, subject label or split
  std::string subject;  // per_run: the run's subject
  std::string split;    // per_run: RunSeries::split ("" when labelled per row)
  int64_t runs = 0;     // runs with at least one row in the group
  int64_t rows = 0;     // rows in the group
  std::vector<RoiMetrics> per_roi;
  double mean_r = std::numeric_limits<double>::quiet_NaN();  // mean_r(per_roi)
};

// What evaluate() reports (all over the evaluated rows, see EvaluationInput::evaluated_split):
//   per_roi      per ROI, pooled over every row of every run (one correlation over the
//                concatenated series: it also rewards getting differences between runs right)
//   mean_r       mean over ROIs of the pooled r (ROIs with undefined r left out)
//   per_run      per run and ROI over that run's rows; each with its mean over ROIs
//   mean_run_r   mean over runs of each run's mean r: the paper's per-scan figure
//   per_subject  per subject and ROI, pooled over that subject's rows
//   per_split    per split and ROI over all rows with that label, whatever evaluated_split is
//                (so train, val and test can be compared); unlabelled rows are in no split
// Runs without an evaluated row are in no per_run or per_subject entry and not counted.
struct EvaluationResult {
  std::string protocol;
  std::string evaluated_split;
  std::vector<std::string> rois;
  std::vector<RoiMetrics> per_roi;
  double mean_r = std::numeric_limits<double>::quiet_NaN();
  double mean_run_r = std::numeric_limits<double>::quiet_NaN();
  std::vector<GroupMetrics> per_run;      // input order
  std::vector<GroupMetrics> per_subject;  // sorted by subject
  std::vector<GroupMetrics> per_split;    // train, val, test order
  int64_t num_runs = 0;      // runs with at least one evaluated row
  int64_t num_subjects = 0;  // subjects of those runs
  int64_t num_rows = 0;      // evaluated rows
};

// Computes the metrics. ConfigError (naming the run and field) for: no ROIs, a run whose array
// sizes do not match rows x ROIs (time and row_splits: rows or empty), a split label other than
// train/val/test/"", a repeated run name.
EvaluationResult evaluate(const EvaluationInput& input);

// The result as JSON: {"protocol", "evaluated_split", "mean_r", "mean_run_r", "rois",
// "per_roi": [{"roi", "r", "mse", "r2", "n", "note"?}], "per_run": [{"run", "subject", "split",
// "rows", "mean_r", "per_roi"}], "per_subject": [{"subject", "runs", "rows", "mean_r", "per_roi"}],
// "per_split": [{"split", "runs", "rows", "mean_r", "per_roi"}], "counts": {"runs", "subjects",
// "rows"}, "provenance": <provenance_json>}. NaN is written as null. FormatError when
// provenance_json is not a JSON object.
std::string evaluation_json(const EvaluationResult& result, const std::string& provenance_json);

// Labels every row with the split its window has in a prepared dataset (the selected fold for
// kfold files): row k of run X is the window of run X (by name) at volume k. Rows without a window
// (no full EEG window, gap windows of intra-run splits) and runs absent from the dataset stay
// unlabelled (a log line per absent run). Exact for every split mode.
void label_splits(EvaluationInput& input, const DatasetReader& dataset);

// The same from what a checkpoint records about its training data (checkpoint_dataset_json:
// "split_mode", "parameters" with "split" and "window_seconds"), without the dataset file:
//  * intra-run: per run, the rows with a prediction (not all NaN) are its windows in time order,
//    labelled by intra_run_split with the run's repetition_time (a ConfigError when it is 0);
//  * cross-subject with subject lists: every row of a listed val/test subject is val/test, the
//    rest train, as prepare labels them (the record does not list the dataset's subjects, so a
//    subject it never had is labelled train too; label_splits with the dataset file tells).
// cross-subject by fractions and kfold need the subject list of the dataset: a ConfigError that
// says to use label_splits with the dataset file.
void label_splits_from_record(EvaluationInput& input, const std::string& dataset_record_json);

// ------------------------------------------------------------------------------------------------
// Predictions written by `neurobolt infer`
//
// PRED_DIR is a BIDS derivative folder:
//   dataset_description.json   "GeneratedBy": [{"Name": "neurobolt infer", ...}]
//   sub-XX/[ses-YY/]func/<entities>_desc-neurobolt_timeseries.tsv   per BIDS-named EEG run
//   <stem>_desc-neurobolt_timeseries.tsv                            per other input, at the top
// The TSV: header = ROI names, one row per output time point, a number (z units of the training
// targets) or n/a where no full EEG window existed. Beside it, <same name>.json with
//   "RepetitionTime"  s between rows
//   "StartTime"       s of row 0 from the first EEG sample
//   "Grid"            "triggers" (row k = volume trigger k), "tr" (row k at StartTime + k *
//                     RepetitionTime) or "stride" (a denser grid, not aligned to volumes)
//   "VolumeOnsets"    s, the onset of every row
//   "Units"           "z"
//   "TargetNormalisation" {"ROIs": [...], "Mean": [...], "Std": [...], "LowpassHz": number or
//                     null, "LowpassOrder": integer}: how the training targets were made
//   "Checkpoint" {"Path", "SHA256", "Arch"}, "SoftwareVersion", "Source" (the EEG file)
// Other keys are allowed and ignored.

// Reads every prediction of PRED_DIR and pairs it with its fMRI target in a BIDS dataset:
//  * targets: index_bids(bids_root, options); when options.derivatives and options.atlas are
//    empty, every folder of <bids_root>/derivatives holding sub-* folders is searched, except ones
//    whose dataset_description.json has a GeneratedBy entry named "neurobolt infer" (prediction
//    folders), as `prepare` searches;
//  * matching: the prediction's file name entities sub, ses, task and run equal the EEG run's
//    (run compared as a number); `subjects` (labels with or without "sub-"; empty: all) selects
//    predictions by subject;
//  * the target gets exactly what `prepare` does to it: the sidecar's ROIs in its order, the
//    Butterworth low-pass (LowpassOrder, LowpassHz; b/a form with filtfilt; skipped with a log line
//    when at or above the Nyquist frequency, as prepare), then (x - Mean) / Std;
//  * alignment: row k with volume k, for Grid "triggers" or "tr" whose RepetitionTime equals the
//    target's within 1 %. Triggers grid: the row count must equal the volume count; tr grid: the
//    common rows are used (a log line when the counts differ).
// RunSeries::run is the EEG run's entity string, subject its sub, split "" (label them afterwards),
// time the VolumeOnsets (StartTime + k * RepetitionTime without them). provenance_json records
// the folders, checkpoint, software version and every file pair.
// Errors, each naming the files: IoError for a missing folder or file; FormatError for a
// malformed TSV/sidecar (naming the key); ConfigError for no predictions, a prediction without
// BIDS entities or without a target (predictions are never skipped silently: a missing target
// would bias the result), a target lacking an ROI of the prediction, a "stride" grid, a
// RepetitionTime mismatch (both values), a row/volume count mismatch (both counts), predictions
// with different ROIs or from different checkpoints.
EvaluationInput evaluate_against_bids(const std::string& pred_dir, const std::string& bids_root,
                                      const BidsOptions& options, const std::vector<std::string>& subjects);

// The simulator's realised noise ceilings (derivatives/<pipeline>-truth/summary.tsv: columns
// participant_id, [session,] run, roi, snr, requested_ceiling, realised_ceiling, eeg_ceiling): per
// ROI of `rois`, the mean realised_ceiling over the runs named in `runs` (run names as
// RunSeries::run; their sub, ses and run entities are matched, the task is not in the summary;
// empty: every run). ConfigError naming the file for an ROI or a run it lacks.
std::vector<double> read_noise_ceilings(const std::string& summary_tsv, const std::vector<std::string>& rois,
                                        const std::vector<std::string>& runs);

}  // namespace neurobolt
