#pragma once
// Small pieces every step of the MR artefact correction shares (internal to src/clean).
#include <algorithm>
#include <cstdint>
#include <vector>

namespace neurobolt::clean_detail {

// The upper median (the element at size/2 after sorting; no averaging of the middle two), 0 for
// none: a typical figure over channels, beats or trigger intervals.
template <typename T>
T upper_median(std::vector<T> v) {
  if (v.empty()) return T{};
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// How far a trigger interval may stray from the median one and still be on the scanner's grid
// (clock drift, the marker's rounding to a sample): 2 samples or 0.1 %, whichever is more. Longer
// intervals are pauses.
inline double grid_tolerance(int64_t median_interval) {
  return std::max(2.0, 0.001 * static_cast<double>(median_interval));
}

}  // namespace neurobolt::clean_detail
