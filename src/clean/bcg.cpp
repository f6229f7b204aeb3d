// Ballistocardiogram: R peaks on the ECG, then OBS (Niazy et al. 2005) or AAS per channel.
#include "clean/bcg.hpp"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <set>

#include "clean/common.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt {
namespace {

std::vector<double> band(const std::vector<double>& x, double low, double high, double fs) {
  const auto f = signal::butter(2, std::vector<double>{low, std::min(high, 0.45 * fs)}, fs, signal::FilterType::bandpass);
  return signal::sosfiltfilt(f.sos, x);
}

int64_t median_interval(const std::vector<int64_t>& peaks) {
  std::vector<int64_t> rr;
  for (std::size_t i = 1; i < peaks.size(); ++i) rr.push_back(peaks[i] - peaks[i - 1]);
  return clean_detail::upper_median(rr);
}

}  // namespace

std::vector<int64_t> detect_r_peaks(const float* ecg, int64_t n, double fs, bool* inverted, int64_t* beats_fixed) {
  if (!(fs >= 50)) throw ConfigError(fmt::format("R-peak detection: expected an ECG sampled at 50 Hz or more, found {} Hz", fs));
  if (n < static_cast<int64_t>(5 * fs)) {
    throw ConfigError(fmt::format("R-peak detection: expected at least 5 s of ECG, found {:.2f} s", static_cast<double>(n) / fs));
  }
  std::vector<double> x(ecg, ecg + n);
  const std::vector<double> broad = band(x, 1.0, 40.0, fs);
  const std::vector<double> q = band(x, 8.0, 20.0, fs);
  // Energy of the QRS slope, smoothed over 100 ms (centred: no delay).
  std::vector<double> prefix(static_cast<std::size_t>(n + 1), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double s = (i > 0 && i + 1 < n) ? 0.5 * (q[static_cast<std::size_t>(i + 1)] - q[static_cast<std::size_t>(i - 1)]) : 0.0;
    prefix[static_cast<std::size_t>(i + 1)] = prefix[static_cast<std::size_t>(i)] + s * s;
  }
  const int64_t half = std::max<int64_t>(1, static_cast<int64_t>(std::llround(0.05 * fs)));
  std::vector<double> env(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = std::max<int64_t>(0, i - half), b = std::min<int64_t>(n, i + half + 1);
    env[static_cast<std::size_t>(i)] = (prefix[static_cast<std::size_t>(b)] - prefix[static_cast<std::size_t>(a)]) /
                                       static_cast<double>(b - a);
  }
  // Local maxima, largest first, none within the refractory period (300 ms) of a larger one.
  std::vector<int64_t> cand;
  for (int64_t i = 1; i + 1 < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    if (env[u] >= env[u - 1] && env[u] > env[u + 1]) cand.push_back(i);
  }
  std::sort(cand.begin(), cand.end(), [&](int64_t a, int64_t b) {
    return env[static_cast<std::size_t>(a)] > env[static_cast<std::size_t>(b)];
  });
  const auto refractory = static_cast<int64_t>(std::llround(0.3 * fs));
  std::set<int64_t> accepted;
  std::vector<int64_t> order;  // accepted, largest first
  for (int64_t c : cand) {
    auto it = accepted.lower_bound(c - refractory + 1);
    if (it != accepted.end() && *it < c + refractory) continue;
    accepted.insert(c);
    order.push_back(c);
  }
  // A heart beats at least 40 times a minute: the median of that many largest maxima is a beat's.
  const auto minimum_beats = std::max<std::size_t>(
      3, static_cast<std::size_t>(static_cast<double>(n) / fs * 40.0 / 60.0));
  if (order.size() < minimum_beats) {
    throw ConfigError(fmt::format("R-peak detection: found {} candidate beats in {:.1f} s of ECG, expected at least {} "
                                  "(40 beats per minute)",
                                  order.size(), static_cast<double>(n) / fs, minimum_beats));
  }
  const double reference = env[static_cast<std::size_t>(order[minimum_beats / 2])];
  std::vector<int64_t> beats;
  for (int64_t c : order)
    if (env[static_cast<std::size_t>(c)] >= 0.3 * reference) beats.push_back(c);
  std::sort(beats.begin(), beats.end());
  int64_t fixed = 0;
  // Extra detections (a T wave, a residue spike): closer than half the usual interval to a beat.
  for (bool changed = true; changed && beats.size() > 3;) {
    changed = false;
    const int64_t m = median_interval(beats);
    for (std::size_t i = 1; i < beats.size(); ++i) {
      if (beats[i] - beats[i - 1] < m / 2) {
        const std::size_t drop = env[static_cast<std::size_t>(beats[i])] < env[static_cast<std::size_t>(beats[i - 1])] ? i : i - 1;
        beats.erase(beats.begin() + static_cast<std::ptrdiff_t>(drop));
        ++fixed;
        changed = true;
        break;
      }
    }
  }
  // Missed beats: a gap of more than 1.5 usual intervals is searched again at half the threshold.
  {
    const int64_t m = median_interval(beats);
    std::vector<int64_t> all(accepted.begin(), accepted.end());
    std::vector<int64_t> out;
    for (std::size_t i = 0; i < beats.size(); ++i) {
      out.push_back(beats[i]);
      if (i + 1 == beats.size()) break;
      int64_t from = beats[i];
      const int64_t to = beats[i + 1];
      while (to - from > 3 * m / 2) {
        int64_t best = -1;
        for (auto it = std::lower_bound(all.begin(), all.end(), from + m / 2); it != all.end() && *it <= to - m / 2; ++it) {
          if (env[static_cast<std::size_t>(*it)] >= 0.15 * reference &&
              (best < 0 || env[static_cast<std::size_t>(*it)] > env[static_cast<std::size_t>(best)]))
            best = *it;
        }
        if (best < 0) break;
        out.push_back(best);
        ++fixed;
        from = best;
      }
    }
    beats.swap(out);
  }
  // Polarity by majority over beats, then each R peak at the extreme of the broad-band ECG.
  const auto search = static_cast<int64_t>(std::llround(0.06 * fs));
  int64_t down = 0;
  for (int64_t b : beats) {
    double hi = -1e300, lo = 1e300;
    for (int64_t i = std::max<int64_t>(0, b - search); i <= std::min(n - 1, b + search); ++i) {
      hi = std::max(hi, broad[static_cast<std::size_t>(i)]);
      lo = std::min(lo, broad[static_cast<std::size_t>(i)]);
    }
    if (-lo > hi) ++down;
  }
  const bool flip = 2 * down > static_cast<int64_t>(beats.size());
  const double sign = flip ? -1.0 : 1.0;
  std::vector<int64_t> peaks;
  for (int64_t b : beats) {
    int64_t best = b;
    for (int64_t i = std::max<int64_t>(0, b - search); i <= std::min(n - 1, b + search); ++i)
      if (sign * broad[static_cast<std::size_t>(i)] > sign * broad[static_cast<std::size_t>(best)]) best = i;
    if (peaks.empty() || best > peaks.back()) peaks.push_back(best);
  }
  if (inverted) *inverted = flip;
  if (beats_fixed) *beats_fixed = fixed;
  return peaks;
}

namespace clean_detail {

BcgEpochs bcg_epochs(const std::vector<int64_t>& peaks) {
  const int64_t m = median_interval(peaks);
  return BcgEpochs{static_cast<int64_t>(std::llround(0.15 * static_cast<double>(m))), m};
}

namespace {

// The epochs [start, start + L) that lie inside the recording, as rows of X.
struct BeatEpochs {
  std::vector<int64_t> starts;
  std::vector<std::size_t> whole;  // beats whose epoch lies inside
  Eigen::MatrixXd X;
};
BeatEpochs beat_epochs(const float* x, int64_t n, const std::vector<int64_t>& peaks, const BcgEpochs& ep) {
  BeatEpochs b;
  for (int64_t p : peaks) b.starts.push_back(p - ep.before);
  for (std::size_t i = 0; i < b.starts.size(); ++i)
    if (b.starts[i] >= 0 && b.starts[i] + ep.length <= n) b.whole.push_back(i);
  b.X.resize(static_cast<Eigen::Index>(b.whole.size()), ep.length);
  for (Eigen::Index q = 0; q < b.X.rows(); ++q)
    for (int64_t j = 0; j < ep.length; ++j) b.X(q, j) = x[b.starts[b.whole[static_cast<std::size_t>(q)]] + j];
  return b;
}

// Removes offset and linear trend from the columns of m (L rows): the EEG's slow drifts and DC
// offset are no heartbeat artefact, and a basis that could take them would high-pass every
// channel at the heart rate.
class Detrend {
 public:
  explicit Detrend(Eigen::Index L) {
    Eigen::MatrixXd trend(L, 2);
    for (Eigen::Index j = 0; j < L; ++j) {
      trend(j, 0) = 1.0;
      trend(j, 1) = static_cast<double>(j) / static_cast<double>(L);
    }
    const Eigen::HouseholderQR<Eigen::MatrixXd> qr(trend);
    T_ = qr.householderQ() * Eigen::MatrixXd::Identity(L, 2);  // orthonormal
  }
  Eigen::MatrixXd operator()(const Eigen::MatrixXd& m) const { return m - T_ * (T_.transpose() * m); }

 private:
  Eigen::MatrixXd T_;
};

// The mean epoch and its time derivative (central differences).
Eigen::MatrixXd mean_and_slope(const Eigen::MatrixXd& X) {
  const Eigen::Index L = X.cols();
  Eigen::MatrixXd basis(L, 2);
  basis.col(0) = X.colwise().mean().transpose();
  for (Eigen::Index j = 0; j < L; ++j) {
    const Eigen::Index a = std::max<Eigen::Index>(0, j - 1), b = std::min<Eigen::Index>(L - 1, j + 1);
    basis(j, 1) = (basis(b, 0) - basis(a, 0)) / static_cast<double>(b - a);
  }
  return basis;
}

}  // namespace

std::vector<double> bcg_latencies(const std::vector<const float*>& channels, int64_t n, const std::vector<int64_t>& peaks) {
  std::vector<double> num(peaks.size(), 0.0), den(peaks.size(), 0.0), latency(peaks.size(), 0.0);
  const BcgEpochs ep = bcg_epochs(peaks);
  if (ep.length < 4 || peaks.size() < 4) return latency;
  const Detrend detrend(ep.length);
  for (const float* x : channels) {
    const BeatEpochs b = beat_epochs(x, n, peaks, ep);
    if (b.X.rows() < 4) continue;
    const Eigen::MatrixXd flat = detrend(mean_and_slope(b.X));
    const double energy = flat.col(0).squaredNorm();
    const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(flat);
    for (Eigen::Index q = 0; q < b.X.rows(); ++q) {
      // x ~ a (m - d m'): c0 = a, c1 = -a d.
      const Eigen::VectorXd c = qr.solve(detrend(b.X.row(q).transpose()));
      const std::size_t i = b.whole[static_cast<std::size_t>(q)];
      num[i] += energy * c(0) * c(1);
      den[i] += energy * c(0) * c(0);
    }
  }
  for (std::size_t i = 0; i < peaks.size(); ++i)
    latency[i] = den[i] > 0 ? std::clamp(-num[i] / den[i], -3.0, 3.0) : 0.0;
  return latency;
}

void remove_bcg(float* x, int64_t n, const std::vector<int64_t>& peaks, BcgMethod method, int components, int beats,
                const std::vector<double>* latencies) {
  const BcgEpochs ep = bcg_epochs(peaks);
  const int64_t L = ep.length;
  if (L < 4 || peaks.size() < 4) return;
  const BeatEpochs be = beat_epochs(x, n, peaks, ep);
  const std::vector<int64_t>& starts = be.starts;
  const std::vector<std::size_t>& whole = be.whole;
  const Eigen::MatrixXd& X = be.X;
  const auto Q = static_cast<Eigen::Index>(whole.size());
  if (Q < 4) return;
  Eigen::MatrixXd fits(Q, L);
  if (method == BcgMethod::obs) {
    const Eigen::RowVectorXd mean = X.colwise().mean();
    const Eigen::MatrixXd centred = X.rowwise() - mean;
    const int k = std::max(0, std::min<int>(components, static_cast<int>(std::min<Eigen::Index>(Q - 3, L - 2))));
    // The mean heartbeat artefact and its time derivative (a beat's artefact a little earlier or
    // later: first order in the latency), then the principal components asked for. With the beats'
    // latencies known (common to all channels) the two are one regressor per beat, m - d m'.
    Eigen::MatrixXd basis(L, k + 2);
    basis.leftCols(2) = mean_and_slope(X);
    if (k > 0) {
      // The principal directions over time points: from the smaller of the two Gram matrices.
      Eigen::MatrixXd directions(L, k);
      if (L <= Q) {
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(centred.transpose() * centred);
        directions = eig.eigenvectors().rightCols(k);
      } else {
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(centred * centred.transpose());
        directions = centred.transpose() * eig.eigenvectors().rightCols(k);
      }
      basis.rightCols(k) = directions;
    }
    // Least-squares fit of every epoch on the basis, both without offset and linear trend.
    const Detrend detrend(L);
    const Eigen::MatrixXd flat = detrend(basis);
    if (latencies) {
      Eigen::MatrixXd per_beat(L, k + 1);
      if (k > 0) per_beat.rightCols(k) = flat.rightCols(k);
      for (Eigen::Index q = 0; q < Q; ++q) {
        const double d = (*latencies)[whole[static_cast<std::size_t>(q)]];
        per_beat.col(0) = flat.col(0) - d * flat.col(1);
        const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(per_beat);
        const Eigen::VectorXd coef = qr.solve(detrend(X.row(q).transpose()));
        fits.row(q) = (per_beat * coef).transpose();
      }
    } else {
      const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(flat);
      for (Eigen::Index q = 0; q < Q; ++q) {
        const Eigen::VectorXd coef = qr.solve(detrend(X.row(q).transpose()));
        fits.row(q) = (flat * coef).transpose();
      }
    }
  } else {
    const Eigen::Index K = std::min<Eigen::Index>(beats, Q - 1);
    for (Eigen::Index q = 0; q < Q; ++q) {
      Eigen::Index lo = std::max<Eigen::Index>(0, q - K / 2);
      lo = std::min(lo, Q - (K + 1));
      Eigen::RowVectorXd sum = X.middleRows(lo, K + 1).colwise().sum() - X.row(q);
      fits.row(q) = sum / static_cast<double>(K);
    }
  }
  for (Eigen::Index q = 0; q < Q; ++q) {
    const std::size_t i = whole[static_cast<std::size_t>(q)];
    const int64_t start = starts[i];
    int64_t end = start + L;
    if (i + 1 < starts.size()) end = std::min(end, starts[i + 1]);
    for (int64_t s = start; s < end; ++s) x[s] = static_cast<float>(x[s] - fits(q, s - start));
  }
}

double evoked_rms(const float* x, int64_t n, const std::vector<int64_t>& peaks) {
  const BcgEpochs ep = bcg_epochs(peaks);
  if (ep.length < 2) return 0.0;
  std::vector<double> avg(static_cast<std::size_t>(ep.length), 0.0);
  int64_t count = 0;
  for (int64_t p : peaks) {
    const int64_t s = p - ep.before;
    if (s < 0 || s + ep.length > n) continue;
    for (int64_t j = 0; j < ep.length; ++j) avg[static_cast<std::size_t>(j)] += x[s + j];
    ++count;
  }
  if (count == 0) return 0.0;
  double mean = 0.0;
  for (auto& v : avg) {
    v /= static_cast<double>(count);
    mean += v;
  }
  mean /= static_cast<double>(ep.length);
  double ss = 0.0;
  for (double v : avg) ss += (v - mean) * (v - mean);
  return std::sqrt(ss / static_cast<double>(ep.length));
}

}  // namespace clean_detail
}  // namespace neurobolt
