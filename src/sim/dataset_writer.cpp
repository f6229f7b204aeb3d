// Writing simulated runs as a BIDS dataset (BIDS 1.8: EEG, derivatives), atomically.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/atomic_file.hpp"
#include "neurobolt/edf_writer.hpp"
#include "neurobolt/bids.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/montage.hpp"
#include "neurobolt/nifti.hpp"
#include "neurobolt/simulate.hpp"
#include "sim/scanner.hpp"
#include "sim/sim_internal.hpp"

namespace neurobolt {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

constexpr const char* kBidsVersion = "1.8.0";

void make_folder(const fs::path& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw IoError(fmt::format("cannot create folder '{}': {}", folder.string(), ec.message()));
}

void write_text(const fs::path& path, const std::string& text) {
  make_folder(path.parent_path());
  detail::write_file(path, text, path.string());
}

void write_json(const fs::path& path, const ordered_json& j) { write_text(path, j.dump(2) + "\n"); }

std::string count(int64_t n, const char* one, const char* many) { return fmt::format("{} {}", n, n == 1 ? one : many); }

std::string number(double v) {
  if (!std::isfinite(v)) return "n/a";
  return fmt::format("{:.7g}", v);
}

ordered_json generated_by_entry() {
  return ordered_json::array({ordered_json{{"Name", "neurobolt simulate"}, {"Version", NEUROBOLT_VERSION}}});
}

// A table of `rows` x names.size() values (row-major) as TSV.
std::string table(const std::vector<std::string>& names, const double* values, int64_t rows) {
  std::string text;
  for (std::size_t c = 0; c < names.size(); ++c) text += (c ? "\t" : "") + names[c];
  text += "\n";
  const auto columns = static_cast<int64_t>(names.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < columns; ++c) text += (c ? "\t" : "") + number(values[r * columns + c]);
    text += "\n";
  }
  return text;
}

// Column-major (series after series) to row-major.
std::vector<double> transpose(const std::vector<double>& series_major, int64_t series, int64_t length) {
  std::vector<double> out(series_major.size());
  for (int64_t s = 0; s < series; ++s)
    for (int64_t j = 0; j < length; ++j)
      out[static_cast<std::size_t>(j * series + s)] = series_major[static_cast<std::size_t>(s * length + j)];
  return out;
}

const char* bids_type(ChannelType type) {
  switch (type) {
    case ChannelType::ecg: return "ECG";
    case ChannelType::eog: return "EOG";
    case ChannelType::emg: return "EMG";
    case ChannelType::misc: return "MISC";
    case ChannelType::trigger: return "TRIG";
    case ChannelType::eeg: break;
  }
  return "EEG";
}

// The placement scheme the EEG electrodes need: "10-20" when all are classic 10-20 positions,
// "10-10" when all are in the 10-10 system, else "10-05".
std::string placement_scheme(const std::vector<Channel>& channels) {
  static const std::set<std::string> classic = {"Fp1", "Fpz", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7",
                                                "C3",  "Cz",  "C4",  "T8", "P7", "P3", "Pz", "P4", "P8",
                                                "O1",  "Oz",  "O2",  "A1", "A2", "M1", "M2"};
  const Montage& m1020 = standard_montage(StandardMontage::standard_1020);
  bool all_classic = true, all_1010 = true;
  for (const auto& ch : channels) {
    if (ch.type != ChannelType::eeg) continue;
    const std::string name = canonical_channel_name(ch.name);
    all_classic = all_classic && classic.count(name) > 0;
    all_1010 = all_1010 && m1020.find(name).has_value();
  }
  return all_classic ? "10-20" : all_1010 ? "10-10" : "10-05";
}

struct RunPaths {
  fs::path folder;   // sub-XX[/ses-N]
  std::string base;  // sub-XX[_ses-N]_task-T_run-R
};

RunPaths run_paths(const SimulationConfig& c, const SimulatedRun& r) {
  RunPaths p;
  p.folder = "sub-" + r.subject;
  p.base = "sub-" + r.subject;
  if (!r.session.empty()) {
    p.folder /= "ses-" + r.session;
    p.base += "_ses-" + r.session;
  }
  p.base += "_task-" + c.task + "_run-" + r.run;
  return p;
}

struct SummaryRow {
  std::string subject, session, run;
  std::vector<double> snr, requested, realised, eeg;
};

// The grid of the optional NIfTI images: each ROI a 2x2x2 block of 4 mm voxels, blocks on a
// 4 x 4 x n lattice with one background voxel between them.
NiftiGrid nifti_grid(std::size_t rois) {
  NiftiGrid g;
  const auto layers = static_cast<int64_t>((rois + 15) / 16);
  g.dims = {12, 12, 3 * layers};
  g.voxel_size = {4.0, 4.0, 4.0};
  g.affine = {{{4.0, 0.0, 0.0, -22.0}, {0.0, 4.0, 0.0, -22.0}, {0.0, 0.0, 4.0, -6.0 * static_cast<double>(layers)}}};
  g.affine_source = "sform";
  return g;
}

// Linear voxel indices of ROI r's block.
std::vector<int64_t> roi_voxels(const NiftiGrid& g, std::size_t r) {
  const auto block = static_cast<int64_t>(r);
  const int64_t bx = block % 4, by = (block / 4) % 4, bz = block / 16;
  std::vector<int64_t> voxels;
  for (int64_t dz = 0; dz < 2; ++dz)
    for (int64_t dy = 0; dy < 2; ++dy)
      for (int64_t dx = 0; dx < 2; ++dx) {
        const int64_t x = 3 * bx + dx, y = 3 * by + dy, z = 3 * bz + dz;
        voxels.push_back((z * g.dims[1] + y) * g.dims[0] + x);
      }
  return voxels;
}

void write_atlas(const SimulationConfig& c, const fs::path& folder) {
  NiftiImage atlas;
  atlas.grid = nifti_grid(c.rois.size());
  atlas.data.assign(static_cast<std::size_t>(atlas.grid.num_voxels()), 0.0f);
  std::string labels = "index\tname\n";
  for (std::size_t r = 0; r < c.rois.size(); ++r) {
    for (int64_t v : roi_voxels(atlas.grid, r)) atlas.data[static_cast<std::size_t>(v)] = static_cast<float>(r + 1);
    labels += fmt::format("{}\t{}\n", r + 1, c.rois[r].name);
  }
  make_folder(folder);
  write_nifti((folder / "atlas-roi_dseg.nii.gz").string(), atlas);
  write_text(folder / "atlas-roi_dseg.tsv", labels);
}

// A 4-D BOLD image whose ROI means are 100 + the ROI's BOLD (percent signal change): ROI voxels
// get zero-sum noise around that mean, background voxels noise around 100.
void write_bold_image(const SimulationConfig& c, const SimulatedRun& r, const fs::path& path, int subject, int session,
                      int run) {
  NiftiImage image;
  image.grid = nifti_grid(r.roi_names.size());
  image.num_volumes = r.num_volumes;
  image.repetition_time = r.repetition_time;
  const int64_t nvox = image.grid.num_voxels();
  image.data.assign(static_cast<std::size_t>(nvox * r.num_volumes), 0.0f);
  sim::Rng rng =
      sim::Rng::derive(c.seed, {sim::tag("run"), static_cast<uint64_t>(subject), static_cast<uint64_t>(session),
                                static_cast<uint64_t>(run), sim::tag("nifti")});
  std::vector<std::vector<int64_t>> blocks;
  for (std::size_t roi = 0; roi < r.roi_names.size(); ++roi) blocks.push_back(roi_voxels(image.grid, roi));
  const std::size_t rois = r.roi_names.size();
  for (int64_t v = 0; v < r.num_volumes; ++v) {
    float* volume = image.data.data() + v * nvox;
    for (int64_t i = 0; i < nvox; ++i) volume[i] = static_cast<float>(100.0 + 0.5 * rng.normal());
    for (std::size_t roi = 0; roi < rois; ++roi) {
      std::vector<double> noise(blocks[roi].size());
      double mean = 0.0;
      for (auto& e : noise) mean += (e = rng.normal());
      mean /= static_cast<double>(noise.size());
      const double value = 100.0 + r.bold[static_cast<std::size_t>(v) * rois + roi];
      for (std::size_t k = 0; k < noise.size(); ++k)
        volume[blocks[roi][k]] = static_cast<float>(value + 0.5 * (noise[k] - mean));
    }
  }
  make_folder(path.parent_path());
  write_nifti(path.string(), image);
}

SummaryRow write_run(const SimulationConfig& c, const SimulatedRun& r, const fs::path& root, int subject, int session,
                     int run) {
  const RunPaths p = run_paths(c, r);
  const fs::path eeg_dir = root / p.folder / "eeg";
  make_folder(eeg_dir);
  const std::string base = p.base;

  write_edf(r.eeg, (eeg_dir / (base + "_eeg.edf")).string());

  int eeg_count = 0, ecg_count = 0, eog_count = 0;
  std::string channels = "name\ttype\tunits\tsampling_frequency\tstatus\n";
  for (const auto& ch : r.eeg.channels) {
    eeg_count += ch.type == ChannelType::eeg;
    ecg_count += ch.type == ChannelType::ecg;
    eog_count += ch.type == ChannelType::eog;
    channels += fmt::format("{}\t{}\t{}\t{}\tgood\n", ch.name, bids_type(ch.type), ch.unit, number(r.eeg.sample_rate));
  }
  write_text(eeg_dir / (base + "_channels.tsv"), channels);

  ordered_json sidecar;
  sidecar["TaskName"] = c.task;
  sidecar["TaskDescription"] = "Simulated resting state inside the MR scanner (neurobolt simulate)";
  sidecar["SamplingFrequency"] = r.eeg.sample_rate;
  if (c.power_line_frequency > 0.0)
    sidecar["PowerLineFrequency"] = c.power_line_frequency;
  else
    sidecar["PowerLineFrequency"] = "n/a";
  sidecar["SoftwareFilters"] = "n/a";
  sidecar["EEGReference"] = c.reference;
  sidecar["EEGPlacementScheme"] = placement_scheme(r.eeg.channels);
  sidecar["EEGChannelCount"] = eeg_count;
  sidecar["ECGChannelCount"] = ecg_count;
  sidecar["EOGChannelCount"] = eog_count;
  sidecar["EMGChannelCount"] = 0;
  sidecar["MiscChannelCount"] = 0;
  sidecar["TriggerChannelCount"] = 0;
  sidecar["RecordingDuration"] = r.eeg.duration();
  sidecar["RecordingType"] = "continuous";
  sidecar["Manufacturer"] = "neurobolt simulate";
  sidecar["SoftwareVersions"] = NEUROBOLT_VERSION;
  write_json(eeg_dir / (base + "_eeg.json"), sidecar);

  std::string events = "onset\tduration\ttrial_type\tvalue\tsample\n";
  for (const auto& a : r.eeg.annotations)
    events += fmt::format("{}\t0\t{}\t{}\t{}\n", a.onset, a.label, a.label, std::llround(a.onset * r.eeg.sample_rate));
  write_text(eeg_dir / (base + "_events.tsv"), events);

  // Targets.
  const fs::path target_dir = root / "derivatives" / c.pipeline / p.folder / "func";
  write_text(target_dir / (base + "_desc-roi_timeseries.tsv"), table(r.roi_names, r.bold.data(), r.num_volumes));
  ordered_json target;
  target["RepetitionTime"] = r.repetition_time;
  target["StartTime"] = 0.0;
  target["Units"] = "percent signal change";
  target["ROINames"] = r.roi_names;
  target["Description"] = fmt::format(
      "Simulated ROI BOLD (noisy), one row per volume; row v is the BOLD at the volume trigger "
      "v of {} (onset {} + v * {} s from the first EEG sample)",
      base + "_eeg.edf", c.first_volume, r.repetition_time);
  write_json(target_dir / (base + "_desc-roi_timeseries.json"), target);

  // Ground truth, as BIDS derivative time series (_desc-<what>_timeseries.tsv + JSON). The index
  // does not take them for targets unless a desc entity is asked for (index_bids: simulation
  // ground truth), so the noiseless BOLD can still be a target with --target-entity desc=noiseless.
  const fs::path truth_dir = root / "derivatives" / (c.pipeline + "-truth") / p.folder / "func";
  auto bold_truth = [&](const std::string& desc, const std::vector<double>& values, const std::string& description) {
    write_text(truth_dir / (base + "_desc-" + desc + "_timeseries.tsv"),
               table(r.roi_names, values.data(), r.num_volumes));
    ordered_json j;
    j["RepetitionTime"] = r.repetition_time;
    j["StartTime"] = 0.0;
    j["Units"] = "percent signal change";
    j["ROINames"] = r.roi_names;
    j["Description"] = description;
    write_json(truth_dir / (base + "_desc-" + desc + "_timeseries.json"), j);
  };
  bold_truth("noiseless", r.bold_noiseless,
             "Noiseless ROI BOLD: amplitude * (HRF conv drive) at the volume times, one row per volume");
  bold_truth("visible", r.bold_visible,
             "The part of the noiseless BOLD driven by EEG band power, one row per volume");
  auto grid_truth = [&](const std::string& desc, const std::vector<std::string>& names,
                        const std::vector<double>& values, const std::string& units, const std::string& description) {
    const auto series = static_cast<int64_t>(names.size());
    const auto rows = transpose(values, series, r.num_drive_samples);
    write_text(truth_dir / (base + "_desc-" + desc + "_timeseries.tsv"), table(names, rows.data(), r.num_drive_samples));
    ordered_json j;
    j["SamplingFrequency"] = r.drive_rate;
    j["StartTime"] = r.drive_start;
    j["Units"] = units;
    j["Description"] = description;
    write_json(truth_dir / (base + "_desc-" + desc + "_timeseries.json"), j);
  };
  const std::string grid_note = " StartTime: seconds from the first EEG sample to the first row (negative: before it).";
  grid_truth("drive", r.roi_names, r.drive, "arbitrary (unit variance)", "Neural drive of each ROI." + grid_note);
  grid_truth("visibledrive", r.roi_names, r.drive_visible, "arbitrary (drive units)",
             "The EEG-visible part of each ROI's neural drive." + grid_note);
  std::vector<std::string> power_names;
  for (const auto& s : r.source_names)
    for (int b = 0; b < kNumBands; ++b) power_names.push_back(s + "_" + to_string(static_cast<Band>(b)));
  grid_truth("bandpower", power_names, r.band_power, "relative to the mean",
             "Band power of each source rhythm (<source>_<band>) relative to its mean (the square of its amplitude "
             "envelope)." +
                 grid_note);

  if (c.scanner.any()) {
    // The EEG without the scanner's artefacts, and the true events they follow.
    const fs::path truth_eeg = root / "derivatives" / (c.pipeline + "-truth") / p.folder / "eeg";
    make_folder(truth_eeg);
    write_edf(r.eeg_clean, (truth_eeg / (base + "_desc-clean_eeg.edf")).string());
    struct Event {
      double onset;
      int order;  // at equal onsets: volume, then slice, then heartbeat
      const char* type;
    };
    std::vector<Event> scanner_events;
    const double duration = r.eeg.duration();
    for (double t : r.heartbeat_times)
      if (t >= 0.0 && t < duration) scanner_events.push_back({t, 2, "heartbeat"});
    for (std::size_t k = 0; k < r.slice_times.size(); ++k) {
      if (k % static_cast<std::size_t>(c.scanner.slices) == 0) scanner_events.push_back({r.slice_times[k], 0, "volume"});
      scanner_events.push_back({r.slice_times[k], 1, "slice"});
    }
    std::stable_sort(scanner_events.begin(), scanner_events.end(), [](const Event& a, const Event& b) {
      return a.onset < b.onset || (a.onset == b.onset && a.order < b.order);
    });
    std::string events_tsv = "onset\tduration\ttrial_type\n";
    for (const auto& e : scanner_events) events_tsv += fmt::format("{:.7f}\t0\t{}\n", e.onset, e.type);
    write_text(truth_eeg / (base + "_desc-scanner_events.tsv"), events_tsv);
    ordered_json j;
    j["onset"] = {{"Description", "True time of the event from the first EEG sample, in the EEG clock (not rounded "
                                  "to a sample)"},
                  {"Units", "s"}};
    j["duration"] = {{"Description", "0: instantaneous"}, {"Units", "s"}};
    j["trial_type"] = {{"Description", "Kind of event"},
                       {"Levels",
                        {{"heartbeat", "R peak of the simulated heartbeat (the ECG's R wave; the BCG follows it)"},
                         {"slice", "onset of a slice's gradient waveform"},
                         {"volume", "onset of a volume (its first slice)"}}}};
    write_json(truth_eeg / (base + "_desc-scanner_events.json"), j);
  }

  if (c.write_nifti) {
    const fs::path func_dir = root / p.folder / "func";
    write_bold_image(c, r, func_dir / (base + "_bold.nii.gz"), subject, session, run);
    ordered_json bold;
    bold["RepetitionTime"] = r.repetition_time;
    bold["TaskName"] = c.task;
    write_json(func_dir / (base + "_bold.json"), bold);
  }

  SummaryRow row{r.subject, r.session, r.run, r.snr, r.requested_ceiling, r.realised_ceiling, r.eeg_ceiling};
  return row;
}

// What the raw EEG holds of the scanner (README).
std::string scanner_note(const SimulationConfig& c) {
  const auto& s = c.scanner;
  std::string text = "\nThe EEG was recorded inside the running scanner, before any artefact correction:";
  if (s.gradient)
    text += fmt::format(
        " a gradient artefact (EPI, {} slices per volume over TR - {} s, median per-channel peak {} uV, scanner clock "
        "{} ppm against the EEG's, hardware low-pass {} Hz){};",
        s.slices, s.slice_gap, s.gradient_amplitude, s.clock_drift_ppm, sim::amplifier_lowpass_hz(c.sample_rate),
        s.slice_triggers ? fmt::format(", with a '{}' annotation per slice", s.slice_trigger_label) : "");
  if (s.bcg)
    text += fmt::format(" a ballistocardiogram (median per-channel peak {} uV) after every heartbeat ({} bpm, HRV "
                        "{}), ECG R wave {} uV{};",
                        s.bcg_amplitude, s.heart_rate, s.hrv, s.ecg_amplitude, s.ecg_inverted ? " (inverted)" : "");
  text.back() = '.';
  return text + " derivatives/" + c.pipeline + "-truth holds the clean EEG and the true events.\n";
}

std::string truth_readme_text(const SimulationConfig& c);

std::string readme(const SimulationConfig& c) {
  return fmt::format(
      "Simulated simultaneous EEG-fMRI (neurobolt simulate {version}, seed {seed}).\n\n"
      "{subjects} x {sessions}{runs} of {minutes} min; EEG: {channels} channels at {rate} Hz, reference "
      "{reference}, EDF+ with one '{label}' annotation per fMRI volume; fMRI: {rois} ROIs at TR {tr} s, first volume "
      "{first} s after the first EEG sample.\n\n"
      "derivatives/{pipeline}/   ROI BOLD targets (*_desc-roi_timeseries.tsv, percent signal change)\n"
      "derivatives/{pipeline}-truth/   ground truth (see its README)\n",
      fmt::arg("version", NEUROBOLT_VERSION), fmt::arg("seed", c.seed),
      fmt::arg("subjects", count(c.subjects, "subject", "subjects")),
      fmt::arg("sessions", c.sessions > 0 ? count(c.sessions, "session", "sessions") + " x " : ""),
      fmt::arg("runs", count(c.runs, "run", "runs")), fmt::arg("minutes", c.minutes),
      fmt::arg("channels", c.channels.size()), fmt::arg("rate", c.sample_rate), fmt::arg("reference", c.reference),
      fmt::arg("label", c.trigger_label), fmt::arg("rois", c.rois.size()), fmt::arg("tr", c.repetition_time),
      fmt::arg("first", c.first_volume), fmt::arg("pipeline", c.pipeline)) +
         (c.scanner.any() ? scanner_note(c) : "");
}

std::string truth_readme(const SimulationConfig& c) {
  if (c.scanner.any())
    return truth_readme_text(c) +
           "\nThe scanner's artefacts: the EEG under sub-XX/[ses-N/]eeg/ of the dataset holds them; here, per run, "
           "sub-XX/[ses-N/]eeg/:\n"
           "  *_desc-clean_eeg.edf   the same EEG without the gradient artefact and the BCG (everything else alike, "
           "ECG channels with their clean ECG, the same annotations): the ground truth of artefact correction\n"
           "  *_desc-scanner_events.tsv (+ .json)   the true events in the EEG clock, not rounded to samples: "
           "'heartbeat' (R peaks), 'slice' (slice onsets, with the scanner's clock drift and jitter), 'volume' (the "
           "first slice of each volume); the triggers in the EDF+ are at the first sample at or after these\n";
  return truth_readme_text(c);
}

std::string truth_readme_text(const SimulationConfig& c) {
  return fmt::format(
      "Ground truth of a neurobolt simulation (neurobolt simulate {version}, seed {seed}).\n\n"
      "simulation.json   the full configuration ('neurobolt simulate --config simulation.json' reproduces the "
      "dataset)\n"
      "summary.tsv   noise ceilings per run and ROI: snr, requested_ceiling = snr/sqrt(1+snr^2), realised_ceiling = "
      "pearson(BOLD, noiseless BOLD), eeg_ceiling = pearson(BOLD, EEG-visible BOLD) (n/a without EEG-visible "
      "drive)\n\n"
      "Per run, sub-XX/[ses-N/]func/ (BIDS derivative time series, each with a JSON sidecar):\n"
      "  *_desc-noiseless_timeseries.tsv   noiseless ROI BOLD, one row per volume (RepetitionTime, percent signal "
      "change)\n"
      "  *_desc-visible_timeseries.tsv     its part driven by EEG band power, one row per volume\n"
      "  *_desc-drive_timeseries.tsv       neural drive of each ROI (unit variance) on the drive grid\n"
      "  *_desc-visibledrive_timeseries.tsv   the EEG-visible part of the drive, on the drive grid\n"
      "  *_desc-bandpower_timeseries.tsv   band power of each source rhythm (<source>_<band>) relative to its mean, "
      "on the drive grid\n"
      "The drive grid has SamplingFrequency = 1 / step (step = TR / k <= 0.1 s) and starts StartTime s from the "
      "first EEG sample (negative: before it, so that the first volume has a full HRF history). These files are "
      "not fMRI targets for neurobolt prepare/info unless a desc entity is asked for (e.g. --derivatives "
      "derivatives/{pipeline}-truth --target-entity desc=noiseless).\n",
      fmt::arg("version", NEUROBOLT_VERSION), fmt::arg("seed", c.seed), fmt::arg("pipeline", c.pipeline));
}

// Why `folder` is not recognisably an earlier output of write_simulated_dataset ("" when it is):
// its dataset_description.json names "neurobolt simulate" in GeneratedBy, it holds
// derivatives/<pipeline>-truth/simulation.json, and nothing else than what the simulator writes
// (dataset_description.json, README, participants.tsv/.json, task-*_events.json, sub-* folders,
// derivatives/<pipeline> and derivatives/<pipeline>-truth). Anything else might be someone's work.
std::string not_a_simulation(const fs::path& folder) {
  std::error_code ec;
  if (!generated_by(folder.string(), "neurobolt simulate"))
    return "its dataset_description.json does not name 'neurobolt simulate' in GeneratedBy";
  std::set<std::string> pipelines;
  for (const auto& entry : fs::directory_iterator(folder / "derivatives", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 6 && name.compare(name.size() - 6, 6, "-truth") == 0 &&
        fs::is_regular_file(entry.path() / "simulation.json", ec))
      pipelines.insert(name.substr(0, name.size() - 6));
  }
  if (pipelines.empty()) return "it holds no derivatives/<pipeline>-truth/simulation.json";
  for (const auto& entry : fs::directory_iterator(folder / "derivatives", ec)) {
    const std::string name = entry.path().filename().string();
    const bool ours = entry.is_directory(ec) &&
                      (pipelines.count(name) > 0 ||
                       (name.size() > 6 && pipelines.count(name.substr(0, name.size() - 6)) > 0 &&
                        name.compare(name.size() - 6, 6, "-truth") == 0));
    if (!ours) return fmt::format("'derivatives/{}' is not written by neurobolt simulate", name);
  }
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    const bool file = entry.is_regular_file(ec), dir = entry.is_directory(ec);
    const bool ours = (file && (name == "dataset_description.json" || name == "README" || name == "participants.tsv" ||
                                name == "participants.json" ||
                                (name.rfind("task-", 0) == 0 && name.size() > 17 &&
                                 name.compare(name.size() - 12, 12, "_events.json") == 0))) ||
                      (dir && (name == "derivatives" || name.rfind("sub-", 0) == 0));
    if (!ours) return fmt::format("'{}' is not written by neurobolt simulate", name);
  }
  if (ec) return "it cannot be listed: " + ec.message();
  return "";
}

// Bytes the runs made in parallel may hold: half the physical memory, and half the address space
// limit (ulimit -v) where one is set.
int64_t memory_budget() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  int64_t budget = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 2 : int64_t{4} << 30;
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    budget = std::min<int64_t>(budget, static_cast<int64_t>(limit.rlim_cur / 2));
  return budget;
}

// Removes the temporary dataset unless it was committed.
struct TempFolder {
  fs::path path;
  bool committed = false;
  ~TempFolder() {
    if (!committed) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

}  // namespace

SimulationSummary write_simulated_dataset(const SimulationConfig& c, const std::string& out_dir, bool force,
                                          const std::function<void(const SimulationProgress&)>& progress) {
  const auto started = std::chrono::steady_clock::now();
  validate(c);
  if (out_dir.empty()) throw UsageError("simulate: the output folder name is empty");
  fs::path out = fs::absolute(fs::path(out_dir)).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec))
      throw IoError(fmt::format("'{}' exists and is not a folder; choose another output folder", out.string()));
    if (!fs::is_empty(out, ec)) {
      if (!force) throw IoError(fmt::format("'{}' is not empty (use --force to replace it)", out.string()));
      if (const std::string why = not_a_simulation(out); !why.empty())
        throw IoError(fmt::format("'{}' is not an earlier simulation output, so --force does not replace it: {}; "
                                  "remove it yourself or choose another folder",
                                  out.string(), why));
    }
  }
  fs::create_directories(out.parent_path(), ec);
  if (ec) throw IoError(fmt::format("cannot create folder '{}': {}", out.parent_path().string(), ec.message()));

  TempFolder temp{out.parent_path() / (out.filename().string() + ".tmp-" + std::to_string(::getpid()))};
  fs::remove_all(temp.path, ec);
  if (!fs::create_directory(temp.path, ec) || ec)
    throw IoError(fmt::format("cannot create folder '{}': {}", temp.path.string(), ec.message()));
  const fs::path& root = temp.path;

  ordered_json description;
  description["Name"] = fmt::format("neurobolt simulated EEG-fMRI (seed {})", c.seed);
  description["BIDSVersion"] = kBidsVersion;
  description["DatasetType"] = "raw";
  description["License"] = "CC0";
  description["Authors"] = ordered_json::array({"neurobolt simulate"});
  description["GeneratedBy"] = generated_by_entry();
  write_json(root / "dataset_description.json", description);
  write_text(root / "README", readme(c));
  std::string participants = "participant_id\n";
  for (int s = 0; s < c.subjects; ++s) participants += fmt::format("sub-{:0{}d}\n", s + 1, c.subjects >= 100 ? 3 : 2);
  write_text(root / "participants.tsv", participants);
  write_json(root / "participants.json",
             ordered_json{{"participant_id", {{"Description", "Simulated subject (neurobolt simulate; no real person)"}}}});
  ordered_json events_sidecar;
  events_sidecar["onset"] = {{"Description", "Time of the volume trigger from the first EEG sample"}, {"Units", "s"}};
  events_sidecar["duration"] = {{"Description", "Duration of the event (a trigger is instantaneous)"}, {"Units", "s"}};
  events_sidecar["trial_type"] = {
      {"Description", "Kind of event"},
      {"Levels", {{c.trigger_label, "fMRI volume trigger (start of a volume acquisition)"}}}};
  if (c.scanner.gradient && c.scanner.slice_triggers)
    events_sidecar["trial_type"]["Levels"][c.scanner.slice_trigger_label] = "fMRI slice trigger (start of a slice)";
  events_sidecar["value"] = {{"Description", "The EDF+ annotation text of the event"}};
  events_sidecar["sample"] = {{"Description", "EEG sample of the event, counted from 0"}};
  write_json(root / ("task-" + c.task + "_events.json"), events_sidecar);

  for (const std::string& name : {c.pipeline, c.pipeline + "-truth"}) {
    ordered_json d;
    d["Name"] = name == c.pipeline ? "Simulated ROI BOLD targets" : "Simulation ground truth";
    d["BIDSVersion"] = kBidsVersion;
    d["DatasetType"] = "derivative";
    d["GeneratedBy"] = generated_by_entry();
    if (name != c.pipeline)
      d["GeneratedBy"][0]["Description"] =
          "Ground truth of the simulation: noiseless and EEG-visible BOLD, neural drives, source band powers "
          "(*_desc-<what>_timeseries.tsv), noise ceilings (summary.tsv) and the configuration (simulation.json); "
          "see README";
    if (name != c.pipeline && c.scanner.any())
      d["GeneratedBy"][0]["Description"] = d["GeneratedBy"][0]["Description"].get<std::string>() +
                                           "; the EEG without the scanner's artefacts and their true events (eeg/)";
    write_json(root / "derivatives" / name / "dataset_description.json", d);
  }
  const fs::path truth = root / "derivatives" / (c.pipeline + "-truth");
  write_text(truth / "simulation.json", to_json(c));
  write_text(truth / "README", truth_readme(c));
  if (c.write_nifti) write_atlas(c, root / "derivatives" / c.pipeline / "atlas");

  struct Job {
    int subject, session, run;
  };
  std::vector<Job> jobs;
  for (int s = 0; s < c.subjects; ++s)
    for (int e = 0; e < std::max(1, c.sessions); ++e)
      for (int r = 0; r < c.runs; ++r) jobs.push_back({s, e, r});
  std::vector<SummaryRow> rows(jobs.size());
  std::vector<std::string> roi_names;
  for (const auto& roi : c.rois) roi_names.push_back(roi.name);

  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Each run in flight holds its EEG and working series: no more runs at once than memory allows.
  const int64_t per_run = std::max<int64_t>(1, run_memory_estimate(c));
  const auto by_memory = static_cast<int>(std::clamp<int64_t>(memory_budget() / per_run, 1, 1 << 16));
  const int threads =
      std::clamp(std::min(c.threads > 0 ? c.threads : hardware, by_memory), 1, static_cast<int>(jobs.size()));
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex report_mutex;
  int completed = 0;
  std::exception_ptr error;
  auto worker = [&] {
    while (!failed.load()) {
      const std::size_t i = next.fetch_add(1);
      if (i >= jobs.size()) return;
      try {
        const auto t0 = std::chrono::steady_clock::now();
        const Job& job = jobs[i];
        const SimulatedRun run = simulate_run(c, job.subject, job.session, job.run);
        rows[i] = write_run(c, run, root, job.subject, job.session, job.run);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(report_mutex);
        ++completed;
        if (progress && !failed.load()) {
          SimulationProgress p;
          p.completed = completed;
          p.total = static_cast<int>(jobs.size());
          p.label = run.label;
          p.minutes = run.eeg.duration() / 60.0;
          p.channels = run.eeg.num_channels();
          p.sample_rate = run.eeg.sample_rate;
          p.volumes = run.num_volumes;
          p.seconds = seconds;
          progress(p);
        }
      } catch (const std::bad_alloc&) {
        std::lock_guard<std::mutex> lock(report_mutex);
        if (!error)
          error = std::make_exception_ptr(ConfigError(fmt::format(
              "simulation: out of memory making a run (each needs about {:.1f} GiB, {} in parallel); use fewer "
              "--threads, channels or minutes, or a lower sample rate",
              static_cast<double>(per_run) / (1 << 30), threads)));
        failed.store(true);
      } catch (...) {
        std::lock_guard<std::mutex> lock(report_mutex);
        if (!error) error = std::current_exception();
        failed.store(true);
      }
    }
  };
  if (threads == 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);

  SimulationSummary summary;
  summary.runs = static_cast<int>(jobs.size());
  summary.roi_names = roi_names;
  const std::size_t rois = roi_names.size();
  summary.requested_ceiling.assign(rois, 0.0);
  summary.mean_ceiling.assign(rois, 0.0);
  summary.mean_eeg_ceiling.assign(rois, 0.0);
  std::string tsv = "participant_id\t" + std::string(c.sessions > 0 ? "session\t" : "") +
                    "run\troi\tsnr\trequested_ceiling\trealised_ceiling\teeg_ceiling\n";
  for (const auto& row : rows) {
    for (std::size_t r = 0; r < rois; ++r) {
      tsv += fmt::format("sub-{}\t{}{}\t{}\t{}\t{}\t{}\t{}\n", row.subject,
                         row.session.empty() ? "" : row.session + "\t", row.run, roi_names[r], number(row.snr[r]),
                         number(row.requested[r]), number(row.realised[r]), number(row.eeg[r]));
      summary.requested_ceiling[r] = row.requested[r];
      summary.mean_ceiling[r] += row.realised[r] / static_cast<double>(rows.size());
      summary.mean_eeg_ceiling[r] += row.eeg[r] / static_cast<double>(rows.size());
    }
  }
  write_text(truth / "summary.tsv", tsv);

  // The complete dataset replaces the old one only now.
  if (fs::exists(out, ec)) {
    const fs::path old = out.parent_path() / (out.filename().string() + ".old-" + std::to_string(::getpid()));
    fs::remove_all(old, ec);
    fs::rename(out, old, ec);
    if (ec) throw IoError(fmt::format("cannot move the old '{}' aside: {}", out.string(), ec.message()));
    fs::rename(root, out, ec);
    if (ec) {
      std::error_code back;
      fs::rename(old, out, back);
      throw IoError(fmt::format("cannot move '{}' to '{}': {}", root.string(), out.string(), ec.message()));
    }
    temp.committed = true;
    fs::remove_all(old, ec);
  } else {
    fs::rename(root, out, ec);
    if (ec) throw IoError(fmt::format("cannot move '{}' to '{}': {}", root.string(), out.string(), ec.message()));
    temp.committed = true;
  }
  summary.root = out.string();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace neurobolt
