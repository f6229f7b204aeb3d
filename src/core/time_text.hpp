#pragma once
// The current time as the files we write record it.
#include <string>

namespace neurobolt::detail {

// "2026-12-02T04:52:10Z": UTC, ISO 8601, to the second.
std::string utc_now_iso();

}  // namespace neurobolt::detail
