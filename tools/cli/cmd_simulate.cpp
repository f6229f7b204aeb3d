// neurobolt simulate: a simulated simultaneous EEG-fMRI BIDS dataset with known ground truth
// (see include/neurobolt/simulate.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/montage.hpp"
#include "neurobolt/simulate.hpp"

namespace neurobolt::cli {
namespace {

SimulationConfig load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open simulation config '{}'", path));
  std::stringstream text;
  text << in.rdbuf();
  return simulation_config_from_json(text.str(), path);
}

// A preset name, or a list of names taken from `available` (for ROIs: the preset's ROIs).
std::vector<SimRoi> pick_rois(const std::vector<std::string>& names, const std::vector<SimRoi>& available) {
  if (names.size() == 1) {
    for (const auto& preset : roi_preset_names())
      if (names.front() == preset) return roi_preset(preset);
  }
  std::vector<SimRoi> picked;
  for (const auto& name : names) {
    auto it = std::find_if(available.begin(), available.end(), [&](const SimRoi& r) { return r.name == name; });
    if (it == available.end()) {
      std::vector<std::string> known;
      for (const auto& r : available) known.push_back(r.name);
      throw UsageError(fmt::format("--rois: unknown ROI '{}' (a preset: {}; or names from: {})", name,
                                   fmt::join(roi_preset_names(), ", "), fmt::join(known, ", ")));
    }
    picked.push_back(*it);
  }
  return picked;
}

}  // namespace

void register_simulate(CLI::App& app) {
  struct Options {
    std::string out, config, reference, trigger, task, pipeline;
    std::vector<std::string> channels, rois;
    int subjects = 0, sessions = 0, runs = 0;
    double minutes = 0, sfreq = 0, tr = 0, first_volume = 0, snr = 0, line = 0, vigilance = 0;
    uint64_t seed = 0;
    bool no_artefacts = false, nifti = false, dump_config = false;
  };
  const SimulationConfig defaults = SimulationConfig::defaults();
  auto o = std::make_shared<Options>();
  o->subjects = defaults.subjects;
  o->sessions = defaults.sessions;
  o->runs = defaults.runs;
  o->minutes = defaults.minutes;
  o->sfreq = defaults.sample_rate;
  o->tr = defaults.repetition_time;
  o->first_volume = defaults.first_volume;
  o->snr = defaults.snr;
  o->line = defaults.power_line_frequency;
  o->vigilance = defaults.vigilance;
  o->seed = defaults.seed;
  o->reference = defaults.reference;
  o->trigger = defaults.trigger_label;
  o->task = defaults.task;
  o->pipeline = defaults.pipeline;
  o->channels = {"mr32"};
  o->rois = {"roi16"};

  auto* cmd = app.add_subcommand("simulate", "Write a simulated simultaneous EEG-fMRI BIDS dataset with ground truth");
  cmd->footer(
      "EEG: rhythms of cortical dipoles (delta..gamma, slowly fluctuating amplitudes, 1/f background) through a "
      "4-shell spherical head, FCz reference, sensor noise and artefacts, as EDF+ with one trigger annotation per "
      "volume. fMRI: per ROI, band power of coupled sources plus an EEG-invisible part, convolved with the HRF, plus "
      "physiological noise, drift and thermal noise at --snr. Targets go to derivatives/<pipeline>, the ground truth "
      "(noiseless BOLD, drives, band powers, noise ceilings, the full config) to derivatives/<pipeline>-truth. The "
      "same --seed gives the same bytes. Options given here override --config.");
  cmd->add_option("-o,--out", o->out, "Dataset folder to create (refused if not empty, unless --force)");
  cmd->add_option("--config", o->config, "Simulation config (JSON, e.g. a dataset's simulation.json)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--subjects", o->subjects, "Subjects")->capture_default_str()->check(CLI::Range(1, 999));
  cmd->add_option("--sessions", o->sessions, "Sessions per subject (0: no session level)")
      ->capture_default_str()
      ->check(CLI::Range(0, 99));
  cmd->add_option("--runs", o->runs, "Runs per subject and session")->capture_default_str()->check(CLI::Range(1, 99));
  cmd->add_option("--minutes", o->minutes, "Minutes per run (rounded to whole seconds)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--sfreq", o->sfreq, "EEG sampling rate, Hz (a whole number, 100-20000)")->capture_default_str();
  cmd->add_option("--tr", o->tr, "fMRI repetition time, s")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--first-volume", o->first_volume, "Seconds from the first EEG sample to the first volume")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--trigger", o->trigger, "Label of the volume trigger annotations")->capture_default_str();
  cmd->add_option("--channels", o->channels,
                  fmt::format("Channels: a preset ({}) or 10-05 names, comma-separated; names with ECG/EOG are ECG/EOG "
                              "channels",
                              fmt::join(channel_preset_names(), ", ")))
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--reference", o->reference, "EEG reference: an electrode (not then a channel) or 'average'")
      ->capture_default_str();
  cmd->add_option(
         "--rois", o->rois,
         fmt::format("ROIs: a preset ({}) or names from it, comma-separated", fmt::join(roi_preset_names(), ", ")))
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option(
         "--snr", o->snr,
         "BOLD SNR (SD of signal / SD of noise) per ROI before its snr_scale; noise ceiling = snr/sqrt(1+snr^2)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  cmd->add_option("--task", o->task, "BIDS task label")->capture_default_str();
  cmd->add_option("--line-freq", o->line, "Power-line frequency, Hz (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--vigilance", o->vigilance, "SD of the shared vigilance fluctuation (log amplitude; 0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-artefacts", o->no_artefacts, "No blinks, muscle, mains or pulse artefacts");
  cmd->add_flag("--nifti", o->nifti, "Also write a small 4-D BOLD image per run and a label atlas");
  cmd->add_option("--pipeline", o->pipeline, "Name of the derivatives folders")->capture_default_str();
  cmd->add_flag("--dump-config", o->dump_config, "Print the resulting config as JSON and write nothing");
  add_standard_options(*cmd);
  cmd->callback([cmd, o] {
    apply_runtime();
    SimulationConfig c = o->config.empty() ? SimulationConfig::defaults() : load_config_file(o->config);
    const bool from_file = !o->config.empty();
    auto given = [&](const char* option) { return !from_file || cmd->count(option) > 0; };
    if (given("--subjects")) c.subjects = o->subjects;
    if (given("--sessions")) c.sessions = o->sessions;
    if (given("--runs")) c.runs = o->runs;
    if (given("--minutes")) c.minutes = o->minutes;
    if (given("--sfreq")) c.sample_rate = o->sfreq;
    if (given("--tr")) c.repetition_time = o->tr;
    if (given("--first-volume")) c.first_volume = o->first_volume;
    if (given("--trigger")) c.trigger_label = o->trigger;
    if (given("--reference")) c.reference = o->reference;
    if (given("--snr")) c.snr = o->snr;
    if (given("--seed")) c.seed = o->seed;
    if (given("--task")) c.task = o->task;
    if (given("--line-freq")) c.power_line_frequency = o->line;
    if (given("--vigilance")) c.vigilance = o->vigilance;
    if (given("--pipeline")) c.pipeline = o->pipeline;
    if (given("--channels")) {
      const auto& names = o->channels;
      const auto presets = channel_preset_names();
      const bool preset =
          names.size() == 1 && std::find(presets.begin(), presets.end(), names.front()) != presets.end();
      std::string lower = names.front();
      for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const bool known = standard_montage(StandardMontage::standard_1005).find(names.front()).has_value() ||
                         lower.find("ecg") != std::string::npos || lower.find("ekg") != std::string::npos ||
                         lower.find("eog") != std::string::npos;
      if (names.size() == 1 && !preset && !known)
        throw UsageError(fmt::format("--channels: '{}' is neither a preset ({}) nor a 10-05 electrode name",
                                     names.front(), fmt::join(presets, ", ")));
      c.channels = preset ? channel_preset(names.front()) : names;
    }
    if (given("--rois")) c.rois = pick_rois(o->rois, from_file ? c.rois : roi_preset("roi16"));
    if (o->no_artefacts) c.artefacts = SimArtefacts{0, 0, 0, 0, 0, 0};
    if (o->nifti) c.write_nifti = true;
    c.threads = global_options().threads;
    validate(c);
    if (o->dump_config) {
      std::cout << to_json(c);
      return;
    }
    if (o->out.empty()) throw UsageError("simulate: --out is required (the dataset folder to create)");

    const auto summary = write_simulated_dataset(c, o->out, global_options().force, [](const SimulationProgress& p) {
      note(fmt::format("[{}/{}] {}: {:.1f} min, {} ch at {:g} Hz, {} volumes ({:.1f} s)", p.completed, p.total, p.label,
                       p.minutes, p.channels, p.sample_rate, p.volumes, p.seconds));
    });
    std::cout << fmt::format("wrote {}: {} runs ({} subjects), {} ROIs, {:.1f} s\n", summary.root, summary.runs,
                             c.subjects, summary.roi_names.size(), summary.seconds);
    std::cout << fmt::format("{:<22} {:>9} {:>12}\n", "ROI", "ceiling", "EEG ceiling");
    for (std::size_t r = 0; r < summary.roi_names.size(); ++r) {
      const double eeg = summary.mean_eeg_ceiling[r];
      std::cout << fmt::format("{:<22} {:>9.3f} {:>12}\n", summary.roi_names[r], summary.mean_ceiling[r],
                               std::isnan(eeg) ? std::string("-") : fmt::format("{:.3f}", eeg));
    }
  });
}

}  // namespace neurobolt::cli
