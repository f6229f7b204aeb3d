#pragma once
// Counts in messages: "1 ROI", "3 ROIs", "1 entry", "2 entries".
#include <cstdint>
#include <string>
#include <string_view>

namespace neurobolt {

// "<n> <one>" when n is 1 (or -1), else "<n> <many>"; `many` defaults to `one` + "s".
inline std::string count_of(int64_t n, std::string_view one, std::string_view many = {}) {
  std::string out = std::to_string(n) + " ";
  if (n == 1 || n == -1) return out.append(one);
  return many.empty() ? out.append(one).append("s") : out.append(many);
}

}  // namespace neurobolt
