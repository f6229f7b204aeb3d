// SPM12's canonical haemodynamic response function (spm_hrf.m and spm_Gpdf.m).
#include <fmt/format.h>

#include <cmath>
#include <numeric>

#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt::signal {
namespace {

// spm_hrf evaluates its gammas on a grid 16 times finer than dt (fMRI_T) and keeps every 16th
// value; the grid only changes where the onset falls, so we evaluate those values directly.
constexpr double kMicrotimeBins = 16.0;

// spm_Gpdf(x, h, l): the gamma density with shape h and rate l at x (in microtime bins).
double gamma_pdf(double x, double shape, double rate) {
  if (x == 0.0 && shape == 1.0) return rate;
  if (!(x > 0.0)) return 0.0;
  return std::exp((shape - 1.0) * std::log(x) + shape * std::log(rate) - rate * x - std::lgamma(shape));
}

void require_positive(const char* field, double value) {
  if (!(value > 0.0) || !std::isfinite(value))
    throw ConfigError(fmt::format("spm_hrf: {} must be a positive number, found {}", field, value));
}

}  // namespace

std::vector<double> spm_hrf(double dt, const HrfParams& params) {
  require_positive("dt", dt);
  require_positive("peak_delay", params.peak_delay);
  require_positive("undershoot_delay", params.undershoot_delay);
  require_positive("peak_dispersion", params.peak_dispersion);
  require_positive("undershoot_dispersion", params.undershoot_dispersion);
  require_positive("length", params.length);
  if (params.ratio == 0.0 || !std::isfinite(params.ratio))
    throw ConfigError(fmt::format("spm_hrf: ratio must be a non-zero number, found {}", params.ratio));
  if (!std::isfinite(params.onset))
    throw ConfigError(fmt::format("spm_hrf: onset must be a finite number of seconds, found {}", params.onset));

  const double bin = dt / kMicrotimeBins;
  const auto samples = static_cast<std::size_t>(std::floor(params.length / dt)) + 1;
  std::vector<double> h(samples);
  for (std::size_t k = 0; k < samples; ++k) {
    const double u = static_cast<double>(k) * kMicrotimeBins - params.onset / bin;
    h[k] = gamma_pdf(u, params.peak_delay / params.peak_dispersion, bin / params.peak_dispersion) -
           gamma_pdf(u, params.undershoot_delay / params.undershoot_dispersion, bin / params.undershoot_dispersion) /
               params.ratio;
  }
  const double sum = std::accumulate(h.begin(), h.end(), 0.0);
  if (sum == 0.0 || !std::isfinite(sum))
    throw ConfigError(fmt::format("spm_hrf: the kernel sums to {} and cannot be normalised (onset {} s, length {} s)",
                                  sum, params.onset, params.length));
  for (auto& v : h) v /= sum;
  return h;
}

}  // namespace neurobolt::signal
