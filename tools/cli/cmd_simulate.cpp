// neurobolt simulate: a simulated simultaneous EEG-fMRI BIDS dataset with known ground truth
// (see include/neurobolt/simulate.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
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

// The config field each option sets (SimulationConfigError::fields names config fields).
const std::map<std::string, std::string>& option_of_field() {
  static const std::map<std::string, std::string> map = {
      {"subjects", "--subjects"},     {"sessions", "--sessions"},
      {"runs", "--runs"},             {"minutes", "--minutes"},
      {"sample_rate", "--sfreq"},     {"repetition_time", "--tr"},
      {"first_volume", "--first-volume"}, {"trigger_label", "--trigger"},
      {"task", "--task"},             {"channels", "--channels"},
      {"reference", "--reference"},   {"rois", "--rois"},
      {"snr", "--snr"},               {"power_line_frequency", "--line-freq"},
      {"vigilance", "--vigilance"},   {"pipeline", "--pipeline"},
      {"scanner.slices", "--slices"}, {"scanner.heart_rate", "--heart-rate"}};
  return map;
}

// Channel names from --channels: one preset alone, or names that are 10-05 electrodes or ECG/EOG
// channels. A bad value is a usage error naming it.
std::vector<std::string> pick_channels(const std::vector<std::string>& names) {
  const auto presets = channel_preset_names();
  const auto is_preset = [&](const std::string& n) { return std::find(presets.begin(), presets.end(), n) != presets.end(); };
  if (names.size() == 1 && is_preset(names.front())) return channel_preset(names.front());
  for (const auto& name : names) {
    if (is_preset(name))
      throw UsageError(fmt::format("--channels: the preset '{}' stands alone, found it in a list of {} names", name,
                                   names.size()));
    std::string lower = name;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const bool known = standard_montage(StandardMontage::standard_1005).find(name).has_value() ||
                       lower.find("ecg") != std::string::npos || lower.find("ekg") != std::string::npos ||
                       lower.find("eog") != std::string::npos;
    if (!known)
      throw UsageError(fmt::format("--channels: '{}' is neither a preset ({}) nor a 10-05 electrode name nor an "
                                   "ECG/EOG channel (a name containing ECG, EKG or EOG)",
                                   name, fmt::join(presets, ", ")));
  }
  return names;
}

// --artefacts: the scanner's artefacts, "gradient" and/or "bcg", or "none" alone.
void pick_scanner_artefacts(const std::vector<std::string>& names, SimScanner& scanner) {
  scanner.gradient = scanner.bcg = false;
  for (const auto& name : names) {
    if (name == "gradient") {
      scanner.gradient = true;
    } else if (name == "bcg") {
      scanner.bcg = true;
    } else if (name == "none") {
      if (names.size() > 1)
        throw UsageError(fmt::format("--artefacts: 'none' stands alone, found it in a list of {} names", names.size()));
    } else {
      throw UsageError(fmt::format("--artefacts: unknown artefact '{}' (known: gradient, bcg, none)", name));
    }
  }
}

}  // namespace

void register_simulate(CLI::App& app) {
  struct Options {
    std::string out, config, reference, trigger, task, pipeline;
    std::vector<std::string> channels, rois, artefacts;
    int subjects = 0, sessions = 0, runs = 0, slices = 0;
    double minutes = 0, sfreq = 0, tr = 0, first_volume = 0, snr = 0, line = 0, vigilance = 0, heart_rate = 0;
    uint64_t seed = 0;
    bool no_artefacts = false, nifti = false, dump_config = false, slice_triggers = false, ecg_inverted = false;
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
  o->slices = defaults.scanner.slices;
  o->heart_rate = defaults.scanner.heart_rate;
  o->artefacts = {"none"};
  o->channels = {"mr32"};
  o->rois = {"roi16"};

  auto* cmd = app.add_subcommand("simulate", "Write a simulated simultaneous EEG-fMRI BIDS dataset with ground truth");
  cmd->footer(
      "EEG: rhythms of cortical dipoles (delta..gamma, slowly fluctuating amplitudes, 1/f background) through a "
      "4-shell spherical head, FCz reference, sensor noise and artefacts, as EDF+ with one trigger annotation per "
      "volume. fMRI: per ROI, band power of coupled sources plus an EEG-invisible part, convolved with the HRF, plus "
      "physiological noise, drift and thermal noise at --snr. Targets go to derivatives/<pipeline>, the ground truth "
      "(noiseless BOLD, drives, band powers, noise ceilings, the full config) to derivatives/<pipeline>-truth. With "
      "--artefacts gradient,bcg the EEG is as recorded in the running scanner (at a realistic rate such as --sfreq "
      "5000) and the truth adds the clean EEG and the true heartbeats and slice onsets. The "
      "same --seed gives the same bytes. Options given here override --config. A bad option value exits 2 naming "
      "the option, a bad value in --config exits 5 naming the file and field. Without -q the progress goes to stderr and "
      "a summary with the noise ceilings per ROI to stdout; with -q nothing is printed but errors.");
  cmd->add_option("-o,--out", o->out,
                  "Dataset folder to create. A non-empty folder is refused; with --force it is replaced only if it is "
                  "an earlier simulation output (its dataset_description.json names 'neurobolt simulate', it holds "
                  "derivatives/<pipeline>-truth/simulation.json and nothing the simulator does not write)");
  cmd->add_option("--config", o->config, "Simulation config (JSON, e.g. a dataset's simulation.json)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--subjects", o->subjects, "Subjects")->capture_default_str()->check(CLI::Range(1, 999));
  cmd->add_option("--sessions", o->sessions, "Sessions per subject (0: no session level)")
      ->capture_default_str()
      ->check(CLI::Range(0, 99));
  cmd->add_option("--runs", o->runs, "Runs per subject and session")->capture_default_str()->check(CLI::Range(1, 99));
  cmd->add_option("--minutes", o->minutes,
                  fmt::format("Minutes per run (rounded to whole seconds; at most {:g}, and at most {} samples per "
                              "channel and run, {} channel samples per run)",
                              SimulationLimits::max_minutes, SimulationLimits::max_run_samples,
                              SimulationLimits::max_run_values))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--sfreq", o->sfreq, "EEG sampling rate, Hz (a whole number, 100-20000)")->capture_default_str();
  cmd->add_option("--tr", o->tr, "fMRI repetition time, s")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--first-volume", o->first_volume, "Seconds from the first EEG sample to the first volume")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--trigger", o->trigger,
                  "Label of the volume trigger annotations: 1-40 bytes of UTF-8 text, spaces inside allowed (e.g. "
                  "'Scan Start'), no control characters, no leading or trailing space")
      ->capture_default_str();
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
  cmd->add_flag("--no-artefacts", o->no_artefacts,
                "No blinks, muscle, mains or residual pulse artefacts (the subject's and the room's; --artefacts "
                "chooses the scanner's: together, only the scanner's)");
  cmd->add_option("--artefacts", o->artefacts,
                  "The scanner's artefacts on the EEG, comma-separated: gradient (EPI slice waveforms with the "
                  "scanner's clock drift, ~4000 uV), bcg (ballistocardiogram locked to a simulated ECG, ~60 uV; "
                  "replaces the residual pulse), or none. The clean EEG goes to derivatives/<pipeline>-truth")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--slices", o->slices, "Slices per volume (with --artefacts gradient)")->capture_default_str();
  cmd->add_flag("--slice-triggers", o->slice_triggers,
                "Also one 'Slice' annotation per slice (with --artefacts gradient)");
  cmd->add_option("--heart-rate", o->heart_rate, "Mean heart rate, beats per minute (with --artefacts bcg)")
      ->capture_default_str();
  cmd->add_flag("--ecg-inverted", o->ecg_inverted, "ECG channels upside down (with --artefacts bcg)");
  cmd->add_flag("--nifti", o->nifti, "Also write a small 4-D BOLD image per run and a label atlas");
  cmd->add_option("--pipeline", o->pipeline, "Name of the derivatives folders")->capture_default_str();
  cmd->add_flag("--dump-config", o->dump_config, "Print the resulting config as JSON and write nothing");
  add_standard_options(*cmd);
  cmd->callback([cmd, o] {
    apply_cpu_runtime(*cmd);
    if (o->dump_config) refuse_option(*cmd, "--out", "--dump-config prints the config and writes nothing");
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
    if (given("--channels")) c.channels = pick_channels(o->channels);
    if (given("--rois")) c.rois = pick_rois(o->rois, from_file ? c.rois : roi_preset("roi16"));
    if (o->no_artefacts) c.artefacts = SimArtefacts{0, 0, 0, 0, 0, 0};
    if (o->nifti) c.write_nifti = true;
    if (given("--artefacts")) pick_scanner_artefacts(o->artefacts, c.scanner);
    const char* no_gradient = "applies to the gradient artefact only (--artefacts gradient)";
    const char* no_bcg = "applies to the BCG only (--artefacts bcg)";
    if (!c.scanner.gradient) {
      refuse_option(*cmd, "--slices", no_gradient);
      refuse_option(*cmd, "--slice-triggers", no_gradient);
    }
    if (!c.scanner.bcg) {
      refuse_option(*cmd, "--heart-rate", no_bcg);
      refuse_option(*cmd, "--ecg-inverted", no_bcg);
    }
    if (cmd->count("--slices") > 0) c.scanner.slices = o->slices;
    if (o->slice_triggers) c.scanner.slice_triggers = true;
    if (cmd->count("--heart-rate") > 0) c.scanner.heart_rate = o->heart_rate;
    if (o->ecg_inverted) c.scanner.ecg_inverted = true;
    c.threads = global_options().threads;
    try {
      validate(c);
    } catch (SimulationConfigError& e) {
      // A bad option value is a usage error naming the option; a bad value from --config, a
      // config error naming the file.
      std::vector<std::string> options;
      for (const auto& field : e.fields) {
        const auto it = option_of_field().find(field);
        if (it != option_of_field().end() && cmd->count(it->second) > 0) options.push_back(it->second);
      }
      if (!options.empty())
        throw UsageError(fmt::format("{}: expected {}, found {}", fmt::join(options, ", "), e.expected, e.found));
      if (from_file) e.add_context(o->config);
      throw;
    }
    if (o->dump_config) {
      std::cout << to_json(c);
      return;
    }
    if (o->out.empty()) throw UsageError("simulate: --out is required (the dataset folder to create)");

    const auto summary = write_simulated_dataset(c, o->out, global_options().force, [](const SimulationProgress& p) {
      note(fmt::format("[{}/{}] {}: {:.1f} min, {} ch at {:g} Hz, {} volumes ({:.1f} s)", p.completed, p.total, p.label,
                       p.minutes, p.channels, p.sample_rate, p.volumes, p.seconds));
    });
    // What was written, and the noise ceilings it reached: notes about a file-producing command,
    // so -q prints nothing at all.
    if (global_options().quiet) return;
    const auto plural = [](int64_t n, const char* one, const char* many) {
      return fmt::format("{} {}", n, n == 1 ? one : many);
    };
    std::cout << fmt::format("wrote {}: {} ({}), {}, {:.1f} s\n", summary.root, plural(summary.runs, "run", "runs"),
                             plural(c.subjects, "subject", "subjects"),
                             plural(static_cast<int64_t>(summary.roi_names.size()), "ROI", "ROIs"), summary.seconds);
    std::cout << fmt::format("{:<22} {:>9} {:>12}\n", "ROI", "ceiling", "EEG ceiling");
    for (std::size_t r = 0; r < summary.roi_names.size(); ++r) {
      const double eeg = summary.mean_eeg_ceiling[r];
      std::cout << fmt::format("{:<22} {:>9.3f} {:>12}\n", summary.roi_names[r], summary.mean_ceiling[r],
                               std::isnan(eeg) ? std::string("-") : fmt::format("{:.3f}", eeg));
    }
  });
}

}  // namespace neurobolt::cli
