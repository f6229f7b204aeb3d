// Ridge regression per ROI with the penalty chosen by grouped inner cross-validation (rules in
// ridge.hpp).
#include <fmt/format.h>

#include <Eigen/Dense>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "neurobolt/error.hpp"
#include "neurobolt/ridge.hpp"

namespace neurobolt {
namespace {

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
using Vector = Eigen::VectorXd;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double pearson_r(const Eigen::Ref<const Vector>& a, const Eigen::Ref<const Vector>& b) {
  const Vector da = a.array() - a.mean();
  const Vector db = b.array() - b.mean();
  const double denominator = std::sqrt(da.squaredNorm() * db.squaredNorm());
  return denominator > 0.0 ? da.dot(db) / denominator : kNaN;
}

// X = U diag(s) V^T of a centred design, with U^T Y kept instead of U (all that ridge needs:
// W(alpha) = V diag(s / (s² + alpha)) U^T Y).
struct Factorisation {
  Vector s;
  Matrix V;
  Matrix UtY;
};

Factorisation factorise(const Matrix& X, const Matrix& Y) {
  Factorisation f;
  if (X.rows() > X.cols()) {
    // Tall: the SVD of R from X = QR costs far less than bidiagonalising all of X.
    Eigen::HouseholderQR<Matrix> qr(X);
    const Matrix R = qr.matrixQR().topRows(X.cols()).triangularView<Eigen::Upper>();
    const Matrix QtY = qr.householderQ().transpose() * Y;
    Eigen::BDCSVD<Matrix> svd(R, Eigen::ComputeThinU | Eigen::ComputeThinV);
    f.s = svd.singularValues();
    f.V = svd.matrixV();
    f.UtY = svd.matrixU().transpose() * QtY.topRows(X.cols());
  } else {
    Eigen::BDCSVD<Matrix> svd(X, Eigen::ComputeThinU | Eigen::ComputeThinV);
    f.s = svd.singularValues();
    f.V = svd.matrixV();
    f.UtY = svd.matrixU().transpose() * Y;
  }
  return f;
}

// Weights [F, R] for one penalty per ROI.
Matrix ridge_weights(const Factorisation& f, const std::vector<double>& alpha) {
  Matrix W(f.V.rows(), f.UtY.cols());
  for (Eigen::Index r = 0; r < f.UtY.cols(); ++r) {
    const Vector shrink = f.s.array() / (f.s.array().square() + alpha[static_cast<std::size_t>(r)]);
    W.col(r) = f.V * (shrink.array() * f.UtY.col(r).array()).matrix();
  }
  return W;
}

Matrix select_rows(const Matrix& M, const std::vector<Eigen::Index>& rows) {
  Matrix out(static_cast<Eigen::Index>(rows.size()), M.cols());
  for (std::size_t i = 0; i < rows.size(); ++i) out.row(static_cast<Eigen::Index>(i)) = M.row(rows[i]);
  return out;
}

}  // namespace

void RidgeModel::predict(const double* features, int64_t n, double* out) const {
  const int64_t F = num_features;
  const int64_t R = num_rois;
  for (int64_t i = 0; i < n; ++i) {
    const double* x = features + i * F;
    double* y = out + i * R;
    for (int64_t r = 0; r < R; ++r) y[r] = intercept[static_cast<std::size_t>(r)];
    for (int64_t f = 0; f < F; ++f) {
      const double z = (x[f] - feature_mean[static_cast<std::size_t>(f)]) / feature_std[static_cast<std::size_t>(f)];
      const double* w = weights.data() + f * R;
      for (int64_t r = 0; r < R; ++r) y[r] += z * w[r];
    }
  }
}

std::string ridge_criterion(bool one_standard_error) {
  return one_standard_error ? "mean over inner folds of the held-out Pearson r; the largest alpha within one standard "
                              "error of the best (one-standard-error rule)"
                            : "mean over inner folds of the held-out Pearson r; the alpha with the best";
}

std::vector<double> default_ridge_alphas() {
  std::vector<double> alphas;
  for (int i = 0; i <= 14; ++i) alphas.push_back(std::pow(10.0, -1.0 + 0.5 * i));
  return alphas;
}

InnerFolds make_inner_folds(const std::vector<int64_t>& groups, int64_t folds) {
  if (folds < 2) throw ConfigError(fmt::format("inner cross-validation: 'inner_folds' must be >= 2, found {}", folds));
  const auto n = static_cast<int64_t>(groups.size());
  std::vector<int64_t> order;  // distinct groups, first appearance first
  std::map<int64_t, int64_t> size;
  for (int64_t g : groups) {
    if (size[g]++ == 0) order.push_back(g);
  }
  InnerFolds out;
  out.fold.assign(static_cast<std::size_t>(n), 0);
  if (order.size() >= 2) {
    out.grouped = true;
    out.count = std::min<int64_t>(folds, static_cast<int64_t>(order.size()));
    // Largest group first to the emptiest fold: folds of nearly equal size, deterministically.
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return size[a] > size[b]; });
    std::vector<int64_t> fill(static_cast<std::size_t>(out.count), 0);
    std::map<int64_t, int64_t> fold_of;
    for (int64_t g : order) {
      const auto emptiest = std::min_element(fill.begin(), fill.end()) - fill.begin();
      fold_of[g] = emptiest;
      fill[static_cast<std::size_t>(emptiest)] += size[g];
    }
    for (int64_t i = 0; i < n; ++i) out.fold[static_cast<std::size_t>(i)] = fold_of[groups[static_cast<std::size_t>(i)]];
    for (int64_t f = 0; f < out.count; ++f) {
      if (fill[static_cast<std::size_t>(f)] < 2) {
        throw ConfigError(fmt::format("inner cross-validation: fold {} of {} holds {} window(s) of {} runs; expected "
                                      "at least 2 per fold (use fewer inner folds or more training data)",
                                      f + 1, out.count, fill[static_cast<std::size_t>(f)], order.size()));
      }
    }
    return out;
  }
  out.count = folds;
  if (n < 2 * folds) {
    throw ConfigError(fmt::format("inner cross-validation: {} training window(s) in one run cannot make {} blocks of at "
                                  "least 2 windows",
                                  n, folds));
  }
  for (int64_t f = 0; f < folds; ++f) {
    for (int64_t i = f * n / folds; i < (f + 1) * n / folds; ++i) out.fold[static_cast<std::size_t>(i)] = f;
  }
  return out;
}

RidgeCvResult fit_ridge_cv(const RidgeData& data, const RidgeCvOptions& options) {
  const int64_t n = data.samples, F = data.features, R = data.rois;
  if (n < 3) throw ConfigError(fmt::format("ridge regression: expected at least 3 training windows, found {}", n));
  if (F < 1 || R < 1) throw ConfigError(fmt::format("ridge regression: expected >= 1 feature and ROI, found {} and {}", F, R));
  if (static_cast<int64_t>(data.groups.size()) != n)
    throw ConfigError(fmt::format("ridge regression: expected {} group ids, found {}", n, data.groups.size()));
  if (!data.times.empty() && static_cast<int64_t>(data.times.size()) != n)
    throw ConfigError(fmt::format("ridge regression: expected {} sample times, found {}", n, data.times.size()));
  RidgeCvResult result;
  result.alphas = options.alphas.empty() ? default_ridge_alphas() : options.alphas;
  for (double a : result.alphas) {
    if (!(a > 0.0) || !std::isfinite(a))
      throw ConfigError(fmt::format("ridge regression: every alpha must be a positive finite number, found {}", a));
  }
  std::sort(result.alphas.begin(), result.alphas.end());
  result.alphas.erase(std::unique(result.alphas.begin(), result.alphas.end()), result.alphas.end());

  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> X_raw(data.x, n, F);
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> Y_raw(data.y, n, R);
  if (!X_raw.allFinite()) throw ConfigError("ridge regression: the features hold NaN or infinite values");
  if (!Y_raw.allFinite()) throw ConfigError("ridge regression: the targets hold NaN or infinite values");
  const Matrix Y = Y_raw;

  RidgeModel& model = result.model;
  model.num_features = F;
  model.num_rois = R;
  model.feature_mean.resize(static_cast<std::size_t>(F));
  model.feature_std.resize(static_cast<std::size_t>(F));
  Matrix Z(n, F);
  for (int64_t f = 0; f < F; ++f) {
    const double mean = X_raw.col(f).mean();
    double std = std::sqrt((X_raw.col(f).array() - mean).square().mean());
    // A constant column's rounding residue must not be blown up into a unit-variance feature.
    if (!(std > 1e-12 * std::max(1.0, std::abs(mean)))) std = 1.0;
    model.feature_mean[static_cast<std::size_t>(f)] = mean;
    model.feature_std[static_cast<std::size_t>(f)] = std;
    Z.col(f) = (X_raw.col(f).array() - mean) / std;
  }

  result.folds = make_inner_folds(data.groups, options.folds);
  const auto& folds = result.folds;
  const auto A = static_cast<int64_t>(result.alphas.size());
  // r[(fold * A + a) * R + roi]
  std::vector<double> fold_r(static_cast<std::size_t>(folds.count * A * R), kNaN);
  for (int64_t k = 0; k < folds.count; ++k) {
    std::vector<Eigen::Index> fit_rows, held_rows;
    double t_min = std::numeric_limits<double>::infinity(), t_max = -t_min;
    for (int64_t i = 0; i < n; ++i) {
      if (folds.fold[static_cast<std::size_t>(i)] == k) {
        held_rows.push_back(i);
        if (!data.times.empty()) {
          t_min = std::min(t_min, data.times[static_cast<std::size_t>(i)]);
          t_max = std::max(t_max, data.times[static_cast<std::size_t>(i)]);
        }
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      if (folds.fold[static_cast<std::size_t>(i)] == k) continue;
      // Blocks of one run: neighbours of the held-out block share EEG and haemodynamics with it.
      if (!folds.grouped && !data.times.empty()) {
        const double t = data.times[static_cast<std::size_t>(i)];
        if (t > t_min - options.purge_seconds && t < t_max + options.purge_seconds) continue;
      }
      fit_rows.push_back(i);
    }
    if (fit_rows.size() < 2) {
      throw ConfigError(fmt::format("inner cross-validation: fold {} of {} leaves {} window(s) to fit on after removing "
                                    "the {} s around the held-out block; expected at least 2",
                                    k + 1, folds.count, fit_rows.size(), options.purge_seconds));
    }
    Matrix Zf = select_rows(Z, fit_rows);
    Matrix Yf = select_rows(Y, fit_rows);
    const Eigen::RowVectorXd z_mean = Zf.colwise().mean();
    const Eigen::RowVectorXd y_mean = Yf.colwise().mean();
    Zf.rowwise() -= z_mean;
    Yf.rowwise() -= y_mean;
    const Factorisation fac = factorise(Zf, Yf);
    Matrix Zh = select_rows(Z, held_rows);
    Zh.rowwise() -= z_mean;
    const Matrix ZhV = Zh * fac.V;
    const Matrix Yh = select_rows(Y, held_rows);
    for (int64_t a = 0; a < A; ++a) {
      const Vector shrink = fac.s.array() / (fac.s.array().square() + result.alphas[static_cast<std::size_t>(a)]);
      // The intercept shifts every prediction equally and does not change r.
      const Matrix prediction = ZhV * shrink.asDiagonal() * fac.UtY;
      for (int64_t r = 0; r < R; ++r)
        fold_r[static_cast<std::size_t>((k * A + a) * R + r)] = pearson_r(prediction.col(r), Yh.col(r));
    }
  }

  result.mean_r.assign(static_cast<std::size_t>(A * R), kNaN);
  result.standard_error.assign(static_cast<std::size_t>(A * R), kNaN);
  result.inner_r.assign(static_cast<std::size_t>(R), kNaN);
  model.alpha.assign(static_cast<std::size_t>(R), result.alphas.back());
  for (int64_t r = 0; r < R; ++r) {
    // A fold whose held-out targets or predictions are constant has no r: it is left out.
    for (int64_t a = 0; a < A; ++a) {
      std::vector<double> values;
      for (int64_t k = 0; k < folds.count; ++k) {
        const double v = fold_r[static_cast<std::size_t>((k * A + a) * R + r)];
        if (std::isfinite(v)) values.push_back(v);
      }
      if (values.empty()) continue;
      const double mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
      double se = 0.0;
      if (values.size() > 1) {
        double ss = 0.0;
        for (double v : values) ss += (v - mean) * (v - mean);
        se = std::sqrt(ss / static_cast<double>(values.size() - 1) / static_cast<double>(values.size()));
      }
      result.mean_r[static_cast<std::size_t>(a * R + r)] = mean;
      result.standard_error[static_cast<std::size_t>(a * R + r)] = se;
    }
    int64_t best = -1;
    for (int64_t a = 0; a < A; ++a) {
      const double v = result.mean_r[static_cast<std::size_t>(a * R + r)];
      if (std::isfinite(v) && (best < 0 || v > result.mean_r[static_cast<std::size_t>(best * R + r)])) best = a;
    }
    int64_t chosen = A - 1;  // no alpha has an r: nothing to learn, shrink the most
    if (best >= 0 && !options.one_standard_error) {
      chosen = best;
    } else if (best >= 0) {
      const double threshold = result.mean_r[static_cast<std::size_t>(best * R + r)] -
                               result.standard_error[static_cast<std::size_t>(best * R + r)];
      chosen = best;
      for (int64_t a = A - 1; a > best; --a) {
        if (result.mean_r[static_cast<std::size_t>(a * R + r)] >= threshold) {
          chosen = a;
          break;
        }
      }
    }
    model.alpha[static_cast<std::size_t>(r)] = result.alphas[static_cast<std::size_t>(chosen)];
    result.inner_r[static_cast<std::size_t>(r)] = result.mean_r[static_cast<std::size_t>(chosen * R + r)];
  }

  // Refit on every sample with each ROI's penalty.
  const Eigen::RowVectorXd z_mean = Z.colwise().mean();
  const Eigen::RowVectorXd y_mean = Y.colwise().mean();
  Matrix Zc = Z.rowwise() - z_mean;
  const Matrix Yc = Y.rowwise() - y_mean;
  const Matrix W = ridge_weights(factorise(Zc, Yc), model.alpha);
  const Eigen::RowVectorXd intercept = y_mean - z_mean * W;
  model.weights.resize(static_cast<std::size_t>(F * R));
  model.intercept.resize(static_cast<std::size_t>(R));
  for (int64_t f = 0; f < F; ++f)
    for (int64_t r = 0; r < R; ++r) model.weights[static_cast<std::size_t>(f * R + r)] = W(f, r);
  for (int64_t r = 0; r < R; ++r) model.intercept[static_cast<std::size_t>(r)] = intercept(r);
  return result;
}

}  // namespace neurobolt
