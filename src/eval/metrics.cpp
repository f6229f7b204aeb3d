// Per-ROI agreement metrics (definitions in evaluate.hpp).
#include <cmath>

#include "neurobolt/evaluate.hpp"

namespace neurobolt {

std::vector<RoiMetrics> roi_metrics(const float* predicted, const float* target, int64_t rows, int64_t rois) {
  std::vector<RoiMetrics> out(static_cast<std::size_t>(rois > 0 ? rois : 0));
  if (rois <= 0 || rows <= 0) {
    for (auto& m : out) m.note = "fewer than 3 pairs";
    return out;
  }
  const auto R = static_cast<std::size_t>(rois);
  std::vector<double> sum_p(R, 0.0), sum_t(R, 0.0);
  std::vector<int64_t> n(R, 0);
  // Row-major traversal with per-ROI accumulators: one sequential sweep over each array.
  for (int64_t i = 0; i < rows; ++i) {
    const float* p = predicted + i * rois;
    const float* t = target + i * rois;
    for (std::size_t r = 0; r < R; ++r) {
      if (std::isnan(p[r]) || std::isnan(t[r])) continue;
      sum_p[r] += p[r];
      sum_t[r] += t[r];
      ++n[r];
    }
  }
  std::vector<double> mean_p(R), mean_t(R);
  for (std::size_t r = 0; r < R; ++r) {
    mean_p[r] = n[r] > 0 ? sum_p[r] / static_cast<double>(n[r]) : 0.0;
    mean_t[r] = n[r] > 0 ? sum_t[r] / static_cast<double>(n[r]) : 0.0;
  }
  // Second pass about the means: far less cancellation than sum-of-squares formulas.
  std::vector<double> sxx(R, 0.0), syy(R, 0.0), sxy(R, 0.0), sse(R, 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    const float* p = predicted + i * rois;
    const float* t = target + i * rois;
    for (std::size_t r = 0; r < R; ++r) {
      if (std::isnan(p[r]) || std::isnan(t[r])) continue;
      const double dp = p[r] - mean_p[r];
      const double dt = t[r] - mean_t[r];
      const double e = static_cast<double>(p[r]) - static_cast<double>(t[r]);
      sxx[r] += dp * dp;
      syy[r] += dt * dt;
      sxy[r] += dp * dt;
      sse[r] += e * e;
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    RoiMetrics& m = out[r];
    m.n = n[r];
    if (n[r] > 0) m.mse = sse[r] / static_cast<double>(n[r]);
    if (n[r] > 0 && syy[r] > 0) m.r2 = 1.0 - sse[r] / syy[r];
    if (n[r] < 3) {
      m.note = "fewer than 3 pairs";
    } else if (!(sxx[r] > 0)) {
      m.note = "constant prediction";
    } else if (!(syy[r] > 0)) {
      m.note = "constant target";
    } else {
      // Rounding can carry |r| a hair past 1 for (anti)proportional series.
      m.r = std::fmax(-1.0, std::fmin(1.0, sxy[r] / std::sqrt(sxx[r] * syy[r])));
    }
  }
  return out;
}

double mean_r(const std::vector<RoiMetrics>& metrics) {
  double sum = 0.0;
  int64_t count = 0;
  for (const auto& m : metrics) {
    if (std::isnan(m.r)) continue;
    sum += m.r;
    ++count;
  }
  return count > 0 ? sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace neurobolt
