// Welch's averaged periodogram, as scipy.signal.welch (via scipy's _spectral_helper).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <numeric>
#include <unsupported/Eigen/FFT>

#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt::signal {
namespace {

// scipy.signal.get_window('hann', n) (fftbins=True): the periodic Hann window, computed as
// scipy's general_cosine does over linspace(-pi, pi, n + 1).
std::vector<double> periodic_hann(int64_t n) {
  std::vector<double> w(static_cast<std::size_t>(n));
  const double step = 2.0 * M_PI / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) w[static_cast<std::size_t>(i)] = 0.5 + 0.5 * std::cos(static_cast<double>(i) * step - M_PI);
  return w;
}

}  // namespace

Spectrum welch(const std::vector<double>& x, double fs, int64_t nperseg, const WelchOptions& options) {
  if (!(fs > 0.0) || !std::isfinite(fs))
    throw ConfigError(fmt::format("welch: fs must be a positive number of Hz, found {}", fs));
  if (x.empty()) throw ConfigError("welch: the input is empty; expected at least one sample");
  if (nperseg < 1) throw ConfigError(fmt::format("welch: nperseg must be >= 1, found {}", nperseg));
  const auto n = static_cast<int64_t>(x.size());
  nperseg = std::min(nperseg, n);  // as scipy (which warns)
  const int64_t noverlap = options.noverlap < 0 ? nperseg / 2 : options.noverlap;
  if (noverlap >= nperseg)
    throw ConfigError(fmt::format("welch: noverlap must be less than nperseg = {}, found {}", nperseg, noverlap));
  const int64_t nfft = options.nfft < 0 ? nperseg : options.nfft;
  if (nfft < nperseg)
    throw ConfigError(fmt::format("welch: nfft must be >= nperseg = {}, found {}", nperseg, nfft));

  const auto window = periodic_hann(nperseg);
  double scale = 0.0;
  if (options.scaling == SpectrumScaling::density) {
    for (double w : window) scale += w * w;
    scale = 1.0 / (fs * scale);
  } else {
    const double sum = std::accumulate(window.begin(), window.end(), 0.0);
    scale = 1.0 / (sum * sum);
  }

  const int64_t step = nperseg - noverlap;
  const int64_t segments = (n - noverlap) / step;
  const auto bins = static_cast<std::size_t>(nfft / 2 + 1);
  Spectrum result;
  result.power.assign(bins, 0.0);
  Eigen::FFT<double> fft;
  std::vector<double> segment(static_cast<std::size_t>(nfft));
  std::vector<std::complex<double>> spectrum;
  for (int64_t s = 0; s < segments; ++s) {
    std::vector<double> piece(x.begin() + s * step, x.begin() + s * step + nperseg);
    if (options.detrend == Detrend::constant) {
      const double mean = std::accumulate(piece.begin(), piece.end(), 0.0) / static_cast<double>(nperseg);
      for (auto& v : piece) v -= mean;
    } else if (options.detrend == Detrend::linear) {
      piece = detrend_linear(piece);
    }
    std::fill(segment.begin(), segment.end(), 0.0);
    for (std::size_t i = 0; i < piece.size(); ++i) segment[i] = piece[i] * window[i];
    fft.fwd(spectrum, segment);
    for (std::size_t k = 0; k < bins; ++k) result.power[k] += std::norm(spectrum[k]) * scale;
  }
  // One-sided: fold the negative frequencies onto the positive ones (not DC, nor Nyquist when
  // nfft is even).
  const std::size_t last_doubled = nfft % 2 == 0 ? bins - 1 : bins;
  for (std::size_t k = 0; k < bins; ++k) {
    result.power[k] /= static_cast<double>(segments);
    if (k > 0 && k < last_doubled) result.power[k] *= 2.0;
  }
  result.frequencies.resize(bins);
  const double resolution = 1.0 / (static_cast<double>(nfft) * (1.0 / fs));
  for (std::size_t k = 0; k < bins; ++k) result.frequencies[k] = static_cast<double>(k) * resolution;
  return result;
}

}  // namespace neurobolt::signal
