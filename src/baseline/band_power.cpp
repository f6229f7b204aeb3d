// Log band power features of EEG windows (see ridge.hpp for the definition).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <unsupported/Eigen/FFT>

#include "neurobolt/error.hpp"
#include "neurobolt/ridge.hpp"

namespace neurobolt {
namespace {

// Keeps the log finite for a zero-filled channel and is far below any real EEG band power.
constexpr double kPowerFloor = 1e-10;  // µV²
constexpr int64_t kMinSubWindowSamples = 8;

// First bin with frequency >= hz (bin j is j * rate / length Hz). The tolerance makes an edge that
// falls on a bin (1 Hz at 0.5 Hz resolution) include that bin despite rounding.
int64_t first_bin_at_or_above(double hz, double sample_rate, int64_t length) {
  return static_cast<int64_t>(std::ceil(hz * static_cast<double>(length) / sample_rate - 1e-9));
}

std::string number(double x) { return fmt::format("{:g}", x); }

}  // namespace

void validate(const BandPowerOptions& options, double sample_rate, int64_t window_samples) {
  if (!(sample_rate > 0.0) || !std::isfinite(sample_rate))
    throw ConfigError(fmt::format("band power features: sample_rate must be a positive number of Hz, found {}", sample_rate));
  if (options.bands.empty())
    throw ConfigError("band power features: 'bands' is empty; expected at least one [low, high) Hz band");
  if (options.sub_windows < 1)
    throw ConfigError(fmt::format("band power features: 'sub_windows' must be >= 1, found {}", options.sub_windows));
  if (window_samples < kMinSubWindowSamples || window_samples / options.sub_windows < kMinSubWindowSamples) {
    throw ConfigError(fmt::format(
        "band power features: 'sub_windows' = {} cuts a {}-sample window into sub-windows of {} samples; expected at "
        "least {} samples each",
        options.sub_windows, window_samples, window_samples / std::max<int64_t>(options.sub_windows, 1),
        kMinSubWindowSamples));
  }
  const int64_t length = window_samples / options.sub_windows;
  const double nyquist = sample_rate / 2.0;
  for (std::size_t i = 0; i < options.bands.size(); ++i) {
    const auto [low, high] = options.bands[i];
    if (!std::isfinite(low) || !std::isfinite(high) || low < 0.0 || !(low < high) || high > nyquist) {
      throw ConfigError(fmt::format("band power features: 'bands[{}]' must satisfy 0 <= low < high <= {} Hz (the "
                                    "Nyquist frequency), found [{}, {}]",
                                    i, number(nyquist), number(low), number(high)));
    }
    const int64_t first = first_bin_at_or_above(low, sample_rate, length);
    const int64_t end = std::min(first_bin_at_or_above(high, sample_rate, length), length / 2 + 1);
    if (end <= first) {
      throw ConfigError(fmt::format(
          "band power features: 'bands[{}]' [{}, {}) Hz holds no FFT bin of a {}-sample sub-window (resolution {} Hz); "
          "widen the band or use fewer sub_windows",
          i, number(low), number(high), length, number(sample_rate / static_cast<double>(length))));
    }
  }
}

struct BandPowerFeatures::Impl {
  BandPowerOptions options;
  int64_t channels = 0;
  int64_t window_samples = 0;
  double sample_rate = 0.0;
  int64_t length = 0;  // L, samples per sub-window
  int64_t offset = 0;  // unused leading samples
  std::vector<double> hann;
  // Per band: [first, end) bins; per bin: the factor turning |X_j|² into µV² of band power.
  std::vector<std::pair<int64_t, int64_t>> band_bins;
  std::vector<double> bin_scale;
  Eigen::FFT<double> fft;
  std::vector<double> segment;
  std::vector<std::complex<double>> spectrum;
};

BandPowerFeatures::BandPowerFeatures(const BandPowerOptions& options, int64_t channels, int64_t window_samples,
                                     double sample_rate)
    : impl_(std::make_unique<Impl>()) {
  validate(options, sample_rate, window_samples);
  if (channels < 1) throw ConfigError(fmt::format("band power features: channels must be >= 1, found {}", channels));
  auto& m = *impl_;
  m.options = options;
  m.channels = channels;
  m.window_samples = window_samples;
  m.sample_rate = sample_rate;
  m.length = window_samples / options.sub_windows;
  m.offset = window_samples - m.length * options.sub_windows;
  // Periodic Hann (scipy's get_window('hann', L)), as Welch's method in signal/welch.cpp.
  m.hann.resize(static_cast<std::size_t>(m.length));
  double window_energy = 0.0;
  for (int64_t i = 0; i < m.length; ++i) {
    const double w = 0.5 - 0.5 * std::cos(2.0 * M_PI * static_cast<double>(i) / static_cast<double>(m.length));
    m.hann[static_cast<std::size_t>(i)] = w;
    window_energy += w * w;
  }
  // One-sided density PSD_j = c_j |X_j|² / (rate * sum w²), c_j = 2 except DC and Nyquist; times
  // the bin width rate / L gives µV² per bin.
  const int64_t bins = m.length / 2 + 1;
  m.bin_scale.resize(static_cast<std::size_t>(bins));
  for (int64_t j = 0; j < bins; ++j) {
    const bool single = j == 0 || (m.length % 2 == 0 && j == m.length / 2);
    m.bin_scale[static_cast<std::size_t>(j)] = (single ? 1.0 : 2.0) / (static_cast<double>(m.length) * window_energy);
  }
  for (const auto& [low, high] : options.bands) {
    m.band_bins.emplace_back(first_bin_at_or_above(low, sample_rate, m.length),
                             std::min(first_bin_at_or_above(high, sample_rate, m.length), bins));
  }
  m.fft.SetFlag(Eigen::FFT<double>::HalfSpectrum);
  m.segment.resize(static_cast<std::size_t>(m.length));
  m.spectrum.resize(static_cast<std::size_t>(bins));
}

BandPowerFeatures::~BandPowerFeatures() = default;
BandPowerFeatures::BandPowerFeatures(BandPowerFeatures&&) noexcept = default;
BandPowerFeatures& BandPowerFeatures::operator=(BandPowerFeatures&&) noexcept = default;

int64_t BandPowerFeatures::num_features() const {
  return impl_->channels * static_cast<int64_t>(impl_->options.bands.size()) * impl_->options.sub_windows;
}
int64_t BandPowerFeatures::sub_window_samples() const { return impl_->length; }
const BandPowerOptions& BandPowerFeatures::options() const { return impl_->options; }

std::vector<std::string> BandPowerFeatures::feature_names(const std::vector<std::string>& channels) const {
  const auto& m = *impl_;
  if (static_cast<int64_t>(channels.size()) != m.channels) {
    throw ConfigError(fmt::format("band power feature names: expected {} channel names, found {}", m.channels,
                                  channels.size()));
  }
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(num_features()));
  const int64_t K = m.options.sub_windows;
  for (const auto& channel : channels) {
    for (const auto& [low, high] : m.options.bands) {
      for (int64_t k = 0; k < K; ++k) {
        const double end_s = static_cast<double>(-(K - 1 - k) * m.length) / m.sample_rate;  // 0, not -0
        const double start_s = end_s - static_cast<double>(m.length) / m.sample_rate;
        names.push_back(fmt::format("{} {}-{} Hz {}..{} s", channel, number(low), number(high), number(start_s),
                                    number(end_s)));
      }
    }
  }
  return names;
}

void BandPowerFeatures::compute(const float* windows, int64_t batch, double* out) {
  auto& m = *impl_;
  const int64_t K = m.options.sub_windows;
  const auto B = static_cast<int64_t>(m.band_bins.size());
  const double inv_length = 1.0 / static_cast<double>(m.length);
  for (int64_t w = 0; w < batch; ++w) {
    const float* window = windows + w * m.channels * m.window_samples;
    double* features = out + w * m.channels * B * K;
    for (int64_t c = 0; c < m.channels; ++c) {
      const float* channel = window + c * m.window_samples + m.offset;
      for (int64_t k = 0; k < K; ++k) {
        const float* x = channel + k * m.length;
        // Constant detrend per sub-window: the window's own DC would leak into the lowest bins.
        double mean = 0.0;
        for (int64_t i = 0; i < m.length; ++i) mean += static_cast<double>(x[i]);
        mean *= inv_length;
        for (int64_t i = 0; i < m.length; ++i)
          m.segment[static_cast<std::size_t>(i)] = (static_cast<double>(x[i]) - mean) * m.hann[static_cast<std::size_t>(i)];
        m.fft.fwd(m.spectrum.data(), m.segment.data(), m.length);
        for (int64_t b = 0; b < B; ++b) {
          double power = 0.0;
          for (int64_t j = m.band_bins[static_cast<std::size_t>(b)].first; j < m.band_bins[static_cast<std::size_t>(b)].second; ++j)
            power += std::norm(m.spectrum[static_cast<std::size_t>(j)]) * m.bin_scale[static_cast<std::size_t>(j)];
          features[(c * B + b) * K + k] = std::log(power + kPowerFloor);
        }
      }
    }
  }
}

}  // namespace neurobolt
