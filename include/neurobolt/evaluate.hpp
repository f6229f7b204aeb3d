#pragma once
// Evaluation of predicted fMRI against the measured targets: per-ROI metrics, grouped by run,
// subject and split, and their JSON form. Plain C++ (no LibTorch).
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace neurobolt {

// Agreement of one ROI's predicted and true series.
//   n    pairs used: rows where neither value is NaN
//   r    Pearson correlation over those pairs; NaN when n < 3 or either series is constant
//        (`note` says which)
//   mse  mean of (predicted - target)^2; NaN when n = 0
//   r2   1 - SSE / SST, SST the target's squared deviations about its own mean over the same
//        pairs (so a prediction of that mean scores 0 and a worse one is negative); NaN when
//        n = 0 or the target is constant
// All sums are accumulated in double (two passes: means, then deviations).
struct RoiMetrics {
  double r = std::numeric_limits<double>::quiet_NaN();
  double mse = std::numeric_limits<double>::quiet_NaN();
  double r2 = std::numeric_limits<double>::quiet_NaN();
  int64_t n = 0;
  std::string note;  // why r is NaN ("fewer than 3 pairs", "constant prediction", "constant target"), else ""
};

// Metrics of each column of two row-major [rows, rois] arrays.
std::vector<RoiMetrics> roi_metrics(const float* predicted, const float* target, int64_t rows, int64_t rois);

// Mean of the defined (non-NaN) r values; NaN when none is defined.
double mean_r(const std::vector<RoiMetrics>& metrics);

}  // namespace neurobolt
