// Grouped evaluation (per run, subject and split), its JSON form and split labelling
// (definitions in evaluate.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/evaluate.hpp"

namespace neurobolt {
namespace {

using nlohmann::json;

const std::vector<std::string> kSplits{"train", "val", "test"};

bool known_split(const std::string& s) { return s.empty() || std::find(kSplits.begin(), kSplits.end(), s) != kSplits.end(); }

void validate(const EvaluationInput& in) {
  if (in.rois.empty()) throw ConfigError("evaluate: no ROIs given (expected the ROI names of the predictions)");
  const auto R = static_cast<int64_t>(in.rois.size());
  std::set<std::string> names;
  for (const auto& run : in.runs) {
    const auto expect = [&](const char* field, std::size_t found, int64_t wanted, bool may_be_empty) {
      if (static_cast<int64_t>(found) == wanted || (may_be_empty && found == 0)) return;
      throw ConfigError(fmt::format("evaluate: run '{}': {} has {} values, expected {} ({} rows{})", run.run, field,
                                    found, wanted, run.rows, may_be_empty ? " or none" : fmt::format(" x {} ROIs", R)));
    };
    if (run.rows < 0) throw ConfigError(fmt::format("evaluate: run '{}': rows must be >= 0, found {}", run.run, run.rows));
    expect("predicted", run.predicted.size(), run.rows * R, false);
    expect("target", run.target.size(), run.rows * R, false);
    expect("time", run.time.size(), run.rows, true);
    expect("row_splits", run.row_splits.size(), run.rows, true);
    if (!known_split(run.split)) {
      throw ConfigError(fmt::format("evaluate: run '{}': split '{}' is not train, val, test or empty", run.run, run.split));
    }
    for (std::size_t k = 0; k < run.row_splits.size(); ++k) {
      if (!known_split(run.row_splits[k])) {
        throw ConfigError(fmt::format("evaluate: run '{}': row_splits[{}] = '{}' is not train, val, test or empty",
                                      run.run, k, run.row_splits[k]));
      }
    }
    if (!names.insert(run.run).second) throw ConfigError(fmt::format("evaluate: run '{}' is given twice", run.run));
  }
  if (!known_split(in.evaluated_split)) {
    throw ConfigError(fmt::format("evaluate: evaluated split '{}' is not train, val, test or empty", in.evaluated_split));
  }
}

// Rows gathered from several runs into one [rows, R] pair of arrays.
struct Pool {
  explicit Pool(int64_t num_rois) : rois(num_rois) {}
  int64_t rois = 0;
  std::vector<float> predicted, target;
  int64_t rows = 0;
  std::set<const RunSeries*> runs;

  void add(const RunSeries& run, int64_t k) {
    predicted.insert(predicted.end(), run.predicted.begin() + k * rois, run.predicted.begin() + (k + 1) * rois);
    target.insert(target.end(), run.target.begin() + k * rois, run.target.begin() + (k + 1) * rois);
    ++rows;
    runs.insert(&run);
  }
  GroupMetrics metrics(std::string name) const {
    GroupMetrics g;
    g.name = std::move(name);
    g.runs = static_cast<int64_t>(runs.size());
    g.rows = rows;
    g.per_roi = roi_metrics(predicted.data(), target.data(), rows, rois);
    g.mean_r = mean_r(g.per_roi);
    return g;
  }
};

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json roi_array(const std::vector<std::string>& rois, const std::vector<RoiMetrics>& metrics) {
  json out = json::array();
  for (std::size_t r = 0; r < metrics.size(); ++r) {
    const auto& m = metrics[r];
    json j{{"roi", rois[r]}, {"r", number(m.r)}, {"mse", number(m.mse)}, {"r2", number(m.r2)}, {"n", m.n}};
    if (!m.note.empty()) j["note"] = m.note;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

EvaluationResult evaluate(const EvaluationInput& input) {
  validate(input);
  const auto R = static_cast<int64_t>(input.rois.size());
  EvaluationResult result;
  result.protocol = input.protocol;
  result.evaluated_split = input.evaluated_split;
  result.rois = input.rois;

  Pool all(R);
  std::map<std::string, Pool> subjects;
  std::map<std::string, Pool> splits;
  std::vector<double> run_means;
  for (const auto& run : input.runs) {
    Pool own(R);
    for (int64_t k = 0; k < run.rows; ++k) {
      const std::string& split = run.split_of(k);
      if (!split.empty()) {
        auto it = splits.try_emplace(split, Pool(R)).first;
        it->second.add(run, k);
      }
      if (!input.evaluated_split.empty() && split != input.evaluated_split) continue;
      own.add(run, k);
      all.add(run, k);
      subjects.try_emplace(run.subject, Pool(R)).first->second.add(run, k);
    }
    if (own.rows == 0) continue;
    GroupMetrics g = own.metrics(run.run);
    g.subject = run.subject;
    g.split = run.split;
    if (!std::isnan(g.mean_r)) run_means.push_back(g.mean_r);
    result.per_run.push_back(std::move(g));
  }
  const GroupMetrics pooled = all.metrics("all");
  result.per_roi = pooled.per_roi;
  result.mean_r = pooled.mean_r;
  if (!run_means.empty()) {
    double sum = 0.0;
    for (double v : run_means) sum += v;
    result.mean_run_r = sum / static_cast<double>(run_means.size());
  }
  for (const auto& [subject, pool] : subjects) result.per_subject.push_back(pool.metrics(subject));
  for (const auto& split : kSplits) {
    const auto it = splits.find(split);
    if (it != splits.end()) result.per_split.push_back(it->second.metrics(split));
  }
  result.num_runs = static_cast<int64_t>(result.per_run.size());
  result.num_subjects = static_cast<int64_t>(result.per_subject.size());
  result.num_rows = all.rows;
  return result;
}

std::string evaluation_json(const EvaluationResult& result, const std::string& provenance_json) {
  json provenance;
  try {
    provenance = json::parse(provenance_json.empty() ? "{}" : provenance_json);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw FormatError(fmt::format("evaluation provenance: expected a JSON object, found invalid JSON ({})", e.what()));
  }
  if (!provenance.is_object()) {
    throw FormatError(fmt::format("evaluation provenance: expected a JSON object, found {}", provenance.type_name()));
  }
  json per_run = json::array();
  for (const auto& g : result.per_run) {
    per_run.push_back({{"run", g.name},
                       {"subject", g.subject},
                       {"split", g.split},
                       {"rows", g.rows},
                       {"mean_r", number(g.mean_r)},
                       {"per_roi", roi_array(result.rois, g.per_roi)}});
  }
  json per_subject = json::array();
  for (const auto& g : result.per_subject) {
    per_subject.push_back({{"subject", g.name},
                           {"runs", g.runs},
                           {"rows", g.rows},
                           {"mean_r", number(g.mean_r)},
                           {"per_roi", roi_array(result.rois, g.per_roi)}});
  }
  json per_split = json::array();
  for (const auto& g : result.per_split) {
    per_split.push_back({{"split", g.name},
                         {"runs", g.runs},
                         {"rows", g.rows},
                         {"mean_r", number(g.mean_r)},
                         {"per_roi", roi_array(result.rois, g.per_roi)}});
  }
  json out = json::object();
  out["protocol"] = result.protocol;
  out["evaluated_split"] = result.evaluated_split;
  out["mean_r"] = number(result.mean_r);
  out["mean_run_r"] = number(result.mean_run_r);
  out["rois"] = result.rois;
  out["per_roi"] = roi_array(result.rois, result.per_roi);
  out["per_run"] = std::move(per_run);
  out["per_subject"] = std::move(per_subject);
  out["per_split"] = std::move(per_split);
  out["counts"] = {{"runs", result.num_runs}, {"subjects", result.num_subjects}, {"rows", result.num_rows}};
  out["provenance"] = std::move(provenance);
  return out.dump(2) + "\n";
}

void label_splits(EvaluationInput& input, const DatasetReader& dataset) {
  std::map<std::string, int64_t> run_index;
  for (std::size_t i = 0; i < dataset.run_names().size(); ++i) run_index[dataset.run_names()[i]] = static_cast<int64_t>(i);
  // (run, volume) -> split of its window.
  std::map<std::pair<int64_t, int64_t>, Split> window_split;
  for (int64_t w = 0; w < dataset.num_windows(); ++w) window_split[{dataset.run_of(w), dataset.volume_of(w)}] = dataset.split_of(w);
  for (auto& run : input.runs) {
    const auto it = run_index.find(run.run);
    run.split.clear();
    run.row_splits.assign(static_cast<std::size_t>(run.rows), "");
    if (it == run_index.end()) {
      input.log.push_back(fmt::format("run '{}' is not in the dataset '{}': its rows have no split", run.run, dataset.path()));
      continue;
    }
    for (int64_t k = 0; k < run.rows; ++k) {
      const auto w = window_split.find({it->second, k});
      if (w == window_split.end() || w->second == Split::excluded) continue;
      run.row_splits[k] = to_string(w->second);
    }
  }
}

void label_splits_from_record(EvaluationInput& input, const std::string& dataset_record_json) {
  const std::string source = "checkpoint dataset record";
  json record;
  try {
    record = json::parse(dataset_record_json);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw FormatError(fmt::format("{}: invalid JSON ({})", source, e.what()));
  }
  const auto field = [&](const json& object, const char* key, const char* path) -> const json& {
    if (!object.is_object() || !object.contains(key)) {
      throw FormatError(fmt::format("{}: key '{}' is missing", source, path));
    }
    return object.at(key);
  };
  const json& mode_value = field(record, "split_mode", "split_mode");
  if (!mode_value.is_string()) throw FormatError(fmt::format("{}: key 'split_mode': expected a string, found {}", source, mode_value.dump()));
  const SplitMode mode = parse_split_mode(mode_value.get<std::string>());
  const json& parameters = field(record, "parameters", "parameters");
  const json& split = field(parameters, "split", "parameters.split");
  const auto number_at = [&](const json& object, const char* key, const char* path) {
    const json& v = field(object, key, path);
    if (!v.is_number()) throw FormatError(fmt::format("{}: key '{}': expected a number, found {}", source, path, v.dump()));
    return v.get<double>();
  };
  const auto subjects_at = [&](const char* key, const char* path) {
    const json& v = field(split, key, path);
    std::set<std::string> out;
    if (!v.is_array()) throw FormatError(fmt::format("{}: key '{}': expected a list of subjects, found {}", source, path, v.dump()));
    for (const auto& s : v) {
      if (!s.is_string()) throw FormatError(fmt::format("{}: key '{}': expected a list of subjects, found {}", source, path, v.dump()));
      std::string label = s.get<std::string>();
      if (label.rfind("sub-", 0) == 0) label = label.substr(4);
      out.insert(label);
    }
    return out;
  };

  if (mode == SplitMode::intra_run) {
    SplitSpec spec;
    spec.mode = mode;
    spec.train_fraction = number_at(split, "train_fraction", "parameters.split.train_fraction");
    spec.val_fraction = number_at(split, "val_fraction", "parameters.split.val_fraction");
    spec.min_gap_seconds = number_at(split, "min_gap_seconds", "parameters.split.min_gap_seconds");
    const double window_seconds = number_at(parameters, "window_seconds", "parameters.window_seconds");
    for (auto& run : input.runs) {
      if (!(run.repetition_time > 0)) {
        throw ConfigError(fmt::format("run '{}': the intra-run split needs the repetition time between rows, found {}",
                                      run.run, run.repetition_time));
      }
      const auto R = static_cast<int64_t>(input.rois.size());
      // The rows that had a window, in time order, are the run's windows in the prepared data.
      std::vector<int64_t> windows;
      for (int64_t k = 0; k < run.rows; ++k) {
        const auto begin = run.predicted.begin() + k * R;
        if (!std::all_of(begin, begin + R, [](float v) { return std::isnan(v); })) windows.push_back(k);
      }
      const auto labels =
          intra_run_split(static_cast<int64_t>(windows.size()), run.repetition_time, window_seconds, spec);
      run.split.clear();
      run.row_splits.assign(static_cast<std::size_t>(run.rows), "");
      for (std::size_t i = 0; i < windows.size(); ++i) {
        if (labels[i] != Split::excluded) run.row_splits[windows[i]] = to_string(labels[i]);
      }
    }
    return;
  }
  if (mode == SplitMode::cross_subject) {
    const auto val = subjects_at("val_subjects", "parameters.split.val_subjects");
    const auto test = subjects_at("test_subjects", "parameters.split.test_subjects");
    if (val.empty() && test.empty()) {
      throw ConfigError(fmt::format("{}: the cross-subject split was drawn by subject fractions, which needs the "
                                    "dataset's subject list: label the splits from the prepared dataset file",
                                    source));
    }
    for (auto& run : input.runs) {
      run.row_splits.clear();
      run.split = test.count(run.subject) ? "test" : val.count(run.subject) ? "val" : "train";
    }
    return;
  }
  throw ConfigError(fmt::format("{}: kfold splits need the dataset's subject list: label the splits from the prepared "
                                "dataset file",
                                source));
}

}  // namespace neurobolt
