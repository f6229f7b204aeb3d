#pragma once
// The evaluation report: one self-contained HTML file (inline CSS and SVG, no network, no external
// fonts or scripts; it opens from disk) with
//  * the title and a key/value list of what it was made from (data, checkpoint and hash, version,
//    date: whatever the caller puts in ReportInput::provenance);
//  * the metrics table: per ROI r, MSE, R2 and n of the model and the baseline side by side (and
//    the noise ceiling), pooled; per run, subject and split in collapsible <details>;
//  * a bar chart of r per ROI: model, baseline beside it, the noise ceiling as a marker;
//  * predicted-vs-true time courses per ROI (small multiples, time in s) for one run; further
//    runs in closed <details>, and a run chooser added by a small inline script (the page is
//    complete without it);
//  * training curves (loss and validation r per epoch) from the trainer's metrics.jsonl.
// Absent parts (no baseline, ceiling, time courses or curves; NaN metrics) are left out or shown
// as "n/a" with the reason. Every string from the data is escaped. Plain C++ (no LibTorch).
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "neurobolt/evaluate.hpp"

namespace neurobolt {

// One line of the trainer's metrics.jsonl.
struct TrainingRecord {
  int64_t epoch = 0;
  double train_loss = std::numeric_limits<double>::quiet_NaN();
  double val_mean_r = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> val_r;  // per ROI, when logged
  double val_mse = std::numeric_limits<double>::quiet_NaN();
  double lr = std::numeric_limits<double>::quiet_NaN();
  int64_t step = -1;  // -1 when not logged
  double windows_per_s = std::numeric_limits<double>::quiet_NaN();
  double seconds = std::numeric_limits<double>::quiet_NaN();
  std::string arch;
};

// Reads metrics.jsonl: one JSON object per line with "epoch" (integer), "train_loss" and
// "val_mean_r" (numbers, null for NaN), and optionally "val_r" (list), "val_mse", "lr", "step",
// "windows_per_s", "seconds", "arch"; other keys are ignored (the trainer may log more). Empty
// lines are skipped. IoError when unreadable; FormatError naming the line and key otherwise.
std::vector<TrainingRecord> read_training_metrics(const std::string& jsonl_path);

// One model's part of the report.
struct ReportModel {
  std::string label;  // "NeuroBOLT", "ridge", ...
  EvaluationResult evaluation;
  // Runs whose time courses can be shown (RunSeries of the evaluation input; may be empty).
  std::vector<RunSeries> runs;
  std::vector<TrainingRecord> training;  // may be empty; one record (a ridge fit) is drawn as a level
};

struct ReportInput {
  std::string title = "neurobolt evaluation";
  // Shown in this order, e.g. {"predictions", ...}, {"checkpoint", path}, {"checkpoint SHA256", ...},
  // {"neurobolt", version}, {"date", ...}.
  std::vector<std::pair<std::string, std::string>> provenance;
  ReportModel model;
  std::optional<ReportModel> baseline;  // matched to the model by ROI and run names
  // Per ROI of model.evaluation.rois (NaN: unknown); empty: no ceiling.
  std::vector<double> noise_ceiling;
  std::string ceiling_label = "noise ceiling";
  std::string time_course_run;    // the run shown first; "": the model's first run
  int64_t max_time_course_runs = 8;  // further runs are listed but not drawn (file size)
};

// The report as one HTML document. ConfigError when noise_ceiling is neither empty nor one value
// per ROI, time_course_run names no run, or a run's arrays do not fit its rows and the
// evaluation's ROIs.
std::string render_report_html(const ReportInput& input);

// Writes the report atomically (temporary file, then rename). IoError when `path` exists and not
// `force`, or it cannot be written.
void write_report(const ReportInput& input, const std::string& path, bool force);

// A JSON object flattened into key/value rows for ReportInput::provenance: nested keys joined by
// ".", lists of scalars joined by ", ", longer lists of objects summarised by their length.
// FormatError when the text is not a JSON object.
std::vector<std::pair<std::string, std::string>> provenance_items(const std::string& json_object);

}  // namespace neurobolt
