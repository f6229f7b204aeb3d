#pragma once
// What `neurobolt eval` does in one call: predictions (from a checkpoint run over a prepared
// dataset, or a folder written by `neurobolt infer` paired with BIDS targets) evaluated against
// their targets, optionally beside a baseline and the simulator's noise ceiling, written as JSON
// and as the HTML report. Plain C++ (models run behind neurobolt::Predictor).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "neurobolt/bids.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/evaluate.hpp"
#include "neurobolt/predictor.hpp"

namespace neurobolt {

// The predictions of `predictor` for the windows of a prepared dataset, one RunSeries per run
// (rows = that run's windows in volume order, labelled with their splits; targets z-scored with
// the dataset's training statistics). `split`: "train", "val", "test" or "all": only those
// windows are predicted (and are the evaluated rows). The model's channels are taken from the
// dataset's by name; a missing one, or another window length or rate, is a ConfigError naming
// both sides. `progress(done, total)` counts windows.
EvaluationInput predict_dataset(Predictor& predictor, const DatasetReader& dataset, const std::string& split,
                                int64_t batch = 32, const std::function<void(int64_t, int64_t)>& progress = {});

struct EvalJob {
  // A checkpoint (with `data`) or a prediction folder of neurobolt infer (with `targets`).
  std::string source;
  std::string data;     // prepared dataset: what the checkpoint is run on; with a prediction folder, the split labels
  std::string targets;  // BIDS root with the fMRI targets (prediction folders)
  BidsOptions bids;     // target discovery (prediction folders)
  std::vector<std::string> subjects;  // prediction folders: only these subjects (empty: all)
  std::string split = "test";         // evaluated rows: train, val, test or all
  std::string baseline;               // the same kind as `source`, evaluated the same way ("" = none)
  std::string ceiling = "auto";       // simulator summary.tsv, "auto" (found from the data) or "none"
  std::string metrics = "auto";       // the model's metrics.jsonl for the curves ("auto": beside the checkpoint)
  std::string json_path, report_path;
  std::string time_course_run;        // the run the report draws first ("" = the first)
  std::string title = "neurobolt evaluation";
  bool force = false;
  std::string device = "cpu";
  int64_t batch = 32;
};

struct EvalOutcome {
  std::string model_label, baseline_label;
  EvaluationResult model;
  std::optional<EvaluationResult> baseline;
  std::vector<double> ceiling;   // per ROI of model.rois; empty when none
  std::string ceiling_source;    // the summary file
  std::vector<std::string> log;  // decisions, one line each
};

// Runs the job: predicts or reads, evaluates, writes json_path and report_path when set.
EvalOutcome run_evaluation(const EvalJob& job, const std::function<void(const std::string&)>& note = {});

// A plain-text per-ROI table (r, MSE, R² of the model; r of the baseline; the ceiling) and the means.
std::string format_evaluation_table(const EvalOutcome& outcome);

}  // namespace neurobolt
