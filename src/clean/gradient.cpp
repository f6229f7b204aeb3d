// Gradient artefact: sub-sample-aligned average artefact subtraction (Allen et al. 2000) with
// optional removal of the residual's principal components (FASTR's optimal basis sets).
#include "clean/gradient.hpp"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <random>
#include <unsupported/Eigen/FFT>

#include "clean/common.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::clean_detail {
namespace {

using cd = std::complex<double>;

// exp(i * 2 pi k d / nfft) for k = 0..bins-1, by recurrence (exact enough in double for the bin
// counts used here: the error grows like k * 1e-16).
void phase_ramp(double d, int64_t nfft, int64_t bins, std::vector<cd>& out) {
  out.resize(static_cast<std::size_t>(bins));
  const double theta = 2.0 * M_PI * d / static_cast<double>(nfft);
  const cd step(std::cos(theta), std::sin(theta));
  cd w(1.0, 0.0);
  for (int64_t k = 0; k < bins; ++k) {
    // Re-anchor every 256 bins so that the recurrence's rounding cannot accumulate.
    if ((k & 255) == 0) w = cd(std::cos(theta * static_cast<double>(k)), std::sin(theta * static_cast<double>(k)));
    out[static_cast<std::size_t>(k)] = w;
    w *= step;
  }
}

Eigen::FFT<double> make_fft() {
  Eigen::FFT<double> fft;
  fft.SetFlag(Eigen::FFT<double>::HalfSpectrum);
  return fft;
}

// Rows of equal length in one allocation (the epochs' spectra): thousands of separate vectors
// left the allocator's arenas fragmented, several GB after a few dozen channels.
class Rows {
 public:
  Rows(std::size_t rows, std::size_t cols) : cols_(cols), data_(rows * cols, cd(0.0, 0.0)) {}
  cd* operator[](std::size_t i) { return data_.data() + i * cols_; }
  const cd* operator[](std::size_t i) const { return data_.data() + i * cols_; }
  void release() { std::vector<cd>().swap(data_); }

 private:
  std::size_t cols_;
  std::vector<cd> data_;
};

}  // namespace

int64_t fft_size(int64_t n) {
  for (int64_t m = std::max<int64_t>(n, 4);; ++m) {
    if (m % 4 != 0) continue;  // the real FFT's fast path
    int64_t r = m;
    for (int64_t p : {2, 3, 5})
      while (r % p == 0) r /= p;
    if (r == 1) return m;
  }
}

EpochLayout make_layout(const std::vector<int64_t>& triggers, int64_t median_interval, int64_t num_samples) {
  EpochLayout L;
  L.num_samples = num_samples;
  const double tol = grid_tolerance(median_interval);
  int64_t span = median_interval;
  for (std::size_t i = 0; i + 1 < triggers.size(); ++i) {
    const int64_t d = triggers[i + 1] - triggers[i];
    if (static_cast<double>(d) <= static_cast<double>(median_interval) + tol) span = std::max(span, d);
  }
  L.span = span + 1;
  L.pad = std::clamp<int64_t>(L.span / 8, 8, 32);
  L.window = L.span + 2 * L.pad;
  L.nfft = fft_size(L.window + 8);
  for (std::size_t i = 0; i < triggers.size(); ++i) {
    const int64_t start = triggers[i];
    if (start >= num_samples) break;
    int64_t length = L.span;
    if (i + 1 < triggers.size()) length = std::min(length, triggers[i + 1] - start);
    length = std::min(length, num_samples - start);
    if (start < 0 || length <= 0) continue;
    L.starts.push_back(start);
    L.lengths.push_back(length);
    L.complete.push_back(start - L.pad >= 0 && start + L.span + L.pad <= num_samples);
  }
  return L;
}

GradientCorrector::GradientCorrector(EpochLayout layout, GradientSettings settings)
    : layout_(std::move(layout)), settings_(settings) {
  const auto W = static_cast<std::size_t>(layout_.window);
  const auto P = static_cast<std::size_t>(layout_.pad);
  taper_.assign(W, 1.0);
  for (std::size_t j = 0; j < P; ++j) {
    const double w = 0.5 * (1.0 - std::cos(M_PI * (static_cast<double>(j) + 0.5) / static_cast<double>(P)));
    taper_[j] = w;
    taper_[W - 1 - j] = w;
  }
  shifts_.assign(layout_.starts.size(), 0.0);
  for (std::size_t i = 0; i < layout_.starts.size(); ++i)
    if (layout_.complete[i]) complete_.push_back(i);
  if (complete_.size() < 2) {
    throw ConfigError(fmt::format("gradient correction: expected at least 2 whole artefact epochs inside the recording, "
                                  "found {}",
                                  complete_.size()));
  }
}

void GradientCorrector::epoch_spectrum(const float* x, std::size_t i, std::vector<double>& buffer,
                                       std::complex<double>* out) const {
  const int64_t n = layout_.num_samples;
  const int64_t first = layout_.starts[i] - layout_.pad;
  buffer.assign(static_cast<std::size_t>(layout_.nfft), 0.0);
  for (int64_t j = 0; j < layout_.window; ++j) {
    const int64_t s = std::clamp<int64_t>(first + j, 0, n - 1);
    buffer[static_cast<std::size_t>(j)] = static_cast<double>(x[s]) * taper_[static_cast<std::size_t>(j)];
  }
  thread_local Eigen::FFT<double> fft = make_fft();
  fft.fwd(out, buffer.data(), layout_.nfft);
}

void GradientCorrector::estimate_shifts(const std::vector<const float*>& channels) {
  const std::size_t E = layout_.starts.size();
  const auto bins = static_cast<std::size_t>(layout_.nfft / 2 + 1);
  // Bins below 90 % of the Nyquist frequency: what a recorded artefact holds without aliasing.
  const auto used = static_cast<std::size_t>(0.9 * static_cast<double>(bins - 1));
  std::vector<double> buffer;
  Spectrum F(bins);
  std::vector<cd> ramp;
  std::vector<double> strength(channels.size(), 0.0);
  std::vector<Spectrum> means(channels.size());
  for (int round = 0; round < 2; ++round) {
    // The mean aligned artefact per channel, then each epoch's cross-spectrum with it.
    Rows cross(E, used);
    for (std::size_t c = 0; c < channels.size(); ++c) {
      Spectrum& mean = means[c];
      mean.assign(bins, cd(0.0, 0.0));
      for (std::size_t i : complete_) {
        epoch_spectrum(channels[c], i, buffer, F.data());
        phase_ramp(shifts_[i], layout_.nfft, static_cast<int64_t>(bins), ramp);
        for (std::size_t k = 0; k < bins; ++k) mean[k] += F[k] * ramp[k];
      }
      const double inv = 1.0 / static_cast<double>(complete_.size());
      double energy = 0.0;
      for (auto& v : mean) {
        v *= inv;
        energy += std::norm(v);
      }
      strength[c] = energy;
      for (std::size_t i = 0; i < E; ++i) {
        epoch_spectrum(channels[c], i, buffer, F.data());
        for (std::size_t k = 1; k < used; ++k) cross[i][k] += F[k] * std::conj(mean[k]);
      }
    }
    // shift_i maximises Re sum_k cross_k exp(i theta_k d): a coarse grid, then golden section.
    auto score = [&](const cd* s, double d) {
      const double theta = 2.0 * M_PI * d / static_cast<double>(layout_.nfft);
      const cd step(std::cos(theta), std::sin(theta));
      cd w = step;
      double total = 0.0;
      for (std::size_t k = 1; k < used; ++k) {
        if ((k & 255) == 0) w = cd(std::cos(theta * static_cast<double>(k)), std::sin(theta * static_cast<double>(k)));
        total += (s[k] * w).real();
        w *= step;
      }
      return total;
    };
    const double range = settings_.max_shift;
    for (std::size_t i = 0; i < E; ++i) {
      double best = 0.0, best_score = -1e300;
      for (double d = -range; d <= range + 1e-9; d += 0.25) {
        const double v = score(cross[i], d);
        if (v > best_score) {
          best_score = v;
          best = d;
        }
      }
      double a = std::max(-range, best - 0.25), b = std::min(range, best + 0.25);
      const double g = 0.5 * (std::sqrt(5.0) - 1.0);
      double x1 = b - g * (b - a), x2 = a + g * (b - a);
      double f1 = score(cross[i], x1), f2 = score(cross[i], x2);
      for (int it = 0; it < 24; ++it) {
        if (f1 > f2) {
          b = x2;
          x2 = x1;
          f2 = f1;
          x1 = b - g * (b - a);
          f1 = score(cross[i], x1);
        } else {
          a = x1;
          x1 = x2;
          f1 = f2;
          x2 = a + g * (b - a);
          f2 = score(cross[i], x2);
        }
      }
      shifts_[i] = 0.5 * (a + b);
    }
    // Centre the shifts: the template's own position is arbitrary.
    double mean_shift = 0.0;
    for (std::size_t i : complete_) mean_shift += shifts_[i];
    mean_shift /= static_cast<double>(complete_.size());
    for (auto& s : shifts_) s -= mean_shift;
  }
  // The strongest channel's mean artefact in the time domain, for the slice period.
  const auto strongest = static_cast<std::size_t>(std::max_element(strength.begin(), strength.end()) - strength.begin());
  thread_local Eigen::FFT<double> fft = make_fft();
  std::vector<double> time(static_cast<std::size_t>(layout_.nfft));
  fft.inv(time.data(), means[strongest].data(), layout_.nfft);
  mean_artefact_.assign(time.begin() + layout_.pad, time.begin() + layout_.pad + layout_.span);
}

std::vector<float> GradientCorrector::correct(const float* x) const {
  const int64_t n = layout_.num_samples;
  const std::size_t E = layout_.starts.size();
  const auto bins = static_cast<std::size_t>(layout_.nfft / 2 + 1);
  std::vector<float> y(x, x + n);
  std::vector<double> buffer;
  std::vector<cd> ramp;

  // Aligned spectra of every epoch.
  Rows aligned(E, bins);
  for (std::size_t i = 0; i < E; ++i) {
    epoch_spectrum(x, i, buffer, aligned[i]);
    phase_ramp(shifts_[i], layout_.nfft, static_cast<int64_t>(bins), ramp);
    for (std::size_t k = 0; k < bins; ++k) aligned[i][k] *= ramp[k];
  }
  // The bins where the artefact is: those whose mean over the complete epochs stands out from the
  // epoch-to-epoch variation (|mean|^2 over its variance > mask_snr; pure EEG gives ~1). Templates
  // are kept there only, so the EEG of the neighbouring epochs is not subtracted in the bins
  // between the artefact's harmonics.
  const auto Q = complete_.size();
  std::vector<char> mask(bins, 1);
  {
    std::vector<cd> sum(bins, cd(0.0, 0.0));
    std::vector<double> power(bins, 0.0);
    for (std::size_t i : complete_)
      for (std::size_t k = 0; k < bins; ++k) {
        sum[k] += aligned[i][k];
        power[k] += std::norm(aligned[i][k]);
      }
    const double q = static_cast<double>(Q);
    for (std::size_t k = 0; k < bins; ++k) {
      const cd mean = sum[k] / q;
      const double var = std::max(0.0, power[k] / q - std::norm(mean));
      mask[k] = std::norm(mean) * q > settings_.mask_snr * var;
    }

  }
  // Templates: the mean of the K complete epochs nearest to each epoch, itself left out.
  const auto K = static_cast<std::size_t>(std::min<int64_t>(settings_.template_epochs, static_cast<int64_t>(Q) - 1));
  Rows residual(E, bins);  // aligned epoch minus its template
  Rows templ(E, bins);
  Spectrum sum(bins, cd(0.0, 0.0));
  std::size_t lo = 0, hi = 0;  // the window [lo, hi) of complete_ positions held in `sum`
  for (std::size_t i = 0; i < E; ++i) {
    const auto pos = static_cast<std::size_t>(std::lower_bound(complete_.begin(), complete_.end(), i) - complete_.begin());
    const bool self = pos < Q && complete_[pos] == i;
    // K + 1 positions around pos when the epoch is one of them, else K.
    const std::size_t width = self ? K + 1 : K;
    std::size_t want_lo = pos >= width / 2 ? pos - width / 2 : 0;
    want_lo = std::min(want_lo, Q - width);
    const std::size_t want_hi = want_lo + width;
    auto add = [&](std::size_t q, double sign) {
      for (std::size_t k = 0; k < bins; ++k) sum[k] += sign * aligned[complete_[q]][k];
    };
    while (hi < want_hi) add(hi++, 1.0);
    while (lo > want_lo) add(--lo, 1.0);
    while (lo < want_lo) add(lo++, -1.0);
    while (hi > want_hi) add(--hi, -1.0);
    const double inv = 1.0 / static_cast<double>(K);
    // The template, scaled to the epoch by least squares over the artefact's bins (the artefact
    // grows and shrinks slowly as the head moves; one number per epoch cannot fit its EEG).
    double num = 0.0, den = 0.0;
    for (std::size_t k = 0; k < bins; ++k) {
      if (!mask[k]) {
        templ[i][k] = cd(0.0, 0.0);
        continue;
      }
      const cd t = (self ? sum[k] - aligned[i][k] : sum[k]) * inv;
      templ[i][k] = t;
      num += (aligned[i][k] * std::conj(t)).real();
      den += std::norm(t);
    }
    const double gain = settings_.scale_templates && den > 0 ? std::clamp(num / den, 0.5, 2.0) : 1.0;
    for (std::size_t k = 0; k < bins; ++k) {
      templ[i][k] *= gain;
      residual[i][k] = aligned[i][k] - templ[i][k];
    }
  }
  aligned.release();

  // Residual components: principal directions over the complete epochs of the aligned residual,
  // on the bins below component_max_hz (as real vectors: DC, then sqrt(2) Re and Im per bin, an
  // orthogonal map of the band-limited time-domain epoch), fitted to every epoch.
  int components = settings_.components;
  std::size_t cbins = bins;
  if (settings_.component_max_hz > 0 && settings_.sample_rate > 0) {
    cbins = std::min(bins, static_cast<std::size_t>(std::ceil(settings_.component_max_hz / settings_.sample_rate *
                                                              static_cast<double>(layout_.nfft))) + 1);
  }
  // Only the artefact's bins: elsewhere the residual is EEG, which the components must not fit.
  // And above component_min_hz (FASTR's 70 Hz): below it the residual is mostly EEG, which
  // components estimated from the same epochs would partly fit.
  std::size_t first_bin = 1;
  if (settings_.sample_rate > 0) {
    first_bin = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(
        settings_.component_min_hz / settings_.sample_rate * static_cast<double>(layout_.nfft))));
  }
  std::vector<std::size_t> band;
  for (std::size_t k = first_bin; k < cbins; ++k)
    if (mask[k]) band.push_back(k);
  const auto dim = static_cast<Eigen::Index>(2 * band.size());
  // Fitting k components removes about k/Q of the residual's EEG in those bins: keep Q >= 10 k.
  components = std::min<int>(components, static_cast<int>(std::min<std::size_t>(Q / 10, static_cast<std::size_t>(dim))));
  components_used_ = std::max(0, components);
  if (components > 0) {
    auto pack = [&](const cd* s, Eigen::Ref<Eigen::VectorXd> v) {
      for (std::size_t b = 0; b < band.size(); ++b) {
        v(static_cast<Eigen::Index>(2 * b)) = s[band[b]].real();
        v(static_cast<Eigen::Index>(2 * b + 1)) = s[band[b]].imag();
      }
    };
    Eigen::MatrixXd D(static_cast<Eigen::Index>(Q), dim);
    for (std::size_t q = 0; q < Q; ++q) {
      Eigen::VectorXd v(dim);
      pack(residual[complete_[q]], v);
      D.row(static_cast<Eigen::Index>(q)) = v.transpose();
    }
    // Randomised subspace iteration (Halko et al. 2011) with a fixed seed: deterministic.
    const Eigen::Index l = std::min<Eigen::Index>(components + 6, dim);
    std::mt19937_64 rng(12345);
    std::normal_distribution<double> normal;
    Eigen::MatrixXd omega(dim, l);
    for (Eigen::Index a = 0; a < dim; ++a)
      for (Eigen::Index b = 0; b < l; ++b) omega(a, b) = normal(rng);
    Eigen::MatrixXd basis = omega;
    for (int it = 0; it < 3; ++it) {
      Eigen::MatrixXd z = D.transpose() * (D * basis);
      Eigen::HouseholderQR<Eigen::MatrixXd> qr(z);
      basis = qr.householderQ() * Eigen::MatrixXd::Identity(dim, l);
    }
    Eigen::MatrixXd B = D * basis;  // Q x l
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(B, Eigen::ComputeThinV);
    const Eigen::MatrixXd V = basis * svd.matrixV().leftCols(components);  // dim x components, orthonormal
    Eigen::VectorXd v(dim);
    for (std::size_t i = 0; i < E; ++i) {
      pack(residual[i], v);
      const Eigen::VectorXd fit = V * (V.transpose() * v);
      for (std::size_t b = 0; b < band.size(); ++b)
        templ[i][band[b]] += cd(fit(static_cast<Eigen::Index>(2 * b)), fit(static_cast<Eigen::Index>(2 * b + 1)));
    }
  }
  residual.release();

  // Each epoch's artefact: its template delayed back by its shift, in the time domain.
  thread_local Eigen::FFT<double> fft = make_fft();
  std::vector<double> time(static_cast<std::size_t>(layout_.nfft));
  for (std::size_t i = 0; i < E; ++i) {
    phase_ramp(-shifts_[i], layout_.nfft, static_cast<int64_t>(bins), ramp);
    for (std::size_t k = 0; k < bins; ++k) templ[i][k] *= ramp[k];
    // A real signal's Nyquist bin is real.
    templ[i][bins - 1] = cd(templ[i][bins - 1].real(), 0.0);
    fft.inv(time.data(), templ[i], layout_.nfft);
    const int64_t start = layout_.starts[i];
    for (int64_t j = 0; j < layout_.lengths[i]; ++j) {
      const auto s = static_cast<std::size_t>(start + j);
      y[s] = static_cast<float>(static_cast<double>(x[s]) - time[static_cast<std::size_t>(layout_.pad + j)]);
    }
  }
  return y;
}

SlicePeriod slice_period(const std::vector<double>& a, int64_t min_lag) {
  SlicePeriod out;
  const auto n = static_cast<int64_t>(a.size());
  if (n < 16) return out;
  double mean = 0.0;
  for (double v : a) mean += v;
  mean /= static_cast<double>(n);
  std::vector<double> x(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) x[i] = a[i] - mean;
  auto acf = [&](int64_t lag) {
    double s = 0.0;
    for (int64_t i = 0; i + lag < n; ++i) s += x[static_cast<std::size_t>(i)] * x[static_cast<std::size_t>(i + lag)];
    return s;
  };
  const double zero = acf(0);
  if (!(zero > 0)) return out;
  // The first lag (from min_lag up to a quarter of the volume) whose autocorrelation is a local
  // maximum within 3 % of the largest: the slice period (its multiples come later; the ripple of
  // the readout's frequencies stays lower).
  const int64_t max_lag = n / 4;
  min_lag = std::max<int64_t>(4, min_lag);
  if (max_lag <= min_lag + 1) return out;
  std::vector<double> r(static_cast<std::size_t>(max_lag + 2), 0.0);
  // Normalised by the overlap, so that a long lag is not penalised for summing fewer products.
  for (int64_t lag = min_lag - 1; lag <= max_lag + 1; ++lag) {
    r[static_cast<std::size_t>(lag)] =
        (acf(lag) / static_cast<double>(n - lag)) / (zero / static_cast<double>(n));
  }
  double best = 0.0;
  for (int64_t lag = min_lag; lag <= max_lag; ++lag) best = std::max(best, r[static_cast<std::size_t>(lag)]);
  if (best < 0.3) return out;
  for (int64_t lag = min_lag; lag <= max_lag; ++lag) {
    const double v = r[static_cast<std::size_t>(lag)];
    if (v >= 0.97 * best && v >= r[static_cast<std::size_t>(lag - 1)] && v >= r[static_cast<std::size_t>(lag + 1)]) {
      // Parabolic peak.
      const double y0 = r[static_cast<std::size_t>(lag - 1)], y2 = r[static_cast<std::size_t>(lag + 1)];
      const double denom = y0 - 2 * v + y2;
      out.period = static_cast<double>(lag) + (denom != 0 ? 0.5 * (y0 - y2) / denom : 0.0);
      break;
    }
  }
  if (out.period <= 0) return out;
  // The active part: up to the last sample whose envelope (max |x| over one period) exceeds 5 %
  // of the largest.
  double peak = 0.0;
  for (double v : x) peak = std::max(peak, std::fabs(v));
  int64_t last = n - 1;
  while (last > 0 && std::fabs(x[static_cast<std::size_t>(last)]) < 0.05 * peak) --last;
  out.slices = std::max<int64_t>(1, static_cast<int64_t>(std::llround(static_cast<double>(last + 1) / out.period)));
  return out;
}

}  // namespace neurobolt::clean_detail
