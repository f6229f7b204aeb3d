#include "clean/cleaned_copy.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "neurobolt/error.hpp"

namespace neurobolt::clean_detail {

CleanedCopy::CleanedCopy(const std::string& eeg_path, CleanOptions options, double sample_rate) {
  ReadOptions header_only;
  header_only.header_only = true;
  const Recording head = read_recording(eeg_path, header_only);
  options.sample_rate = head.sample_rate > 0 ? std::min(sample_rate, head.sample_rate) : sample_rate;
  static std::atomic<int64_t> counter{0};
  path_ = (std::filesystem::temp_directory_path() /
           fmt::format("neurobolt-clean-{}-{}.edf", static_cast<int64_t>(::getpid()), counter++))
              .string();
  CleanFileOptions file;
  file.force = true;  // our own temporary name
  try {
    report_ = clean_file(eeg_path, path_, options, file).report;
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    throw;
  }
}

CleanedCopy::~CleanedCopy() {
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

std::string CleanedCopy::summary() const {
  std::string out;
  const auto& g = report_.gradient;
  const auto& b = report_.bcg;
  if (g.applied) {
    out = fmt::format("gradient: {} {} epochs ('{}'{}{})", g.epochs, to_string(g.trigger_kind), g.trigger_label,
                      g.triggers_inserted ? fmt::format(", {} put back", g.triggers_inserted) : "",
                      g.triggers_moved ? fmt::format(", {} moved", g.triggers_moved) : "");
  } else {
    out = "gradient: none found";
  }
  if (b.applied) {
    out += fmt::format("; BCG: {} R peaks on '{}' ({:.0f} bpm), evoked {:.1f} -> {:.1f} uV", b.r_peaks, b.ecg_channel,
                       b.heart_rate_bpm, b.evoked_rms_before, b.evoked_rms_after);
  } else {
    out += "; BCG: not corrected";
  }
  return out;
}

}  // namespace neurobolt::clean_detail
