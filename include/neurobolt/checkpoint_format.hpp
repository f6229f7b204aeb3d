#pragma once
// The identity of a neurobolt checkpoint file (no LibTorch needed to include it): the root
// attributes "format" and "format_version" every checkpoint carries.
#include <cstdint>

namespace neurobolt {

inline constexpr const char* kCheckpointFormat = "neurobolt-checkpoint";
inline constexpr int64_t kCheckpointVersion = 1;

}  // namespace neurobolt
