// Predictions written by `neurobolt infer`, paired with their BIDS targets; the simulator's noise
// ceilings (format and rules in evaluate.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/evaluate.hpp"
#include "neurobolt/roi.hpp"
#include "neurobolt/tsv.hpp"

namespace neurobolt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kPredictionSuffix = "_desc-neurobolt_timeseries.tsv";
constexpr double kTrTolerance = 0.01;  // relative

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// BIDS run indices compare as numbers: run-1 == run-01.
std::string index_value(const std::string& v) {
  if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) return v;
  const auto first = v.find_first_not_of('0');
  return first == std::string::npos ? "0" : v.substr(first);
}

std::string subject_label(std::string s) { return s.rfind("sub-", 0) == 0 ? s.substr(4) : s; }

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open '{}'", path.string()));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

json read_json(const fs::path& path) {
  try {
    return json::parse(read_text(path));
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw FormatError(fmt::format("'{}': invalid JSON ({})", path.string(), e.what()));
  }
}

bool same_path(const fs::path& a, const fs::path& b) {
  std::error_code ec1, ec2;
  const auto ca = fs::weakly_canonical(a, ec1);
  const auto cb = fs::weakly_canonical(b, ec2);
  return !ec1 && !ec2 && ca == cb;
}

// The sidecar of one prediction, read key by key with errors that name the file and the key.
struct Sidecar {
  double repetition_time = 0.0;
  double start_time = 0.0;
  std::string grid;
  std::vector<double> onsets;
  std::vector<std::string> rois;
  std::vector<double> mean, std;
  std::optional<double> lowpass_hz;
  int lowpass_order = 5;
  std::string checkpoint_path, checkpoint_sha256, checkpoint_arch;
  std::string software_version;
  std::string source;
};

class SidecarReader {
 public:
  explicit SidecarReader(const fs::path& path) : path_(path.string()), j_(read_json(path)) {
    if (!j_.is_object()) throw FormatError(fmt::format("'{}': expected a JSON object, found {}", path_, j_.type_name()));
  }
  const json& at(const json& object, const std::string& key, const std::string& dotted) const {
    if (!object.contains(key)) throw FormatError(fmt::format("'{}': key '{}' is missing", path_, dotted));
    return object.at(key);
  }
  [[noreturn]] void fail(const std::string& key, const char* expected, const json& found) const {
    std::string text = found.dump();
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    throw FormatError(fmt::format("'{}': key '{}': expected {}, found {}", path_, key, expected, text));
  }
  double number(const json& object, const std::string& key, const std::string& dotted) const {
    const json& v = at(object, key, dotted);
    if (!v.is_number()) fail(dotted, "a number", v);
    return v.get<double>();
  }
  std::string text(const json& object, const std::string& key, const std::string& dotted) const {
    const json& v = at(object, key, dotted);
    if (!v.is_string()) fail(dotted, "a string", v);
    return v.get<std::string>();
  }
  std::vector<double> numbers(const json& object, const std::string& key, const std::string& dotted) const {
    const json& v = at(object, key, dotted);
    if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_number(); })) {
      fail(dotted, "a list of numbers", v);
    }
    return v.get<std::vector<double>>();
  }
  std::vector<std::string> texts(const json& object, const std::string& key, const std::string& dotted) const {
    const json& v = at(object, key, dotted);
    if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); })) {
      fail(dotted, "a list of strings", v);
    }
    return v.get<std::vector<std::string>>();
  }
  const json& object(const json& parent, const std::string& key, const std::string& dotted) const {
    const json& v = at(parent, key, dotted);
    if (!v.is_object()) fail(dotted, "an object", v);
    return v;
  }

  Sidecar read() const {
    Sidecar s;
    s.repetition_time = number(j_, "RepetitionTime", "RepetitionTime");
    if (!(s.repetition_time > 0)) fail("RepetitionTime", "a number > 0 (seconds)", j_["RepetitionTime"]);
    s.start_time = number(j_, "StartTime", "StartTime");
    s.grid = text(j_, "Grid", "Grid");
    if (s.grid != "triggers" && s.grid != "tr" && s.grid != "stride") fail("Grid", "\"triggers\", \"tr\" or \"stride\"", j_["Grid"]);
    if (j_.contains("VolumeOnsets")) s.onsets = numbers(j_, "VolumeOnsets", "VolumeOnsets");
    const json& norm = object(j_, "TargetNormalisation", "TargetNormalisation");
    s.rois = texts(norm, "ROIs", "TargetNormalisation.ROIs");
    s.mean = numbers(norm, "Mean", "TargetNormalisation.Mean");
    s.std = numbers(norm, "Std", "TargetNormalisation.Std");
    for (const auto& [key, values] : {std::pair<const char*, const std::vector<double>*>{"Mean", &s.mean}, {"Std", &s.std}}) {
      if (values->size() != s.rois.size()) {
        throw FormatError(fmt::format("'{}': key 'TargetNormalisation.{}': expected {} values (one per ROI), found {}",
                                      path_, key, s.rois.size(), values->size()));
      }
    }
    for (std::size_t r = 0; r < s.std.size(); ++r) {
      if (!(s.std[r] > 0)) {
        throw FormatError(fmt::format("'{}': key 'TargetNormalisation.Std': expected values > 0, found {} for ROI '{}'",
                                      path_, s.std[r], s.rois[r]));
      }
    }
    const json& lowpass = at(norm, "LowpassHz", "TargetNormalisation.LowpassHz");
    if (!lowpass.is_null()) {
      if (!lowpass.is_number() || !(lowpass.get<double>() > 0)) {
        fail("TargetNormalisation.LowpassHz", "a number > 0 (Hz) or null", lowpass);
      }
      s.lowpass_hz = lowpass.get<double>();
      const json& order = at(norm, "LowpassOrder", "TargetNormalisation.LowpassOrder");
      if (!order.is_number_integer() || order.get<int64_t>() < 1 || order.get<int64_t>() > 20) {
        fail("TargetNormalisation.LowpassOrder", "an integer from 1 to 20", order);
      }
      s.lowpass_order = order.get<int>();
    }
    const json& checkpoint = object(j_, "Checkpoint", "Checkpoint");
    s.checkpoint_path = text(checkpoint, "Path", "Checkpoint.Path");
    s.checkpoint_sha256 = text(checkpoint, "SHA256", "Checkpoint.SHA256");
    s.checkpoint_arch = text(checkpoint, "Arch", "Checkpoint.Arch");
    s.software_version = text(j_, "SoftwareVersion", "SoftwareVersion");
    s.source = text(j_, "Source", "Source");
    return s;
  }

 private:
  std::string path_;
  json j_;
};

// The folders searched for targets when none is given: as `prepare` (prediction folders
// excepted), and never the prediction folder itself.
std::vector<std::string> default_derivatives(const fs::path& bids_root, const fs::path& pred_dir,
                                             std::vector<std::string>& log) {
  std::vector<std::string> skipped, out;
  for (auto& rel : target_derivatives(bids_root.string(), &skipped)) {
    if (same_path(bids_root / rel, pred_dir)) skipped.push_back(rel);
    else out.push_back(rel);
  }
  for (const auto& rel : skipped)
    log.push_back(fmt::format("derivatives folder '{}' not searched for targets: it holds predictions", rel));
  return out;
}

// The target as `prepare` makes it (process_target_series: ROIs in the sidecar's order, the same
// low-pass), then z-scored with the sidecar's statistics. volumes x ROIs.
std::vector<double> prepared_target(const TargetSeries& t, const Sidecar& s, const std::string& prediction,
                                    std::vector<std::string>& log) {
  std::vector<double> values;
  try {
    values = process_target_series(t, s.rois, s.lowpass_hz, s.lowpass_order, log);
  } catch (Error& e) {
    e.add_context(fmt::format("the target of prediction '{}'", prediction));
    throw;
  }
  const auto R = static_cast<int64_t>(s.rois.size());
  for (int64_t v = 0; v < t.num_volumes; ++v)
    for (int64_t r = 0; r < R; ++r) values[v * R + r] = (values[v * R + r] - s.mean[r]) / s.std[r];
  return values;
}

// The EEG run of a prediction: same sub, ses, task and run; acq decides between several.
const EegRun& find_run(const BidsDataset& dataset, const BidsFileName& name, const std::string& prediction,
                       const std::string& bids_root, const std::vector<std::string>& derivatives) {
  const BidsEntities want = name.core();
  std::vector<const EegRun*> found;
  for (const auto& run : dataset.runs) {
    const BidsEntities& e = run.entities;
    if (e.sub == want.sub && e.ses == want.ses && e.task == want.task && index_value(e.run) == index_value(want.run)) {
      found.push_back(&run);
    }
  }
  if (found.size() > 1) {
    std::vector<const EegRun*> same_acq;
    for (const auto* run : found)
      if (run->entities.acq == want.acq) same_acq.push_back(run);
    found = same_acq;
  }
  if (found.empty()) {
    throw ConfigError(fmt::format("prediction '{}': no EEG run with entities {} in '{}' (expected the BIDS dataset "
                                  "the predictions were made from)",
                                  prediction, want.to_string(), bids_root));
  }
  if (found.size() > 1) {
    std::vector<std::string> paths;
    for (const auto* run : found) paths.push_back(run->path);
    throw ConfigError(fmt::format("prediction '{}': {} EEG runs match its entities: {}", prediction, found.size(),
                                  fmt::join(paths, ", ")));
  }
  if (!found.front()->target) {
    throw ConfigError(fmt::format("prediction '{}': EEG run '{}' has no fMRI target (derivatives searched: {}; choose "
                                  "them with the BIDS options)",
                                  prediction, found.front()->path,
                                  derivatives.empty() ? "none" : fmt::format("{}", fmt::join(derivatives, ", "))));
  }
  return *found.front();
}

std::vector<fs::path> prediction_files(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && ends_with(it->path().filename().string(), kPredictionSuffix)) out.push_back(it->path());
  }
  if (ec) throw IoError(fmt::format("cannot list '{}': {}", dir.string(), ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

EvaluationInput evaluate_against_bids(const std::string& pred_dir, const std::string& bids_root,
                                      const BidsOptions& options, const std::vector<std::string>& subjects) {
  std::error_code ec;
  if (!fs::is_directory(pred_dir, ec)) {
    throw IoError(fmt::format("prediction folder '{}' does not exist or is not a folder", pred_dir));
  }
  if (!fs::is_directory(bids_root, ec)) {
    throw IoError(fmt::format("BIDS dataset '{}' does not exist or is not a folder", bids_root));
  }
  EvaluationInput input;
  if (!fs::exists(fs::path(pred_dir) / "dataset_description.json", ec)) {
    input.log.push_back(fmt::format("'{}' has no dataset_description.json", pred_dir));
  }
  const auto files = prediction_files(pred_dir);
  if (files.empty()) {
    throw ConfigError(fmt::format("prediction folder '{}': no *{} file (expected the output of neurobolt infer)",
                                  pred_dir, kPredictionSuffix));
  }
  std::set<std::string> wanted;
  for (const auto& s : subjects) wanted.insert(subject_label(s));

  struct Prediction {
    fs::path path;
    BidsFileName name;
  };
  std::vector<Prediction> selected;
  for (const auto& path : files) {
    const auto name = parse_bids_name(path.filename().string());
    if (!name || name->get("sub").empty()) {
      throw ConfigError(fmt::format("prediction '{}': its name has no BIDS entities (sub-XX_..._desc-neurobolt_"
                                    "timeseries.tsv), so no target in '{}' can be matched to it",
                                    path.string(), bids_root));
    }
    if (!wanted.empty() && !wanted.count(name->get("sub"))) continue;
    selected.push_back({path, *name});
  }
  if (selected.empty()) {
    throw ConfigError(fmt::format("prediction folder '{}': no prediction of subject{} {} ({} predictions in all)", pred_dir,
                                  wanted.size() > 1 ? "s" : "", fmt::join(wanted, ", "), files.size()));
  }

  BidsOptions bids = options;
  if (bids.derivatives.empty() && bids.atlas.empty()) bids.derivatives = default_derivatives(bids_root, pred_dir, input.log);
  BidsDataset dataset;
  try {
    dataset = index_bids(bids_root, bids);
  } catch (ConfigError& e) {
    if (options.derivatives.empty() && !bids.derivatives.empty()) {
      e.add_context(fmt::format("searching every derivatives folder for targets ({})", fmt::join(bids.derivatives, ", ")));
    }
    throw;
  }

  json pairs = json::array();
  std::string first_checkpoint_file;
  Sidecar first;
  for (const auto& p : selected) {
    const std::string prediction = p.path.string();
    std::string stem = p.path.filename().string();
    stem = stem.substr(0, stem.size() - 4);  // ".tsv"
    const fs::path sidecar_path = p.path.parent_path() / (stem + ".json");
    if (!fs::exists(sidecar_path, ec)) {
      throw IoError(fmt::format("prediction '{}': its sidecar '{}' is missing", prediction, sidecar_path.string()));
    }
    const Sidecar s = SidecarReader(sidecar_path).read();
    const TsvTable table = read_tsv(prediction);
    if (table.columns != s.rois) {
      throw FormatError(fmt::format("'{}': columns {} differ from TargetNormalisation.ROIs {} of '{}'", prediction,
                                    fmt::join(table.columns, ", "), fmt::join(s.rois, ", "), sidecar_path.string()));
    }
    if (first_checkpoint_file.empty()) {
      first = s;
      first_checkpoint_file = sidecar_path.string();
    } else if (s.rois != first.rois) {
      throw ConfigError(fmt::format("predictions with different ROIs: '{}' has {}, '{}' has {}", first_checkpoint_file,
                                    fmt::join(first.rois, ", "), sidecar_path.string(), fmt::join(s.rois, ", ")));
    } else if (s.checkpoint_sha256 != first.checkpoint_sha256) {
      throw ConfigError(fmt::format("predictions from different checkpoints: '{}' has SHA256 {}, '{}' has {}",
                                    first_checkpoint_file, first.checkpoint_sha256, sidecar_path.string(),
                                    s.checkpoint_sha256));
    }
    if (s.grid == "stride") {
      throw ConfigError(fmt::format("prediction '{}': Grid 'stride' (rows every {} s) is not aligned to fMRI volumes; "
                                    "evaluation needs Grid 'triggers' or 'tr' (run infer without --stride)",
                                    sidecar_path.string(), s.repetition_time));
    }

    const EegRun& run = find_run(dataset, p.name, prediction, bids_root, bids.derivatives);
    const TargetSeries& target = *run.target;
    if (std::fabs(s.repetition_time - target.repetition_time) > kTrTolerance * target.repetition_time) {
      throw ConfigError(fmt::format("prediction '{}' has RepetitionTime {} s, its target '{}' has {} s (they must agree "
                                    "within 1 %)",
                                    sidecar_path.string(), s.repetition_time, target.path, target.repetition_time));
    }
    const int64_t pred_rows = table.num_rows();
    int64_t rows = pred_rows;
    if (pred_rows != target.num_volumes) {
      if (s.grid == "triggers") {
        throw ConfigError(fmt::format("prediction '{}' has {} rows (one per volume trigger), its target '{}' has {} "
                                      "volumes",
                                      prediction, pred_rows, target.path, target.num_volumes));
      }
      rows = std::min(pred_rows, target.num_volumes);
      input.log.push_back(fmt::format("'{}': {} rows on the TR grid, target '{}': {} volumes; the first {} are compared",
                                      prediction, pred_rows, target.path, target.num_volumes, rows));
    }
    const auto z = prepared_target(target, s, prediction, input.log);

    const auto R = static_cast<int64_t>(s.rois.size());
    RunSeries series;
    series.run = run.entities.to_string();
    series.subject = run.entities.sub;
    series.rows = rows;
    series.repetition_time = s.repetition_time;
    series.prediction_path = prediction;
    series.target_path = target.path;
    series.predicted.resize(static_cast<std::size_t>(rows * R));
    series.target.resize(static_cast<std::size_t>(rows * R));
    for (int64_t k = 0; k < rows; ++k) {
      for (int64_t r = 0; r < R; ++r) {
        series.predicted[k * R + r] = static_cast<float>(table.number(k, r));
        series.target[k * R + r] = static_cast<float>(z[k * R + r]);
      }
      series.time.push_back(static_cast<int64_t>(s.onsets.size()) == pred_rows
                                ? s.onsets[k]
                                : s.start_time + static_cast<double>(k) * s.repetition_time);
    }
    pairs.push_back({{"run", series.run},
                     {"prediction", fs::absolute(p.path).lexically_normal().string()},
                     {"target", fs::absolute(target.path).lexically_normal().string()},
                     {"eeg", s.source},
                     {"grid", s.grid},
                     {"rows", rows}});
    input.runs.push_back(std::move(series));
  }
  input.rois = first.rois;
  json provenance{{"predictions", fs::absolute(pred_dir).lexically_normal().string()},
                  {"bids_root", fs::absolute(bids_root).lexically_normal().string()},
                  {"derivatives", bids.derivatives},
                  {"checkpoint", {{"path", first.checkpoint_path}, {"sha256", first.checkpoint_sha256}, {"arch", first.checkpoint_arch}}},
                  {"software_version", first.software_version},
                  {"target_lowpass_hz", first.lowpass_hz ? json(*first.lowpass_hz) : json(nullptr)},
                  {"target_lowpass_order", first.lowpass_order},
                  {"runs", pairs}};
  if (!wanted.empty()) provenance["subjects"] = std::vector<std::string>(wanted.begin(), wanted.end());
  input.provenance_json = provenance.dump();
  return input;
}

std::vector<double> read_noise_ceilings(const std::string& summary_tsv, const std::vector<std::string>& rois,
                                        const std::vector<std::string>& runs) {
  const TsvTable table = read_tsv(summary_tsv);
  const int64_t participant = table.require_column("participant_id");
  const int64_t session = table.find_column("session");
  const int64_t run_column = table.require_column("run");
  const int64_t roi_column = table.require_column("roi");
  const int64_t ceiling = table.require_column("realised_ceiling");

  // The sub, ses and run entities of each requested run name.
  struct Wanted {
    std::string name, sub, ses, run;
    bool found = false;
  };
  std::vector<Wanted> wanted;
  for (const auto& name : runs) {
    Wanted w{name, "", "", "", false};
    std::size_t start = 0;
    while (start <= name.size()) {
      const std::size_t end = std::min(name.find('_', start), name.size());
      const std::string part = name.substr(start, end - start);
      const auto dash = part.find('-');
      if (dash != std::string::npos) {
        const std::string key = part.substr(0, dash), value = part.substr(dash + 1);
        if (key == "sub") w.sub = value;
        if (key == "ses") w.ses = index_value(value);
        if (key == "run") w.run = index_value(value);
      }
      start = end + 1;
    }
    if (w.sub.empty()) {
      throw ConfigError(fmt::format("noise ceilings from '{}': run '{}' has no sub entity (expected a name like "
                                    "sub-01_task-rest_run-1)",
                                    summary_tsv, name));
    }
    wanted.push_back(std::move(w));
  }

  std::map<std::string, std::pair<double, int64_t>> sums;  // roi -> (sum, count)
  std::set<std::string> file_rois;
  for (int64_t i = 0; i < table.num_rows(); ++i) {
    const std::string roi = table.text(i, roi_column);
    file_rois.insert(roi);
    if (!wanted.empty()) {
      const std::string sub = subject_label(table.text(i, participant));
      const std::string ses = session >= 0 ? index_value(table.text(i, session)) : "";
      const std::string run = index_value(table.text(i, run_column));
      bool match = false;
      for (auto& w : wanted) {
        if (w.sub == sub && w.ses == ses && (w.run.empty() || w.run == run)) {
          w.found = true;
          match = true;
        }
      }
      if (!match) continue;
    }
    const double value = table.number(i, ceiling);
    if (std::isnan(value)) continue;
    auto& [sum, count] = sums[roi];
    sum += value;
    ++count;
  }
  for (const auto& w : wanted) {
    if (!w.found) {
      throw ConfigError(fmt::format("noise ceilings from '{}': no row for run '{}' (participant_id sub-{}{}, run {})",
                                    summary_tsv, w.name, w.sub, w.ses.empty() ? "" : ", session " + w.ses,
                                    w.run.empty() ? "any" : w.run));
    }
  }
  std::vector<double> out;
  for (const auto& roi : rois) {
    if (!file_rois.count(roi)) {
      throw ConfigError(fmt::format("noise ceilings from '{}': ROI '{}' is not in its 'roi' column (it has: {})",
                                    summary_tsv, roi, fmt::join(file_rois, ", ")));
    }
    const auto it = sums.find(roi);
    out.push_back(it == sums.end() || it->second.second == 0 ? std::numeric_limits<double>::quiet_NaN()
                                                             : it->second.first / static_cast<double>(it->second.second));
  }
  return out;
}

}  // namespace neurobolt
