// One simulated EEG-fMRI run.
//
// Time bases. The EEG is sampled at SimulationConfig::sample_rate from t = 0. Slow quantities
// (rhythm envelopes, vigilance, neural drives) live on a "drive grid" of step TR/k (k the
// smallest integer with a step <= 0.1 s) that starts before the recording, so that the first
// volume has a full HRF history, and on which every volume time first_volume + v TR falls
// exactly. Volume triggers are written at the EEG sample nearest each volume time.
//
// Sources. Each band's rhythm of a source is Gaussian noise with a Gaussian spectral peak
// (centre peak_hz, SD peak_width_hz) times a slowly varying amplitude a(t): log a(t) =
// envelope_variability * z(t) + vigilance * loading_band * v(t), where z (per source and band)
// and v (shared) are smooth Gaussian processes with spectra 1/(1 + (2 pi f tau)^2)^2 (tau: the
// source's envelope timescale, or vigilance_timescale), normalised so that mean(a^2) = 1 on the
// grid; the band's RMS moment is then the source's amplitude. a^2 is the band power. Each source
// also has 1/f^exponent background activity (flat below 0.5 Hz, rolled off above 100 Hz).
//
// Neural drive of an ROI: the weighted sum of its coupled band powers (each standardised over
// the grid), scaled to variance eeg_fraction, plus a smooth EEG-invisible process of variance
// 1 - eeg_fraction, made orthogonal to the visible part over the grid so that the drive has unit
// variance and the visible share is exactly eeg_fraction. BOLD = amplitude * (spm_hrf(grid step, ROI's HRF) conv drive)
// at the volume times, in percent signal change.
//
// BOLD noise: physiological noise (AR(1) at the TR with time constant physio_timescale, half of
// its variance shared by all ROIs), drift (a random line and two cosines with periods of one
// and two run lengths) and white thermal noise, mixed by their variance shares, made orthogonal
// to the noiseless series over the run, and scaled to SD(noiseless) / SNR. Orthogonality makes
// the realised noise ceiling pearson(bold, noiseless) equal snr / sqrt(1 + snr^2) (without it,
// the sample correlation of a few hundred autocorrelated volumes would move it by ~0.1).
//
// EEG = lead field (multi-shell sphere, head_model.cpp; re-referenced) x dipole moments, plus
// white sensor noise and artefacts: mains (per-channel amplitude and phase), blinks (Poisson;
// a 0.25-0.4 s raised cosine whose amplitude decays with distance from the eyes, 35 mm length
// constant), muscle bursts (Poisson; 20-150 Hz noise near the left or right temporalis, 30 mm
// length constant), and a residual pulse artefact (a damped 3 Hz oscillation 210 ms after each
// R peak with a per-subject spatial pattern). ECG channels carry a synthetic ECG (sum of
// Gaussian P, Q, R, S, T waves, after McSharry et al. 2003, IEEE TBME 50:289) at a per-subject
// heart rate of 55-75 bpm with beat-to-beat variability; EOG channels carry the blinks.
//
// The scanner's artefacts (SimScanner; scanner.cpp) come last, after a copy of the EEG is kept
// as the clean ground truth: the BCG, whose heartbeats also drive the ECG channels (and replace
// the residual pulse artefact), and the gradient artefact with its volume and slice triggers.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>

#include "neurobolt/error.hpp"
#include "neurobolt/montage.hpp"
#include "neurobolt/simulate.hpp"
#include "sim/scanner.hpp"
#include "sim/sim_internal.hpp"

namespace neurobolt {
namespace {

using sim::Rng;
using sim::tag;
using Vec3 = std::array<double, 3>;

constexpr double kMaxDriveStep = 0.1;  // s

double squared_lorentzian(double f, double tau) {
  const double x = 2.0 * M_PI * f * tau;
  return 1.0 / ((1.0 + x * x) * (1.0 + x * x));
}

double mean_of(const double* x, int64_t n) { return std::accumulate(x, x + n, 0.0) / static_cast<double>(n); }

// Standardises x in place (mean 0, SD 1 with ddof 0); leaves a constant series at 0.
void standardise(double* x, int64_t n) {
  const double m = mean_of(x, n);
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += (x[i] - m) * (x[i] - m);
  const double sd = std::sqrt(ss / static_cast<double>(n));
  for (int64_t i = 0; i < n; ++i) x[i] = sd > 0.0 ? (x[i] - m) / sd : 0.0;
}

double distance(const Vec3& a, const ElectrodePosition& b) {
  const double dx = a[0] - b.x, dy = a[1] - b.y, dz = a[2] - b.z;
  return std::sqrt(dx * dx + dy * dy + dz * dz);
}

std::string subject_label(const SimulationConfig& c, int subject) {
  return fmt::format("{:0{}d}", subject + 1, c.subjects >= 100 ? 3 : 2);
}

// Everything drawn once per subject.
struct SubjectParams {
  double peak_scale = 1.0;
  std::vector<PerBand> amplitude;  // per source
  std::vector<signal::HrfParams> hrf;
  std::vector<Vec3> background_position;             // mm, template coordinates
  std::vector<Vec3> background_orientation;          // unit vectors
  double heart_period = 1.0;                         // s
  std::vector<double> pulse_pattern;                 // per channel (EEG channels used)
  std::vector<double> mains_amplitude, mains_phase;  // per channel
};

SubjectParams draw_subject(const SimulationConfig& c, int subject, const sim::HeadSphere& head) {
  Rng rng = Rng::derive(c.seed, {tag("subject"), static_cast<uint64_t>(subject)});
  const auto& v = c.variability;
  SubjectParams p;
  const double shift = std::clamp(rng.normal(), -2.5, 2.5) * v.peak_jitter_hz;
  p.peak_scale = 1.0 + shift / 10.0;  // relative to a 10 Hz alpha peak
  for (const auto& s : c.sources) {
    PerBand a{};
    for (int b = 0; b < kNumBands; ++b)
      a[static_cast<std::size_t>(b)] =
          s.amplitude[static_cast<std::size_t>(b)] * std::exp(v.amplitude_jitter * rng.normal());
    p.amplitude.push_back(a);
  }
  for (const auto& roi : c.rois) {
    signal::HrfParams h = roi.hrf;
    const double delay = std::clamp(rng.normal(), -2.0, 2.0) * v.hrf_delay_jitter;
    h.peak_delay = std::max(2.0, h.peak_delay + delay);
    h.undershoot_delay = std::max(h.peak_delay + 2.0, h.undershoot_delay + delay);
    p.hrf.push_back(h);
  }
  const double max_r = 0.85 * head.brain_radius();
  for (int k = 0; k < v.background_sources; ++k) {
    Vec3 x;
    do {
      for (auto& e : x) e = rng.uniform(-1.0, 1.0);
    } while (x[0] * x[0] + x[1] * x[1] + x[2] * x[2] > 1.0);
    p.background_position.push_back(
        {head.center[0] + max_r * x[0], head.center[1] + max_r * x[1], head.center[2] + max_r * x[2]});
    Vec3 o{rng.normal(), rng.normal(), rng.normal()};
    const double len = std::sqrt(o[0] * o[0] + o[1] * o[1] + o[2] * o[2]);
    p.background_orientation.push_back({o[0] / len, o[1] / len, o[2] / len});
  }
  p.heart_period = 60.0 / rng.uniform(55.0, 75.0);
  for (std::size_t ch = 0; ch < c.channels.size(); ++ch) {
    p.pulse_pattern.push_back(rng.normal());
    p.mains_amplitude.push_back(c.artefacts.mains_amplitude * rng.uniform(0.3, 1.7));
    p.mains_phase.push_back(rng.uniform(0.0, 2.0 * M_PI));
  }
  return p;
}

// The channels: types, and for EEG channels the scalp position.
struct Layout {
  std::vector<Channel> channels;
  std::vector<int64_t> eeg;                 // indices of EEG channels
  std::vector<ElectrodePosition> position;  // per EEG channel (template position, not projected)
  bool average_reference = false;
  ElectrodePosition reference;
};

Layout make_layout(const SimulationConfig& c) {
  Layout l;
  const Montage& montage = standard_montage(StandardMontage::standard_1005);
  for (std::size_t i = 0; i < c.channels.size(); ++i) {
    const std::string& name = c.channels[i];
    Channel ch;
    ch.unit = "uV";
    if (sim::is_ecg_name(name)) {
      ch.name = sim::edf_label(name);
      ch.type = ChannelType::ecg;
    } else if (sim::is_eog_name(name)) {
      ch.name = sim::edf_label(name);
      ch.type = ChannelType::eog;
    } else {
      ch.name = canonical_channel_name(name);
      ch.type = ChannelType::eeg;
      l.eeg.push_back(static_cast<int64_t>(i));
      l.position.push_back(*montage.find(name));
    }
    l.channels.push_back(std::move(ch));
  }
  std::string reference = c.reference;
  std::transform(reference.begin(), reference.end(), reference.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  l.average_reference = reference == "average";
  if (!l.average_reference) l.reference = *montage.find(c.reference);
  return l;
}

// A spatial pattern over the EEG channels (value at each electrode) after re-referencing.
std::vector<double> referenced(const Layout& l, const std::vector<double>& at_channels, double at_reference) {
  std::vector<double> out = at_channels;
  const double ref =
      l.average_reference ? mean_of(at_channels.data(), static_cast<int64_t>(at_channels.size())) : at_reference;
  for (auto& v : out) v -= ref;
  return out;
}

// Lead field column of one dipole: uV at each EEG channel per nA m, re-referenced.
std::vector<double> lead_field(const sim::HeadSphere& head, const Layout& l, const Vec3& position_mm,
                               const Vec3& orientation) {
  const double len =
      std::sqrt(orientation[0] * orientation[0] + orientation[1] * orientation[1] + orientation[2] * orientation[2]);
  const Vec3 dipole{(position_mm[0] - head.center[0]) * 1e-3, (position_mm[1] - head.center[1]) * 1e-3,
                    (position_mm[2] - head.center[2]) * 1e-3};
  const Vec3 moment{orientation[0] / len, orientation[1] / len, orientation[2] / len};  // 1 A m
  auto potential_uv_per_nam = [&](const ElectrodePosition& e) {
    const Vec3 u = sim::radial_direction(head, e);
    const double r = head.radius * 1e-3;
    return sim::sphere_potential(head, dipole, moment, {u[0] * r, u[1] * r, u[2] * r}) * 1e-3;  // V/(A m) -> uV/(nA m)
  };
  std::vector<double> column;
  for (const auto& p : l.position) column.push_back(potential_uv_per_nam(p));
  return referenced(l, column, l.average_reference ? 0.0 : potential_uv_per_nam(l.reference));
}

// Adds gain[k] * x to EEG channel l.eeg[k] of `data` (channel-major, n samples per channel).
void add_projected(std::vector<float>& data, int64_t n, const Layout& l, const std::vector<double>& gain,
                   const std::vector<double>& x) {
  for (std::size_t k = 0; k < l.eeg.size(); ++k) {
    const auto g = static_cast<float>(gain[k]);
    if (g == 0.0f) continue;
    float* out = data.data() + l.eeg[k] * n;
    for (int64_t i = 0; i < n; ++i) out[i] += g * static_cast<float>(x[static_cast<std::size_t>(i)]);
  }
}

// Interpolation of grid quantities at the EEG samples.
struct GridInterpolation {
  std::vector<int64_t> index;
  std::vector<double> frac;
  double at(const double* grid, int64_t i) const {
    const auto k = static_cast<std::size_t>(i);
    return grid[index[k]] * (1.0 - frac[k]) + grid[index[k] + 1] * frac[k];
  }
};

// A raised-cosine bump of `width` samples centred at `centre`, scaled by `amplitude`, added to x.
void add_bump(std::vector<double>& x, double centre, double width, double amplitude) {
  const auto n = static_cast<int64_t>(x.size());
  const auto first = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(centre - width / 2)));
  const auto last = std::min<int64_t>(n - 1, static_cast<int64_t>(std::floor(centre + width / 2)));
  for (int64_t i = first; i <= last; ++i) {
    const double phase = (static_cast<double>(i) - centre) / width;  // -1/2 .. 1/2
    x[static_cast<std::size_t>(i)] += amplitude * 0.5 * (1.0 + std::cos(2.0 * M_PI * phase));
  }
}

// Per-channel weights of the three gradient axes: for an EEG electrode its scalp position
// relative to the reference (in head radii; the lead loop's projection grows with it) plus its
// lead's routing; for ECG/EOG channels the routing alone. Scaled so that the median per-channel
// peak is gradient_amplitude, each channel kept within 0.3 to 3 times that (no lead is free of it).
std::vector<std::array<double, 3>> gradient_weights(const SimulationConfig& c, const Layout& l,
                                                    const sim::HeadSphere& head, const sim::GradientTemplate& g,
                                                    Rng& rng) {
  auto unit = [&](const ElectrodePosition& p) {
    const auto x = head.on_scalp(p);
    return Vec3{(x[0] - head.center[0]) / head.radius, (x[1] - head.center[1]) / head.radius,
                (x[2] - head.center[2]) / head.radius};
  };
  Vec3 reference{0.0, 0.0, 0.0};
  if (l.average_reference) {
    for (const auto& p : l.position)
      for (int a = 0; a < 3; ++a) reference[a] += unit(p)[a] / static_cast<double>(l.position.size());
  } else {
    reference = unit(l.reference);
  }
  std::vector<std::array<double, 3>> w(l.channels.size());
  std::size_t next_eeg = 0;
  for (std::size_t ch = 0; ch < l.channels.size(); ++ch) {
    Vec3 at{0.0, 0.0, 0.0};
    if (next_eeg < l.eeg.size() && l.eeg[next_eeg] == static_cast<int64_t>(ch)) {
      const Vec3 u = unit(l.position[next_eeg++]);
      at = {u[0] - reference[0], u[1] - reference[1], u[2] - reference[2]};
    }
    const double routing = l.channels[ch].type == ChannelType::eeg ? 0.4 : 1.0;
    for (int a = 0; a < 3; ++a) w[ch][a] = at[a] + routing * rng.normal();
  }
  std::vector<double> peak;
  for (const auto& x : w) peak.push_back(g.peak(x));
  std::vector<double> sorted = peak;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double amplitude = c.scanner.gradient_amplitude;
  for (std::size_t ch = 0; ch < w.size(); ++ch) {
    if (!(peak[ch] > 0.0) || !(median > 0.0)) continue;
    const double target = std::clamp(peak[ch] / median, 0.3, 3.0) * amplitude;
    for (auto& x : w[ch]) x *= target / peak[ch];
  }
  return w;
}

// Per-EEG-channel weights of the BCG components: per component a spatial pattern linear in the
// electrode's direction from the head centre (the head's pulsatile rotation in B0) plus an
// offset, all larger at lateral sites (temporal vessels), a little per-electrode variation, then
// re-referenced; scaled so that the median per-channel peak of a beat is bcg_amplitude.
std::vector<std::array<double, sim::kBcgComponents>> bcg_weights(const SimulationConfig& c, const Layout& l,
                                                                 const sim::HeadSphere& head,
                                                                 const sim::BcgShape& shape, Rng& rng) {
  std::vector<std::array<double, sim::kBcgComponents>> w(l.eeg.size());
  auto value = [&](const Vec3& dir, double offset, const ElectrodePosition& p) {
    const Vec3 u = sim::radial_direction(head, p);
    return (1.0 + 1.5 * std::fabs(u[0])) * (dir[0] * u[0] + dir[1] * u[1] + dir[2] * u[2] + offset);
  };
  for (int k = 0; k < sim::kBcgComponents; ++k) {
    Vec3 dir{rng.normal(), rng.normal(), rng.normal()};
    const double offset = 0.3 * rng.normal();
    std::vector<double> at;
    for (const auto& p : l.position) at.push_back(value(dir, offset, p) + 0.25 * rng.normal());
    const auto pattern = referenced(l, at, l.average_reference ? 0.0 : value(dir, offset, l.reference));
    for (std::size_t e = 0; e < w.size(); ++e) w[e][static_cast<std::size_t>(k)] = pattern[e];
  }
  std::vector<double> peak;
  for (const auto& x : w) peak.push_back(sim::bcg_peak(shape, x));
  std::nth_element(peak.begin(), peak.begin() + static_cast<std::ptrdiff_t>(peak.size() / 2), peak.end());
  const double median = peak[peak.size() / 2];
  if (median > 0.0)
    for (auto& x : w)
      for (auto& v : x) v *= c.scanner.bcg_amplitude / median;
  return w;
}

}  // namespace

SimulatedRun simulate_run(const SimulationConfig& c, int subject, int session, int run) {
  validate(c);
  if (subject < 0 || subject >= c.subjects || run < 0 || run >= c.runs || session < 0 ||
      session >= std::max(1, c.sessions))
    throw ConfigError(
        fmt::format("simulate_run: subject {}, session {}, run {} outside the config's {} subjects, {} "
                    "sessions, {} runs (all counted from 0)",
                    subject, session, run, c.subjects, std::max(1, c.sessions), c.runs));
  const sim::HeadSphere head = sim::make_head_sphere(c.head);
  const SubjectParams sp = draw_subject(c, subject, head);
  const Layout layout = make_layout(c);
  const auto stream = [&](const char* component, uint64_t index = 0) {
    return Rng::derive(c.seed, {tag("run"), static_cast<uint64_t>(subject), static_cast<uint64_t>(session),
                                static_cast<uint64_t>(run), tag(component), index});
  };
  sim::SpectralSynth synth;

  SimulatedRun out;
  out.subject = subject_label(c, subject);
  out.session = c.sessions > 0 ? std::to_string(session + 1) : "";
  out.run = std::to_string(run + 1);
  out.label = "sub-" + out.subject + (out.session.empty() ? "" : " ses-" + out.session) + " run-" + out.run;

  // Timing.
  const double fs = c.sample_rate;
  const int64_t n = std::llround(c.minutes * 60.0) * static_cast<int64_t>(fs);
  const double duration = static_cast<double>(n) / fs;
  const double tr = c.repetition_time;
  out.repetition_time = tr;
  out.num_volumes = static_cast<int64_t>(std::floor((duration - c.first_volume) / tr + 1e-9));
  for (int64_t v = 0; v < out.num_volumes; ++v)
    out.volume_times.push_back(c.first_volume + static_cast<double>(v) * tr);

  const auto k = static_cast<int64_t>(std::ceil(tr / kMaxDriveStep - 1e-9));
  const double dt = tr / static_cast<double>(k);
  out.drive_rate = 1.0 / dt;
  std::vector<std::vector<double>> kernels;
  int64_t longest = 0;
  for (const auto& h : sp.hrf) {
    kernels.push_back(signal::spm_hrf(dt, h));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(kernels.back().size()));
  }
  const int64_t first_index = static_cast<int64_t>(std::ceil(c.first_volume / dt - 1e-9)) + (longest - 1);
  out.drive_start = c.first_volume - static_cast<double>(first_index) * dt;
  const int64_t last_volume_index = first_index + (out.num_volumes - 1) * k;
  const int64_t j_count =
      std::max<int64_t>(last_volume_index + 1, static_cast<int64_t>(std::ceil((duration - out.drive_start) / dt)) + 2);
  out.num_drive_samples = j_count;
  for (int64_t v = 0; v < out.num_volumes; ++v) out.volume_drive_index.push_back(first_index + v * k);

  // Slow processes on the drive grid.
  const std::size_t sources = c.sources.size();
  const std::size_t rois = c.rois.size();
  std::vector<double> vigilance(static_cast<std::size_t>(j_count), 0.0);
  if (c.vigilance > 0.0) {
    Rng rng = stream("vigilance");
    vigilance = synth.noise(
        j_count, out.drive_rate, [&](double f) { return squared_lorentzian(f, c.vigilance_timescale); }, rng);
  }
  for (const auto& s : c.sources) out.source_names.push_back(s.name);
  out.band_power.assign(sources * kNumBands * static_cast<std::size_t>(j_count), 0.0);
  for (std::size_t s = 0; s < sources; ++s) {
    for (int b = 0; b < kNumBands; ++b) {
      Rng rng = stream("envelope", s * kNumBands + static_cast<std::size_t>(b));
      const auto z = synth.noise(
          j_count, out.drive_rate, [&](double f) { return squared_lorentzian(f, c.sources[s].envelope_timescale); },
          rng);
      double* power =
          out.band_power.data() + (s * kNumBands + static_cast<std::size_t>(b)) * static_cast<std::size_t>(j_count);
      const double loading = c.vigilance * c.vigilance_loading[static_cast<std::size_t>(b)];
      for (int64_t j = 0; j < j_count; ++j) {
        const auto i = static_cast<std::size_t>(j);
        power[i] = std::exp(2.0 * (c.envelope_variability * z[i] + loading * vigilance[i]));
      }
      const double m = mean_of(power, j_count);
      for (int64_t j = 0; j < j_count; ++j) power[j] /= m;
    }
  }

  // Neural drives.
  out.roi_names.reserve(rois);
  out.drive.assign(rois * static_cast<std::size_t>(j_count), 0.0);
  out.drive_visible.assign(rois * static_cast<std::size_t>(j_count), 0.0);
  std::vector<double> standardised;
  for (std::size_t r = 0; r < rois; ++r) {
    const SimRoi& roi = c.rois[r];
    out.roi_names.push_back(roi.name);
    double* visible = out.drive_visible.data() + r * static_cast<std::size_t>(j_count);
    double* drive = out.drive.data() + r * static_cast<std::size_t>(j_count);
    if (roi.eeg_fraction > 0.0) {
      for (const auto& coupling : roi.couplings) {
        const auto s = static_cast<std::size_t>(
            std::find(out.source_names.begin(), out.source_names.end(), coupling.source) - out.source_names.begin());
        const double* power = out.band_power.data() + (s * kNumBands + static_cast<std::size_t>(coupling.band)) *
                                                          static_cast<std::size_t>(j_count);
        standardised.assign(power, power + j_count);
        standardise(standardised.data(), j_count);
        for (int64_t j = 0; j < j_count; ++j) visible[j] += coupling.weight * standardised[static_cast<std::size_t>(j)];
      }
      standardise(visible, j_count);
      const double scale = std::sqrt(roi.eeg_fraction);
      for (int64_t j = 0; j < j_count; ++j) visible[j] *= scale;
    }
    Rng rng = stream("hidden", r);
    auto hidden = synth.noise(
        j_count, out.drive_rate, [&](double f) { return squared_lorentzian(f, roi.hidden_timescale); }, rng);
    if (roi.eeg_fraction > 0.0) {
      // Orthogonal to the visible part over the grid, so that the drive has unit variance and
      // the visible share is exactly eeg_fraction (two slow processes correlate by chance).
      double cross = 0.0, ss = 0.0;
      for (int64_t j = 0; j < j_count; ++j) {
        cross += hidden[static_cast<std::size_t>(j)] * visible[j];
        ss += visible[j] * visible[j];
      }
      for (int64_t j = 0; j < j_count; ++j) hidden[static_cast<std::size_t>(j)] -= cross / ss * visible[j];
      standardise(hidden.data(), j_count);
    }
    const double hidden_scale = std::sqrt(1.0 - roi.eeg_fraction);
    for (int64_t j = 0; j < j_count; ++j) drive[j] = visible[j] + hidden_scale * hidden[static_cast<std::size_t>(j)];
  }

  // BOLD.
  const int64_t nv = out.num_volumes;
  out.hrf = sp.hrf;
  out.bold.assign(static_cast<std::size_t>(nv) * rois, 0.0);
  out.bold_noiseless.assign(out.bold.size(), 0.0);
  out.bold_visible.assign(out.bold.size(), 0.0);
  for (std::size_t r = 0; r < rois; ++r) {
    const auto& h = kernels[r];
    const double amplitude = c.rois[r].amplitude;
    out.amplitude.push_back(amplitude);
    const double* drive = out.drive.data() + r * static_cast<std::size_t>(j_count);
    const double* visible = out.drive_visible.data() + r * static_cast<std::size_t>(j_count);
    for (int64_t v = 0; v < nv; ++v) {
      const int64_t at = out.volume_drive_index[static_cast<std::size_t>(v)];
      double sum = 0.0, sum_visible = 0.0;
      for (std::size_t i = 0; i < h.size(); ++i) {
        sum += h[i] * drive[at - static_cast<int64_t>(i)];
        sum_visible += h[i] * visible[at - static_cast<int64_t>(i)];
      }
      out.bold_noiseless[static_cast<std::size_t>(v) * rois + r] = amplitude * sum;
      out.bold_visible[static_cast<std::size_t>(v) * rois + r] = amplitude * sum_visible;
    }
  }
  {
    // Noise: physiological (AR(1), half shared), drift, thermal.
    const double rho = std::exp(-tr / c.physio_timescale);
    const double innovation = std::sqrt(1.0 - rho * rho);
    auto ar1 = [&](Rng& rng) {
      std::vector<double> x(static_cast<std::size_t>(nv));
      double state = rng.normal();
      for (auto& e : x) {
        e = state;
        state = rho * state + innovation * rng.normal();
      }
      return x;
    };
    Rng global_rng = stream("physio-global");
    const auto global = ar1(global_rng);
    const double thermal_share = std::max(0.0, 1.0 - c.physio_share - c.drift_share);
    std::vector<double> signal_column(static_cast<std::size_t>(nv)), noise(static_cast<std::size_t>(nv));
    for (std::size_t r = 0; r < rois; ++r) {
      Rng rng = stream("bold-noise", r);
      auto physio = ar1(rng);
      for (int64_t v = 0; v < nv; ++v)
        physio[static_cast<std::size_t>(v)] =
            std::sqrt(0.5) * (physio[static_cast<std::size_t>(v)] + global[static_cast<std::size_t>(v)]);
      standardise(physio.data(), nv);
      std::vector<double> drift(static_cast<std::size_t>(nv));
      const double line = rng.normal(), cos1 = rng.normal(), cos2 = rng.normal();
      for (int64_t v = 0; v < nv; ++v) {
        const double x = (static_cast<double>(v) + 0.5) / static_cast<double>(nv);
        drift[static_cast<std::size_t>(v)] =
            line * (2.0 * x - 1.0) + cos1 * std::cos(M_PI * x) + cos2 * std::cos(2.0 * M_PI * x);
      }
      standardise(drift.data(), nv);
      for (int64_t v = 0; v < nv; ++v) {
        noise[static_cast<std::size_t>(v)] = std::sqrt(c.physio_share) * physio[static_cast<std::size_t>(v)] +
                                             std::sqrt(c.drift_share) * drift[static_cast<std::size_t>(v)] +
                                             std::sqrt(thermal_share) * rng.normal();
        signal_column[static_cast<std::size_t>(v)] = out.bold_noiseless[static_cast<std::size_t>(v) * rois + r];
      }
      // Orthogonal to the centred noiseless series, zero mean, SD = SD(signal) / SNR.
      const double signal_mean = mean_of(signal_column.data(), nv);
      double ss = 0.0, cross = 0.0;
      for (int64_t v = 0; v < nv; ++v) {
        const double s = signal_column[static_cast<std::size_t>(v)] - signal_mean;
        ss += s * s;
        cross += s * noise[static_cast<std::size_t>(v)];
      }
      for (int64_t v = 0; v < nv; ++v)
        noise[static_cast<std::size_t>(v)] -= cross / ss * (signal_column[static_cast<std::size_t>(v)] - signal_mean);
      standardise(noise.data(), nv);
      const double snr = c.snr * c.rois[r].snr_scale;
      const double noise_sd = std::sqrt(ss / static_cast<double>(nv)) / snr;
      std::vector<double> bold(static_cast<std::size_t>(nv)), visible(static_cast<std::size_t>(nv));
      for (int64_t v = 0; v < nv; ++v) {
        const auto i = static_cast<std::size_t>(v) * rois + r;
        out.bold[i] = out.bold_noiseless[i] + noise_sd * noise[static_cast<std::size_t>(v)];
        bold[static_cast<std::size_t>(v)] = out.bold[i];
        visible[static_cast<std::size_t>(v)] = out.bold_visible[i];
      }
      out.snr.push_back(snr);
      out.requested_ceiling.push_back(snr / std::sqrt(1.0 + snr * snr));
      out.realised_ceiling.push_back(signal::pearson(bold, signal_column));
      out.eeg_ceiling.push_back(c.rois[r].eeg_fraction > 0.0 ? signal::pearson(bold, visible)
                                                             : std::numeric_limits<double>::quiet_NaN());
    }
  }

  // EEG.
  Recording& eeg = out.eeg;
  eeg.source = "simulated";
  eeg.format = "simulated";
  eeg.sample_rate = fs;
  eeg.start_time = "2000-01-01T12:00:00";
  eeg.channels = layout.channels;
  eeg.num_samples = n;
  eeg.data.assign(static_cast<std::size_t>(eeg.num_channels() * n), 0.0f);
  const SimScanner& scanner = c.scanner;
  if (!scanner.gradient) {
    for (int64_t v = 0; v < nv; ++v) {
      Annotation a;
      a.onset = static_cast<double>(std::llround(out.volume_times[static_cast<std::size_t>(v)] * fs)) / fs;
      a.label = c.trigger_label;
      eeg.annotations.push_back(std::move(a));
    }
  } else {
    // The amplifier sees the scanner's TTL pulse at the first sample at or after it.
    Rng rng = stream("slices");
    out.slice_times = sim::slice_onsets(c, nv, duration, rng);
    for (std::size_t k = 0; k < out.slice_times.size(); ++k) {
      const bool volume_start = k % static_cast<std::size_t>(scanner.slices) == 0;
      const auto sample = static_cast<int64_t>(std::ceil(out.slice_times[k] * fs));
      if (sample >= n) break;
      for (const bool volume : {true, false}) {
        if (volume ? !volume_start : !scanner.slice_triggers) continue;
        Annotation a;
        a.onset = static_cast<double>(sample) / fs;
        a.label = volume ? c.trigger_label : scanner.slice_trigger_label;
        eeg.annotations.push_back(std::move(a));
      }
    }
  }

  GridInterpolation grid;
  grid.index.resize(static_cast<std::size_t>(n));
  grid.frac.resize(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double u = (static_cast<double>(i) / fs - out.drive_start) / dt;
    const auto j = std::min<int64_t>(static_cast<int64_t>(std::floor(u)), j_count - 2);
    grid.index[static_cast<std::size_t>(i)] = j;
    grid.frac[static_cast<std::size_t>(i)] = u - static_cast<double>(j);
  }
  const auto background_psd = [&](double f) {
    return std::pow(std::max(f, 0.5), -c.aperiodic_exponent) / (1.0 + std::pow(f / 100.0, 8.0));
  };

  std::vector<double> moment(static_cast<std::size_t>(n));
  std::vector<double> amplitude_on_grid(static_cast<std::size_t>(j_count));
  for (std::size_t s = 0; s < sources; ++s) {
    const SimSource& src = c.sources[s];
    std::fill(moment.begin(), moment.end(), 0.0);
    for (int b = 0; b < kNumBands; ++b) {
      const double amp = sp.amplitude[s][static_cast<std::size_t>(b)];
      if (!(amp > 0.0)) continue;
      const BandRange range = band_range(static_cast<Band>(b));
      const double peak =
          std::clamp(src.peak_hz[static_cast<std::size_t>(b)] * sp.peak_scale, range.low_hz, range.high_hz);
      const double width = c.peak_width_hz[static_cast<std::size_t>(b)];
      Rng rng = stream("rhythm", s * kNumBands + static_cast<std::size_t>(b));
      const auto carrier = synth.noise(
          n, fs,
          [&](double f) {
            const double d = (f - peak) / width;
            return std::fabs(d) > 5.0 || f < 0.1 ? 0.0 : std::exp(-0.5 * d * d);
          },
          rng);
      const double* power =
          out.band_power.data() + (s * kNumBands + static_cast<std::size_t>(b)) * static_cast<std::size_t>(j_count);
      for (int64_t j = 0; j < j_count; ++j) amplitude_on_grid[static_cast<std::size_t>(j)] = std::sqrt(power[j]);
      for (int64_t i = 0; i < n; ++i)
        moment[static_cast<std::size_t>(i)] +=
            amp * grid.at(amplitude_on_grid.data(), i) * carrier[static_cast<std::size_t>(i)];
    }
    if (src.background > 0.0) {
      Rng rng = stream("background", s);
      const auto x = synth.noise(n, fs, background_psd, rng);
      for (int64_t i = 0; i < n; ++i)
        moment[static_cast<std::size_t>(i)] += src.background * x[static_cast<std::size_t>(i)];
    }
    add_projected(eeg.data, n, layout, lead_field(head, layout, src.position, src.orientation), moment);
  }
  if (c.variability.background_amplitude > 0.0) {
    for (std::size_t d = 0; d < sp.background_position.size(); ++d) {
      Rng rng = stream("background-dipole", d);
      auto x = synth.noise(n, fs, background_psd, rng);
      for (auto& e : x) e *= c.variability.background_amplitude;
      add_projected(eeg.data, n, layout,
                    lead_field(head, layout, sp.background_position[d], sp.background_orientation[d]), x);
    }
  }

  // Artefacts. Blinks and EOG.
  const SimArtefacts& art = c.artefacts;
  const Montage& montage = standard_montage(StandardMontage::standard_1005);
  auto pattern_at = [&](const Vec3& site, double length, double at_nearest) {
    std::vector<double> values;
    for (const auto& p : layout.position) values.push_back(std::exp(-(distance(site, p) - at_nearest) / length));
    const double ref =
        layout.average_reference ? 0.0 : std::exp(-(distance(site, layout.reference) - at_nearest) / length);
    return referenced(layout, values, ref);
  };
  if (art.blink_rate > 0.0 && art.blink_amplitude > 0.0) {
    Rng rng = stream("blinks");
    std::vector<double> blinks(static_cast<std::size_t>(n), 0.0);
    for (double t = rng.exponential(60.0 / art.blink_rate); t < duration; t += rng.exponential(60.0 / art.blink_rate)) {
      const double width = rng.uniform(0.25, 0.4) * fs;
      add_bump(blinks, t * fs, width, art.blink_amplitude * rng.uniform(0.7, 1.3));
    }
    const Vec3 eyes{0.0, 80.0, -40.0};
    const double nearest = distance(eyes, *montage.find("Fp1"));
    add_projected(eeg.data, n, layout, pattern_at(eyes, 35.0, nearest), blinks);
    for (std::size_t ch = 0; ch < layout.channels.size(); ++ch)
      if (layout.channels[ch].type == ChannelType::eog) {
        float* x = eeg.channel_data(static_cast<int64_t>(ch));
        for (int64_t i = 0; i < n; ++i) x[i] += static_cast<float>(1.5 * blinks[static_cast<std::size_t>(i)]);
      }
  }
  // Muscle bursts near the temporalis muscles.
  if (art.muscle_rate > 0.0 && art.muscle_amplitude > 0.0) {
    Rng rng = stream("muscle");
    std::vector<std::vector<double>> envelope(2, std::vector<double>(static_cast<std::size_t>(n), 0.0));
    bool any[2] = {false, false};
    for (double t = rng.exponential(60.0 / art.muscle_rate); t < duration;
         t += rng.exponential(60.0 / art.muscle_rate)) {
      const int side = rng.uniform() < 0.5 ? 0 : 1;
      const double width = rng.uniform(0.5, 2.0) * fs;
      add_bump(envelope[static_cast<std::size_t>(side)], t * fs, width, art.muscle_amplitude * rng.uniform(0.5, 1.5));
      any[side] = true;
    }
    const double top = std::min(150.0, 0.45 * fs);
    for (int side = 0; side < 2; ++side) {
      if (!any[side]) continue;
      Rng carrier_rng = stream("muscle-carrier", static_cast<uint64_t>(side));
      auto x = synth.noise(
          n, fs, [&](double f) { return f >= 20.0 && f <= top ? 1.0 : 0.0; }, carrier_rng);
      for (int64_t i = 0; i < n; ++i)
        x[static_cast<std::size_t>(i)] *= envelope[static_cast<std::size_t>(side)][static_cast<std::size_t>(i)];
      ElectrodePosition anchor = *montage.find(side == 0 ? "FT7" : "FT8");
      const Vec3 site{anchor.x, anchor.y, anchor.z - 15.0};
      add_projected(eeg.data, n, layout, pattern_at(site, 30.0, distance(site, anchor)), x);
    }
  }
  // Heartbeats: ECG channels and the residual pulse artefact, or with the BCG its heartbeats.
  const bool has_ecg = std::any_of(layout.channels.begin(), layout.channels.end(),
                                   [](const Channel& ch) { return ch.type == ChannelType::ecg; });
  sim::BcgShape bcg_shape;
  if (scanner.bcg) {
    Rng rng = stream("bcg");
    bcg_shape = sim::draw_bcg_shape(rng);
    out.heartbeat_times = sim::heartbeats(scanner, duration, bcg_shape.breathing_hz, bcg_shape.breathing_phase, rng);
  }
  if (has_ecg || art.pulse_amplitude > 0.0 || scanner.bcg) {
    std::vector<double>& r_peaks = out.heartbeat_times;
    if (!scanner.bcg) {
      Rng rng = stream("heart");
      for (double t = rng.uniform(0.0, sp.heart_period); t < duration + 1.0;) {
        r_peaks.push_back(t);
        t += sp.heart_period * (1.0 + 0.04 * std::sin(2.0 * M_PI * t / 4.0) + 0.03 * rng.normal());
      }
    }
    // The waves below have an R wave of 1000 uV; with the BCG the ECG is ecg_amplitude's.
    const double ecg_scale = scanner.bcg ? (scanner.ecg_inverted ? -1.0 : 1.0) * scanner.ecg_amplitude / 1000.0 : 1.0;
    if (has_ecg) {
      struct Wave {
        double at, amplitude, width;
      };
      const Wave waves[] = {{-0.2, 150.0, 0.025},
                            {-0.035, -100.0, 0.01},
                            {0.0, 1000.0, 0.012},
                            {0.035, -250.0, 0.012},
                            {0.25, 300.0, 0.05}};
      std::vector<double> ecg(static_cast<std::size_t>(n), 0.0);
      for (double peak : r_peaks) {
        const auto first = std::max<int64_t>(0, static_cast<int64_t>((peak - 0.5) * fs));
        const auto last = std::min<int64_t>(n - 1, static_cast<int64_t>((peak + 0.6) * fs));
        for (int64_t i = first; i <= last; ++i) {
          const double t = static_cast<double>(i) / fs - peak;
          double v = 0.0;
          for (const auto& w : waves) v += w.amplitude * std::exp(-0.5 * (t - w.at) * (t - w.at) / (w.width * w.width));
          ecg[static_cast<std::size_t>(i)] += v * ecg_scale;
        }
      }
      for (std::size_t ch = 0; ch < layout.channels.size(); ++ch)
        if (layout.channels[ch].type == ChannelType::ecg) {
          float* x = eeg.channel_data(static_cast<int64_t>(ch));
          for (int64_t i = 0; i < n; ++i) x[i] += static_cast<float>(ecg[static_cast<std::size_t>(i)]);
        }
    }
    if (art.pulse_amplitude > 0.0 && !scanner.bcg) {
      std::vector<double> pulse(static_cast<std::size_t>(n), 0.0);
      for (double peak : r_peaks) {
        const double onset = peak + 0.21;
        const auto first = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(onset * fs)));
        const auto last = std::min<int64_t>(n - 1, static_cast<int64_t>(std::floor((onset + 0.6) * fs)));
        for (int64_t i = first; i <= last; ++i) {
          const double t = static_cast<double>(i) / fs - onset;
          pulse[static_cast<std::size_t>(i)] += std::exp(-t / 0.15) * std::sin(2.0 * M_PI * 3.0 * t);
        }
      }
      std::vector<double> gain;
      for (auto index : layout.eeg)
        gain.push_back(art.pulse_amplitude * 2.0 * sp.pulse_pattern[static_cast<std::size_t>(index)]);
      add_projected(eeg.data, n, layout, gain, pulse);
    }
  }
  // Mains and sensor noise, on every channel.
  const bool mains = art.mains_amplitude > 0.0 && c.power_line_frequency > 0.0 && c.power_line_frequency < fs / 2.0;
  if (mains || c.sensor_noise > 0.0) {
    for (int64_t ch = 0; ch < eeg.num_channels(); ++ch) {
      float* x = eeg.channel_data(ch);
      if (mains) {
        const double a = sp.mains_amplitude[static_cast<std::size_t>(ch)],
                     phase = sp.mains_phase[static_cast<std::size_t>(ch)];
        const double w = 2.0 * M_PI * c.power_line_frequency / fs;
        for (int64_t i = 0; i < n; ++i) x[i] += static_cast<float>(a * std::sin(w * static_cast<double>(i) + phase));
      }
      if (c.sensor_noise > 0.0) {
        Rng rng = stream("sensor", static_cast<uint64_t>(ch));
        for (int64_t i = 0; i < n; ++i) x[i] += static_cast<float>(c.sensor_noise * rng.normal());
      }
    }
  }

  // The scanner's artefacts, on top of a copy kept as the clean EEG.
  if (scanner.any()) {
    out.eeg_clean = eeg;
    Rng leads = Rng::derive(c.seed, {tag("scanner-subject"), static_cast<uint64_t>(subject)});
    if (scanner.bcg) {
      const auto weights = bcg_weights(c, layout, head, bcg_shape, leads);
      Rng rng = stream("bcg-beats");
      sim::add_bcg(eeg.data, n, fs, bcg_shape, out.heartbeat_times, layout.eeg, weights, rng);
    }
    if (scanner.gradient && !out.slice_times.empty()) {
      const sim::GradientTemplate g = sim::gradient_template(sim::slice_period(c), fs);
      const auto weights = gradient_weights(c, layout, head, g, leads);
      // Head motion: a slow common movement (correlation time ~30 s, on a 1 Hz grid) changes each
      // channel's gain by its own share.
      const std::size_t slices = out.slice_times.size();
      std::vector<double> gain(layout.channels.size() * slices, 1.0);
      if (scanner.motion_gain_drift > 0.0) {
        Rng rng = stream("motion");
        const auto seconds = static_cast<int64_t>(std::ceil(duration)) + 2;
        const auto motion = synth.noise(seconds, 1.0, [](double f) { return squared_lorentzian(f, 30.0); }, rng);
        for (std::size_t ch = 0; ch < layout.channels.size(); ++ch) {
          const double share = scanner.motion_gain_drift * rng.normal();
          for (std::size_t k = 0; k < slices; ++k) {
            const double t = out.slice_times[k];
            const auto j = std::min<std::size_t>(static_cast<std::size_t>(t), motion.size() - 2);
            const double m = motion[j] + (t - static_cast<double>(j)) * (motion[j + 1] - motion[j]);
            gain[ch * slices + k] = 1.0 + share * m;
          }
        }
      }
      sim::add_gradient(eeg.data, n, fs, g, out.slice_times, weights, gain);
    }
  }
  return out;
}

}  // namespace neurobolt
