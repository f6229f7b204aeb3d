// The simulator's configuration: bands, presets, validation and JSON.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json_reader.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/montage.hpp"
#include "neurobolt/simulate.hpp"
#include "sim/sim_internal.hpp"

namespace neurobolt {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr const char* kBandNames[kNumBands] = {"delta", "theta", "alpha", "beta", "gamma"};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

const char* to_string(Band band) { return kBandNames[static_cast<int>(band)]; }

Band band_from_string(const std::string& name) {
  for (int b = 0; b < kNumBands; ++b)
    if (lower(name) == kBandNames[b]) return static_cast<Band>(b);
  throw ConfigError(fmt::format("unknown band '{}' (known: delta, theta, alpha, beta, gamma)", name));
}

BandRange band_range(Band band) {
  static constexpr BandRange ranges[kNumBands] = {{1.0, 4.0}, {4.0, 8.0}, {8.0, 13.0}, {13.0, 30.0}, {30.0, 45.0}};
  return ranges[static_cast<int>(band)];
}

SimSource source_below(const std::string& name, const std::string& anchor, double depth_mm, const std::string& toward,
                       double tilt_deg) {
  const sim::HeadSphere head = sim::make_head_sphere(HeadModel{});
  const auto u = sim::radial_direction(head, electrode_position(anchor));
  SimSource s;
  s.name = name;
  for (int k = 0; k < 3; ++k) s.position[k] = head.center[k] + (head.radius - depth_mm) * u[k];
  std::array<double, 3> moment = u;
  if (!toward.empty()) {
    const auto v = sim::radial_direction(head, electrode_position(toward));
    // The component of the direction to `toward` orthogonal to the radius.
    const double along = v[0] * u[0] + v[1] * u[1] + v[2] * u[2];
    std::array<double, 3> t{v[0] - along * u[0], v[1] - along * u[1], v[2] - along * u[2]};
    const double len = std::sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
    if (!(len > 1e-9))
      throw ConfigError(
          fmt::format("source '{}': electrodes '{}' and '{}' give no tangential direction", name, anchor, toward));
    const double tilt = tilt_deg * M_PI / 180.0;
    for (int k = 0; k < 3; ++k) moment[k] = std::cos(tilt) * u[k] + std::sin(tilt) * t[k] / len;
  }
  s.orientation = moment;
  return s;
}

std::vector<SimSource> default_sources() {
  // Amplitudes (nA m, RMS) give occipital alpha of ~15-25 uV at O1/O2 against FCz, central beta
  // and mu of a few uV, frontal-midline theta of ~5 uV: resting EEG as commonly reported.
  auto make = [](SimSource s, PerBand amplitude, PerBand peak, double background, double timescale) {
    s.amplitude = amplitude;
    s.peak_hz = peak;
    s.background = background;
    s.envelope_timescale = timescale;
    return s;
  };
  std::vector<SimSource> sources;
  // Posterior alpha (the dominant resting rhythm; Berger 1929) and parietal alpha/beta.
  sources.push_back(
      make(source_below("occipital", "Oz", 22.0), {8, 8, 60, 10, 3}, {2.5, 6.0, 10.0, 20.0, 40.0}, 15, 6));
  sources.push_back(make(source_below("parietal", "Pz", 25.0), {6, 6, 30, 20, 3}, {2.5, 6.5, 9.5, 18.0, 40.0}, 15, 10));
  // Sensorimotor mu and beta from the walls of the central sulcus: mostly tangential moments.
  sources.push_back(
      make(source_below("motor_L", "C3", 22.0, "FC3", 60.0), {5, 5, 25, 30, 3}, {2.5, 6.0, 11.0, 21.0, 40.0}, 12, 5));
  sources.push_back(
      make(source_below("motor_R", "C4", 22.0, "FC4", 60.0), {5, 5, 25, 30, 3}, {2.5, 6.0, 11.0, 21.0, 40.0}, 12, 5));
  // Frontal-midline theta (anterior cingulate / medial prefrontal generators).
  sources.push_back(make(source_below("frontal", "Fz", 30.0), {15, 25, 8, 8, 3}, {2.0, 6.0, 10.0, 19.0, 40.0}, 15, 12));
  sources.push_back(
      make(source_below("temporal_L", "T7", 25.0), {10, 10, 12, 8, 4}, {2.5, 5.5, 9.0, 17.0, 38.0}, 12, 8));
  sources.push_back(
      make(source_below("temporal_R", "T8", 25.0), {10, 10, 12, 8, 4}, {2.5, 5.5, 9.0, 17.0, 38.0}, 12, 8));
  return sources;
}

std::vector<std::string> channel_preset_names() { return {"mr32", "neurobolt26", "1020"}; }

std::vector<std::string> channel_preset(const std::string& name) {
  if (lower(name) == "mr32")
    // A 32-channel MR cap (BrainCap MR layout): 31 EEG electrodes, FCz reference, ECG on the back.
    return {"Fp1", "Fp2", "F3",  "F4",  "C3",  "C4",  "P3",  "P4",   "O1",  "O2",  "F7",
            "F8",  "T7",  "T8",  "P7",  "P8",  "Fz",  "Cz",  "Pz",   "Oz",  "FC1", "FC2",
            "CP1", "CP2", "FC5", "FC6", "CP5", "CP6", "TP9", "TP10", "POz", "ECG"};
  if (lower(name) == "neurobolt26")
    // The 26 EEG channels of the NeuroBOLT paper's data (models/neurobolt-base.json), plus ECG.
    return {"Fp1", "Fp2", "F3",  "F4", "C3", "C4", "P3",  "P4", "O1",  "O2",   "F7",  "F8",   "T7", "T8",
            "P7",  "P8",  "Fpz", "Fz", "Cz", "Pz", "POz", "Oz", "FT9", "FT10", "TP9", "TP10", "ECG"};
  if (name == "1020")
    return {"Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz",
            "C4",  "T8",  "P7", "P3", "Pz", "P4", "P8", "O1", "O2"};
  throw ConfigError(
      fmt::format("unknown channel preset '{}' (known: {})", name, fmt::join(channel_preset_names(), ", ")));
}

std::vector<std::string> roi_preset_names() { return {"roi16"}; }

std::vector<SimRoi> roi_preset(const std::string& name) {
  if (lower(name) != "roi16")
    throw ConfigError(fmt::format("unknown ROI preset '{}' (known: {})", name, fmt::join(roi_preset_names(), ", ")));
  // Couplings with the signs the simultaneous EEG-fMRI literature reports:
  //  - occipital/visual BOLD falls with posterior alpha power, thalamic BOLD rises with it
  //    (Goldman et al. 2002, NeuroReport 13:2487; Laufs et al. 2003, NeuroImage 19:1463;
  //    Moosmann et al. 2003, NeuroImage 20:145; de Munck et al. 2007, NeuroImage 35:1142);
  //  - sensorimotor BOLD falls with central beta and mu power (Ritter et al. 2009, Hum Brain
  //    Mapp 30:1168; Yuan et al. 2010, NeuroImage 49:2596);
  //  - default-mode BOLD rises with parietal beta power (Laufs et al. 2003, PNAS 100:11053;
  //    Mantini et al. 2007, PNAS 104:13170) and falls with frontal-midline theta (Scheeringa
  //    et al. 2008, Int J Psychophysiol 67:242); anterior cingulate BOLD rises with theta;
  //  - the cingulo-opercular (insula) "tonic alertness" network rises with alpha (Sadaghiani et
  //    al. 2010, J Neurosci 30:10243);
  //  - hippocampus and cerebellum: no EEG-visible drive.
  // eeg_fraction sets how much of each ROI's drive the EEG can see, so the achievable accuracy
  // varies over ROIs; snr_scale gives subcortical ROIs a lower temporal SNR. HRF peak delays vary
  // by a few tenths of a second over regions (Handwerker et al. 2004, NeuroImage 21:1639).
  auto roi = [](std::string n, std::vector<RoiCoupling> couplings, double eeg_fraction, double snr_scale,
                double peak_delay) {
    SimRoi r;
    r.name = std::move(n);
    r.couplings = std::move(couplings);
    r.eeg_fraction = eeg_fraction;
    r.snr_scale = snr_scale;
    r.hrf.peak_delay = peak_delay;
    r.hrf.undershoot_delay = peak_delay + 10.0;
    return r;
  };
  using B = Band;
  return {
      roi("calcarine", {{"occipital", B::alpha, -1.0}}, 0.7, 1.2, 5.5),
      roi("cuneus", {{"occipital", B::alpha, -0.8}, {"parietal", B::alpha, -0.3}}, 0.6, 1.1, 5.5),
      roi("lingual", {{"occipital", B::alpha, -0.7}, {"occipital", B::gamma, 0.3}}, 0.5, 1.0, 5.8),
      roi("thalamus", {{"occipital", B::alpha, 0.8}, {"parietal", B::alpha, 0.4}}, 0.5, 0.6, 5.0),
      roi("precentral_L", {{"motor_L", B::beta, -1.0}, {"motor_L", B::alpha, -0.4}}, 0.65, 1.1, 6.0),
      roi("precentral_R", {{"motor_R", B::beta, -1.0}, {"motor_R", B::alpha, -0.4}}, 0.65, 1.1, 6.0),
      roi("postcentral_L", {{"motor_L", B::alpha, -0.8}, {"motor_L", B::beta, -0.4}}, 0.5, 1.0, 6.0),
      roi("postcentral_R", {{"motor_R", B::alpha, -0.8}, {"motor_R", B::beta, -0.4}}, 0.5, 1.0, 6.0),
      roi("supp_motor", {{"motor_L", B::beta, -0.5}, {"motor_R", B::beta, -0.5}}, 0.4, 0.9, 6.2),
      roi("precuneus", {{"parietal", B::beta, 0.8}, {"parietal", B::alpha, 0.3}}, 0.45, 1.0, 6.0),
      roi("posterior_cingulate", {{"parietal", B::beta, 0.6}, {"occipital", B::alpha, 0.3}}, 0.35, 0.9, 6.0),
      roi("medial_prefrontal", {{"frontal", B::theta, -0.8}}, 0.35, 0.8, 6.5),
      roi("anterior_cingulate", {{"frontal", B::theta, 0.6}, {"frontal", B::delta, 0.2}}, 0.3, 0.8, 6.3),
      roi("insula", {{"occipital", B::alpha, 0.4}}, 0.2, 0.8, 6.0),
      roi("hippocampus", {}, 0.0, 0.5, 6.5),
      roi("cerebellum", {}, 0.0, 0.8, 6.0),
  };
}

SimulationConfig SimulationConfig::defaults() {
  SimulationConfig c;
  c.channels = channel_preset("mr32");
  c.sources = default_sources();
  c.rois = roi_preset("roi16");
  return c;
}

// ---------------------------------------------------------------------------------------------
// Validation

namespace {

class Check {
 public:
  void require(bool ok, const std::string& field, const std::string& expected, const std::string& found) const {
    if (!ok) throw SimulationConfigError({field}, expected, found);
  }
  void require_all(bool ok, std::vector<std::string> fields, const std::string& expected,
                   const std::string& found) const {
    if (!ok) throw SimulationConfigError(std::move(fields), expected, found);
  }
  void positive(double v, const std::string& field) const {
    require(v > 0.0 && std::isfinite(v), field, "a positive number", fmt::format("{}", v));
  }
  void non_negative(double v, const std::string& field) const {
    require(v >= 0.0 && std::isfinite(v), field, "a number >= 0", fmt::format("{}", v));
  }
  void at_most(double v, double limit, const std::string& field, const std::string& unit = "") const {
    require(v <= limit, field, fmt::format("at most {:g}{}", limit, unit), fmt::format("{:g}", v));
  }
};

constexpr const char* kTriggerLabelRule =
    "1 to 40 bytes of UTF-8 text without control characters, tabs or line breaks, not starting or ending with a "
    "space (what an EDF+ annotation and an events.tsv cell can hold)";

// Well-formed UTF-8 without control characters (C0, DEL, C1): what an EDF+ TAL annotation holds
// (its separators are the bytes 0, 20 and 21) and a TSV cell keeps.
bool valid_trigger_label(const std::string& s) {
  if (s.empty() || s.size() > 40 || s.front() == ' ' || s.back() == ' ' || !io::is_valid_utf8(s)) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 32 || b == 127) return false;                                                          // C0, DEL
    if (b == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xA0) return false;  // C1: U+0080-U+009F
  }
  return true;
}

bool is_label(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
}

bool is_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

SimulationConfigError::SimulationConfigError(std::vector<std::string> fields_, std::string expected_,
                                             std::string found_)
    : ConfigError(fmt::format("simulation config: {}: expected {}, found {}", fmt::join(fields_, ", "), expected_,
                              found_)),
      fields(std::move(fields_)),
      expected(std::move(expected_)),
      found(std::move(found_)) {}

namespace sim {

bool is_ecg_name(const std::string& name) {
  const std::string l = lower(name);
  return l.find("ecg") != std::string::npos || l.find("ekg") != std::string::npos;
}
bool is_eog_name(const std::string& name) { return lower(name).find("eog") != std::string::npos; }

std::string edf_label(const std::string& name) {
  const bool ecg = is_ecg_name(name), eog = !ecg && is_eog_name(name);
  if (!ecg && !eog) return name;
  // EDF+ labels are "<type> <specification>" ("ECG II", "EOG VEOG"); readers that infer the type
  // from the label (MNE-Python's infer_types, EDFbrowser) need the type word and the space.
  const std::string first = lower(name.substr(0, name.find(' ')));
  const bool typed = name.find(' ') != std::string::npos && (first == "ecg" || first == "ekg" || first == "eog");
  return typed ? name : (ecg ? "ECG " : "EOG ") + name;
}

}  // namespace sim

void validate(const SimulationConfig& c) {
  using L = SimulationLimits;
  const Check check;
  check.require(c.subjects >= 1 && c.subjects <= 999, "subjects", "1 to 999", fmt::format("{}", c.subjects));
  check.require(c.sessions >= 0 && c.sessions <= 99, "sessions", "0 (no session level) to 99",
                fmt::format("{}", c.sessions));
  check.require(c.runs >= 1 && c.runs <= 99, "runs", "1 to 99", fmt::format("{}", c.runs));
  const int64_t total_runs = int64_t{c.subjects} * std::max(1, c.sessions) * c.runs;
  check.require_all(total_runs <= L::max_total_runs, {"subjects", "sessions", "runs"},
                fmt::format("at most {} runs in all", L::max_total_runs),
                fmt::format("{} x {} x {} = {}", c.subjects, std::max(1, c.sessions), c.runs, total_runs));
  check.positive(c.minutes, "minutes");
  check.at_most(c.minutes, L::max_minutes, "minutes", " per run");
  check.require(std::llround(c.minutes * 60.0) >= 1, "minutes", "at least one second", fmt::format("{}", c.minutes));
  check.require(c.sample_rate >= 100.0 && c.sample_rate <= 20000.0 && c.sample_rate == std::round(c.sample_rate),
                "sample_rate", "a whole number of Hz from 100 to 20000", fmt::format("{}", c.sample_rate));
  const int64_t samples = std::llround(c.minutes * 60.0) * static_cast<int64_t>(c.sample_rate);
  check.require_all(samples <= L::max_run_samples, {"minutes", "sample_rate"},
                fmt::format("at most {} samples per channel and run (minutes x 60 x sample_rate)", L::max_run_samples),
                fmt::format("{} s x {} Hz = {}", std::llround(c.minutes * 60.0), c.sample_rate, samples));
  check.require(c.repetition_time >= 0.1 && c.repetition_time <= 30.0, "repetition_time", "0.1 to 30 s",
                fmt::format("{}", c.repetition_time));
  check.non_negative(c.first_volume, "first_volume");
  const double duration = static_cast<double>(std::llround(c.minutes * 60.0));
  const double volumes = std::floor((duration - c.first_volume) / c.repetition_time + 1e-9);
  check.require(volumes >= 3, "minutes",
                fmt::format("a run long enough for 3 volumes after the first volume at {} s with TR {} s",
                            c.first_volume, c.repetition_time),
                fmt::format("{} s", duration));
  check.require(valid_trigger_label(c.trigger_label), "trigger_label", kTriggerLabelRule,
                "'" + c.trigger_label + "'");
  check.require(is_label(c.task), "task", "a BIDS label (letters and digits)", "'" + c.task + "'");
  check.require(is_name(c.pipeline), "pipeline", "a folder name (letters, digits, '_', '-', '.')",
                "'" + c.pipeline + "'");

  // Channels and reference.
  check.require(!c.channels.empty() && c.channels.size() <= 640, "channels", "1 to 640 names",
                fmt::format("{}", c.channels.size()));
  const auto channels = static_cast<int64_t>(c.channels.size());
  check.require_all(channels * samples <= L::max_run_values, {"channels", "minutes", "sample_rate"},
                fmt::format("at most {} channel samples per run (channels x minutes x 60 x sample_rate; {} GiB as "
                            "float32)",
                            L::max_run_values, L::max_run_values * 4 >> 30),
                fmt::format("{} x {} = {}", channels, samples, channels * samples));
  check.require_all(channels * samples <= L::max_total_values / total_runs,
                {"subjects", "sessions", "runs", "channels", "minutes", "sample_rate"},
                fmt::format("at most {} channel samples in all runs ({} GiB of EDF)", L::max_total_values,
                            L::max_total_values * 2 >> 30),
                fmt::format("{} runs x {} channels x {} samples", total_runs, channels, samples));
  const Montage& m1005 = standard_montage(StandardMontage::standard_1005);
  const bool average = lower(c.reference) == "average";
  if (!average)
    check.require(m1005.find(c.reference).has_value(), "reference", "'average' or a 10-05 electrode name",
                  "'" + c.reference + "'");
  std::set<std::string> seen;
  int eeg = 0;
  for (const auto& ch : c.channels) {
    const bool special = sim::is_ecg_name(ch) || sim::is_eog_name(ch);
    if (!special) {
      check.require(m1005.find(ch).has_value(), "channels",
                    "10-05 electrode names, or ECG/EOG channels (names containing ECG, EKG or EOG)",
                    "unknown channel '" + ch + "'");
      ++eeg;
    }
    const std::string label = sim::edf_label(ch);
    check.require(label.size() <= 16 && std::all_of(label.begin(), label.end(), [](char x) { return x >= 32 && x < 127; }),
                  "channels", "names of printable ASCII characters that fit an EDF label (16 characters, with the "
                  "'ECG '/'EOG ' type word of ECG/EOG channels)",
                  "'" + ch + "' (label '" + label + "')");
    const std::string key = lower(special ? label : canonical_channel_name(ch));
    check.require(seen.insert(key).second, "channels", "unique names", fmt::format("'{}' twice", ch));
    if (!average && !special)
      check.require(
          key != lower(canonical_channel_name(c.reference)), "channels",
          fmt::format("no channel at the reference electrode {}", c.reference),
          fmt::format("'{}' (the reference is not recorded as a channel; use reference 'average' to keep it)", ch));
  }
  check.require(eeg >= 1, "channels", "at least one EEG electrode", "none");

  // Sizes of the drive grid (10 samples per second over the run and the longest HRF).
  check.require(c.sources.size() <= static_cast<std::size_t>(L::max_sources), "sources",
                fmt::format("at most {} sources", L::max_sources), fmt::format("{}", c.sources.size()));
  check.require(c.rois.size() <= static_cast<std::size_t>(L::max_rois), "rois",
                fmt::format("at most {} ROIs", L::max_rois), fmt::format("{}", c.rois.size()));
  double longest_hrf = 0.0;
  for (const auto& roi : c.rois) {
    const std::string f = "rois['" + roi.name + "']";
    check.require(std::isfinite(roi.hrf.length) && roi.hrf.length <= L::max_hrf_length, f + ".hrf.length",
                  fmt::format("at most {:g} s", L::max_hrf_length), fmt::format("{}", roi.hrf.length));
    longest_hrf = std::max(longest_hrf, roi.hrf.length);
  }
  const double grid_samples = (duration + longest_hrf + c.repetition_time) * 10.0 + 2.0;
  const double grid_values = static_cast<double>(5 * c.sources.size() + 2 * c.rois.size()) * grid_samples;
  check.require_all(grid_values <= static_cast<double>(L::max_grid_values), {"sources", "rois", "minutes"},
                fmt::format("at most {} drive-grid values per run ((5 x sources + 2 x ROIs) x 10 per second)",
                            L::max_grid_values),
                fmt::format("({} x 5 + {} x 2) x {:.0f}", c.sources.size(), c.rois.size(), grid_samples));

  // Head and sources.
  check.require(!c.head.relative_radii.empty() && c.head.relative_radii.size() <= L::max_shells,
                "head.relative_radii", fmt::format("1 to {} shells", L::max_shells),
                fmt::format("{}", c.head.relative_radii.size()));
  const sim::HeadSphere head = sim::make_head_sphere(c.head);
  std::set<std::string> source_names;
  for (const auto& s : c.sources) {
    const std::string f = "sources['" + s.name + "']";
    check.require(is_name(s.name) && s.name.size() <= L::max_name_length, "sources",
                  fmt::format("names of 1 to {} letters, digits, '_', '-', '.'", L::max_name_length),
                  "'" + s.name + "'");
    check.require(source_names.insert(s.name).second, "sources", "unique names", fmt::format("'{}' twice", s.name));
    const double dx = s.position[0] - head.center[0], dy = s.position[1] - head.center[1],
                 dz = s.position[2] - head.center[2];
    const double r = std::sqrt(dx * dx + dy * dy + dz * dz);
    check.require(r < head.brain_radius(), f + ".position",
                  fmt::format("a point inside the brain sphere (radius {:.1f} mm around ({:.1f}, {:.1f}, {:.1f}) mm)",
                              head.brain_radius(), head.center[0], head.center[1], head.center[2]),
                  fmt::format("{:.1f} mm from the centre", r));
    const double len = std::sqrt(s.orientation[0] * s.orientation[0] + s.orientation[1] * s.orientation[1] +
                                 s.orientation[2] * s.orientation[2]);
    check.require(len > 0.0 && std::isfinite(len), f + ".orientation", "a non-zero vector", "zero");
    for (int b = 0; b < kNumBands; ++b) {
      const auto band = static_cast<Band>(b);
      check.non_negative(s.amplitude[static_cast<std::size_t>(b)], f + ".amplitude." + to_string(band));
      if (s.amplitude[static_cast<std::size_t>(b)] > 0.0) {
        const BandRange range = band_range(band);
        const double peak = s.peak_hz[static_cast<std::size_t>(b)];
        check.require(
            peak >= range.low_hz && peak <= range.high_hz, f + ".peak_hz." + to_string(band),
            fmt::format("a frequency in the {} band ({}-{} Hz)", to_string(band), range.low_hz, range.high_hz),
            fmt::format("{} Hz", peak));
      }
    }
    check.non_negative(s.background, f + ".background");
    check.positive(s.envelope_timescale, f + ".envelope_timescale");
  }

  // ROIs.
  check.require(!c.rois.empty(), "rois", "at least one ROI", "none");
  std::set<std::string> roi_names;
  for (const auto& roi : c.rois) {
    const std::string f = "rois['" + roi.name + "']";
    check.require(!roi.name.empty() && roi.name.size() <= L::max_name_length &&
                      std::none_of(roi.name.begin(), roi.name.end(),
                                   [](char ch) { return static_cast<unsigned char>(ch) < 32 || ch == 127; }),
                  "rois", fmt::format("names of 1 to {} characters without tabs, line breaks or control characters",
                                      L::max_name_length),
                  "'" + roi.name + "'");
    check.require(roi_names.insert(roi.name).second, "rois", "unique names", fmt::format("'{}' twice", roi.name));
    check.require(roi.eeg_fraction >= 0.0 && roi.eeg_fraction <= 1.0, f + ".eeg_fraction", "a share from 0 to 1",
                  fmt::format("{}", roi.eeg_fraction));
    check.require(roi.eeg_fraction == 0.0 || !roi.couplings.empty(), f + ".couplings",
                  "at least one coupling when eeg_fraction > 0", "none");
    check.require(roi.couplings.size() <= static_cast<std::size_t>(L::max_couplings), f + ".couplings",
                  fmt::format("at most {} couplings", L::max_couplings), fmt::format("{}", roi.couplings.size()));
    for (const auto& coupling : roi.couplings) {
      auto it = std::find_if(c.sources.begin(), c.sources.end(),
                             [&](const SimSource& s) { return s.name == coupling.source; });
      std::vector<std::string> known;
      for (const auto& s : c.sources) known.push_back(s.name);
      check.require(it != c.sources.end(), f + ".couplings",
                    fmt::format("a source name (known: {})", fmt::join(known, ", ")), "'" + coupling.source + "'");
      check.require(it->amplitude[static_cast<std::size_t>(coupling.band)] > 0.0, f + ".couplings",
                    "a band the source has a rhythm in (amplitude > 0)",
                    fmt::format("{} {} with amplitude 0", coupling.source, to_string(coupling.band)));
      check.require(std::isfinite(coupling.weight) && coupling.weight != 0.0, f + ".couplings", "a non-zero weight",
                    fmt::format("{}", coupling.weight));
    }
    check.positive(roi.snr_scale, f + ".snr_scale");
    check.positive(roi.amplitude, f + ".amplitude");
    check.positive(roi.hidden_timescale, f + ".hidden_timescale");
    try {
      signal::spm_hrf(0.1, roi.hrf);
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("simulation config: {}.hrf: {}", f, e.message()));
    }
  }

  check.positive(c.snr, "snr");
  check.non_negative(c.envelope_variability, "envelope_variability");
  check.require(c.envelope_variability <= 1.5, "envelope_variability", "at most 1.5",
                fmt::format("{}", c.envelope_variability));
  check.non_negative(c.vigilance, "vigilance");
  check.require(c.vigilance <= 1.5, "vigilance", "at most 1.5", fmt::format("{}", c.vigilance));
  check.positive(c.vigilance_timescale, "vigilance_timescale");
  for (int b = 0; b < kNumBands; ++b) {
    check.require(std::isfinite(c.vigilance_loading[static_cast<std::size_t>(b)]),
                  std::string("vigilance_loading.") + to_string(static_cast<Band>(b)), "a finite number", "not finite");
    check.positive(c.peak_width_hz[static_cast<std::size_t>(b)],
                   std::string("peak_width_hz.") + to_string(static_cast<Band>(b)));
  }
  check.require(c.aperiodic_exponent >= 0.0 && c.aperiodic_exponent <= 3.0, "aperiodic_exponent", "0 to 3",
                fmt::format("{}", c.aperiodic_exponent));
  check.non_negative(c.sensor_noise, "sensor_noise");
  check.non_negative(c.power_line_frequency, "power_line_frequency");
  check.at_most(c.sensor_noise, L::max_amplitude_uv, "sensor_noise", " uV");
  const auto& a = c.artefacts;
  for (const auto& [value, name] : {std::pair{a.blink_rate, "artefacts.blink_rate"},
                                    std::pair{a.muscle_rate, "artefacts.muscle_rate"}}) {
    check.non_negative(value, name);
    check.at_most(value, L::max_event_rate, name, " per minute");
  }
  for (const auto& [value, name] : {std::pair{a.blink_amplitude, "artefacts.blink_amplitude"},
                                    std::pair{a.muscle_amplitude, "artefacts.muscle_amplitude"},
                                    std::pair{a.mains_amplitude, "artefacts.mains_amplitude"},
                                    std::pair{a.pulse_amplitude, "artefacts.pulse_amplitude"}}) {
    check.non_negative(value, name);
    check.at_most(value, L::max_amplitude_uv, name, " uV");
  }
  const auto& s = c.scanner;
  check.require(s.slices >= 1 && s.slices <= L::max_slices, "scanner.slices", fmt::format("1 to {}", L::max_slices),
                fmt::format("{}", s.slices));
  check.non_negative(s.slice_gap, "scanner.slice_gap");
  for (const auto& [value, name] : {std::pair{s.gradient_amplitude, "scanner.gradient_amplitude"},
                                    std::pair{s.bcg_amplitude, "scanner.bcg_amplitude"},
                                    std::pair{s.ecg_amplitude, "scanner.ecg_amplitude"}}) {
    check.non_negative(value, name);
    check.at_most(value, L::max_amplitude_uv, name, " uV");
  }
  check.require(std::isfinite(s.clock_drift_ppm) && std::fabs(s.clock_drift_ppm) <= 1000.0, "scanner.clock_drift_ppm",
                "-1000 to 1000 ppm", fmt::format("{}", s.clock_drift_ppm));
  check.require(s.timing_jitter_us >= 0.0 && s.timing_jitter_us <= 100.0, "scanner.timing_jitter_us",
                "0 to 100 microseconds", fmt::format("{}", s.timing_jitter_us));
  check.require(s.motion_gain_drift >= 0.0 && s.motion_gain_drift <= 0.3, "scanner.motion_gain_drift",
                "0 to 0.3 (relative gain)", fmt::format("{}", s.motion_gain_drift));
  check.require(valid_trigger_label(s.slice_trigger_label), "scanner.slice_trigger_label", kTriggerLabelRule,
                "'" + s.slice_trigger_label + "'");
  check.require(s.heart_rate >= 30.0 && s.heart_rate <= 200.0, "scanner.heart_rate", "30 to 200 beats per minute",
                fmt::format("{}", s.heart_rate));
  check.require(s.hrv >= 0.0 && s.hrv <= 0.3, "scanner.hrv", "0 to 0.3 (SD of the RR interval / its mean)",
                fmt::format("{}", s.hrv));
  if (s.gradient) {
    // Checked only with the gradient on: a configuration without it (TR 0.1 s, say) stays valid.
    check.require_all(s.slice_gap < c.repetition_time, {"scanner.slice_gap", "repetition_time"},
                      "a slice gap shorter than the repetition time",
                      fmt::format("{} s against TR {} s", s.slice_gap, c.repetition_time));
    const double period = (c.repetition_time - s.slice_gap) / static_cast<double>(s.slices);
    check.require_all(period * c.sample_rate >= 4.0,
                      {"scanner.slices", "scanner.slice_gap", "repetition_time", "sample_rate"},
                      "a slice period (repetition_time - slice_gap) / slices of at least 4 EEG samples; sampling too "
                      "low for the slice frequency",
                      fmt::format("({} - {}) / {} = {:.3g} ms, {:.2f} samples at {} Hz", c.repetition_time,
                                  s.slice_gap, s.slices, period * 1e3, period * c.sample_rate, c.sample_rate));
    const double run_slices = volumes * static_cast<double>(s.slices);
    check.require_all(run_slices <= static_cast<double>(L::max_run_slices), {"scanner.slices", "minutes", "repetition_time"},
                      fmt::format("at most {} slices per run", L::max_run_slices),
                      fmt::format("{:.0f} volumes x {} slices", volumes, s.slices));
    if (s.slice_triggers) {
      const double per_second = static_cast<double>(s.slices + 1) / c.repetition_time;
      check.require_all(per_second <= L::max_triggers_per_second, {"scanner.slices", "repetition_time"},
                        fmt::format("at most {:g} volume and slice triggers per second (what EDF+ annotations hold)",
                                    L::max_triggers_per_second),
                        fmt::format("({} slices + 1) / {} s = {:.1f}", s.slices, c.repetition_time, per_second));
      check.require_all(s.slice_trigger_label != c.trigger_label, {"scanner.slice_trigger_label", "trigger_label"},
                        "different labels for slice and volume triggers", "'" + c.trigger_label + "' for both");
    }
  }

  const auto& v = c.variability;
  check.non_negative(v.peak_jitter_hz, "variability.peak_jitter_hz");
  check.non_negative(v.amplitude_jitter, "variability.amplitude_jitter");
  check.non_negative(v.hrf_delay_jitter, "variability.hrf_delay_jitter");
  check.require(v.background_sources >= 0 && v.background_sources <= 1000, "variability.background_sources",
                "0 to 1000", fmt::format("{}", v.background_sources));
  check.non_negative(v.background_amplitude, "variability.background_amplitude");
  check.non_negative(c.physio_share, "physio_share");
  check.non_negative(c.drift_share, "drift_share");
  check.require(c.physio_share + c.drift_share <= 1.0, "physio_share + drift_share",
                "at most 1 (thermal noise has the rest)", fmt::format("{}", c.physio_share + c.drift_share));
  check.positive(c.physio_timescale, "physio_timescale");
  check.require(c.threads >= 0, "threads", "0 (all cores) or more", fmt::format("{}", c.threads));
}

int64_t run_memory_estimate(const SimulationConfig& c) {
  const int64_t samples = std::llround(c.minutes * 60.0) * static_cast<int64_t>(c.sample_rate);
  double longest_hrf = 0.0;
  for (const auto& roi : c.rois) longest_hrf = std::max(longest_hrf, roi.hrf.length);
  const auto grid = static_cast<int64_t>((std::llround(c.minutes * 60.0) + longest_hrf + c.repetition_time) * 10.0);
  const auto grid_series = static_cast<int64_t>(5 * c.sources.size() + 2 * c.rois.size());
  // Per EEG sample: the channels as float32 (4 bytes each) and ~8 double-sized working series
  // (grid interpolation, source moment, spectral synthesis and its FFT, artefact series).
  // Per drive-grid value: the double and its text in the truth TSV (~24 bytes).
  // With the scanner's artefacts, the clean EEG is kept too (another 4 bytes per channel sample).
  const int64_t per_channel = c.scanner.any() ? 8 : 4;
  return (64 + per_channel * static_cast<int64_t>(c.channels.size())) * samples + 24 * grid_series * grid;
}

// ---------------------------------------------------------------------------------------------
// JSON

namespace {

ordered_json per_band(const PerBand& v) {
  ordered_json j;
  for (int b = 0; b < kNumBands; ++b) j[kBandNames[b]] = v[static_cast<std::size_t>(b)];
  return j;
}

ordered_json vec3(const std::array<double, 3>& v) { return ordered_json::array({v[0], v[1], v[2]}); }

ordered_json scanner_json(const SimScanner& s) {
  return ordered_json{{"gradient", s.gradient},
                      {"bcg", s.bcg},
                      {"slices", s.slices},
                      {"slice_gap", s.slice_gap},
                      {"gradient_amplitude", s.gradient_amplitude},
                      {"clock_drift_ppm", s.clock_drift_ppm},
                      {"timing_jitter_us", s.timing_jitter_us},
                      {"motion_gain_drift", s.motion_gain_drift},
                      {"slice_triggers", s.slice_triggers},
                      {"slice_trigger_label", s.slice_trigger_label},
                      {"heart_rate", s.heart_rate},
                      {"hrv", s.hrv},
                      {"bcg_amplitude", s.bcg_amplitude},
                      {"ecg_amplitude", s.ecg_amplitude},
                      {"ecg_inverted", s.ecg_inverted}};
}

ordered_json hrf_json(const signal::HrfParams& h) {
  return ordered_json{{"peak_delay", h.peak_delay},
                      {"undershoot_delay", h.undershoot_delay},
                      {"peak_dispersion", h.peak_dispersion},
                      {"undershoot_dispersion", h.undershoot_dispersion},
                      {"ratio", h.ratio},
                      {"onset", h.onset},
                      {"length", h.length}};
}

using Reader = detail::JsonReader;

void read_bands(Reader& r, const char* key, PerBand& out) {
  if (const json* v = r.find(key)) {
    Reader br(*v, r.child_path(key), r.source());
    for (int b = 0; b < kNumBands; ++b) br.number(kBandNames[b], out[static_cast<std::size_t>(b)]);
    br.finish();
  }
}

void read_hrf(Reader& r, const char* key, signal::HrfParams& h) {
  if (const json* v = r.find(key)) {
    Reader hr(*v, r.child_path(key), r.source());
    hr.number("peak_delay", h.peak_delay);
    hr.number("undershoot_delay", h.undershoot_delay);
    hr.number("peak_dispersion", h.peak_dispersion);
    hr.number("undershoot_dispersion", h.undershoot_dispersion);
    hr.number("ratio", h.ratio);
    hr.number("onset", h.onset);
    hr.number("length", h.length);
    hr.finish();
  }
}

}  // namespace

std::string to_json(const SimulationConfig& c) {
  ordered_json j;
  j["subjects"] = c.subjects;
  j["sessions"] = c.sessions;
  j["runs"] = c.runs;
  j["minutes"] = c.minutes;
  j["sample_rate"] = c.sample_rate;
  j["repetition_time"] = c.repetition_time;
  j["first_volume"] = c.first_volume;
  j["trigger_label"] = c.trigger_label;
  j["task"] = c.task;
  j["channels"] = c.channels;
  j["reference"] = c.reference;
  j["snr"] = c.snr;
  j["seed"] = c.seed;
  j["envelope_variability"] = c.envelope_variability;
  j["vigilance"] = c.vigilance;
  j["vigilance_timescale"] = c.vigilance_timescale;
  j["vigilance_loading"] = per_band(c.vigilance_loading);
  j["peak_width_hz"] = per_band(c.peak_width_hz);
  j["aperiodic_exponent"] = c.aperiodic_exponent;
  j["sensor_noise"] = c.sensor_noise;
  j["power_line_frequency"] = c.power_line_frequency;
  j["artefacts"] =
      ordered_json{{"blink_rate", c.artefacts.blink_rate},           {"blink_amplitude", c.artefacts.blink_amplitude},
                   {"muscle_rate", c.artefacts.muscle_rate},         {"muscle_amplitude", c.artefacts.muscle_amplitude},
                   {"mains_amplitude", c.artefacts.mains_amplitude}, {"pulse_amplitude", c.artefacts.pulse_amplitude}};
  // Left out while it is all defaults, so that configs (and datasets) without the scanner's
  // artefacts stay as they were; missing keys read back as the defaults.
  if (const ordered_json scanner = scanner_json(c.scanner); scanner != scanner_json(SimScanner{}))
    j["scanner"] = scanner;
  j["variability"] = ordered_json{{"peak_jitter_hz", c.variability.peak_jitter_hz},
                                  {"amplitude_jitter", c.variability.amplitude_jitter},
                                  {"hrf_delay_jitter", c.variability.hrf_delay_jitter},
                                  {"background_sources", c.variability.background_sources},
                                  {"background_amplitude", c.variability.background_amplitude}};
  j["head"] = ordered_json{{"relative_radii", c.head.relative_radii}, {"conductivities", c.head.conductivities}};
  j["physio_share"] = c.physio_share;
  j["physio_timescale"] = c.physio_timescale;
  j["drift_share"] = c.drift_share;
  j["pipeline"] = c.pipeline;
  j["write_nifti"] = c.write_nifti;
  ordered_json sources = ordered_json::array();
  for (const auto& s : c.sources) {
    sources.push_back(ordered_json{{"name", s.name},
                                   {"position", vec3(s.position)},
                                   {"orientation", vec3(s.orientation)},
                                   {"amplitude", per_band(s.amplitude)},
                                   {"peak_hz", per_band(s.peak_hz)},
                                   {"background", s.background},
                                   {"envelope_timescale", s.envelope_timescale}});
  }
  j["sources"] = sources;
  ordered_json rois = ordered_json::array();
  for (const auto& r : c.rois) {
    ordered_json couplings = ordered_json::array();
    for (const auto& k : r.couplings)
      couplings.push_back(ordered_json{{"source", k.source}, {"band", to_string(k.band)}, {"weight", k.weight}});
    rois.push_back(ordered_json{{"name", r.name},
                                {"couplings", couplings},
                                {"eeg_fraction", r.eeg_fraction},
                                {"snr_scale", r.snr_scale},
                                {"amplitude", r.amplitude},
                                {"hidden_timescale", r.hidden_timescale},
                                {"hrf", hrf_json(r.hrf)}});
  }
  j["rois"] = rois;
  return j.dump(2) + "\n";
}

SimulationConfig simulation_config_from_json(const std::string& text, const std::string& source) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw ConfigError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  SimulationConfig c = SimulationConfig::defaults();
  Reader r(root, "", source);
  r.number("subjects", c.subjects);
  r.number("sessions", c.sessions);
  r.number("runs", c.runs);
  r.number("minutes", c.minutes);
  r.number("sample_rate", c.sample_rate);
  r.number("repetition_time", c.repetition_time);
  r.number("first_volume", c.first_volume);
  r.text("trigger_label", c.trigger_label);
  r.text("task", c.task);
  r.texts("channels", c.channels);
  r.text("reference", c.reference);
  r.number("snr", c.snr);
  r.number("seed", c.seed);
  r.number("envelope_variability", c.envelope_variability);
  r.number("vigilance", c.vigilance);
  r.number("vigilance_timescale", c.vigilance_timescale);
  read_bands(r, "vigilance_loading", c.vigilance_loading);
  read_bands(r, "peak_width_hz", c.peak_width_hz);
  r.number("aperiodic_exponent", c.aperiodic_exponent);
  r.number("sensor_noise", c.sensor_noise);
  r.number("power_line_frequency", c.power_line_frequency);
  if (const json* a = r.find("artefacts")) {
    Reader ar(*a, "artefacts", source);
    ar.number("blink_rate", c.artefacts.blink_rate);
    ar.number("blink_amplitude", c.artefacts.blink_amplitude);
    ar.number("muscle_rate", c.artefacts.muscle_rate);
    ar.number("muscle_amplitude", c.artefacts.muscle_amplitude);
    ar.number("mains_amplitude", c.artefacts.mains_amplitude);
    ar.number("pulse_amplitude", c.artefacts.pulse_amplitude);
    ar.finish();
  }
  if (const json* a = r.find("scanner")) {
    Reader sr(*a, "scanner", source);
    auto& s = c.scanner;
    sr.flag("gradient", s.gradient);
    sr.flag("bcg", s.bcg);
    sr.number("slices", s.slices);
    sr.number("slice_gap", s.slice_gap);
    sr.number("gradient_amplitude", s.gradient_amplitude);
    sr.number("clock_drift_ppm", s.clock_drift_ppm);
    sr.number("timing_jitter_us", s.timing_jitter_us);
    sr.number("motion_gain_drift", s.motion_gain_drift);
    sr.flag("slice_triggers", s.slice_triggers);
    sr.text("slice_trigger_label", s.slice_trigger_label);
    sr.number("heart_rate", s.heart_rate);
    sr.number("hrv", s.hrv);
    sr.number("bcg_amplitude", s.bcg_amplitude);
    sr.number("ecg_amplitude", s.ecg_amplitude);
    sr.flag("ecg_inverted", s.ecg_inverted);
    sr.finish();
  }
  if (const json* v = r.find("variability")) {
    Reader vr(*v, "variability", source);
    vr.number("peak_jitter_hz", c.variability.peak_jitter_hz);
    vr.number("amplitude_jitter", c.variability.amplitude_jitter);
    vr.number("hrf_delay_jitter", c.variability.hrf_delay_jitter);
    vr.number("background_sources", c.variability.background_sources);
    vr.number("background_amplitude", c.variability.background_amplitude);
    vr.finish();
  }
  if (const json* h = r.find("head")) {
    Reader hr(*h, "head", source);
    hr.numbers("relative_radii", c.head.relative_radii);
    hr.numbers("conductivities", c.head.conductivities);
    hr.finish();
  }
  r.number("physio_share", c.physio_share);
  r.number("physio_timescale", c.physio_timescale);
  r.number("drift_share", c.drift_share);
  r.text("pipeline", c.pipeline);
  r.flag("write_nifti", c.write_nifti);
  if (const json* list = r.find("sources")) {
    if (!list->is_array()) r.fail("sources", "a list of sources", list->dump());
    c.sources.clear();
    for (std::size_t i = 0; i < list->size(); ++i) {
      Reader sr((*list)[i], fmt::format("sources[{}]", i), source);
      SimSource s;
      sr.text("name", s.name);
      sr.triple("position", s.position);
      sr.triple("orientation", s.orientation);
      read_bands(sr, "amplitude", s.amplitude);
      read_bands(sr, "peak_hz", s.peak_hz);
      sr.number("background", s.background);
      sr.number("envelope_timescale", s.envelope_timescale);
      sr.finish();
      c.sources.push_back(std::move(s));
    }
  }
  if (const json* list = r.find("rois")) {
    if (!list->is_array()) r.fail("rois", "a list of ROIs", list->dump());
    c.rois.clear();
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string path = fmt::format("rois[{}]", i);
      Reader rr((*list)[i], path, source);
      SimRoi roi;
      rr.text("name", roi.name);
      if (const json* couplings = rr.find("couplings")) {
        if (!couplings->is_array()) rr.fail("couplings", "a list of couplings", couplings->dump());
        for (std::size_t k = 0; k < couplings->size(); ++k) {
          Reader cr((*couplings)[k], fmt::format("{}.couplings[{}]", path, k), source);
          RoiCoupling coupling;
          std::string band = "alpha";
          cr.text("source", coupling.source);
          cr.text("band", band);
          cr.number("weight", coupling.weight);
          cr.finish();
          try {
            coupling.band = band_from_string(band);
          } catch (const ConfigError& e) {
            throw ConfigError(fmt::format("{}: key '{}.couplings[{}].band': {}", source, path, k, e.message()));
          }
          roi.couplings.push_back(std::move(coupling));
        }
      }
      rr.number("eeg_fraction", roi.eeg_fraction);
      rr.number("snr_scale", roi.snr_scale);
      rr.number("amplitude", roi.amplitude);
      rr.number("hidden_timescale", roi.hidden_timescale);
      read_hrf(rr, "hrf", roi.hrf);
      rr.finish();
      c.rois.push_back(std::move(roi));
    }
  }
  r.finish();
  try {
    validate(c);
  } catch (Error& e) {
    e.add_context(source);
    throw;
  }
  return c;
}

}  // namespace neurobolt
