// neurobolt prepare: EEG runs + fMRI targets -> one HDF5 dataset of paired windows (rules and
// layout in dataset.hpp). Runs are processed one at a time; windows go to the file chunk by chunk.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/plural.hpp"
#include "core/time_text.hpp"
#include "clean/cleaned_copy.hpp"
#include "core/atomic_file.hpp"
#include "data/h5_tables.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/hash.hpp"
#include "neurobolt/montage.hpp"
#include "neurobolt/preprocess.hpp"
#include "neurobolt/recording.hpp"
#include "neurobolt/roi.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kFormatName = "neurobolt-dataset";
constexpr int64_t kFormatVersion = 1;

struct RunSource {
  std::string name;     // "sub-01_task-rest_run-1"
  std::string subject;  // "01"
  std::string eeg_path;
  TargetSeries target;
  std::vector<BidsEvent> events;
  std::string events_path;
  std::vector<std::string> bad_channels;
  std::map<std::string, std::string> channel_types;  // from _channels.tsv: name -> BIDS type
  std::vector<std::string> files;  // provenance: every input file this run depends on
};

// Everything per window, kept in memory (small) until the end, when the statistics are known.
struct WindowTables {
  std::vector<float> targets_raw;  // N x R
  std::vector<int8_t> split;
  std::vector<int8_t> fold;
  std::vector<int32_t> run;
  std::vector<int32_t> subject;
  std::vector<int64_t> volume;
  std::vector<double> onset;
};

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  const auto p = fs::weakly_canonical(fs::absolute(path), ec);
  return ec ? path : p.string();
}

// What an existing output of ours says it was made from (all empty when there is none).
struct PreviousOutput {
  bool exists = false;
  std::string fingerprint, version;
  json parameters = json::object();
  std::map<std::string, json> files;  // absolute path -> its record (size, mtime_ns, sha256)
};

PreviousOutput read_previous_output(const std::string& output) {
  PreviousOutput previous;
  std::error_code ec;
  previous.exists = fs::exists(fs::symlink_status(output, ec));
  if (!previous.exists) return previous;
  try {
    const auto file = h5::File::open_read(output);
    if (file.has_attribute("/", "fingerprint")) previous.fingerprint = file.string_attribute("/", "fingerprint");
    if (file.has_attribute("/", "parameters")) previous.parameters = json::parse(file.string_attribute("/", "parameters"));
    if (file.has_attribute("/", "provenance")) {
      const json provenance = json::parse(file.string_attribute("/", "provenance"));
      previous.version = provenance.value("neurobolt_version", std::string());
      for (const auto& run : provenance.value("runs", json::array()))
        for (const auto& f : run.value("files", json::array()))
          if (f.contains("path") && f["path"].is_string()) previous.files[f["path"].get<std::string>()] = f;
    }
  } catch (const std::exception&) {
    // Not ours or unreadable: nothing to reuse (whether it may be replaced is decided later).
  }
  return previous;
}

// A file's record: path, size, modification time and the SHA-256 of its bytes. The hash of an
// input the previous output recorded with the same size and modification time is reused, so an
// up-to-date check reads only files that were touched.
json file_record(const std::string& path, const PreviousOutput& previous) {
  struct stat st {};
  json record{{"path", absolute_path(path)}};
  if (::stat(path.c_str(), &st) != 0) {
    record["size"] = nullptr;
    return record;
  }
  record["size"] = static_cast<int64_t>(st.st_size);
  record["mtime_ns"] = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  char text[32];
  std::tm tm{};
  gmtime_r(&st.st_mtim.tv_sec, &tm);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  record["modified"] = text;
  const auto known = previous.files.find(record["path"].get<std::string>());
  if (known != previous.files.end() && known->second.value("size", json()) == record["size"] &&
      known->second.value("mtime_ns", json()) == record["mtime_ns"] && known->second.contains("sha256")) {
    record["sha256"] = known->second["sha256"];
  } else {
    record["sha256"] = sha256_file(path);
  }
  return record;
}

// Why an existing output does not match: the first input or option that differs.
std::string what_changed(const PreviousOutput& previous, const json& parameters, const json& inputs) {
  if (previous.fingerprint.empty()) return "it holds no fingerprint of its inputs";
  if (!previous.version.empty() && previous.version != NEUROBOLT_VERSION) {
    return fmt::format("it was made by neurobolt {} (this is {})", previous.version, NEUROBOLT_VERSION);
  }
  std::set<std::string> now;
  for (const auto& run : inputs) {
    for (const auto& f : run["files"]) {
      const auto path = f["path"].get<std::string>();
      now.insert(path);
      const auto it = previous.files.find(path);
      if (it == previous.files.end()) return fmt::format("input '{}' is new", path);
      if (it->second.value("sha256", json()) != f.value("sha256", json())) {
        return fmt::format("input '{}' changed (its content differs)", path);
      }
    }
  }
  for (const auto& [path, record] : previous.files)
    if (!now.count(path)) return fmt::format("'{}' is no longer an input", path);
  for (const auto& [key, value] : parameters.items()) {
    const auto was = previous.parameters.value(key, json());
    if (was != value) return fmt::format("option '{}' changed from {} to {}", key, was.dump(), value.dump());
  }
  for (const auto& [key, value] : previous.parameters.items())
    if (!parameters.contains(key)) return fmt::format("option '{}' is no longer set", key);
  return "the runs, subjects or repetition times differ";
}

// The files a recording consists of: the data file and its companions of the same stem
// (.vhdr/.vmrk/.eeg, .set/.fdt), which a change to any of them must make us redo.
std::vector<std::string> recording_files(const std::string& eeg_path) {
  std::vector<std::string> out{eeg_path};
  const fs::path p(eeg_path);
  const std::string stem = p.stem().string();
  std::error_code ec;
  const fs::path folder = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (!entry.is_regular_file(ec) || entry.path() == p) continue;
    const std::string ext = entry.path().extension().string();
    if (entry.path().stem().string() == stem && ext != ".json" && ext != ".tsv") out.push_back(entry.path().string());
  }
  std::sort(out.begin() + 1, out.end());
  return out;
}

json optional_number(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json parameters_json(const PrepareOptions& o, const std::vector<std::string>& rois, bool channels_from_data) {
  json split{{"mode", to_string(o.split.mode)}, {"seed", o.split.seed}};
  switch (o.split.mode) {
    case SplitMode::intra_run:
      split["train_fraction"] = o.split.train_fraction;
      split["val_fraction"] = o.split.val_fraction;
      split["min_gap_seconds"] = o.split.min_gap_seconds;
      break;
    case SplitMode::cross_subject:
      split["val_subjects"] = o.split.val_subjects;
      split["test_subjects"] = o.split.test_subjects;
      split["val_subject_fraction"] = o.split.val_subject_fraction;
      split["test_subject_fraction"] = o.split.test_subject_fraction;
      break;
    case SplitMode::kfold: split["folds"] = o.split.folds; break;
  }
  json bids{{"derivatives", o.bids.derivatives},
            {"target_suffix", o.bids.target_suffix},
            {"target_entities", o.bids.target_entities},
            {"atlas", o.bids.atlas},
            {"atlas_labels", o.bids.atlas_labels},
            {"detrend", o.bids.extraction.detrend},
            {"confound_columns", o.bids.extraction.confound_columns}};
  return json{
      {"channels", o.channels},
      {"channels_from_data", channels_from_data},
      {"config", o.config_name},
      {"missing_channels", to_string(o.missing_channels)},
      {"interpolation", "spherical splines (Perrin et al. 1989) as MNE-Python 1.3 interpolate_bads: standard_1005 "
                        "positions in MNE's head frame, origin (0, 0, 0.04) m, stiffness 4, 50 Legendre terms, "
                        "alpha 1e-5, from every good EEG channel with a position, after resampling"},
      {"sample_rate", o.sample_rate},
      {"window_samples", o.window_samples},
      {"window_seconds", static_cast<double>(o.window_samples) / o.sample_rate},
      {"window_rule", "s_k = round(onset_k * sample_rate); window = samples [s_k - window_samples, s_k)"},
      {"resampling", "scipy resample_poly (Kaiser-windowed FIR, beta 5, half length 10 * max(up, down))"},
      {"eeg_highpass_hz", optional_number(o.eeg_highpass_hz)},
      {"eeg_highpass_order", o.eeg_highpass_order},
      {"notch_hz", optional_number(o.notch_hz)},
      {"notch_quality", o.notch_quality},
      {"demean_windows", o.demean_windows},
      {"fmri_lowpass_hz", optional_number(o.fmri_lowpass_hz)},
      {"fmri_lowpass_order", o.fmri_lowpass_order},
      {"rois", rois},
      {"target_normalisation", "z-score per ROI, mean and std (ddof 0) of the training split's targets"},
      {"trigger_labels", o.trigger_labels.empty() ? default_trigger_labels() : o.trigger_labels},
      {"trigger_labels_auto", o.trigger_labels.empty()},
      {"first_volume_offset", optional_number(o.first_volume_offset)},
      {"trigger_tolerance", o.onsets.trigger_tolerance},
      {"max_missing_triggers", o.onsets.max_missing_triggers},
      {"dummy_scans", o.onsets.dummy_scans},
      {"split", split},
      {"bids", bids},
      {"clean", o.clean ? json::parse(to_json(*o.clean)) : json()},
      {"gzip_level", o.gzip_level},
      {"chunk_windows", o.chunk_windows},
  };
}

void validate(const PrepareOptions& o) {
  if (!(o.sample_rate > 0)) throw ConfigError(fmt::format("prepare: sample rate must be > 0 Hz, found {}", o.sample_rate));
  if (o.window_samples < 1) {
    throw ConfigError(fmt::format("prepare: window samples must be >= 1, found {}", o.window_samples));
  }
  const double nyquist = o.sample_rate / 2;
  if (o.eeg_highpass_hz && !(*o.eeg_highpass_hz > 0 && *o.eeg_highpass_hz < nyquist)) {
    throw ConfigError(fmt::format("prepare: EEG high-pass must lie between 0 and {} Hz (Nyquist), found {}", nyquist,
                                  *o.eeg_highpass_hz));
  }
  if (o.notch_hz && !(*o.notch_hz > 0 && *o.notch_hz < nyquist)) {
    throw ConfigError(
        fmt::format("prepare: notch must lie between 0 and {} Hz (Nyquist), found {}", nyquist, *o.notch_hz));
  }
  if (o.fmri_lowpass_hz && !(*o.fmri_lowpass_hz > 0)) {
    throw ConfigError(fmt::format("prepare: fMRI low-pass must be > 0 Hz, found {}", *o.fmri_lowpass_hz));
  }
  if (o.gzip_level < 0 || o.gzip_level > 9) {
    throw ConfigError(fmt::format("prepare: gzip level must be 0 to 9, found {}", o.gzip_level));
  }
  if (o.chunk_windows < 1) {
    throw ConfigError(fmt::format("prepare: chunk windows must be >= 1, found {}", o.chunk_windows));
  }
  if (o.split.mode == SplitMode::kfold && (o.split.folds < 2 || o.split.folds > 127)) {
    throw ConfigError(fmt::format("prepare: kfold needs 2 to 127 folds (stored as int8), found {}", o.split.folds));
  }
  if (o.first_volume_offset && !std::isfinite(*o.first_volume_offset)) {
    throw ConfigError("prepare: first volume offset must be a finite number of seconds");
  }
}


class Preparer {
 public:
  Preparer(const PrepareOptions& o, const PrepareCallbacks& cb, std::vector<RunSource> runs)
      : o_(o), cb_(cb), runs_(std::move(runs)) {}

  PrepareResult run(const std::string& output, std::vector<std::string> skipped_runs, json input_description);

 private:
  void progress(int64_t run, const std::string& stage, double within) const {
    if (!cb_.progress) return;
    PrepareProgress p;
    p.run = run;
    p.num_runs = static_cast<int64_t>(runs_.size());
    p.run_name = runs_[run].name;
    p.stage = stage;
    p.fraction = (static_cast<double>(run) + within) / static_cast<double>(runs_.size());
    cb_.progress(p);
  }
  RunReport process(int64_t index, data::RowAppender& windows);
  void channels_from_data(std::vector<std::string>& warnings);
  EegPreprocessOptions eeg_options_for(const RunSource& run) const {
    EegPreprocessOptions e;
    e.channels = o_.channels;
    e.sample_rate = o_.sample_rate;
    e.highpass_hz = o_.eeg_highpass_hz;
    e.highpass_order = o_.eeg_highpass_order;
    e.notch_hz = o_.notch_hz;
    e.notch_quality = o_.notch_quality;
    e.missing = o_.missing_channels;
    e.channel_types = run.channel_types;
    return e;
  }

  PrepareOptions o_;  // a copy: the channels may come from the data
  const PrepareCallbacks& cb_;
  std::vector<RunSource> runs_;
  std::vector<std::string> rois_;
  std::vector<std::string> subjects_;
  std::vector<Split> subject_split_;
  std::vector<int64_t> subject_fold_;
  WindowTables tables_;
};

// The EEG channels with a standard position that every run has (good or marked bad), in the first
// run's order and canonical spelling.
void Preparer::channels_from_data(std::vector<std::string>& warnings) {
  ReadOptions header_only;
  header_only.header_only = true;
  std::vector<std::vector<std::string>> per_run;
  for (const auto& run : runs_) {
    try {
      per_run.push_back(standard_eeg_channels(read_recording(run.eeg_path, header_only), run.channel_types));
    } catch (Error& e) {
      e.add_context(fmt::format("reading the channels of run {}", run.name));
      throw;
    }
  }
  auto has = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  std::vector<std::string> left_out;
  for (const auto& name : per_run.front()) {
    std::size_t first_lacking = 0;
    while (first_lacking < per_run.size() && has(per_run[first_lacking], name)) ++first_lacking;
    if (first_lacking == per_run.size()) {
      o_.channels.push_back(name);
    } else {
      left_out.push_back(fmt::format("{} (not in {})", name, runs_[first_lacking].name));
    }
  }
  if (o_.channels.empty()) {
    const auto& first = per_run.front();
    throw ConfigError(fmt::format("prepare: no EEG channel with a standard 10-05 position is in every run ('{}' has: "
                                  "{}); name the channels (--channels) or a model config (--config)",
                                  runs_.front().eeg_path,
                                  first.empty() ? "none" : fmt::format("{}", fmt::join(first, ", "))));
  }
  if (!left_out.empty()) {
    warnings.push_back(fmt::format("{} EEG {} left out, not in every run: {}", left_out.size(),
                                   left_out.size() == 1 ? "channel" : "channels", fmt::join(left_out, ", ")));
  }
}

RunReport Preparer::process(int64_t index, data::RowAppender& windows) {
  const auto start = Clock::now();
  const RunSource& run = runs_[index];
  const auto C = static_cast<int64_t>(o_.channels.size());
  const int64_t S = o_.window_samples;
  const auto R = static_cast<int64_t>(rois_.size());
  const double window_seconds = static_cast<double>(S) / o_.sample_rate;
  const double tr = run.target.repetition_time;
  const int64_t V = run.target.num_volumes;
  const auto subject_index = static_cast<int64_t>(
      std::lower_bound(subjects_.begin(), subjects_.end(), run.subject) - subjects_.begin());

  RunReport report;
  report.name = run.name;
  report.subject = run.subject;
  report.eeg_path = run.eeg_path;
  report.target_path = run.target.path;
  report.repetition_time = tr;
  report.num_volumes = V;
  for (const auto& w : run.target.warnings) report.warnings.push_back(fmt::format("'{}': {}", run.target.path, w));

  progress(index, "reading", 0.0);
  const std::vector<double> targets =
      process_target_series(run.target, rois_, o_.fmri_lowpass_hz, o_.fmri_lowpass_order, report.warnings);

  // With --clean the windows come from a cleaned copy of the recording (removed after the run).
  std::optional<clean_detail::CleanedCopy> cleaned;
  std::string eeg_path = run.eeg_path;
  if (o_.clean) {
    progress(index, "cleaning", 0.0);
    cleaned.emplace(run.eeg_path, *o_.clean, o_.sample_rate);
    eeg_path = cleaned->path();
    report.cleaning = cleaned->summary();
    for (const auto& w : cleaned->report().warnings) report.warnings.push_back(fmt::format("'{}': {}", run.eeg_path, w));
  }
  ReadOptions header_only;
  header_only.header_only = true;
  const Recording head = read_recording(eeg_path, header_only);
  if (!(head.sample_rate > 0) || head.num_samples <= 0) {
    // A header-only read cannot tell an empty recording from one whose data file is missing (a
    // BrainVision header without DataPoints): opening it for reading checks the data files and
    // names a missing one.
    RecordingReader check(eeg_path);
    throw FormatError(fmt::format("'{}': no samples to window (sample rate {} Hz, {} samples)", run.eeg_path,
                                  head.sample_rate, head.num_samples));
  }
  const EegPreprocessOptions eeg_options = eeg_options_for(run);
  const EegChannelPlan plan = plan_eeg_channels(head, run.bad_channels, eeg_options);
  for (const auto& w : plan.report.warnings) report.warnings.push_back(w);
  report.missing_channels = plan.report.zero_filled;
  report.interpolated_channels = plan.report.interpolated;
  report.unmapped_channels = plan.report.unmapped;

  // Volume onsets.
  std::vector<double> onsets;
  if (o_.first_volume_offset) {
    for (int64_t k = 0; k < V; ++k) onsets.push_back(*o_.first_volume_offset + static_cast<double>(k) * tr);
    report.onset_source = fmt::format("offset {} s + k * TR", *o_.first_volume_offset);
  } else {
    const VolumeTriggers triggers =
        find_volume_triggers(head, run.events, run.events_path, o_.trigger_labels, report.warnings);
    const auto found = onsets_from_triggers(triggers.times, tr, V, o_.onsets,
                                            fmt::format("'{}': '{}' triggers", run.eeg_path, triggers.label));
    for (const auto& w : found.warnings) report.warnings.push_back(w);
    onsets = found.onsets;
    report.interpolated_triggers = found.interpolated;
    report.onset_source = fmt::format("trigger '{}' ({})", triggers.label, triggers.source);
  }

  // Which volumes have a full window inside the resampled recording.
  const auto ratio = signal::resample_ratio(head.sample_rate, o_.sample_rate);
  const signal::PolyphaseResampler resampler(ratio.up, ratio.down);
  const int64_t n_out = resampler.output_length(head.num_samples);
  std::vector<int64_t> kept, ends;
  for (int64_t k = 0; k < V; ++k) {
    const auto end = static_cast<int64_t>(std::llround(onsets[k] * o_.sample_rate));
    if (end - S < 0) {
      ++report.skipped_before_start;
    } else if (end > n_out) {
      ++report.skipped_after_end;
    } else if (std::any_of(targets.begin() + k * R, targets.begin() + (k + 1) * R,
                           [](double x) { return !std::isfinite(x); })) {
      ++report.skipped_nan_target;
    } else {
      kept.push_back(k);
      ends.push_back(end);
    }
  }
  if (report.skipped_after_end > 0) {
    report.warnings.push_back(fmt::format("'{}': {} volume{} after the end of the EEG ({:.3f} s) skipped", run.eeg_path,
                                          report.skipped_after_end, report.skipped_after_end > 1 ? "s" : "",
                                          head.duration()));
  }

  const auto num_kept = static_cast<int64_t>(kept.size());
  std::vector<Split> labels;
  std::vector<int8_t> folds;
  switch (o_.split.mode) {
    case SplitMode::intra_run: labels = intra_run_split(num_kept, tr, window_seconds, o_.split); break;
    case SplitMode::cross_subject: labels.assign(kept.size(), subject_split_[subject_index]); break;
    case SplitMode::kfold:
      labels.assign(kept.size(), fold_split(subject_fold_[subject_index], 0, o_.split.folds));
      folds.assign(kept.size(), static_cast<int8_t>(subject_fold_[subject_index]));
      break;
  }

  if (num_kept > 0) {
    // EEG at the model's rate, channel-major [C, n_out].
    progress(index, "reading", 0.05);
    const PreprocessedEeg eeg = preprocess_eeg(head, plan, eeg_options, [&](double fraction, const std::string& stage) {
      progress(index, stage, 0.05 + 0.65 * fraction);
    });
    if (eeg.num_samples != n_out) {
      throw Error(ErrorKind::internal, fmt::format("'{}': {} samples after resampling, expected {}", run.eeg_path,
                                                   eeg.num_samples, n_out));
    }
    // A channel constant over the whole run (not one we zero-filled) is a dead or unplugged
    // electrode more often than data: say so. Judged away from the ends (1 s each), where the
    // resampler's edge response makes even a constant input vary, and within 1e-4 uV (resampling
    // phases sum their taps to values that differ in the last float bits).
    std::vector<std::string> flat;
    const auto& zero_filled = eeg.report.zero_filled;
    const auto margin = static_cast<int64_t>(o_.sample_rate);
    for (int64_t c = 0; c < C && n_out > 2 * margin + 1; ++c) {
      if (std::find(zero_filled.begin(), zero_filled.end(), o_.channels[c]) != zero_filled.end()) continue;
      const float* x = eeg.data.data() + c * n_out;
      const auto [low, high] = std::minmax_element(x + margin, x + n_out - margin);
      if (static_cast<double>(*high) - *low <= 1e-4 + 1e-6 * std::abs(static_cast<double>(*high))) {
        flat.push_back(o_.channels[c]);
      }
    }
    if (!flat.empty()) {
      report.warnings.push_back(fmt::format("'{}': {} constant over the whole run (a dead or unplugged electrode? "
                                            "mark it bad in channels.tsv to have it interpolated): {}",
                                            run.eeg_path, flat.size() == 1 ? "1 channel is" : fmt::format("{} channels are", flat.size()),
                                            fmt::join(flat, ", ")));
    }

    progress(index, "writing", 0.7);
    for (int64_t i = 0; i < num_kept; ++i) {
      if (i % 32 == 31) progress(index, "writing", 0.7 + 0.3 * static_cast<double>(i) / static_cast<double>(num_kept));
      float* row = windows.next_row();
      const int64_t first = ends[i] - S;
      for (int64_t c = 0; c < C; ++c) {
        const float* src = eeg.data.data() + c * n_out + first;
        float* dst = row + c * S;
        double mean = 0.0;
        if (o_.demean_windows) {
          for (int64_t s = 0; s < S; ++s) mean += src[s];
          mean /= static_cast<double>(S);
        }
        for (int64_t s = 0; s < S; ++s) dst[s] = static_cast<float>(src[s] - mean);
      }
      windows.commit_row();
      const int64_t k = kept[i];
      for (int64_t r = 0; r < R; ++r) tables_.targets_raw.push_back(static_cast<float>(targets[k * R + r]));
      tables_.split.push_back(static_cast<int8_t>(labels[i]));
      if (!folds.empty()) tables_.fold.push_back(folds[i]);
      tables_.run.push_back(static_cast<int32_t>(index));
      tables_.subject.push_back(static_cast<int32_t>(subject_index));
      tables_.volume.push_back(k);
      tables_.onset.push_back(onsets[k]);
    }
  } else {
    report.warnings.push_back(fmt::format("'{}': no volume has a full {} s EEG window", run.eeg_path, window_seconds));
  }

  report.num_windows = num_kept;
  for (auto l : labels) {
    if (l == Split::excluded) ++report.excluded_windows;
    else ++report.windows_per_split[static_cast<int>(l)];
  }
  if (o_.split.mode == SplitMode::intra_run && num_kept > 0 &&
      (report.windows_per_split[1] == 0 || report.windows_per_split[2] == 0)) {
    report.warnings.push_back(fmt::format("{}: {} windows leave the intra-run {} split empty (the gap between parts "
                                          "is {} windows)",
                                          run.name, num_kept,
                                          report.windows_per_split[1] == 0 ? "validation" : "test",
                                          static_cast<int64_t>(std::ceil(std::max(o_.split.min_gap_seconds, window_seconds) / tr))));
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  progress(index, "done", 1.0);
  return report;
}

TargetNormalisation training_stats(const WindowTables& t, int64_t R, const std::vector<Split>& labels,
                                   std::vector<std::string>& warnings, const std::vector<std::string>& rois,
                                   const std::string& what) {
  TargetNormalisation stats;
  const auto N = static_cast<int64_t>(labels.size());
  for (int64_t r = 0; r < R; ++r) {
    signal::MeanStdAccumulator acc;
    for (int64_t i = 0; i < N; ++i) {
      if (labels[i] == Split::train) {
        const double x = t.targets_raw[i * R + r];
        acc.add(&x, 1);
      }
    }
    if (acc.count() == 0) throw ConfigError(fmt::format("prepare: {} has no training windows", what));
    auto ms = acc.result(0);
    if (!(ms.std > 0)) {
      warnings.push_back(fmt::format("ROI '{}' is constant over the training windows of {}: its targets are centred "
                                     "but not scaled",
                                     rois[r], what));
      ms.std = 1.0;
    }
    stats.mean.push_back(ms.mean);
    stats.std.push_back(ms.std);
  }
  return stats;
}

PrepareResult Preparer::run(const std::string& output, std::vector<std::string> skipped_runs, json input_description) {
  const auto start = Clock::now();
  validate(o_);
  if (runs_.empty()) {
    throw ConfigError(fmt::format("prepare: no EEG run with an fMRI target to prepare{}",
                                  skipped_runs.empty() ? "" : fmt::format(" ({} skipped: {})", skipped_runs.size(), skipped_runs.front())));
  }
  PrepareResult result;
  const bool from_data = o_.channels.empty();
  if (from_data) channels_from_data(result.warnings);
  rois_ = o_.rois.empty() ? runs_.front().target.roi_names : o_.rois;
  if (rois_.empty()) throw ConfigError(fmt::format("'{}': the target table has no ROI", runs_.front().target.path));
  for (const auto& run : runs_) {
    if (!(run.target.repetition_time > 0)) {
      throw ConfigError(fmt::format("'{}': repetition time must be > 0 s, found {}", run.target.path,
                                    run.target.repetition_time));
    }
    subjects_.push_back(run.subject);
  }
  std::sort(subjects_.begin(), subjects_.end());
  subjects_.erase(std::unique(subjects_.begin(), subjects_.end()), subjects_.end());
  if (o_.split.mode == SplitMode::cross_subject) subject_split_ = cross_subject_split(subjects_, o_.split);
  if (o_.split.mode == SplitMode::kfold) subject_fold_ = subject_folds(subjects_, o_.split.folds, o_.split.seed);

  // Fingerprint: what the output depends on: the options, and the inputs by content (a
  // byte-identical rewrite of an input is no change).
  const PreviousOutput previous = read_previous_output(output);
  const json parameters = parameters_json(o_, rois_, from_data);
  json inputs = json::array();
  json fingerprint_inputs = json::array();
  for (const auto& run : runs_) {
    json files = json::array();
    for (const auto& f : run.files) files.push_back(file_record(f, previous));
    inputs.push_back({{"run", run.name},
                      {"subject", run.subject},
                      {"repetition_time", run.target.repetition_time},
                      {"files", files}});
    json stable = json::array();
    for (const auto& f : files) stable.push_back({f["path"], f["size"], f.value("sha256", json())});
    fingerprint_inputs.push_back({run.name, run.subject, run.target.repetition_time, stable});
  }
  const json fingerprint_material{{"parameters", parameters},
                                  {"inputs", fingerprint_inputs},
                                  {"version", NEUROBOLT_VERSION},
                                  {"format_version", kFormatVersion}};
  result.output = output;
  result.fingerprint = fmt::format("{:016x}", fnv1a(fingerprint_material.dump()));
  result.skipped_runs = std::move(skipped_runs);

  if (previous.exists && !o_.force) {
    if (previous.fingerprint == result.fingerprint) {
      result.up_to_date = true;
      result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      return result;
    }
    throw IoError(fmt::format("'{}' already exists and was not made from these inputs and options: {} (use --force "
                              "to overwrite)",
                              output, what_changed(previous, parameters, inputs)));
  }

  detail::AtomicOutput atomic(output, true);
  {
    auto file = h5::File::create(atomic.temp_path().string());
    const auto C = static_cast<int64_t>(o_.channels.size());
    const auto R = static_cast<int64_t>(rois_.size());
    data::RowAppender windows(file, "/windows", {C, o_.window_samples}, o_.chunk_windows, o_.gzip_level);
    std::vector<int64_t> first_window, num_windows, skipped, num_volumes;
    std::vector<int32_t> run_subject;
    std::vector<double> run_tr;
    std::vector<std::string> names, eeg_paths, target_paths, onset_sources, missing, interpolated;
    for (int64_t i = 0; i < static_cast<int64_t>(runs_.size()); ++i) {
      first_window.push_back(windows.rows());
      RunReport report;
      try {
        report = process(i, windows);
      } catch (Error& e) {
        e.add_context(fmt::format("preparing run {}", runs_[i].name));
        throw;
      }
      names.push_back(report.name);
      eeg_paths.push_back(absolute_path(report.eeg_path));
      target_paths.push_back(absolute_path(report.target_path));
      onset_sources.push_back(report.onset_source);
      missing.push_back(json(report.missing_channels).dump());
      interpolated.push_back(json(report.interpolated_channels).dump());
      run_subject.push_back(static_cast<int32_t>(
          std::lower_bound(subjects_.begin(), subjects_.end(), report.subject) - subjects_.begin()));
      run_tr.push_back(report.repetition_time);
      num_volumes.push_back(report.num_volumes);
      num_windows.push_back(report.num_windows);
      skipped.push_back(report.skipped());
      result.num_windows += report.num_windows;
      for (int s = 0; s < 3; ++s) result.windows_per_split[s] += report.windows_per_split[s];
      result.excluded_windows += report.excluded_windows;
      if (cb_.run_done) cb_.run_done(report);
      result.runs.push_back(std::move(report));
    }
    windows.finish();
    const int64_t N = windows.rows();
    if (N == 0) throw ConfigError("prepare: no volume of any run has a full EEG window; nothing to write");

    // Target statistics from the training split only.
    std::vector<Split> labels;
    for (auto s : tables_.split) labels.push_back(static_cast<Split>(s));
    const TargetNormalisation stats =
        training_stats(tables_, R, labels, result.warnings, rois_, "the training split");
    std::vector<double> fold_mean, fold_std;
    if (o_.split.mode == SplitMode::kfold) {
      for (int64_t f = 0; f < o_.split.folds; ++f) {
        std::vector<Split> fold_labels;
        for (auto fold : tables_.fold) fold_labels.push_back(fold_split(fold, f, o_.split.folds));
        const auto s = training_stats(tables_, R, fold_labels, result.warnings, rois_,
                                      fmt::format("fold {}'s training split", f));
        fold_mean.insert(fold_mean.end(), s.mean.begin(), s.mean.end());
        fold_std.insert(fold_std.end(), s.std.begin(), s.std.end());
      }
    }
    std::vector<float> targets(tables_.targets_raw.size());
    for (int64_t i = 0; i < N; ++i)
      for (int64_t r = 0; r < R; ++r)
        targets[i * R + r] = static_cast<float>((tables_.targets_raw[i * R + r] - stats.mean[r]) / stats.std[r]);

    file.write("/targets", h5::Type::f32, {N, R}, targets.data());
    file.write("/targets_raw", h5::Type::f32, {N, R}, tables_.targets_raw.data());
    file.write("/split", h5::Type::i8, {N}, tables_.split.data());
    if (o_.split.mode == SplitMode::kfold) file.write("/fold", h5::Type::i8, {N}, tables_.fold.data());
    file.write("/run", h5::Type::i32, {N}, tables_.run.data());
    file.write("/subject", h5::Type::i32, {N}, tables_.subject.data());
    file.write("/volume", h5::Type::i64, {N}, tables_.volume.data());
    file.write("/onset", h5::Type::f64, {N}, tables_.onset.data());
    data::write_strings(file, "/channel_names", o_.channels);
    data::write_strings(file, "/roi_names", rois_);
    data::write_strings(file, "/subjects", subjects_);
    const auto num_runs = static_cast<int64_t>(runs_.size());
    data::write_strings(file, "/runs/name", names);
    data::write_strings(file, "/runs/eeg_path", eeg_paths);
    data::write_strings(file, "/runs/target_path", target_paths);
    data::write_strings(file, "/runs/onset_source", onset_sources);
    data::write_strings(file, "/runs/missing_channels", missing);
    data::write_strings(file, "/runs/interpolated_channels", interpolated);
    file.write("/runs/subject", h5::Type::i32, {num_runs}, run_subject.data());
    file.write("/runs/repetition_time", h5::Type::f64, {num_runs}, run_tr.data());
    file.write("/runs/num_volumes", h5::Type::i64, {num_runs}, num_volumes.data());
    file.write("/runs/first_window", h5::Type::i64, {num_runs}, first_window.data());
    file.write("/runs/num_windows", h5::Type::i64, {num_runs}, num_windows.data());
    file.write("/runs/skipped", h5::Type::i64, {num_runs}, skipped.data());
    file.write("/normalisation/mean", h5::Type::f64, {R}, stats.mean.data());
    file.write("/normalisation/std", h5::Type::f64, {R}, stats.std.data());
    if (o_.split.mode == SplitMode::kfold) {
      file.write("/normalisation/fold_mean", h5::Type::f64, {o_.split.folds, R}, fold_mean.data());
      file.write("/normalisation/fold_std", h5::Type::f64, {o_.split.folds, R}, fold_std.data());
    }

    const json provenance{{"neurobolt_version", NEUROBOLT_VERSION},
                          {"created", detail::utc_now_iso()},
                          {"input", input_description},
                          {"runs", inputs},
                          {"skipped_runs", result.skipped_runs}};
    file.set_attribute("/", "format", kFormatName);
    file.set_attribute("/", "format_version", kFormatVersion);
    data::set_double_attribute(file, "/", "sample_rate", o_.sample_rate);
    file.set_attribute("/", "window_samples", o_.window_samples);
    file.set_attribute("/", "num_channels", C);
    file.set_attribute("/", "num_rois", R);
    file.set_attribute("/", "split_mode", std::string(to_string(o_.split.mode)));
    file.set_attribute("/", "num_folds", o_.split.mode == SplitMode::kfold ? o_.split.folds : int64_t{0});
    file.set_attribute("/", "channel_names", json(o_.channels).dump());
    file.set_attribute("/", "roi_names", json(rois_).dump());
    file.set_attribute("/", "parameters", parameters.dump(2));
    file.set_attribute("/", "provenance", provenance.dump(2));
    file.set_attribute("/", "fingerprint", result.fingerprint);
    file.close();
  }
  atomic.commit();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace

std::string RunReport::summary(double window_seconds) const {
  std::string line = fmt::format("{}: {}, {}", name, count_of(num_volumes, "volume"), count_of(num_windows, "window"));
  const int64_t no_window = skipped_before_start + skipped_after_end;
  if (skipped() > 0) {
    const std::string full = fmt::format("no full {:g} s window", window_seconds);
    if (skipped_nan_target == 0) line += fmt::format(" ({} skipped: {})", skipped(), full);
    else if (no_window == 0) line += fmt::format(" ({} skipped: n/a target)", skipped());
    else line += fmt::format(" ({} skipped: {} {}, {} n/a target)", skipped(), no_window, full, skipped_nan_target);
  }
  if (interpolated_triggers > 0) {
    line += fmt::format(", {} missing trigger{} interpolated", interpolated_triggers, interpolated_triggers > 1 ? "s" : "");
  }
  if (!interpolated_channels.empty()) line += fmt::format(", interpolated: {}", fmt::join(interpolated_channels, " "));
  if (!missing_channels.empty()) line += fmt::format(", zero-filled: {}", fmt::join(missing_channels, " "));
  if (!cleaning.empty()) line += ", cleaned (" + cleaning + ")";
  return line + fmt::format(", {:.1f} s", seconds);
}

PrepareResult prepare_bids(const std::string& bids_root, const std::string& output, const PrepareOptions& options,
                           const PrepareCallbacks& callbacks) {
  validate(options);
  BidsOptions bids = options.bids;
  if (bids.derivatives.empty() && bids.atlas.empty()) {
    // Every pipeline folder under derivatives/ that holds subjects (prediction folders excepted).
    bids.derivatives = target_derivatives(bids_root);
  }
  BidsDataset dataset;
  try {
    dataset = index_bids(bids_root, bids);
  } catch (ConfigError& e) {
    if (options.bids.derivatives.empty() && !bids.derivatives.empty()) {
      e.add_context(fmt::format("searching every derivatives folder ({}; choose with --derivatives PATH or "
                                "--target-entity KEY=VALUE)",
                                fmt::join(bids.derivatives, ", ")));
    }
    throw;
  }
  std::vector<RunSource> runs;
  std::vector<std::string> skipped;
  // A target whose EEG file is missing (or misnamed) would otherwise vanish without a word.
  for (const auto& target : dataset.unmatched_targets)
    skipped.push_back(fmt::format("'{}': no EEG run matches this target (is its EEG file missing?)", target));
  for (const auto& run : dataset.runs) {
    if (!run.target) {
      skipped.push_back(fmt::format("'{}': no fMRI target", run.path));
      continue;
    }
    RunSource s;
    s.name = run.entities.to_string();
    s.subject = run.entities.sub;
    s.eeg_path = run.path;
    s.target = *run.target;
    s.events = run.events;
    s.events_path = run.events_path;
    s.bad_channels = run.bad_channels;
    for (const auto& c : run.channels)
      if (!c.type.empty()) s.channel_types[c.name] = c.type;
    s.files = recording_files(run.path);
    for (const auto& f : run.sidecar.sources) s.files.push_back(f);
    for (const auto& f : {run.channels_path, run.events_path})
      if (!f.empty()) s.files.push_back(f);
    s.files.push_back(run.target->path);
    // The target's own sidecar (inherited ones are covered by the repetition time in the fingerprint).
    const fs::path target(run.target->path);
    const std::string target_name = target.filename().string();
    const fs::path sidecar = target.parent_path() / (target_name.substr(0, target_name.find('.')) + ".json");
    std::error_code ec;
    if (fs::exists(sidecar, ec)) s.files.push_back(sidecar.string());
    if (!options.bids.atlas.empty()) s.files.push_back(options.bids.atlas);
    if (!options.bids.atlas_labels.empty()) s.files.push_back(options.bids.atlas_labels);
    runs.push_back(std::move(s));
  }
  if (runs.empty()) {
    std::vector<std::string> lines(dataset.log.begin(), dataset.log.begin() + std::min<std::size_t>(dataset.log.size(), 8));
    if (dataset.log.size() > lines.size()) {
      lines.push_back(fmt::format("... {} more (every line: neurobolt info {})", dataset.log.size() - lines.size(),
                                  bids_root));
    }
    throw ConfigError(fmt::format("'{}': no EEG run with an fMRI target ({} EEG runs; derivatives searched: {}){}{}",
                                  bids_root, dataset.runs.size(),
                                  bids.derivatives.empty() ? "none" : fmt::format("{}", fmt::join(bids.derivatives, ", ")),
                                  lines.empty() ? "" : "\n  ", fmt::join(lines, "\n  ")));
  }
  const json input{{"bids_root", absolute_path(bids_root)}, {"dataset_name", dataset.name}, {"derivatives", bids.derivatives}};
  return Preparer(options, callbacks, std::move(runs)).run(output, std::move(skipped), input);
}

PrepareResult prepare_files(const std::vector<ExplicitRun>& explicit_runs, const std::string& output,
                            const PrepareOptions& options, const PrepareCallbacks& callbacks) {
  validate(options);
  std::vector<RunSource> runs;
  for (const auto& e : explicit_runs) {
    if (!(e.repetition_time > 0)) {
      throw ConfigError(fmt::format("'{}': repetition time must be > 0 s, found {}", e.targets_path, e.repetition_time));
    }
    std::error_code ec;
    if (!fs::exists(e.eeg_path, ec)) throw IoError(fmt::format("'{}': no such file", e.eeg_path));
    RunSource s;
    s.eeg_path = e.eeg_path;
    s.target = read_timeseries_tsv(e.targets_path);
    s.target.repetition_time = e.repetition_time;
    const fs::path eeg(e.eeg_path);
    const auto parsed = parse_bids_name(eeg.filename().string());
    std::string stem = eeg.filename().string();
    stem = stem.substr(0, stem.find('.'));
    const bool bids_named = parsed && !parsed->core().sub.empty();
    s.subject = !e.subject.empty() ? e.subject : bids_named ? parsed->core().sub : stem;
    s.name = !e.name.empty() ? e.name : bids_named ? parsed->core().to_string() : stem;
    s.files = recording_files(e.eeg_path);
    s.files.push_back(e.targets_path);
    runs.push_back(std::move(s));
  }
  json files = json::array();
  for (const auto& e : explicit_runs) files.push_back({{"eeg", absolute_path(e.eeg_path)}, {"targets", absolute_path(e.targets_path)}});
  return Preparer(options, callbacks, std::move(runs)).run(output, {}, json{{"explicit_runs", files}});
}

}  // namespace neurobolt
