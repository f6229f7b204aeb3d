// Standardisation, correlation, detrending and confound regression.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt::signal {
namespace {

double mean_of(const std::vector<double>& x) {
  return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
}

template <typename T>
void accumulate_piece(const T* x, int64_t n, double& mean, double& m2) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  mean = sum / static_cast<double>(n);
  m2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - mean;
    m2 += d * d;
  }
}

void require_usable_std(const char* function, const MeanStd& stats) {
  if (!(stats.std > 0.0) || !std::isfinite(stats.std) || !std::isfinite(stats.mean))
    throw ConfigError(fmt::format("{}: expected a finite mean and a std > 0, found mean {} and std {}", function,
                                  stats.mean, stats.std));
}

}  // namespace

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size())
    throw ConfigError(fmt::format("pearson: x and y must have equal lengths, found {} and {}", x.size(), y.size()));
  if (x.size() < 2) throw ConfigError(fmt::format("pearson: expected at least 2 samples, found {}", x.size()));
  // As scipy.stats.pearsonr: centre, normalise each to unit length, then take the dot product.
  const double mx = mean_of(x), my = mean_of(y);
  double nx = 0.0, ny = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    nx += (x[i] - mx) * (x[i] - mx);
    ny += (y[i] - my) * (y[i] - my);
  }
  nx = std::sqrt(nx);
  ny = std::sqrt(ny);
  if (nx == 0.0 || ny == 0.0) return std::numeric_limits<double>::quiet_NaN();
  double r = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) r += ((x[i] - mx) / nx) * ((y[i] - my) / ny);
  return std::clamp(r, -1.0, 1.0);
}

MeanStd mean_std(const std::vector<double>& x, int ddof) {
  MeanStdAccumulator accumulator;
  accumulator.add(x.data(), static_cast<int64_t>(x.size()));
  return accumulator.result(ddof);
}

void MeanStdAccumulator::merge(int64_t n, double mean, double m2) {
  if (n == 0) return;
  const int64_t total = count_ + n;
  const double delta = mean - mean_;
  mean_ += delta * static_cast<double>(n) / static_cast<double>(total);
  m2_ += m2 + delta * delta * static_cast<double>(count_) * static_cast<double>(n) / static_cast<double>(total);
  count_ = total;
}

void MeanStdAccumulator::add(const double* x, int64_t n) {
  if (n <= 0) return;
  double mean = 0.0, m2 = 0.0;
  accumulate_piece(x, n, mean, m2);
  merge(n, mean, m2);
}

void MeanStdAccumulator::add(const float* x, int64_t n) {
  if (n <= 0) return;
  double mean = 0.0, m2 = 0.0;
  accumulate_piece(x, n, mean, m2);
  merge(n, mean, m2);
}

MeanStd MeanStdAccumulator::result(int ddof) const {
  if (ddof < 0) throw ConfigError(fmt::format("mean_std: ddof must be >= 0, found {}", ddof));
  if (count_ <= ddof)
    throw ConfigError(fmt::format("mean_std: expected more than ddof = {} samples, found {}", ddof, count_));
  return {mean_, std::sqrt(m2_ / static_cast<double>(count_ - ddof))};
}

std::vector<double> zscore(const std::vector<double>& x, const MeanStd& stats) {
  require_usable_std("zscore", stats);
  std::vector<double> out(x.size());
  std::transform(x.begin(), x.end(), out.begin(), [&](double v) { return (v - stats.mean) / stats.std; });
  return out;
}

void zscore_inplace(float* x, int64_t n, const MeanStd& stats) {
  require_usable_std("zscore", stats);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((static_cast<double>(x[i]) - stats.mean) / stats.std);
}

std::vector<double> zscore(const std::vector<double>& x) { return zscore(x, mean_std(x)); }

std::vector<double> detrend_linear(const std::vector<double>& x) {
  if (x.size() < 2) throw ConfigError(fmt::format("detrend_linear: expected at least 2 samples, found {}", x.size()));
  // Least-squares line with time centred on the middle sample, where slope and intercept are
  // uncorrelated and closed-form.
  const double centre = (static_cast<double>(x.size()) - 1.0) / 2.0;
  const double mean = mean_of(x);
  double st = 0.0, tt = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) - centre;
    st += t * (x[i] - mean);
    tt += t * t;
  }
  const double slope = st / tt;
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i] - mean - slope * (static_cast<double>(i) - centre);
  return out;
}

struct ConfoundRegression::Impl {
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr;
};

ConfoundRegression::ConfoundRegression(int64_t n, const std::vector<std::vector<double>>& confounds)
    : n_(n), regressors_(2 + static_cast<int64_t>(confounds.size())) {
  if (n <= regressors_)
    throw ConfigError(fmt::format(
        "regress_out: expected more samples than regressors (intercept, trend and {} confounds = {}), found {} samples",
        confounds.size(), regressors_, n));
  Eigen::MatrixXd design(n, regressors_);
  design.col(0).setOnes();
  // The trend as -1..1 keeps the design well conditioned; the residual does not depend on it.
  design.col(1) = Eigen::VectorXd::LinSpaced(n, -1.0, 1.0);
  for (std::size_t j = 0; j < confounds.size(); ++j) {
    if (static_cast<int64_t>(confounds[j].size()) != n)
      throw ConfigError(fmt::format("regress_out: confound {} has {} values; expected {} (the series length)", j,
                                    confounds[j].size(), n));
    design.col(static_cast<Eigen::Index>(j) + 2) = Eigen::Map<const Eigen::VectorXd>(confounds[j].data(), n);
  }
  impl_ = std::make_unique<Impl>();
  impl_->qr.compute(design);
}

ConfoundRegression::~ConfoundRegression() = default;
ConfoundRegression::ConfoundRegression(ConfoundRegression&&) noexcept = default;
ConfoundRegression& ConfoundRegression::operator=(ConfoundRegression&&) noexcept = default;

std::vector<double> ConfoundRegression::residual(const std::vector<double>& y) const {
  if (static_cast<int64_t>(y.size()) != n_)
    throw ConfigError(fmt::format("regress_out: the series has {} values; expected {}", y.size(), n_));
  // Residual = y minus its projection on the design's column space: rotate into the QR basis,
  // drop the components along the (numerically independent) design columns, rotate back.
  Eigen::VectorXd c = impl_->qr.householderQ().adjoint() * Eigen::Map<const Eigen::VectorXd>(y.data(), n_);
  c.head(impl_->qr.rank()).setZero();
  Eigen::VectorXd r = impl_->qr.householderQ() * c;
  return {r.data(), r.data() + r.size()};
}

std::vector<double> regress_out(const std::vector<double>& y, const std::vector<std::vector<double>>& confounds) {
  return ConfoundRegression(static_cast<int64_t>(y.size()), confounds).residual(y);
}

}  // namespace neurobolt::signal
