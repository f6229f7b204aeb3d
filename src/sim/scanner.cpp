// The scanner's artefacts on the EEG: gradient waveforms of an EPI sequence and the
// ballistocardiogram (see scanner.hpp).
//
// Why the gradient artefact looks the way it does (Allen, Josephs & Turner 2000, NeuroImage
// 12:230; Mandelkow et al. 2006, NeuroImage 32:1120): the switched gradients induce a voltage
// proportional to dG/dt in the loops the electrode leads form with the head. It repeats with
// every slice and is thousands of microvolts at the electrodes. The scanner's clock is not the
// EEG's, so each slice starts at another sub-sample position of the EEG clock, and the sampled
// artefact differs from slice to slice although the continuous one does not; the amplifier's
// hardware low-pass keeps it below the Nyquist frequency. The BCG (Allen et al. 1998, NeuroImage
// 8:229; Debener et al. 2008, NeuroImage 41:2009) follows each R peak by ~200-250 ms, lasts about
// half a second, is as large as alpha or larger, largest at lateral sites, and varies in
// amplitude from beat to beat with breathing.
#include "sim/scanner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt::sim {

double slice_period(const SimulationConfig& c) {
  return (c.repetition_time - c.scanner.slice_gap) / static_cast<double>(c.scanner.slices);
}

std::vector<double> slice_onsets(const SimulationConfig& c, int64_t volumes, double duration, Rng& rng) {
  const double period = slice_period(c);
  const double stretch = 1.0 + c.scanner.clock_drift_ppm * 1e-6;
  const double jitter = c.scanner.timing_jitter_us * 1e-6;
  // Where the first volume falls between two EEG samples is chance: the clocks are not locked.
  const double start = c.first_volume + rng.uniform() / c.sample_rate;
  std::vector<double> onsets;
  onsets.reserve(static_cast<std::size_t>(volumes * c.scanner.slices));
  for (int64_t v = 0; v < volumes; ++v)
    for (int s = 0; s < c.scanner.slices; ++s) {
      const double scanner_time = static_cast<double>(v) * c.repetition_time + static_cast<double>(s) * period;
      const double t = std::max(0.0, start + scanner_time * stretch + jitter * rng.normal());
      if (t < duration) onsets.push_back(t);
    }
  return onsets;
}

double amplifier_lowpass_hz(double sample_rate) { return std::min(1000.0, 0.2 * sample_rate); }

double GradientTemplate::at(int a, double t) const {
  const auto& x = axis[static_cast<std::size_t>(a)];
  const double u = t / step;
  if (!(u >= 0.0)) return 0.0;
  const auto j = static_cast<std::size_t>(u);
  if (j + 1 >= x.size()) return 0.0;
  const double f = u - static_cast<double>(j);
  return x[j] + f * (x[j + 1] - x[j]);
}

double GradientTemplate::peak(const std::array<double, 3>& weight) const {
  double best = 0.0;
  for (std::size_t j = 0; j < axis[0].size(); ++j)
    best = std::max(best, std::fabs(weight[0] * axis[0][j] + weight[1] * axis[1][j] + weight[2] * axis[2][j]));
  return best;
}

namespace {

struct Trapezoid {
  int axis;
  double start, ramp, flat, amplitude;  // s, s, s, arbitrary
};

// The gradients of one EPI slice. Timings are those of a typical 64 x 64 EPI (slice select 2.6 ms,
// echo spacing 0.55 ms), compressed in time when the slice period is shorter than 20 ms.
std::vector<Trapezoid> epi_slice(double period) {
  const double a = std::min(1.0, period / 0.020);
  const double ms = 1e-3 * a;
  std::vector<Trapezoid> g;
  g.push_back({2, 0.1 * ms, 0.2 * ms, 2.6 * ms, 1.0});    // slice selection under the RF pulse
  g.push_back({2, 3.1 * ms, 0.2 * ms, 0.9 * ms, -1.4});   // its refocusing lobe
  g.push_back({0, 3.1 * ms, 0.2 * ms, 0.9 * ms, -0.9});   // read prephaser
  g.push_back({1, 3.1 * ms, 0.2 * ms, 0.9 * ms, -0.7});   // phase prephaser
  const double first = 4.5 * ms, spacing = 0.55 * ms;
  const auto echoes = std::clamp<int64_t>(static_cast<int64_t>((period - first - 2.6 * ms) / spacing), 1, 64);
  for (int64_t e = 0; e < echoes; ++e) {
    const double at = first + static_cast<double>(e) * spacing;
    g.push_back({0, at, 0.1 * ms, 0.35 * ms, e % 2 == 0 ? 1.0 : -1.0});  // readout, alternating
    if (e + 1 < echoes) g.push_back({1, at + spacing - 0.05 * ms, 0.05 * ms, 0.0, 0.25});  // blip
  }
  g.push_back({2, first + static_cast<double>(echoes) * spacing + 0.2 * ms, 0.3 * ms, 1.5 * ms, 1.2});  // spoiler
  return g;
}

// Causal filtering through second-order sections (direct form II transposed), as the analog
// filter in the amplifier does: its delay is part of the artefact.
void sosfilt(const std::vector<signal::Section>& sos, std::vector<double>& x) {
  for (const auto& s : sos) {
    double z1 = 0.0, z2 = 0.0;
    for (auto& v : x) {
      const double y = s[0] * v + z1;
      z1 = s[1] * v - s[4] * y + z2;
      z2 = s[2] * v - s[5] * y;
      v = y;
    }
  }
}

}  // namespace

GradientTemplate gradient_template(double period, double sample_rate) {
  GradientTemplate g;
  g.lowpass_hz = amplifier_lowpass_hz(sample_rate);
  // A fine grid (>= 20 points per EEG sample, >= 10 per readout ramp) stands in for continuous time.
  g.step = std::min(1.0 / (20.0 * sample_rate), 5e-6 * std::max(0.1, std::min(1.0, period / 0.020)));
  // The slowest pole pair of the 4th-order Butterworth decays as exp(-2 pi fc sin(pi/8) t):
  // 6/fc leaves < 1e-6 of it.
  const double length = period + 6.0 / g.lowpass_hz;
  const auto points = static_cast<std::size_t>(std::ceil(length / g.step)) + 1;
  std::array<std::vector<double>, 3> field;
  for (auto& f : field) f.assign(points + 1, 0.0);
  for (const auto& t : epi_slice(period)) {
    auto& f = field[static_cast<std::size_t>(t.axis)];
    const double end = t.start + 2.0 * t.ramp + t.flat;
    const auto first = static_cast<std::size_t>(std::max(0.0, std::floor(t.start / g.step)));
    const auto last = std::min(points, static_cast<std::size_t>(std::ceil(end / g.step)));
    for (std::size_t j = first; j <= last; ++j) {
      const double time = static_cast<double>(j) * g.step;
      double shape = 0.0;
      if (time <= t.start || time >= end)
        shape = 0.0;
      else if (time < t.start + t.ramp)
        shape = (time - t.start) / t.ramp;
      else if (time <= t.start + t.ramp + t.flat)
        shape = 1.0;
      else
        shape = (end - time) / t.ramp;
      f[j] += t.amplitude * shape;
    }
  }
  const auto filter = signal::butter(4, g.lowpass_hz, 1.0 / g.step, signal::FilterType::lowpass);
  for (std::size_t a = 0; a < 3; ++a) {
    auto& x = g.axis[a];
    x.resize(points);
    for (std::size_t j = 0; j < points; ++j) x[j] = (field[a][j + 1] - field[a][j]) / g.step;  // dG/dt
    sosfilt(filter.sos, x);
  }
  return g;
}

void add_gradient(std::vector<float>& data, int64_t n, double sample_rate, const GradientTemplate& g,
                  const std::vector<double>& onset, const std::vector<std::array<double, 3>>& weight,
                  const std::vector<double>& gain) {
  const auto channels = static_cast<int64_t>(weight.size());
  const auto slices = static_cast<int64_t>(onset.size());
  if (static_cast<int64_t>(data.size()) != channels * n || static_cast<int64_t>(gain.size()) != channels * slices)
    throw Error(ErrorKind::internal, "add_gradient: sizes do not match");
  std::array<std::vector<double>, 3> value;
  for (int64_t k = 0; k < slices; ++k) {
    const double t0 = onset[static_cast<std::size_t>(k)];
    const auto first = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(t0 * sample_rate)));
    const auto last = std::min<int64_t>(n - 1, static_cast<int64_t>(std::floor((t0 + g.duration()) * sample_rate)));
    if (last < first) continue;
    const auto count = static_cast<std::size_t>(last - first + 1);
    for (int a = 0; a < 3; ++a) {
      auto& v = value[static_cast<std::size_t>(a)];
      v.resize(count);
      for (std::size_t i = 0; i < count; ++i)
        v[i] = g.at(a, static_cast<double>(first + static_cast<int64_t>(i)) / sample_rate - t0);
    }
    for (int64_t c = 0; c < channels; ++c) {
      const double s = gain[static_cast<std::size_t>(c * slices + k)];
      const auto& w = weight[static_cast<std::size_t>(c)];
      const double w0 = s * w[0], w1 = s * w[1], w2 = s * w[2];
      float* out = data.data() + c * n + first;
      for (std::size_t i = 0; i < count; ++i)
        out[i] += static_cast<float>(w0 * value[0][i] + w1 * value[1][i] + w2 * value[2][i]);
    }
  }
}

std::vector<double> heartbeats(const SimScanner& s, double duration, double breathing_hz, double breathing_phase,
                               Rng& rng) {
  const double mean_rr = 60.0 / s.heart_rate;
  std::vector<double> peaks;
  for (double t = rng.uniform(0.0, mean_rr); t < duration + 1.0;) {
    peaks.push_back(t);
    const double rsa = s.hrv * std::sin(2.0 * M_PI * breathing_hz * t + breathing_phase);
    const double rr = mean_rr * (1.0 + rsa + s.hrv / std::sqrt(2.0) * rng.normal());
    t += std::max(0.3 * mean_rr, rr);
  }
  return peaks;
}

double BcgShape::component(int k, double t) const {
  if (!(t >= 0.0 && t <= kBcgDuration)) return 0.0;
  const auto i = static_cast<std::size_t>(k);
  const double window = 0.5 * (1.0 - std::cos(2.0 * M_PI * t / kBcgDuration));
  return window * std::exp(-t / decay[i]) * std::sin(2.0 * M_PI * frequency[i] * t + phase[i]);
}

BcgShape draw_bcg_shape(Rng& rng) {
  BcgShape b;
  const double base[kBcgComponents] = {2.5, 4.0, 6.5};  // Hz: the BCG's energy lies below ~10 Hz
  for (std::size_t k = 0; k < kBcgComponents; ++k) {
    b.frequency[k] = base[k] * rng.uniform(0.85, 1.15);
    b.decay[k] = rng.uniform(0.12, 0.3);
    b.phase[k] = rng.uniform(0.0, 2.0 * M_PI);
  }
  b.delay = rng.uniform(0.2, 0.25);
  b.breathing_hz = rng.uniform(0.2, 0.3);
  b.breathing_phase = rng.uniform(0.0, 2.0 * M_PI);
  return b;
}

double bcg_peak(const BcgShape& shape, const std::array<double, kBcgComponents>& weight) {
  double best = 0.0;
  for (int j = 0; j <= 1000; ++j) {
    const double t = kBcgDuration * j / 1000.0;
    double v = 0.0;
    for (int k = 0; k < kBcgComponents; ++k) v += weight[static_cast<std::size_t>(k)] * shape.component(k, t);
    best = std::max(best, std::fabs(v));
  }
  return best;
}

void add_bcg(std::vector<float>& data, int64_t n, double sample_rate, const BcgShape& shape,
             const std::vector<double>& r_peaks, const std::vector<int64_t>& channel,
             const std::vector<std::array<double, kBcgComponents>>& weight, Rng& rng) {
  std::array<std::vector<double>, kBcgComponents> value;
  for (double peak : r_peaks) {
    // ~10% beat-to-beat amplitude variation, half of it with breathing; a few ms of delay jitter.
    const double amplitude =
        1.0 + 0.07 * std::sin(2.0 * M_PI * shape.breathing_hz * peak + shape.breathing_phase) + 0.07 * rng.normal();
    const double onset = peak + shape.delay + 0.003 * rng.normal();
    const auto first = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(onset * sample_rate)));
    const auto last =
        std::min<int64_t>(n - 1, static_cast<int64_t>(std::floor((onset + kBcgDuration) * sample_rate)));
    if (last < first) continue;
    const auto count = static_cast<std::size_t>(last - first + 1);
    for (int k = 0; k < kBcgComponents; ++k) {
      auto& v = value[static_cast<std::size_t>(k)];
      v.resize(count);
      for (std::size_t i = 0; i < count; ++i)
        v[i] = amplitude * shape.component(k, static_cast<double>(first + static_cast<int64_t>(i)) / sample_rate - onset);
    }
    for (std::size_t c = 0; c < channel.size(); ++c) {
      const auto& w = weight[c];
      float* out = data.data() + channel[c] * n + first;
      for (std::size_t i = 0; i < count; ++i) {
        double v = 0.0;
        for (std::size_t k = 0; k < kBcgComponents; ++k) v += w[k] * value[k][i];
        out[i] += static_cast<float>(v);
      }
    }
  }
}

}  // namespace neurobolt::sim
