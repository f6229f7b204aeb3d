// neurobolt infer: EEG recordings -> predicted ROI time courses as a BIDS derivative (rules and
// layout in include/neurobolt/infer.hpp).
#include "neurobolt/infer.hpp"
#include "clean/cleaned_copy.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.hpp"
#include "infer/checkpoint_preprocessing.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/nifti.hpp"
#include "neurobolt/predictor.hpp"
#include "neurobolt/preprocess.hpp"
#include "neurobolt/roi.hpp"

namespace neurobolt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr const char* kSuffix = "_desc-neurobolt_timeseries";
constexpr const char* kGeneratedBy = "neurobolt infer";

bool is_eeg_file(const fs::path& p) {
  static const std::set<std::string> extensions{".edf", ".bdf", ".vhdr", ".set"};
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return extensions.count(ext) > 0;
}

bool looks_like_bids(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "dataset_description.json", ec)) return true;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec) && entry.path().filename().string().rfind("sub-", 0) == 0) return true;
  }
  return false;
}

// sub-01/[ses-1/]func/sub-01_[ses-1_]task-rest_[acq-x_]run-1 for BIDS names, else the stem.
std::string output_stem(const fs::path& eeg) {
  const auto parsed = parse_bids_name(eeg.filename().string());
  if (parsed && !parsed->core().sub.empty()) {
    const auto core = parsed->core();
    fs::path folder = fs::path("sub-" + core.sub);
    if (!core.ses.empty()) folder /= "ses-" + core.ses;
    return (folder / "func" / core.to_string()).string();
  }
  std::string name = eeg.filename().string();
  return name.substr(0, name.find('.'));
}

InferInput plain_input(const fs::path& path) {
  InferInput in;
  in.eeg_path = path.string();
  in.output_stem = output_stem(path);
  return in;
}

std::string format_value(float v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : "n/a"; }

void write_text_atomic(const fs::path& path, const std::string& text) {
  detail::AtomicOutput out(path, /*force=*/true);
  out.write_all(text);
  out.commit();
}

json parse_object(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

std::optional<double> optional_number(const json& j, const char* key) {
  if (j.contains(key) && j[key].is_number()) return j[key].get<double>();
  return std::nullopt;
}

// What the checkpoint says about the data it was trained on.
struct ModelContext {
  std::unique_ptr<Predictor> predictor;
  std::string checkpoint_path, sha256;
  json dataset = json::object();
  json parameters = json::object();
  MissingChannelPolicy trained_policy = MissingChannelPolicy::error;
  bool demean = true;
  EegPreprocessOptions preprocess;
  std::vector<std::string> notes;
};

double median_interval(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  std::vector<double> intervals;
  for (std::size_t i = 1; i < times.size(); ++i)
    if (times[i] - times[i - 1] > 1e-3) intervals.push_back(times[i] - times[i - 1]);
  if (intervals.empty()) return 0.0;
  std::nth_element(intervals.begin(), intervals.begin() + intervals.size() / 2, intervals.end());
  return intervals[intervals.size() / 2];
}

}  // namespace

namespace infer_detail {

void copy_window(const float* src, int64_t src_stride, int64_t C, int64_t S, bool demean, float* dst) {
  for (int64_t c = 0; c < C; ++c) {
    const float* from = src + c * src_stride;
    double mean = 0.0;
    if (demean) {
      for (int64_t s = 0; s < S; ++s) mean += from[s];
      mean /= static_cast<double>(S);
    }
    for (int64_t s = 0; s < S; ++s) dst[c * S + s] = static_cast<float>(from[s] - mean);
  }
}

EegPreprocessOptions checkpoint_preprocessing(const Predictor& predictor, const std::string& missing_channels,
                                              bool* demean) {
  const json metadata = parse_object(predictor.metadata_json());
  const json dataset = metadata.value("dataset", json::object());
  const json parameters = dataset.value("parameters", json::object());
  EegPreprocessOptions p;
  p.channels = predictor.channels();
  p.sample_rate = predictor.sample_rate();
  p.highpass_hz = optional_number(parameters, "eeg_highpass_hz");
  p.highpass_order = parameters.value("eeg_highpass_order", 4);
  p.notch_hz = optional_number(parameters, "notch_hz");
  p.notch_quality = parameters.value("notch_quality", 30.0);
  if (demean != nullptr) *demean = parameters.value("demean_windows", true);
  std::string policy = missing_channels;
  if (policy.empty()) {
    if (parameters.contains("missing_channels") && parameters["missing_channels"].is_string()) {
      policy = parameters["missing_channels"].get<std::string>();
    } else {
      policy = parameters.value("allow_missing_channels", false) ? "zero" : "error";
    }
  }
  p.missing = parse_missing_channel_policy(policy);
  return p;
}

}  // namespace infer_detail

VolumeGrid infer_volume_grid(const Recording& header, const InferInput& in, const InferOptions& o,
                             double window_seconds) {
  VolumeGrid grid;
  const double duration = header.duration();
  if (o.stride) {
    grid.kind = "stride";
    grid.spacing = *o.stride;
    for (double t = window_seconds; t <= duration + 1e-9; t += *o.stride) grid.times.push_back(t);
    grid.source = fmt::format("every {} s from the end of the first full window", *o.stride);
    return grid;
  }
  std::optional<VolumeTriggers> triggers;
  try {
    triggers = find_volume_triggers(header, in.events, in.events_path, o.trigger_labels, grid.warnings);
  } catch (const ConfigError& e) {
    if (!o.tr) {
      throw ConfigError(fmt::format("{} (or give --tr SECONDS for a regular grid of volumes)", e.what()));
    }
  }
  if (triggers) {
    const double tr = o.tr ? *o.tr : median_interval(triggers->times);
    if (!(tr > 0)) {
      throw ConfigError(fmt::format("'{}': {} '{}' trigger(s) do not define a repetition time; give --tr SECONDS",
                                    in.eeg_path, triggers->times.size(), triggers->label));
    }
    OnsetOptions onset_options;
    onset_options.dummy_scans = o.dummy_scans;
    auto onsets = onsets_from_triggers(triggers->times, tr, -1, onset_options,
                                       fmt::format("'{}': '{}' triggers", in.eeg_path, triggers->label));
    grid.kind = "triggers";
    grid.times = onsets.onsets;
    grid.spacing = tr;
    grid.source = fmt::format("trigger '{}' ({})", triggers->label, triggers->source);
    for (auto& w : onsets.warnings) grid.warnings.push_back(w);
    return grid;
  }
  grid.kind = "tr";
  grid.spacing = *o.tr;
  for (int64_t k = 0;; ++k) {
    const double t = o.first_volume_offset + static_cast<double>(k) * *o.tr;
    if (t > duration + 1e-9) break;
    grid.times.push_back(t);
  }
  grid.source = fmt::format("offset {} s + k * TR {} s (no volume triggers)", o.first_volume_offset, *o.tr);
  return grid;
}

namespace {

ojson sidecar(const ModelContext& m, const InferInput& in, const VolumeGrid& grid, int64_t windows,
              const PreprocessReport& report) {
  const auto& norm = m.dataset.value("normalisation", json::object());
  ojson j;
  j["Description"] = "ROI BOLD time courses synthesised from EEG by a NeuroBOLT-family model (one row per time point)";
  j["GeneratedBy"] = kGeneratedBy;
  j["SoftwareVersion"] = NEUROBOLT_VERSION;
  j["RepetitionTime"] = grid.spacing;
  j["StartTime"] = grid.times.empty() ? 0.0 : grid.times.front();
  j["Grid"] = grid.kind;
  j["OnsetSource"] = grid.source;
  j["VolumeOnsets"] = grid.times;
  j["Columns"] = m.predictor->rois();
  j["Units"] = "z";
  j["UnitsDescription"] =
      "z-scored units of the training targets: target = value * TargetNormalisation.Std + TargetNormalisation.Mean";
  ojson t;
  t["ROIs"] = m.predictor->rois();
  t["Mean"] = norm.value("mean", json::array());
  t["Std"] = norm.value("std", json::array());
  const auto lowpass = optional_number(m.parameters, "fmri_lowpass_hz");
  t["LowpassHz"] = lowpass ? json(*lowpass) : json(nullptr);
  t["LowpassOrder"] = m.parameters.value("fmri_lowpass_order", 5);
  j["TargetNormalisation"] = t;
  ojson c;
  c["Path"] = fs::absolute(m.checkpoint_path).lexically_normal().string();
  c["SHA256"] = m.sha256;
  c["Arch"] = m.predictor->arch();
  j["Checkpoint"] = c;
  j["Source"] = fs::absolute(in.eeg_path).lexically_normal().string();
  j["Windows"] = windows;
  j["WindowSeconds"] = static_cast<double>(m.predictor->window_samples()) / m.predictor->sample_rate();
  ojson ch;
  ch["Interpolated"] = report.interpolated;
  ch["ZeroFilled"] = report.zero_filled;
  j["Channels"] = ch;
  ojson p;
  p["SampleRate"] = m.preprocess.sample_rate;
  p["HighpassHz"] = m.preprocess.highpass_hz ? json(*m.preprocess.highpass_hz) : json(nullptr);
  p["NotchHz"] = m.preprocess.notch_hz ? json(*m.preprocess.notch_hz) : json(nullptr);
  p["DemeanWindows"] = m.demean;
  p["MissingChannels"] = to_string(m.preprocess.missing);
  j["Preprocessing"] = p;
  return j;
}

// Writes the 4-D image of one run: every voxel of an atlas region carries its ROI's series.
void write_atlas_image(const fs::path& path, const Atlas& atlas, const std::vector<std::string>& rois,
                       const std::vector<float>& values, int64_t rows, double tr) {
  NiftiImage image;
  image.grid = atlas.grid;
  image.num_volumes = rows;
  image.repetition_time = tr;
  const int64_t voxels = atlas.grid.num_voxels();
  image.data.assign(static_cast<std::size_t>(voxels * rows), 0.0f);
  const auto R = static_cast<int64_t>(rois.size());
  for (const auto& region : atlas.rois) {
    const auto it = std::find(rois.begin(), rois.end(), region.name);
    if (it == rois.end()) continue;
    const int64_t r = it - rois.begin();
    for (int64_t v = 0; v < rows; ++v) {
      const float x = values[v * R + r];
      if (!std::isfinite(x)) continue;
      float* volume = image.data.data() + v * voxels;
      for (auto voxel : region.voxels) volume[voxel] = x;
    }
  }
  // write_nifti compresses by the name's suffix: the temporary name keeps ".nii.gz".
  const fs::path temp = path.parent_path() / ("." + path.filename().string() + ".tmp.nii.gz");
  try {
    write_nifti(temp.string(), image);
  } catch (...) {
    std::error_code ec;
    fs::remove(temp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) throw IoError(fmt::format("cannot move '{}' to '{}': {}", temp.string(), path.string(), ec.message()));
}

InferRunReport process_run(ModelContext& m, const InferInput& in, const InferOptions& o, const Atlas* atlas,
                           const std::function<void(const std::string&, double)>& progress, double& predict_seconds) {
  const auto start = Clock::now();
  InferRunReport rep;
  rep.input = in.eeg_path;
  const fs::path out_dir(o.output_dir);
  const fs::path tsv = out_dir / (in.output_stem + kSuffix + ".tsv");
  const fs::path side = out_dir / (in.output_stem + kSuffix + ".json");
  rep.output = tsv.string();

  std::error_code ec;
  const bool tsv_exists = fs::exists(tsv, ec), side_exists = fs::exists(side, ec);
  if (tsv_exists || side_exists) {
    json existing = json::object();
    if (side_exists) {
      std::ifstream f(side);
      std::stringstream text;
      text << f.rdbuf();
      existing = parse_object(text.str());
    }
    const bool ours = existing.value("GeneratedBy", std::string()) == kGeneratedBy;
    const std::string hash = existing.contains("Checkpoint") && existing["Checkpoint"].is_object()
                                 ? existing["Checkpoint"].value("SHA256", std::string())
                                 : std::string();
    if (ours && tsv_exists && hash == m.sha256 && (!o.force || o.verify)) {
      rep.status = "skipped";
      rep.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      return rep;
    }
    if (o.verify) {
      rep.status = "missing";
      rep.error = !ours ? "not written by neurobolt infer"
                  : !tsv_exists ? "its sidecar is there but not its table"
                                : "predicted with another checkpoint";
      return rep;
    }
    if (!ours && side_exists) {
      throw IoError(fmt::format("'{}' exists and was not written by neurobolt infer: not replaced, even with --force",
                                side.string()));
    }
    if (!o.force && (ours || tsv_exists)) {
      throw IoError(fmt::format("'{}' exists{} (use --force to replace it)", tsv_exists ? tsv.string() : side.string(),
                                ours ? " from another checkpoint" : ""));
    }
  }

  if (o.verify) {
    rep.status = "missing";
    rep.error = "no prediction";
    return rep;
  }
  // With --clean the model reads a cleaned copy of the recording (removed after the run).
  std::optional<clean_detail::CleanedCopy> cleaned;
  std::string eeg_path = in.eeg_path;
  if (o.clean) {
    progress("cleaning", 0.0);
    cleaned.emplace(in.eeg_path, *o.clean, m.predictor->sample_rate());
    eeg_path = cleaned->path();
    rep.cleaning = cleaned->summary();
    for (const auto& w : cleaned->report().warnings) rep.warnings.push_back(w);
  }
  progress("reading", 0.0);
  ReadOptions header_only;
  header_only.header_only = true;
  const Recording header = read_recording(eeg_path, header_only);
  if (!(header.sample_rate > 0) || header.num_samples <= 0) {
    throw FormatError(fmt::format("'{}': no samples (sample rate {} Hz, {} samples)", in.eeg_path, header.sample_rate,
                                  header.num_samples));
  }
  const int64_t S = m.predictor->window_samples();
  const double rate = m.predictor->sample_rate();
  const VolumeGrid grid = infer_volume_grid(header, in, o, static_cast<double>(S) / rate);
  rep.grid = grid.kind;
  rep.warnings = grid.warnings;

  EegPreprocessOptions eo = m.preprocess;
  eo.channel_types = in.channel_types;
  const EegChannelPlan plan = plan_eeg_channels(header, in.bad_channels, eo);
  // Filters (when the checkpoint has them) need a whole-recording pass first: 80% of the bar.
  EegStream eeg(header, plan, eo, [&](double fraction, const std::string& stage) { progress(stage, 0.8 * fraction); });
  const double predict_share = eeg.keeps_whole() ? 0.2 : 1.0;
  rep.interpolated = eeg.report().interpolated;
  rep.zero_filled = eeg.report().zero_filled;
  for (const auto& w : eeg.report().warnings) rep.warnings.push_back(w);

  const int64_t C = static_cast<int64_t>(m.predictor->channels().size());
  const auto R = static_cast<int64_t>(m.predictor->rois().size());
  const auto rows = static_cast<int64_t>(grid.times.size());
  const int64_t n = eeg.num_samples();
  std::vector<float> values(static_cast<std::size_t>(rows * R), std::numeric_limits<float>::quiet_NaN());
  std::vector<int64_t> pending;  // rows of the batch being filled
  std::vector<float> windows(static_cast<std::size_t>(o.batch * C * S));
  std::vector<float> out(static_cast<std::size_t>(o.batch * R));
  auto flush = [&] {
    if (pending.empty()) return;
    const auto t0 = Clock::now();
    m.predictor->predict(windows.data(), static_cast<int64_t>(pending.size()), out.data());
    predict_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    for (std::size_t b = 0; b < pending.size(); ++b)
      std::copy(out.begin() + static_cast<std::ptrdiff_t>(b * R), out.begin() + static_cast<std::ptrdiff_t>((b + 1) * R),
                values.begin() + pending[b] * R);
    rep.windows += static_cast<int64_t>(pending.size());
    pending.clear();
    progress("predicting", (1.0 - predict_share) +
                               predict_share * static_cast<double>(rep.windows) / static_cast<double>(std::max<int64_t>(rows, 1)));
  };
  // Windows in the order of their ends, from a buffer of the preprocessed EEG that slides forward
  // through the recording: memory stays bounded whatever its length.
  std::vector<std::pair<int64_t, int64_t>> ends;  // (end sample, row)
  for (int64_t k = 0; k < rows; ++k) {
    const auto end = static_cast<int64_t>(std::llround(grid.times[k] * rate));
    if (end - S < 0 || end > n) continue;
    ends.emplace_back(end, k);
  }
  std::stable_sort(ends.begin(), ends.end());
  const int64_t capacity = S + std::max(S, eeg.block_samples());
  std::vector<float> buffer(static_cast<std::size_t>(C * capacity));  // [C, capacity]: samples [held, held + held_count)
  std::vector<float> piece;
  int64_t held = 0, held_count = 0;
  for (const auto& [end, k] : ends) {
    const int64_t begin = end - S;
    if (begin < held || end > held + held_count) {
      const int64_t last = std::min(n, begin + capacity);
      // Keep what the new span shares with the old one; read the rest.
      const int64_t keep = begin >= held && begin < held + held_count ? held + held_count - begin : 0;
      if (keep > 0) {
        for (int64_t c = 0; c < C; ++c) {
          float* row = buffer.data() + c * capacity;
          std::copy(row + (begin - held), row + (begin - held) + keep, row);
        }
      }
      const int64_t m_new = last - begin - keep;
      piece.resize(static_cast<std::size_t>(C * m_new));
      eeg.read(begin + keep, m_new, piece.data());
      for (int64_t c = 0; c < C; ++c)
        std::copy(piece.begin() + c * m_new, piece.begin() + (c + 1) * m_new, buffer.begin() + c * capacity + keep);
      held = begin;
      held_count = last - begin;
    }
    infer_detail::copy_window(buffer.data() + (begin - held), capacity, C, S, m.demean,
                              windows.data() + static_cast<int64_t>(pending.size()) * C * S);
    pending.push_back(k);
    if (static_cast<int64_t>(pending.size()) == o.batch) flush();
  }
  flush();
  rep.rows = rows;

  fs::create_directories(tsv.parent_path(), ec);
  if (ec) throw IoError(fmt::format("cannot create '{}': {}", tsv.parent_path().string(), ec.message()));
  std::string text = fmt::format("{}\n", fmt::join(m.predictor->rois(), "\t"));
  for (int64_t k = 0; k < rows; ++k) {
    for (int64_t r = 0; r < R; ++r) {
      text += format_value(values[k * R + r]);
      text += r + 1 < R ? '\t' : '\n';
    }
  }
  // The sidecar goes last: its presence marks the run complete.
  std::error_code rm;
  fs::remove(side, rm);
  const fs::path image = out_dir / (in.output_stem + "_desc-neurobolt_bold.nii.gz");
  try {
    write_text_atomic(tsv, text);
    if (atlas) write_atlas_image(image, *atlas, m.predictor->rois(), values, rows, grid.spacing);
    auto side_json = sidecar(m, in, grid, rep.windows, eeg.report());
    side_json["Cleaning"] = rep.cleaning.empty() ? ojson(nullptr) : ojson(rep.cleaning);
    write_text_atomic(side, side_json.dump(2) + "\n");
  } catch (const Error&) {
    // A run that fails (a full disk) leaves none of its files, not a table without its sidecar.
    fs::remove(tsv, rm);
    if (atlas) fs::remove(image, rm);
    throw;
  }
  rep.status = "done";
  rep.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return rep;
}

std::string dataset_description(const ModelContext& m) {
  ojson j;
  j["Name"] = "neurobolt predictions";
  j["BIDSVersion"] = "1.8.0";
  j["DatasetType"] = "derivative";
  ojson by;
  by["Name"] = kGeneratedBy;
  by["Version"] = NEUROBOLT_VERSION;
  by["Description"] = "fMRI ROI time courses synthesised from EEG (NeuroBOLT, Li et al., NeurIPS 2024)";
  ojson checkpoint;
  checkpoint["SHA256"] = m.sha256;
  checkpoint["Arch"] = m.predictor->arch();
  by["Checkpoint"] = checkpoint;
  j["GeneratedBy"] = ojson::array({by});
  return j.dump(2) + "\n";
}

}  // namespace


std::vector<InferInput> collect_infer_inputs(const std::vector<std::string>& inputs,
                                             const std::vector<std::string>& subjects) {
  std::vector<InferInput> out;
  for (const auto& input : inputs) {
    std::error_code ec;
    const fs::path path(input);
    if (!fs::exists(path, ec)) throw IoError(fmt::format("input '{}': no such file or folder", input));
    if (fs::is_directory(path, ec)) {
      if (looks_like_bids(path)) {
        BidsOptions options;
        options.find_targets = false;
        const auto dataset = index_bids(input, options);
        for (const auto& run : dataset.runs) {
          InferInput in = plain_input(run.path);
          in.bad_channels = run.bad_channels;
          for (const auto& ch : run.channels) in.channel_types[ch.name] = ch.type;
          in.events_path = run.events_path;
          in.events = run.events;
          out.push_back(std::move(in));
        }
      } else {
        std::vector<fs::path> files;
        for (auto it = fs::recursive_directory_iterator(path, ec); it != fs::recursive_directory_iterator();
             it.increment(ec)) {
          if (it->is_regular_file(ec) && is_eeg_file(it->path())) files.push_back(it->path());
        }
        std::sort(files.begin(), files.end());
        for (const auto& f : files) out.push_back(plain_input(f));
      }
    } else {
      if (!is_eeg_file(path)) {
        throw FormatError(fmt::format("input '{}': expected an EEG file (.edf .bdf .vhdr .set), a folder or a BIDS "
                                      "dataset",
                                      input));
      }
      out.push_back(plain_input(path));
    }
  }
  if (!subjects.empty()) {
    std::set<std::string> wanted;
    for (auto s : subjects) wanted.insert(s.rfind("sub-", 0) == 0 ? s.substr(4) : s);
    std::vector<InferInput> kept;
    for (auto& in : out) {
      const auto parsed = parse_bids_name(fs::path(in.eeg_path).filename().string());
      if (parsed && wanted.count(parsed->core().sub)) kept.push_back(std::move(in));
    }
    if (kept.empty()) {
      throw ConfigError(fmt::format("no recording of subject{} {} among the {} inputs", wanted.size() > 1 ? "s" : "",
                                    fmt::join(wanted, ", "), out.size()));
    }
    out = std::move(kept);
  }
  std::sort(out.begin(), out.end(), [](const InferInput& a, const InferInput& b) {
    return a.output_stem != b.output_stem ? a.output_stem < b.output_stem : a.eeg_path < b.eeg_path;
  });
  for (std::size_t i = 1; i < out.size(); ++i) {
    if (out[i].output_stem == out[i - 1].output_stem) {
      throw ConfigError(fmt::format("inputs '{}' and '{}' would both write '{}{}.tsv'", out[i - 1].eeg_path,
                                    out[i].eeg_path, out[i].output_stem, kSuffix));
    }
  }
  return out;
}

InferSummary run_inference(const std::string& checkpoint, const std::vector<std::string>& inputs,
                           const InferOptions& o, const InferCallbacks& cb) {
  const auto start = Clock::now();
  if (o.shard_count < 1 || o.shard_index < 0 || o.shard_index >= o.shard_count) {
    throw UsageError(fmt::format("--shard: expected i/N with 0 <= i < N, found {}/{}", o.shard_index, o.shard_count));
  }
  if (o.batch < 1) throw UsageError(fmt::format("--batch: expected >= 1, found {}", o.batch));
  if (o.verify && o.shard_count != 1) {
    throw UsageError("--verify checks every run of the inputs: give it without --shard");
  }
  if (o.read_block_bytes < 1) {
    throw UsageError(fmt::format("--read-block-mb: expected > 0, found {} bytes", o.read_block_bytes));
  }
  // A grid point every 10 ms at the finest: a day-long recording then has 8.6 million (a smaller
  // step would only allocate, as 1e-9 s once did, without resolving anything the model sees).
  constexpr double kFinestGrid = 0.01;
  if (o.tr && !(*o.tr >= kFinestGrid)) {
    throw UsageError(fmt::format("--tr: expected at least {:g} s, found {:g}", kFinestGrid, *o.tr));
  }
  if (o.stride && !(*o.stride >= kFinestGrid)) {
    throw UsageError(fmt::format("--stride: expected at least {:g} s, found {:g}", kFinestGrid, *o.stride));
  }
  if (o.output_dir.empty()) throw UsageError("infer: an output folder (-o) is required");

  ModelContext m;
  m.checkpoint_path = checkpoint;
  m.predictor = load_predictor(checkpoint, o.device);
  m.sha256 = sha256_file(checkpoint);
  const json metadata = parse_object(m.predictor->metadata_json());
  m.dataset = metadata.value("dataset", json::object());
  m.parameters = m.dataset.value("parameters", json::object());
  m.preprocess = infer_detail::checkpoint_preprocessing(*m.predictor, o.missing_channels, &m.demean);
  m.preprocess.max_read_bytes = o.read_block_bytes;

  std::optional<Atlas> atlas;
  if (!o.atlas.empty()) {
    atlas = read_atlas(o.atlas, o.atlas_labels);
    std::vector<std::string> absent;
    for (const auto& roi : m.predictor->rois()) {
      const auto names = atlas->roi_names();
      if (std::find(names.begin(), names.end(), roi) == names.end()) absent.push_back(roi);
    }
    if (absent.size() == m.predictor->rois().size()) {
      throw ConfigError(fmt::format("atlas '{}' has none of the model's ROIs ({}); name its regions with "
                                    "--atlas-labels",
                                    o.atlas, fmt::join(m.predictor->rois(), ", ")));
    }
  }

  const auto all = collect_infer_inputs(inputs, o.subjects);
  std::vector<InferInput> mine;
  for (std::size_t i = 0; i < all.size(); ++i)
    if (static_cast<int64_t>(i % static_cast<std::size_t>(o.shard_count)) == o.shard_index) mine.push_back(all[i]);

  std::error_code ec;
  fs::create_directories(o.output_dir, ec);
  if (ec) throw IoError(fmt::format("cannot create output folder '{}': {}", o.output_dir, ec.message()));
  const fs::path description = fs::path(o.output_dir) / "dataset_description.json";
  const std::string text = dataset_description(m);
  if (fs::exists(description, ec)) {
    std::ifstream f(description);
    std::stringstream existing;
    existing << f.rdbuf();
    if (existing.str() != text) {
      const json old = parse_object(existing.str());
      const bool ours = old.contains("GeneratedBy") && old["GeneratedBy"].is_array() && !old["GeneratedBy"].empty() &&
                        old["GeneratedBy"][0].value("Name", std::string()) == kGeneratedBy;
      if (!ours) {
        throw IoError(fmt::format("'{}' exists and is not a neurobolt infer output folder: choose another -o",
                                  o.output_dir));
      }
      if (!o.force) {
        throw IoError(fmt::format("'{}' holds predictions of another checkpoint (use --force to replace them)",
                                  o.output_dir));
      }
      write_text_atomic(description, text);
    }
  } else {
    write_text_atomic(description, text);
  }

  InferSummary summary;
  summary.runs = static_cast<int64_t>(mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const auto& in = mine[i];
    InferRunReport rep;
    auto progress = [&](const std::string& stage, double fraction) {
      if (!cb.progress) return;
      InferProgress pr;
      pr.run = static_cast<int64_t>(i);
      pr.runs = summary.runs;
      pr.name = in.output_stem;
      pr.stage = stage;
      pr.fraction = fraction;
      cb.progress(pr);
    };
    try {
      rep = process_run(m, in, o, atlas ? &*atlas : nullptr, progress, summary.predict_seconds);
    } catch (const Error& e) {
      rep.input = in.eeg_path;
      rep.output = (fs::path(o.output_dir) / (in.output_stem + kSuffix + ".tsv")).string();
      rep.status = "failed";
      rep.error = e.what();
      if (summary.first_failure_exit_code == 0) summary.first_failure_exit_code = e.exit_code();
    } catch (const std::exception& e) {
      rep.input = in.eeg_path;
      rep.status = "failed";
      rep.error = e.what();
      if (summary.first_failure_exit_code == 0) summary.first_failure_exit_code = static_cast<int>(ErrorKind::internal);
    }
    if (rep.status == "done") ++summary.done;
    if (rep.status == "skipped") ++summary.skipped;
    if (rep.status == "failed") ++summary.failed;
    if (rep.status == "missing") ++summary.missing;
    summary.windows += rep.windows;
    if (cb.run_done) cb.run_done(rep);
    summary.reports.push_back(std::move(rep));
  }
  if (o.verify) {
    // Exactly once: a prediction table in the folder that no run of the list would write.
    std::set<std::string> expected;
    for (const auto& in : mine) expected.insert((fs::path(o.output_dir) / (in.output_stem + kSuffix + ".tsv")).lexically_normal().string());
    const std::string tail = std::string(kSuffix) + ".tsv";
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(o.output_dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0 &&
          !expected.count(it->path().lexically_normal().string())) {
        summary.extra.push_back(it->path().string());
      }
    }
    std::sort(summary.extra.begin(), summary.extra.end());
  }
  summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return summary;
}

}  // namespace neurobolt
