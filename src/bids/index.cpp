#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_set>

#include "core/plural.hpp"
#include "neurobolt/bids.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/tsv.hpp"

namespace neurobolt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::set<std::string> kEegDataExtensions = {".edf", ".bdf", ".vhdr", ".set"};
// Companions of EEG data files and sidecars: not runs, not worth a log line.
const std::set<std::string> kEegCompanionExtensions = {".json", ".eeg", ".vmrk", ".fdt", ".dat"};

// Run indices compare as numbers: run-1 == run-01.
std::string normalized_value(const std::string& key, const std::string& value) {
  const auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  if (key != "run" || value.empty() || !std::all_of(value.begin(), value.end(), digit)) return value;
  const std::size_t first = value.find_first_not_of('0');
  return first == std::string::npos ? "0" : value.substr(first);
}

bool same_value(const std::string& key, const std::string& a, const std::string& b) {
  return normalized_value(key, a) == normalized_value(key, b);
}

bool is_subset(const BidsFileName& meta, const BidsFileName& data) {
  for (const auto& [key, value] : meta.entities) {
    const std::string other = data.get(key);
    if (other.empty() || !same_value(key, value, other)) return false;
  }
  return true;
}

// The matching rule of EEG runs and targets (see bids.hpp).
bool same_recording(const BidsFileName& a, const BidsFileName& b) {
  for (const char* key : {"sub", "ses", "task", "run"})
    if (!same_value(key, a.get(key), b.get(key))) return false;
  return true;
}

json read_json_object(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open JSON file '{}' for reading", path.string()));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  json value;
  try {
    value = json::parse(buffer.str());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw FormatError(fmt::format("'{}': invalid JSON: {}", path.string(), e.what()));
  }
  if (!value.is_object())
    throw FormatError(
        fmt::format("'{}': expected a JSON object at the top level, found {}", path.string(), value.type_name()));
  return value;
}

// JSON sidecars merged by the inheritance principle, remembering which file gave each key.
struct MergedJson {
  json value = json::object();
  std::map<std::string, std::string> origin;
  std::vector<std::string> sources;

  void add(const fs::path& path) {
    const json object = read_json_object(path);
    for (auto it = object.begin(); it != object.end(); ++it) {
      value[it.key()] = it.value();
      origin[it.key()] = path.string();
    }
    sources.push_back(path.string());
  }
  bool has(const std::string& key) const { return value.contains(key) && !value.at(key).is_null(); }

  std::string field(const std::string& key) const { return fmt::format("'{}' field {}", origin.at(key), key); }
  // A positive number; 0 when absent (or "n/a" when allowed).
  double positive_number(const std::string& key, bool allow_na = false) const {
    if (!has(key)) return 0.0;
    const json& v = value.at(key);
    if (allow_na && v.is_string() && v.get<std::string>() == "n/a") return 0.0;
    if (v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() > 0.0) return v.get<double>();
    throw FormatError(
        fmt::format("{}: expected a positive number{}, found {}", field(key), allow_na ? " or \"n/a\"" : "", v.dump()));
  }
  double number(const std::string& key) const {
    if (!has(key)) return 0.0;
    const json& v = value.at(key);
    if (v.is_number() && std::isfinite(v.get<double>())) return v.get<double>();
    throw FormatError(fmt::format("{}: expected a number, found {}", field(key), v.dump()));
  }
  std::string text(const std::string& key) const {
    if (!has(key)) return {};
    const json& v = value.at(key);
    if (!v.is_string()) throw FormatError(fmt::format("{}: expected a string, found {}", field(key), v.dump()));
    return v.get<std::string>();
  }
};

struct Candidate {
  fs::path path;
  fs::path base;  // the dataset root or derivatives folder it was found in
  BidsFileName name;
  bool nifti = false;
};

class Indexer {
 public:
  Indexer(const fs::path& root, const BidsOptions& options, BidsDataset& dataset)
      : root_(root), options_(options), dataset_(dataset) {}

  void run() {
    read_description();
    for (const auto& eeg_dir : modality_dirs(root_, "eeg"))
      for (const auto& file : list_files(eeg_dir)) add_run(eeg_dir, file);
    if (options_.find_targets) match_targets();
  }

 private:
  std::string rel(const fs::path& path) const {
    const fs::path r = path.lexically_relative(root_);
    return r.empty() || *r.begin() == ".." ? path.string() : r.string();
  }
  void log(std::string line) { dataset_.log.push_back(std::move(line)); }

  const std::vector<fs::path>& list_files(const fs::path& dir) {
    auto it = listings_.find(dir);
    if (it != listings_.end()) return it->second;
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_directory(dir, ec))
      for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.is_regular_file(ec)) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return listings_.emplace(dir, std::move(files)).first->second;
  }

  static std::vector<fs::path> subdirs(const fs::path& dir, const std::string& prefix) {
    std::vector<fs::path> dirs;
    std::error_code ec;
    if (fs::is_directory(dir, ec))
      for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.is_directory(ec) && entry.path().filename().string().rfind(prefix, 0) == 0)
          dirs.push_back(entry.path());
    std::sort(dirs.begin(), dirs.end());
    return dirs;
  }

  // base/sub-*/<modality> and base/sub-*/ses-*/<modality>, where they exist.
  static std::vector<fs::path> modality_dirs(const fs::path& base, const std::string& modality) {
    std::vector<fs::path> dirs;
    std::error_code ec;
    for (const auto& sub : subdirs(base, "sub-")) {
      if (fs::is_directory(sub / modality, ec)) dirs.push_back(sub / modality);
      for (const auto& ses : subdirs(sub, "ses-"))
        if (fs::is_directory(ses / modality, ec)) dirs.push_back(ses / modality);
    }
    return dirs;
  }

  // The folders from `base` down to `dir`, outermost first.
  static std::vector<fs::path> folder_chain(const fs::path& base, const fs::path& dir) {
    std::vector<fs::path> chain{base};
    fs::path current = base;
    for (const auto& part : dir.lexically_relative(base)) {
      if (part == ".") continue;
      current /= part;
      chain.push_back(current);
    }
    return chain;
  }

  // Whether the sub (and ses) entities of a file agree with the folders it sits in.
  static std::string folder_mismatch(const fs::path& base, const fs::path& dir, const BidsFileName& name) {
    std::string folder_sub, folder_ses;
    for (const auto& part : dir.lexically_relative(base)) {
      const std::string s = part.string();
      if (s.rfind("sub-", 0) == 0) folder_sub = s.substr(4);
      if (s.rfind("ses-", 0) == 0) folder_ses = s.substr(4);
    }
    if (name.get("sub") != folder_sub)
      return fmt::format("the file name says sub-{} but it is in folder sub-{}", name.get("sub"), folder_sub);
    if (name.get("ses") != folder_ses)
      return fmt::format("the file name says {} but it is in {}",
                         name.get("ses").empty() ? "no session" : "ses-" + name.get("ses"),
                         folder_ses.empty() ? "no session folder" : "folder ses-" + folder_ses);
    return {};
  }

  // Metadata files that apply to a data file by the inheritance principle, outermost first.
  std::vector<fs::path> applicable(const std::vector<fs::path>& chain, const BidsFileName& data,
                                   const std::string& suffix, const std::string& extension, const fs::path& data_path) {
    std::vector<fs::path> result;
    for (const auto& dir : chain) {
      std::vector<std::pair<std::size_t, fs::path>> found;
      for (const auto& file : list_files(dir)) {
        const auto name = parse_bids_name(file.filename().string());
        if (!name || name->suffix != suffix || name->extension != extension || !is_subset(*name, data)) continue;
        found.emplace_back(name->entities.size(), file);
      }
      std::sort(found.begin(), found.end());
      for (std::size_t i = 1; i < found.size(); ++i)
        if (found[i].first == found[i - 1].first)
          throw FormatError(
              fmt::format("'{}' and '{}' both apply to '{}' from the same folder with as many "
                          "entities; BIDS allows only one",
                          rel(found[i - 1].second), rel(found[i].second), rel(data_path)));
      for (auto& [count, file] : found) result.push_back(std::move(file));
    }
    return result;
  }

  MergedJson merged_sidecar(const std::vector<fs::path>& files) {
    MergedJson merged;
    for (const auto& file : files) merged.add(file);
    return merged;
  }

  void read_description() {
    const fs::path path = root_ / "dataset_description.json";
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      log("no dataset_description.json at the dataset root");
      return;
    }
    MergedJson description;
    description.add(path);
    dataset_.name = description.text("Name");
  }

  void add_run(const fs::path& dir, const fs::path& file) {
    const std::string filename = file.filename().string();
    const auto name = parse_bids_name(filename);
    if (!name) {
      if (filename.find("_eeg.") != std::string::npos)
        log(fmt::format("skipped '{}': not a valid BIDS file name (key-value entities, then a suffix)", rel(file)));
      return;
    }
    if (name->suffix != "eeg" || kEegCompanionExtensions.count(name->extension)) return;
    if (!kEegDataExtensions.count(name->extension)) {
      log(fmt::format("skipped '{}': EEG format '{}' is not supported (expected .edf, .bdf, .vhdr or .set)", rel(file),
                      name->extension));
      return;
    }
    if (const auto mismatch = folder_mismatch(root_, dir, *name); !mismatch.empty()) {
      log(fmt::format("skipped '{}': {}", rel(file), mismatch));
      return;
    }
    if (name->get("task").empty()) log(fmt::format("'{}' has no task entity (BIDS requires one)", rel(file)));

    EegRun run;
    run.path = file.string();
    run.entities = name->core();
    const auto chain = folder_chain(root_, dir);

    const auto sidecars = applicable(chain, *name, "eeg", ".json", file);
    if (sidecars.empty()) log(fmt::format("'{}': no _eeg.json sidecar applies", rel(file)));
    const MergedJson sidecar = merged_sidecar(sidecars);
    run.sidecar.sources = sidecar.sources;
    run.sidecar.json = sidecar.value.dump();
    run.sidecar.task_name = sidecar.text("TaskName");
    run.sidecar.sampling_frequency = sidecar.positive_number("SamplingFrequency");
    run.sidecar.power_line_frequency = sidecar.positive_number("PowerLineFrequency", true);
    run.sidecar.eeg_reference = sidecar.text("EEGReference");
    if (!sidecars.empty() && !sidecar.has("SamplingFrequency"))
      log(fmt::format("'{}': the sidecar has no SamplingFrequency", rel(file)));

    const auto channels = applicable(chain, *name, "channels", ".tsv", file);
    if (channels.empty()) {
      log(fmt::format("'{}': no _channels.tsv applies; channel types come from the EEG file", rel(file)));
    } else {
      run.channels_path = channels.back().string();
      read_channels(run);
    }
    const auto events = applicable(chain, *name, "events", ".tsv", file);
    if (!events.empty()) {
      run.events_path = events.back().string();
      read_events(run);
    }
    dataset_.runs.push_back(std::move(run));
  }

  void read_channels(EegRun& run) {
    const TsvTable table = read_tsv(run.channels_path);
    const int64_t name_col = table.require_column("name");
    const int64_t type_col = table.require_column("type");
    const int64_t units_col = table.find_column("units");
    const int64_t status_col = table.find_column("status");
    const int64_t description_col = table.find_column("status_description");
    std::unordered_set<std::string> seen;
    for (int64_t r = 0; r < table.num_rows(); ++r) {
      BidsChannel channel;
      channel.name = table.text(r, name_col);
      if (channel.name.empty())
        throw FormatError(fmt::format("{}: expected a channel name, found none", table.where(r, name_col)));
      if (!seen.insert(channel.name).second)
        throw FormatError(fmt::format("{}: channel '{}' is listed twice", table.where(r, name_col), channel.name));
      channel.type = table.text(r, type_col);
      if (units_col >= 0) channel.units = table.text(r, units_col);
      if (description_col >= 0) channel.status_description = table.text(r, description_col);
      if (status_col >= 0) {
        std::string status = table.text(r, status_col);
        std::transform(status.begin(), status.end(), status.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (!status.empty() && status != "good" && status != "bad")
          throw FormatError(fmt::format("{}: expected good, bad or n/a, found '{}'", table.where(r, status_col),
                                        table.rows[r][status_col]));
        channel.status = status;
      }
      if (channel.status == "bad") {
        log(fmt::format("'{}': channel '{}' excluded (status bad{})", rel(run.path), channel.name,
                        channel.status_description.empty() ? "" : ": " + channel.status_description));
        run.bad_channels.push_back(channel.name);
        continue;
      }
      run.channels.push_back(std::move(channel));
    }
  }

  void read_events(EegRun& run) {
    const TsvTable table = read_tsv(run.events_path);
    const int64_t onset_col = table.require_column("onset");
    const int64_t duration_col = table.require_column("duration");
    const int64_t trial_type_col = table.find_column("trial_type");
    const int64_t value_col = table.find_column("value");
    for (int64_t r = 0; r < table.num_rows(); ++r) {
      BidsEvent event;
      event.onset = table.number(r, onset_col);
      if (std::isnan(event.onset))
        throw FormatError(fmt::format("{}: expected an onset in seconds, found n/a", table.where(r, onset_col)));
      event.duration = table.number(r, duration_col);
      if (event.duration < 0)
        throw FormatError(fmt::format("{}: expected a duration >= 0 s or n/a, found {}", table.where(r, duration_col),
                                      table.rows[r][duration_col]));
      if (trial_type_col >= 0) event.trial_type = table.text(r, trial_type_col);
      if (value_col >= 0) event.value = table.text(r, value_col);
      run.events.push_back(std::move(event));
    }
  }

  bool wanted_target(const BidsFileName& name) const {
    for (const auto& [key, value] : options_.target_entities)
      if (!same_value(key, name.get(key), value)) return false;
    return true;
  }

  static bool is_confounds(const BidsFileName& name) {
    return name.get("desc") == "confounds" && (name.suffix == "timeseries" || name.suffix == "regressors") &&
           name.extension == ".tsv";
  }

  std::vector<fs::path> derivative_folders() const {
    std::vector<fs::path> folders;
    for (const auto& d : options_.derivatives) {
      fs::path folder = fs::path(d).is_absolute() ? fs::path(d) : root_ / d;
      folder = folder.lexically_normal();
      if (!folder.empty() && !folder.has_filename()) folder = folder.parent_path();  // trailing slash
      std::error_code ec;
      if (!fs::is_directory(folder, ec))
        throw IoError(fmt::format("derivatives folder '{}' does not exist or is not a folder", folder.string()));
      if (std::find(folders.begin(), folders.end(), folder) == folders.end()) folders.push_back(folder);
    }
    return folders;
  }

  std::vector<Candidate> find_candidates(const std::vector<fs::path>& derivatives) {
    std::vector<Candidate> candidates;
    int64_t filtered = 0;
    // What the files left out by --target-entity carry instead: key -> values ("none": no such entity).
    std::map<std::string, std::set<std::string>> found_values;
    bool truth_folder = false;
    const auto scan = [&](const fs::path& base, bool want_tsv, bool want_nifti) {
      truth_folder = false;
      // A simulation's ground truth (noiseless BOLD, drives, band powers) is no target unless a
      // desc entity picks one of its series.
      if (base != root_ && options_.target_entities.count("desc") == 0 && is_simulation_truth_folder(base.string())) {
        log(fmt::format("'{}' is simulation ground truth: its time series are targets only with a desc entity "
                        "(e.g. desc=noiseless)",
                        rel(base)));
        want_tsv = false;
        truth_folder = true;
      }
      for (const auto& func : modality_dirs(base, "func"))
        for (const auto& file : list_files(func)) {
          const auto name = parse_bids_name(file.filename().string());
          if (!name) continue;
          const bool tsv = want_tsv && name->suffix == options_.target_suffix && name->extension == ".tsv";
          const bool nifti =
              want_nifti && name->suffix == "bold" && (name->extension == ".nii" || name->extension == ".nii.gz");
          if (!tsv && !nifti) continue;
          if (tsv && is_confounds(*name)) {
            log(fmt::format("'{}' is not a target: confounds", rel(file)));
            continue;
          }
          if (const auto mismatch = folder_mismatch(base, func, *name); !mismatch.empty()) {
            log(fmt::format("skipped target '{}': {}", rel(file), mismatch));
            continue;
          }
          if (!wanted_target(*name)) {
            ++filtered;
            for (const auto& [key, value] : options_.target_entities) {
              const auto has = name->get(key);
              found_values[key].insert(has.empty() ? std::string("none") : std::string(has));
            }
            continue;
          }
          candidates.push_back(Candidate{file, base, *name, nifti});
        }
    };
    const bool with_atlas = !options_.atlas.empty();
    if (with_atlas) scan(root_, false, true);
    for (const auto& folder : derivatives) {
      const std::size_t before = candidates.size();
      const int64_t filtered_before = filtered;
      scan(folder, true, with_atlas);
      if (candidates.size() == before && filtered == filtered_before && !truth_folder)
        log(
            fmt::format("derivatives folder '{}' holds no target under sub-*/[ses-*/]func (expected a pipeline "
                        "folder such as derivatives/<pipeline>)",
                        rel(folder)));
    }
    if (filtered > 0) {
      // The likeliest reason nothing matched: first in the log.
      std::vector<std::string> wanted, found;
      for (const auto& [key, value] : options_.target_entities) {
        wanted.push_back(key + "=" + value);
        found.push_back(fmt::format("{}: {}", key, fmt::join(found_values[key], ", ")));
      }
      dataset_.log.insert(dataset_.log.begin(),
                          fmt::format("{} left out for lacking {} (they have {})",
                                      count_of(filtered, "possible target file"), fmt::join(wanted, " "),
                                      fmt::join(found, "; ")));
    }
    return candidates;
  }

  // The raw dataset's _bold.json metadata for a target's entities (whether or not a raw BOLD
  // image exists): sidecars from the root down to sub-*/[ses-*/]func.
  MergedJson raw_bold_sidecar(const BidsFileName& name) {
    fs::path func = root_ / ("sub-" + name.get("sub"));
    if (!name.get("ses").empty()) func /= "ses-" + name.get("ses");
    func /= "func";
    return merged_sidecar(applicable(folder_chain(root_, func), name, "bold", ".json", func));
  }

  // RepetitionTime and StartTime of a target from its own sidecar, else the raw _bold.json.
  void set_timing(TargetSeries& series, const Candidate& candidate, const std::string& suffix) {
    const auto chain = folder_chain(candidate.base, candidate.path.parent_path());
    const MergedJson own = merged_sidecar(applicable(chain, candidate.name, suffix, ".json", candidate.path));
    series.start_time = own.number("StartTime");
    const double header_tr = series.repetition_time;
    double tr = own.positive_number("RepetitionTime");
    if (tr <= 0.0 && candidate.base != root_) {
      const MergedJson raw = raw_bold_sidecar(candidate.name);
      tr = raw.positive_number("RepetitionTime");
      if (tr > 0.0)
        log(fmt::format("'{}': RepetitionTime {} s taken from '{}'", rel(candidate.path), tr,
                        rel(raw.origin.at("RepetitionTime"))));
    }
    if (tr > 0.0) {
      if (header_tr > 0.0 && std::fabs(header_tr - tr) > 1e-3 * tr)
        log(fmt::format("'{}': the NIfTI header gives a repetition time of {} s, the sidecar {} s; using the sidecar",
                        rel(candidate.path), header_tr, tr));
      series.repetition_time = tr;
    } else if (header_tr > 0.0) {
      log(fmt::format("'{}': no RepetitionTime in a sidecar; {} s from the NIfTI header", rel(candidate.path),
                      header_tr));
    } else {
      fs::path expected = candidate.path;
      expected.replace_filename(candidate.path.filename().string().substr(
                                    0, candidate.path.filename().string().size() - candidate.name.extension.size()) +
                                ".json");
      throw FormatError(
          fmt::format("'{}': RepetitionTime is missing: expected it in a JSON sidecar such as '{}' or "
                      "in the dataset's _bold.json",
                      candidate.path.string(), expected.string()));
    }
  }

  // A TSV target must have as many rows as its raw BOLD image has volumes (when that is found).
  void check_rows(const TargetSeries& series, const Candidate& candidate) {
    std::vector<fs::path> bolds;
    for (const auto& func : modality_dirs(root_, "func"))
      for (const auto& file : list_files(func)) {
        const auto name = parse_bids_name(file.filename().string());
        if (!name || name->suffix != "bold" || (name->extension != ".nii" && name->extension != ".nii.gz")) continue;
        if (!same_recording(*name, candidate.name)) continue;
        if (!candidate.name.get("acq").empty() && name->get("acq") != candidate.name.get("acq")) continue;
        bolds.push_back(file);
      }
    if (bolds.size() != 1) return;
    NiftiImage header;
    try {
      header = read_nifti(bolds.front().string(), true);
    } catch (const Error& e) {
      log(fmt::format("'{}': row count not checked against '{}': {}", rel(candidate.path), rel(bolds.front()),
                      e.message()));
      return;
    }
    if (header.num_volumes != series.num_volumes)
      throw ConfigError(fmt::format("'{}' has {} rows, but its BOLD image '{}' has {} volumes", candidate.path.string(),
                                    series.num_volumes, bolds.front().string(), header.num_volumes));
  }

  fs::path find_confounds(const Candidate& bold, const std::vector<fs::path>& derivatives) {
    std::vector<fs::path> dirs{bold.path.parent_path()};
    const fs::path relative_func = bold.path.parent_path().lexically_relative(bold.base);
    for (const auto& folder : derivatives)
      if (std::find(dirs.begin(), dirs.end(), folder / relative_func) == dirs.end())
        dirs.push_back(folder / relative_func);
    std::vector<fs::path> found;
    for (const auto& dir : dirs)
      for (const auto& file : list_files(dir)) {
        const auto name = parse_bids_name(file.filename().string());
        if (!name || !is_confounds(*name) || !same_recording(*name, bold.name) ||
            name->get("acq") != bold.name.get("acq"))
          continue;
        found.push_back(file);
      }
    if (found.empty())
      throw ConfigError(
          fmt::format("confound regression needs a *_desc-confounds_timeseries.tsv for BOLD '{}' "
                      "(same sub, ses, task, acq and run), found none",
                      bold.path.string()));
    if (found.size() > 1) {
      std::string list;
      for (const auto& f : found) list += "\n  " + f.string();
      throw ConfigError(fmt::format("{} confounds files match BOLD '{}':{}", found.size(), bold.path.string(), list));
    }
    return found.front();
  }

  const Atlas& atlas() {
    if (!atlas_) {
      atlas_ = read_atlas(options_.atlas, options_.atlas_labels);
      for (const auto& warning : atlas_->warnings) log(warning);
    }
    return *atlas_;
  }

  TargetSeries load(const Candidate& candidate, const std::vector<fs::path>& derivatives) {
    TargetSeries series;
    if (candidate.nifti) {
      ExtractionOptions extraction = options_.extraction;
      if (!extraction.confound_columns.empty())
        extraction.confounds_path = find_confounds(candidate, derivatives).string();
      const Atlas& roi_atlas = atlas();
      series = extract_roi_timeseries(read_nifti(candidate.path.string()), roi_atlas, extraction);
      set_timing(series, candidate, "bold");
    } else {
      series = read_timeseries_tsv(candidate.path.string());
      set_timing(series, candidate, options_.target_suffix);
      check_rows(series, candidate);
    }
    for (const auto& warning : series.warnings) log(warning);
    return series;
  }

  void match_targets() {
    const auto derivatives = derivative_folders();
    const auto candidates = find_candidates(derivatives);
    std::vector<bool> used(candidates.size(), false);
    std::map<std::size_t, TargetSeries> loaded;
    for (auto& run : dataset_.runs) {
      const auto run_name = parse_bids_name(fs::path(run.path).filename().string());
      std::vector<std::size_t> matches;
      for (std::size_t i = 0; i < candidates.size(); ++i)
        if (same_recording(candidates[i].name, *run_name)) matches.push_back(i);
      if (matches.empty()) {
        log(fmt::format("'{}': no fMRI target (usable for inference only)", rel(run.path)));
        continue;
      }
      if (matches.size() > 1) {
        std::string list;
        for (auto i : matches) list += "\n  " + candidates[i].path.string();
        throw ConfigError(
            fmt::format("{} fMRI targets match EEG run '{}' (same sub, ses, task, run); narrow them "
                        "with target entities (e.g. atlas-..., space-..., desc-...):{}",
                        matches.size(), run.path, list));
      }
      const std::size_t i = matches.front();
      used[i] = true;
      auto it = loaded.find(i);
      if (it == loaded.end()) it = loaded.emplace(i, load(candidates[i], derivatives)).first;
      run.target = it->second;
    }
    for (std::size_t i = 0; i < candidates.size(); ++i)
      if (!used[i]) {
        dataset_.unmatched_targets.push_back(rel(candidates[i].path));
        log(fmt::format("target '{}' matches no EEG run", rel(candidates[i].path)));
      }
  }

  fs::path root_;
  const BidsOptions& options_;
  BidsDataset& dataset_;
  std::map<fs::path, std::vector<fs::path>> listings_;
  std::optional<Atlas> atlas_;
};

}  // namespace

int64_t BidsDataset::num_with_target() const {
  return std::count_if(runs.begin(), runs.end(), [](const EegRun& run) { return run.target.has_value(); });
}

BidsDataset index_bids(const std::string& root, const BidsOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw IoError(fmt::format("BIDS dataset '{}' does not exist or is not a folder", root));
  BidsDataset dataset;
  fs::path root_path = fs::path(root).lexically_normal();
  if (!root_path.has_filename()) root_path = root_path.parent_path();
  dataset.root = root_path.string();
  Indexer(root_path, options, dataset).run();
  return dataset;
}

}  // namespace neurobolt
