// neurobolt eval in one call (include/neurobolt/eval_job.hpp): predictions, metrics, JSON, report.
#include "core/plural.hpp"
#include "neurobolt/eval_job.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/infer.hpp"
#include "neurobolt/montage.hpp"
#include "neurobolt/report.hpp"

namespace neurobolt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json parse_object(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

std::optional<Split> parse_split(const std::string& split) {
  if (split == "all") return std::nullopt;
  if (split == "train") return Split::train;
  if (split == "val") return Split::val;
  if (split == "test") return Split::test;
  throw UsageError(fmt::format("--split: expected train, val, test or all, found '{}'", split));
}

// The simulator's ground-truth summary next to a BIDS root: derivatives/*-truth/summary.tsv.
std::string find_ceiling_summary(const std::string& bids_root) {
  std::error_code ec;
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(fs::path(bids_root) / "derivatives", ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory(ec) && name.size() > 6 && name.compare(name.size() - 6, 6, "-truth") == 0 &&
        fs::exists(entry.path() / "summary.tsv", ec)) {
      found.push_back(entry.path() / "summary.tsv");
    }
  }
  std::sort(found.begin(), found.end());
  return found.empty() ? std::string() : found.front().string();
}

std::vector<std::string> evaluated_runs(const EvaluationResult& result) {
  std::vector<std::string> runs;
  for (const auto& g : result.per_run) runs.push_back(g.name);
  return runs;
}

struct Evaluated {
  EvaluationInput input;
  EvaluationResult result;
  std::string label;
  std::vector<TrainingRecord> training;
  std::string bids_root;  // where the targets came from (for the ceiling)
  std::string checkpoint;
};

std::string label_of(const std::string& arch) { return arch == "ridge" ? "ridge baseline" : "NeuroBOLT"; }

// The training curves: a metrics.jsonl given, or ("auto") the one beside the checkpoint.
std::vector<TrainingRecord> training_curves(const std::string& metrics, const std::string& checkpoint) {
  std::string curves = metrics;
  if (curves == "auto") {
    const fs::path beside = fs::path(checkpoint).parent_path() / "metrics.jsonl";
    std::error_code ec;
    curves = !checkpoint.empty() && fs::exists(beside, ec) ? beside.string() : std::string();
  }
  if (curves.empty() || curves == "none") return {};
  return read_training_metrics(curves);
}

Evaluated evaluate_checkpoint(const std::string& checkpoint, const EvalJob& job, const std::string& metrics,
                              const std::function<void(const std::string&)>& note) {
  if (job.data.empty()) {
    throw UsageError(fmt::format("eval: checkpoint '{}' needs the prepared dataset to predict (eval MODEL.h5 DATA.h5)",
                                 checkpoint));
  }
  Evaluated e;
  e.checkpoint = checkpoint;
  auto predictor = load_predictor(checkpoint, job.device);
  DatasetReader reader(job.data);
  const json record = parse_object(predictor->metadata_json()).value("dataset", json::object());
  if (reader.split_mode() == SplitMode::kfold && record.contains("fold") && record["fold"].is_number_integer()) {
    reader.select_fold(record["fold"].get<int64_t>());
  }
  if (record.contains("fingerprint") && record["fingerprint"] != reader.fingerprint() && note) {
    note(fmt::format("note: '{}' was trained on other data (fingerprint {}) than '{}' ({}): its splits do not apply",
                     checkpoint, record["fingerprint"].get<std::string>(), job.data, reader.fingerprint()));
  }
  e.input = predict_dataset(*predictor, reader, job.split, job.batch);
  e.input.provenance_json = json{{"checkpoint", fs::absolute(checkpoint).lexically_normal().string()},
                                 {"checkpoint_sha256", sha256_file(checkpoint)},
                                 {"arch", predictor->arch()},
                                 {"data", fs::absolute(job.data).lexically_normal().string()},
                                 {"data_fingerprint", reader.fingerprint()},
                                 {"split", job.split},
                                 {"neurobolt_version", NEUROBOLT_VERSION}}
                                .dump();
  e.result = evaluate(e.input);
  e.label = label_of(predictor->arch());
  const json provenance = parse_object(reader.provenance_json());
  if (provenance.contains("input") && provenance["input"].is_object()) {
    e.bids_root = provenance["input"].value("bids_root", std::string());
  }
  e.training = training_curves(metrics, checkpoint);
  return e;
}

Evaluated evaluate_folder(const std::string& folder, const EvalJob& job, const std::string& metrics) {
  if (job.targets.empty()) {
    throw UsageError(fmt::format("eval: prediction folder '{}' needs --targets BIDS_ROOT with the measured fMRI",
                                 folder));
  }
  Evaluated e;
  e.input = evaluate_against_bids(folder, job.targets, job.bids, job.subjects);
  e.bids_root = job.targets;
  const auto split = parse_split(job.split);
  if (split) {
    if (!job.data.empty()) {
      DatasetReader reader(job.data);
      label_splits(e.input, reader);
      if (e.input.protocol.empty()) e.input.protocol = to_string(reader.split_mode());
    } else {
      // The checkpoint the predictions name records its training data's splits.
      const json provenance = parse_object(e.input.provenance_json);
      std::string checkpoint;
      if (provenance.contains("checkpoint") && provenance["checkpoint"].is_object()) {
        checkpoint = provenance["checkpoint"].value("path", std::string());
      } else if (provenance.contains("checkpoint") && provenance["checkpoint"].is_string()) {
        checkpoint = provenance["checkpoint"].get<std::string>();
      }
      std::error_code ec;
      if (checkpoint.empty() || !fs::exists(checkpoint, ec)) {
        throw ConfigError(fmt::format("eval --split {}: the split labels need the prepared dataset (--data DATA.h5) or "
                                      "the checkpoint the predictions name ('{}', not found); or use --split all",
                                      job.split, checkpoint));
      }
      auto predictor = load_predictor(checkpoint, "cpu");
      const json record = parse_object(predictor->metadata_json()).value("dataset", json::object());
      label_splits_from_record(e.input, record.dump());
      if (e.input.protocol.empty()) e.input.protocol = record.value("split_mode", std::string());
    }
    e.input.evaluated_split = job.split;
  }
  e.result = evaluate(e.input);
  const json provenance = parse_object(e.input.provenance_json);
  std::string arch = "neurobolt";
  if (provenance.contains("checkpoint") && provenance["checkpoint"].is_object()) {
    arch = provenance["checkpoint"].value("arch", arch);
    e.checkpoint = provenance["checkpoint"].value("path", std::string());
  }
  e.label = label_of(arch);
  e.training = training_curves(metrics, e.checkpoint);
  return e;
}

Evaluated evaluate_source(const std::string& source, const EvalJob& job, const std::string& metrics,
                          const std::function<void(const std::string&)>& note) {
  std::error_code ec;
  if (!fs::exists(source, ec)) throw IoError(fmt::format("eval: '{}' does not exist", source));
  return fs::is_directory(source, ec) ? evaluate_folder(source, job, metrics)
                                      : evaluate_checkpoint(source, job, metrics, note);
}

std::string number(double x, const char* format = "{:.3f}") {
  return std::isfinite(x) ? fmt::format(fmt::runtime(format), x) : "n/a";
}

}  // namespace

EvaluationInput predict_dataset(Predictor& predictor, const DatasetReader& dataset, const std::string& split,
                                int64_t batch, const std::function<void(int64_t, int64_t)>& progress) {
  if (batch < 1) throw UsageError(fmt::format("batch: expected >= 1, found {}", batch));
  if (predictor.sample_rate() != dataset.sample_rate() || predictor.window_samples() != dataset.window_samples()) {
    throw ConfigError(fmt::format("the model takes {}-sample windows at {} Hz, dataset '{}' holds {}-sample windows at "
                                  "{} Hz",
                                  predictor.window_samples(), predictor.sample_rate(), dataset.path(),
                                  dataset.window_samples(), dataset.sample_rate()));
  }
  const auto mapping = map_channels(dataset.channel_names(), predictor.channels(), /*allow_missing=*/true);
  if (!mapping.missing.empty()) {
    throw ConfigError(fmt::format("the model needs channel{} {} which dataset '{}' lacks (it has: {})",
                                  mapping.missing.size() > 1 ? "s" : "", fmt::join(mapping.missing, ", "),
                                  dataset.path(), fmt::join(dataset.channel_names(), ", ")));
  }
  std::vector<int64_t> channel_rows;
  for (const auto& row : mapping.source) channel_rows.push_back(*row);
  std::vector<int64_t> roi_columns;
  std::vector<std::string> absent;
  for (const auto& roi : predictor.rois()) {
    const auto it = std::find(dataset.roi_names().begin(), dataset.roi_names().end(), roi);
    if (it == dataset.roi_names().end()) absent.push_back(roi);
    roi_columns.push_back(it - dataset.roi_names().begin());
  }
  if (!absent.empty()) {
    throw ConfigError(fmt::format("the model predicts ROI{} {} which dataset '{}' lacks (it has: {})",
                                  absent.size() > 1 ? "s" : "", fmt::join(absent, ", "), dataset.path(),
                                  fmt::join(dataset.roi_names(), ", ")));
  }

  const auto wanted = parse_split(split);
  std::vector<int64_t> windows;
  for (int64_t w = 0; w < dataset.num_windows(); ++w)
    if (!wanted || dataset.split_of(w) == *wanted) windows.push_back(w);
  if (windows.empty()) {
    throw ConfigError(fmt::format("dataset '{}' has no {} windows", dataset.path(), split));
  }

  const auto C = static_cast<int64_t>(channel_rows.size());
  const int64_t S = dataset.window_samples();
  const auto R = static_cast<int64_t>(roi_columns.size());
  std::vector<float> predicted(windows.size() * static_cast<std::size_t>(R));
  std::vector<float> target(predicted.size());
  std::vector<float> input(static_cast<std::size_t>(batch * C * S));
  for (std::size_t first = 0; first < windows.size(); first += static_cast<std::size_t>(batch)) {
    const std::vector<int64_t> chunk(windows.begin() + static_cast<std::ptrdiff_t>(first),
                                     windows.begin() + static_cast<std::ptrdiff_t>(
                                                           std::min(windows.size(), first + static_cast<std::size_t>(batch))));
    const Batch b = dataset.read_batch(chunk);
    const int64_t DC = b.num_channels;
    for (int64_t i = 0; i < b.size(); ++i)
      for (int64_t c = 0; c < C; ++c)
        std::copy_n(b.windows.data() + (i * DC + channel_rows[c]) * S, S, input.data() + (i * C + c) * S);
    predictor.predict(input.data(), b.size(), predicted.data() + first * static_cast<std::size_t>(R));
    for (int64_t i = 0; i < b.size(); ++i)
      for (int64_t r = 0; r < R; ++r)
        target[(first + static_cast<std::size_t>(i)) * static_cast<std::size_t>(R) + static_cast<std::size_t>(r)] =
            b.targets[i * b.num_rois + roi_columns[r]];
    if (progress) progress(static_cast<int64_t>(first) + b.size(), static_cast<int64_t>(windows.size()));
  }

  // One RunSeries per run, rows in volume order.
  std::map<int64_t, std::vector<std::size_t>> by_run;
  for (std::size_t i = 0; i < windows.size(); ++i) by_run[dataset.run_of(windows[i])].push_back(i);
  EvaluationInput input_out;
  input_out.rois = predictor.rois();
  input_out.protocol = to_string(dataset.split_mode());
  input_out.evaluated_split = wanted ? split : "";
  for (auto& [run, rows] : by_run) {
    std::sort(rows.begin(), rows.end(),
              [&](std::size_t a, std::size_t b) { return dataset.volume_of(windows[a]) < dataset.volume_of(windows[b]); });
    RunSeries s;
    s.run = dataset.run_names().at(static_cast<std::size_t>(run));
    s.subject = dataset.subject_of(windows[rows.front()]);
    s.rows = static_cast<int64_t>(rows.size());
    for (auto i : rows) {
      const Split label = dataset.split_of(windows[i]);
      s.row_splits.push_back(label == Split::excluded ? "" : to_string(label));
      s.time.push_back(dataset.onset_of(windows[i]));
      s.predicted.insert(s.predicted.end(), predicted.begin() + static_cast<std::ptrdiff_t>(i * R),
                         predicted.begin() + static_cast<std::ptrdiff_t>((i + 1) * R));
      s.target.insert(s.target.end(), target.begin() + static_cast<std::ptrdiff_t>(i * R),
                      target.begin() + static_cast<std::ptrdiff_t>((i + 1) * R));
    }
    input_out.runs.push_back(std::move(s));
  }
  return input_out;
}

EvalOutcome run_evaluation(const EvalJob& job, const std::function<void(const std::string&)>& note) {
  parse_split(job.split);
  // Outputs are checked before any work.
  if (!job.json_path.empty()) detail::check_writable_output(job.json_path, job.force);
  if (!job.report_path.empty()) detail::check_writable_output(job.report_path, job.force);

  EvalOutcome out;
  Evaluated model = evaluate_source(job.source, job, job.metrics, note);
  out.model = model.result;
  out.model_label = model.label;
  out.log = model.input.log;
  std::optional<Evaluated> baseline;
  if (!job.baseline.empty()) {
    baseline = evaluate_source(job.baseline, job, "auto", note);
    out.baseline = baseline->result;
    out.baseline_label = baseline->label;
    if (out.baseline_label == out.model_label) out.baseline_label += " (baseline)";
  }

  std::string summary = job.ceiling;
  if (summary == "auto") summary = model.bids_root.empty() ? std::string() : find_ceiling_summary(model.bids_root);
  if (!summary.empty() && summary != "none") {
    out.ceiling = read_noise_ceilings(summary, out.model.rois, evaluated_runs(out.model));
    out.ceiling_source = summary;
  }

  json provenance = parse_object(model.input.provenance_json);
  if (!job.json_path.empty()) {
    json j = json::parse(evaluation_json(out.model, provenance.dump()));
    j["label"] = out.model_label;
    if (baseline) {
      j["baseline"] = json::parse(evaluation_json(*out.baseline, baseline->input.provenance_json));
      j["baseline"]["label"] = out.baseline_label;
    }
    if (!out.ceiling.empty()) {
      json c = json::array();
      for (double x : out.ceiling) c.push_back(std::isfinite(x) ? json(x) : json(nullptr));
      j["noise_ceiling"] = {{"per_roi", c}, {"source", out.ceiling_source}};
    }
    detail::AtomicOutput file(job.json_path, job.force);
    file.write_all(j.dump(2) + "\n");
    file.commit();
  }
  if (!job.report_path.empty()) {
    ReportInput report;
    report.title = job.title;
    report.provenance = provenance_items(provenance.dump());
    report.model.label = out.model_label;
    report.model.evaluation = out.model;
    report.model.runs = model.input.runs;
    report.model.training = model.training;
    if (baseline) {
      ReportModel b;
      b.label = out.baseline_label;
      b.evaluation = *out.baseline;
      b.runs = baseline->input.runs;
      b.training = baseline->training;
      report.baseline = b;
    }
    report.noise_ceiling = out.ceiling;
    if (!out.ceiling.empty()) report.ceiling_label = "noise ceiling (simulation ground truth)";
    report.time_course_run = job.time_course_run;
    write_report(report, job.report_path, job.force);
  }
  return out;
}

std::string format_evaluation_table(const EvalOutcome& o) {
  const auto& rois = o.model.rois;
  std::size_t width = 4;
  for (const auto& r : rois) width = std::max(width, r.size());
  std::string out = fmt::format("{:<{}}  {:>7}  {:>7}  {:>7}  {:>6}", "ROI", width, "r", "MSE", "R2", "n");
  if (o.baseline) out += fmt::format("  {:>10}", "baseline r");
  if (!o.ceiling.empty()) out += fmt::format("  {:>8}", "ceiling");
  out += "\n";
  for (std::size_t i = 0; i < rois.size(); ++i) {
    const auto& m = o.model.per_roi[i];
    out += fmt::format("{:<{}}  {:>7}  {:>7}  {:>7}  {:>6}", rois[i], width, number(m.r), number(m.mse),
                       number(m.r2), m.n);
    if (o.baseline) {
      const auto& b = *o.baseline;
      const auto it = std::find(b.rois.begin(), b.rois.end(), rois[i]);
      out += fmt::format("  {:>10}", it == b.rois.end() ? "n/a" : number(b.per_roi[it - b.rois.begin()].r));
    }
    if (!o.ceiling.empty()) out += fmt::format("  {:>8}", number(o.ceiling[i]));
    out += "\n";
  }
  out += fmt::format("{}: mean r {} pooled over {} of {}, {} per run (split {})\n", o.model_label,
                     number(o.model.mean_r), count_of(o.model.num_rows, "row"), count_of(o.model.num_runs, "run"),
                     number(o.model.mean_run_r),
                     o.model.evaluated_split.empty() ? "all" : o.model.evaluated_split);
  if (o.baseline) {
    out += fmt::format("{}: mean r {} pooled, {} per run\n", o.baseline_label, number(o.baseline->mean_r),
                       number(o.baseline->mean_run_r));
  }
  if (!o.ceiling.empty()) {
    double sum = 0;
    int n = 0;
    for (double c : o.ceiling)
      if (std::isfinite(c)) sum += c, ++n;
    out += fmt::format("noise ceiling: mean {} ({})\n", n ? number(sum / n) : "n/a", o.ceiling_source);
  }
  return out;
}

}  // namespace neurobolt
