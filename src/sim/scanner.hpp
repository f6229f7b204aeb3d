#pragma once
// The MR scanner's artefacts on the EEG (SimulationConfig::scanner): the gradient artefact of an
// EPI sequence, sampled at the EEG clock while the scanner runs on its own clock, and the
// ballistocardiogram (BCG) locked to a simulated heartbeat. simulate_run.cpp places them on the
// channels; the time-domain work is here.
#include <array>
#include <cstdint>
#include <vector>

#include "neurobolt/simulate.hpp"
#include "sim/sim_internal.hpp"

namespace neurobolt::sim {

// Seconds between slice onsets: (TR - slice_gap) / slices.
double slice_period(const SimulationConfig& c);

// The true slice onsets (s, EEG clock) of `volumes` volumes, slice after slice: the first volume
// at first_volume plus a random sub-sample offset, then every slice period of the scanner's
// clock, which runs (1 + clock_drift_ppm 1e-6) times slower than the EEG's, plus white timing
// jitter. Onsets at or after `duration` are left out (the recording stops first).
std::vector<double> slice_onsets(const SimulationConfig& c, int64_t volumes, double duration, Rng& rng);

// The voltage one slice of an EPI sequence induces per gradient axis (x: readout, y: phase
// encoding, z: slice selection), as a function of the time since the slice onset: dG/dt of the
// slice's trapezoids (slice-select pulse and its refocusing lobe, read and phase prephasers, a
// train of alternating readout trapezoids at an echo spacing of 0.55 ms with phase-encoding blips
// between them, a spoiler), through the EEG amplifier's hardware low-pass (4th-order Butterworth
// at lowpass_hz), on a fine grid of `step` s. The waveform lasts one slice period plus the filter's
// decay (it overlaps the next slice's start by that tail; the sum over slices is the filtered
// continuous signal). Units are arbitrary: callers scale it.
struct GradientTemplate {
  double step = 0.0;      // s
  double lowpass_hz = 0.0;
  std::array<std::vector<double>, 3> axis;  // per axis, value at j * step

  double duration() const { return step * static_cast<double>(axis[0].size() - 1); }
  // Linear interpolation of axis a at t s after the onset (0 outside the waveform).
  double at(int a, double t) const;
  // max over t of |sum_a weight[a] * axis[a](t)| on the fine grid.
  double peak(const std::array<double, 3>& weight) const;
};

// The hardware low-pass of an amplifier sampling at `sample_rate`: 1 kHz, or 0.2 x the sampling
// rate when that is lower (always below the Nyquist frequency).
double amplifier_lowpass_hz(double sample_rate);

GradientTemplate gradient_template(double slice_period, double sample_rate);

// Adds the gradient artefact to every channel of `data` (channel-major, `n` samples per channel
// at `sample_rate`): for slice k at onset[k] and channel c,
//   gain[c][k] * sum_a weight[c][a] * template.axis[a](i / sample_rate - onset[k])
// at every sample i the slice's waveform covers. `gain` is channel-major (channels x slices).
void add_gradient(std::vector<float>& data, int64_t n, double sample_rate, const GradientTemplate& g,
                  const std::vector<double>& onset, const std::vector<std::array<double, 3>>& weight,
                  const std::vector<double>& gain);

// R-peak times (s) from 0 to `duration` + 1: a random first beat, then RR intervals of
// 60/heart_rate s x (1 + respiratory sinus arrhythmia + white variability), each part carrying half
// of the variance hrv^2 (the RSA follows breathing at breathing_hz).
std::vector<double> heartbeats(const SimScanner& s, double duration, double breathing_hz, double breathing_phase,
                               Rng& rng);

// The ballistocardiogram's temporal components: damped oscillations under a Hann window of
// kBcgDuration s that starts a delay after each R peak. Per run a few components, each
// channel a weighted sum of them.
constexpr int kBcgComponents = 3;
constexpr double kBcgDuration = 0.5;  // s
struct BcgShape {
  std::array<double, kBcgComponents> frequency{}, decay{}, phase{};
  double delay = 0.22;         // s from the R peak to the onset
  double breathing_hz = 0.25;  // the respiration that modulates the heart rate and the beat amplitude
  double breathing_phase = 0.0;
  double component(int k, double t) const;  // t s after the onset; 0 outside [0, kBcgDuration]
};
BcgShape draw_bcg_shape(Rng& rng);

// max over t of |sum_k weight[k] * component k| (the peak of one nominal beat).
double bcg_peak(const BcgShape& shape, const std::array<double, kBcgComponents>& weight);

// Adds a BCG beat after every R peak to channel channel[c] of `data`: weight[c] mixes the
// components; per beat, the amplitude varies by ~10% (with breathing and at random) and the
// delay by a few ms.
void add_bcg(std::vector<float>& data, int64_t n, double sample_rate, const BcgShape& shape,
             const std::vector<double>& r_peaks, const std::vector<int64_t>& channel,
             const std::vector<std::array<double, kBcgComponents>>& weight, Rng& rng);

}  // namespace neurobolt::sim
