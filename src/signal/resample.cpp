// Polyphase FIR resampling, equivalent to scipy.signal.resample_poly with its default Kaiser
// window. scipy upsamples, filters and decimates (upfirdn); here each kept output sample is one
// dot product of the input with the filter phase that lands on it, which is the same sum
// without the samples that decimation would discard.
#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt::signal {
namespace {

constexpr double kKaiserBeta = 5.0;  // scipy's default window ('kaiser', 5.0)
constexpr int64_t kHalfLenPerRate = 10;  // scipy: half_len = 10 * max(up, down)
constexpr int64_t kMaxRatioTerm = 100000;

// numpy.sinc: sin(pi x) / (pi x).
double sinc(double x) {
  if (x == 0.0) return 1.0;
  const double y = M_PI * x;
  return std::sin(y) / y;
}

// scipy.signal.firwin(numtaps, cutoff, window=('kaiser', beta)): a windowed-sinc low-pass with
// cutoff relative to the Nyquist frequency, scaled to unit gain at DC.
std::vector<double> kaiser_lowpass(int64_t numtaps, double cutoff, double beta) {
  const double alpha = 0.5 * static_cast<double>(numtaps - 1);
  const double i0_beta = std::cyl_bessel_i(0.0, beta);
  std::vector<double> h(static_cast<std::size_t>(numtaps));
  for (int64_t i = 0; i < numtaps; ++i) {
    const double m = static_cast<double>(i) - alpha;
    const double r = m / alpha;
    const double window = std::cyl_bessel_i(0.0, beta * std::sqrt(std::max(0.0, 1.0 - r * r))) / i0_beta;
    h[static_cast<std::size_t>(i)] = cutoff * sinc(cutoff * m) * window;
  }
  const double sum = std::accumulate(h.begin(), h.end(), 0.0);
  for (auto& v : h) v /= sum;
  return h;
}

int64_t whole_millihertz(double rate, const char* field) {
  if (!std::isfinite(rate) || rate <= 0.0)
    throw ConfigError(fmt::format("resampling: {}: expected a positive number of Hz, found {:g}", field, rate));
  const double scaled = rate * 1000.0;
  const double rounded = std::round(scaled);
  if (std::abs(scaled - rounded) > 1e-9 * std::max(1.0, rounded) || rounded > 1e15)
    throw ConfigError(
        fmt::format("resampling: {}: expected a whole number of millihertz, found {:.10g} Hz", field, rate));
  return static_cast<int64_t>(rounded);
}

}  // namespace

ResampleRatio resample_ratio(double from_rate, double to_rate) {
  const int64_t from = whole_millihertz(from_rate, "source sampling rate");
  const int64_t to = whole_millihertz(to_rate, "target sampling rate");
  const int64_t g = std::gcd(from, to);
  ResampleRatio ratio{to / g, from / g};
  if (std::max(ratio.up, ratio.down) > kMaxRatioTerm)
    throw ConfigError(fmt::format(
        "resampling {:g} Hz -> {:g} Hz needs up/down = {}/{}; expected both terms <= {} (choose rates "
        "with a simpler ratio)",
        from_rate, to_rate, ratio.up, ratio.down, kMaxRatioTerm));
  return ratio;
}

PolyphaseResampler::PolyphaseResampler(int64_t up, int64_t down) {
  if (up < 1) throw ConfigError(fmt::format("resampling: upsampling factor: expected an integer >= 1, found {}", up));
  if (down < 1) {
    throw ConfigError(fmt::format("resampling: downsampling factor: expected an integer >= 1, found {}", down));
  }
  const int64_t g = std::gcd(up, down);
  up_ = up / g;
  down_ = down / g;
  if (std::max(up_, down_) > kMaxRatioTerm)
    throw ConfigError(fmt::format("resampling: up/down = {}/{} in lowest terms; expected both terms <= {}",
                                  up_, down_, kMaxRatioTerm));
  if (up_ == 1 && down_ == 1) return;

  const int64_t max_rate = std::max(up_, down_);
  half_len_ = kHalfLenPerRate * max_rate;
  filter_ = kaiser_lowpass(2 * half_len_ + 1, 1.0 / static_cast<double>(max_rate), kKaiserBeta);
  for (auto& v : filter_) v *= static_cast<double>(up_);

  const int64_t taps = static_cast<int64_t>(filter_.size());
  phase_taps_.resize(static_cast<std::size_t>(up_));
  for (int64_t r = 0; r < up_ && r < taps; ++r) {
    auto& phase = phase_taps_[static_cast<std::size_t>(r)];
    const int64_t count = (taps - 1 - r) / up_ + 1;
    phase.resize(static_cast<std::size_t>(count));
    for (int64_t k = 0; k < count; ++k)
      phase[static_cast<std::size_t>(count - 1 - k)] = filter_[static_cast<std::size_t>(r + k * up_)];
  }
}

int64_t PolyphaseResampler::output_length(int64_t input_length) const {
  const int64_t scaled = input_length * up_;
  return scaled / down_ + (scaled % down_ != 0 ? 1 : 0);
}

void PolyphaseResampler::apply(const double* x, int64_t n, double* y) const {
  apply_span(x, 0, n, n, 0, output_length(n), y);
}

void PolyphaseResampler::apply(const float* x, int64_t n, float* y) const {
  apply_span(x, 0, n, n, 0, output_length(n), y);
}

PolyphaseResampler::Span PolyphaseResampler::input_span(int64_t out_first, int64_t out_count, int64_t n) const {
  if (out_count <= 0) return {0, 0};
  if (up_ == 1 && down_ == 1) return {std::clamp<int64_t>(out_first, 0, n), std::clamp<int64_t>(out_first + out_count, 0, n)};
  // Output i reads input [position/up - (taps - 1), position/up] with position = i*down + half_len
  // (see apply_span); the longest phase has the most taps.
  int64_t longest = 0;
  for (const auto& phase : phase_taps_) longest = std::max<int64_t>(longest, static_cast<int64_t>(phase.size()));
  const int64_t lo = (out_first * down_ + half_len_) / up_ - (longest - 1);
  const int64_t hi = ((out_first + out_count - 1) * down_ + half_len_) / up_ + 1;
  return {std::clamp<int64_t>(lo, 0, n), std::clamp<int64_t>(hi, 0, n)};
}

void PolyphaseResampler::apply_span(const double* x, int64_t x_first, int64_t x_count, int64_t n, int64_t out_first,
                                    int64_t out_count, double* y) const {
  const Span need = input_span(out_first, out_count, n);
  if (out_count > 0 && need.end > need.first && (need.first < x_first || need.end > x_first + x_count)) {
    throw Error(ErrorKind::internal,
                fmt::format("resample: outputs [{}, {}) need inputs [{}, {}), given [{}, {})", out_first,
                            out_first + out_count, need.first, need.end, x_first, x_first + x_count));
  }
  if (up_ == 1 && down_ == 1) {
    for (int64_t i = 0; i < out_count; ++i) y[i] = x[out_first + i - x_first];
    return;
  }
  // Output i sits at i*down on the upsampled grid; the filter is centred there, so the input
  // sample j contributes h[i*down + half_len - j*up] (zero outside the input: scipy's padding).
  for (int64_t k = 0; k < out_count; ++k) {
    const int64_t i = out_first + k;
    const int64_t position = i * down_ + half_len_;
    const auto& phase = phase_taps_[static_cast<std::size_t>(position % up_)];
    const int64_t count = static_cast<int64_t>(phase.size());
    const int64_t first = position / up_ - (count - 1);  // input index under phase[0]
    const int64_t lo = std::max<int64_t>(0, -first);
    const int64_t hi = std::min<int64_t>(count, n - first);
    double sum = 0.0;
    if (hi > lo) {
      Eigen::Map<const Eigen::VectorXd> taps(phase.data() + lo, hi - lo);
      Eigen::Map<const Eigen::VectorXd> input(x + (first + lo - x_first), hi - lo);
      sum = taps.dot(input);
    }
    y[k] = sum;
  }
}

void PolyphaseResampler::apply_span(const float* x, int64_t x_first, int64_t x_count, int64_t n, int64_t out_first,
                                    int64_t out_count, float* y) const {
  std::vector<double> input(x, x + x_count);
  std::vector<double> output(static_cast<std::size_t>(std::max<int64_t>(out_count, 0)));
  apply_span(input.data(), x_first, x_count, n, out_first, out_count, output.data());
  std::transform(output.begin(), output.end(), y, [](double v) { return static_cast<float>(v); });
}

std::vector<double> resample_poly(const std::vector<double>& x, int64_t up, int64_t down) {
  PolyphaseResampler resampler(up, down);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<double> y(static_cast<std::size_t>(resampler.output_length(n)));
  resampler.apply(x.data(), n, y.data());
  return y;
}

std::vector<float> resample_poly(const std::vector<float>& x, int64_t up, int64_t down) {
  PolyphaseResampler resampler(up, down);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> y(static_cast<std::size_t>(resampler.output_length(n)));
  resampler.apply(x.data(), n, y.data());
  return y;
}

std::vector<double> resample(const std::vector<double>& x, double from_rate, double to_rate) {
  const auto ratio = resample_ratio(from_rate, to_rate);
  return resample_poly(x, ratio.up, ratio.down);
}

std::vector<float> resample(const std::vector<float>& x, double from_rate, double to_rate) {
  const auto ratio = resample_ratio(from_rate, to_rate);
  return resample_poly(x, ratio.up, ratio.down);
}

std::vector<float> resample_channels(const float* data, int64_t num_channels, int64_t num_samples,
                                     double from_rate, double to_rate) {
  if (num_channels < 0 || num_samples < 0)
    throw ConfigError(fmt::format("resample_channels: expected non-negative channel and sample counts, found {} x {}",
                                  num_channels, num_samples));
  const auto ratio = resample_ratio(from_rate, to_rate);
  PolyphaseResampler resampler(ratio.up, ratio.down);
  const int64_t n_out = resampler.output_length(num_samples);
  std::vector<float> out(static_cast<std::size_t>(num_channels * n_out));
  for (int64_t c = 0; c < num_channels; ++c)
    resampler.apply(data + c * num_samples, num_samples, out.data() + c * n_out);
  return out;
}

}  // namespace neurobolt::signal
