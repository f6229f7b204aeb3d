// The target processing that prepare applies and eval repeats (process_target_series, dataset.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt {

std::vector<double> process_target_series(const TargetSeries& t, const std::vector<std::string>& rois,
                                          const std::optional<double>& cutoff_hz, int order,
                                          std::vector<std::string>& warnings) {
  const auto R = static_cast<int64_t>(rois.size());
  const int64_t V = t.num_volumes;
  std::vector<int64_t> column;
  std::vector<std::string> absent;
  for (const auto& name : rois) {
    const auto it = std::find(t.roi_names.begin(), t.roi_names.end(), name);
    if (it == t.roi_names.end()) absent.push_back(name);
    column.push_back(it - t.roi_names.begin());
  }
  if (!absent.empty()) {
    throw ConfigError(fmt::format("'{}': ROI{} {} not in the target table (it has: {})", t.path,
                                  absent.size() > 1 ? "s" : "", fmt::join(absent, ", "), fmt::join(t.roi_names, ", ")));
  }
  std::vector<double> values(static_cast<std::size_t>(V * R));
  for (int64_t v = 0; v < V; ++v)
    for (int64_t r = 0; r < R; ++r) values[v * R + r] = t.at(v, column[r]);
  // Targets are stored as float32 and z-scored (squares summed in double): a value beyond this
  // bound is no BOLD signal and would turn a whole column into inf/NaN after the low-pass.
  constexpr double kLargestTarget = 1e30;
  for (int64_t v = 0; v < V; ++v)
    for (int64_t r = 0; r < R; ++r)
      if (std::isfinite(values[v * R + r]) && std::abs(values[v * R + r]) > kLargestTarget) {
        throw FormatError(fmt::format("'{}' row {} (volume {}), ROI '{}': expected a value within +-{:g}, found {:g}",
                                      t.path, v + 1, v, rois[r], kLargestTarget, values[v * R + r]));
      }

  if (!cutoff_hz) return values;
  const double nyquist = 0.5 / t.repetition_time;
  if (*cutoff_hz >= nyquist) {
    warnings.push_back(fmt::format("'{}': fMRI low-pass at {} Hz skipped: at or above the Nyquist frequency {} Hz "
                                   "of TR {} s",
                                   t.path, *cutoff_hz, nyquist, t.repetition_time));
    return values;
  }
  const auto filter = signal::butter(order, *cutoff_hz, 1.0 / t.repetition_time, signal::FilterType::lowpass);
  const int64_t padlen = signal::filtfilt_padlen(filter.b, filter.a);
  if (V <= padlen) {
    throw ConfigError(fmt::format("'{}': {} volumes are too few for the zero-phase {} Hz low-pass (it needs more than "
                                  "{}); turn the fMRI low-pass off",
                                  t.path, V, *cutoff_hz, padlen));
  }
  std::vector<double> series(static_cast<std::size_t>(V));
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t v = 0; v < V; ++v) {
      series[v] = values[v * R + r];
      if (!std::isfinite(series[v])) {
        throw FormatError(fmt::format("'{}' row {} (volume {}), ROI '{}': expected a number, found n/a; the fMRI "
                                      "low-pass needs complete series (fill the gap, or turn the low-pass off to "
                                      "skip such volumes)",
                                      t.path, v + 1, v, rois[r]));
      }
    }
    const auto filtered = signal::filtfilt(filter.b, filter.a, series);
    for (int64_t v = 0; v < V; ++v) values[v * R + r] = filtered[v];
  }
  return values;
}

}  // namespace neurobolt
