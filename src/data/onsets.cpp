// Volume onsets from scanner triggers: duplicates dropped, missing triggers interpolated, dummy
// scans dropped, and the count checked against the target table (rules in dataset.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>

#include "core/plural.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

std::string trimmed_lower(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  std::string out = text.substr(first, last - first + 1);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Milliseconds for times a recording can hold; a corrupt time (1e300 s) in a short form, never
// its hundreds of digits.
std::string seconds(double t) { return std::fabs(t) < 1e9 ? fmt::format("{:.3f} s", t) : fmt::format("{:.6g} s", t); }

std::string time_list(const std::vector<double>& times) {
  std::string out;
  for (std::size_t i = 0; i < times.size() && i < 8; ++i) out += (i ? ", " : "") + seconds(times[i]);
  if (times.size() > 8) out += fmt::format(", ... ({} in all)", times.size());
  return out;
}

}  // namespace

const std::vector<std::string>& default_trigger_labels() {
  static const std::vector<std::string> labels{"R128", "Scan Start", "R149", "T  1", "TR", "volume"};
  return labels;
}

bool trigger_label_matches(const std::string& wanted, const std::string& label) {
  const std::string w = trimmed_lower(wanted);
  if (w.empty()) return false;
  if (trimmed_lower(label) == w) return true;
  const auto slash = label.find('/');
  return slash != std::string::npos && trimmed_lower(label.substr(slash + 1)) == w;
}

std::string marker_summary(const Recording& header, const std::vector<BidsEvent>& events) {
  std::map<std::string, int64_t> counts;
  for (const auto& a : header.annotations) ++counts[a.label];
  for (const auto& e : events) ++counts[e.trial_type.empty() ? e.value : e.trial_type];
  if (counts.empty()) return "the recording has no markers";
  std::vector<std::string> parts;
  for (const auto& [label, n] : counts) {
    if (parts.size() == 12) {
      parts.push_back("...");
      break;
    }
    parts.push_back(fmt::format("'{}' x{}", label, n));
  }
  return "markers present: " + fmt::format("{}", fmt::join(parts, ", "));
}

VolumeOnsets onsets_from_triggers(std::vector<double> triggers, double repetition_time, int64_t num_volumes,
                                  const OnsetOptions& options, const std::string& what) {
  if (!(repetition_time > 0)) {
    throw ConfigError(fmt::format("{}: the repetition time must be > 0 s, found {}", what, repetition_time));
  }
  VolumeOnsets out;
  out.triggers_found = static_cast<int64_t>(triggers.size());
  std::sort(triggers.begin(), triggers.end());

  std::vector<double> kept;
  for (double t : triggers) {
    if (!kept.empty() && t - kept.back() < 0.1 * repetition_time) {
      ++out.duplicates;
      continue;
    }
    kept.push_back(t);
  }
  if (out.duplicates > 0) {
    out.warnings.push_back(fmt::format("{}: {} duplicate trigger{} (within 10 % of a TR of the previous one) ignored",
                                       what, out.duplicates, out.duplicates > 1 ? "s" : ""));
  }

  // A wrong repetition time shows as every interval being off; say so rather than name the first.
  if (kept.size() >= 3) {
    std::vector<double> intervals;
    for (std::size_t i = 1; i < kept.size(); ++i) intervals.push_back(kept[i] - kept[i - 1]);
    std::nth_element(intervals.begin(), intervals.begin() + intervals.size() / 2, intervals.end());
    const double median = intervals[intervals.size() / 2];
    const double ratio = median / repetition_time;
    if (std::abs(ratio - 1.0) > options.trigger_tolerance) {
      throw ConfigError(fmt::format("{}: triggers come every {} (median interval) but the repetition time is {} s",
                                    what, seconds(median), repetition_time));
    }
  }

  std::vector<double> onsets;
  std::vector<double> repaired;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (i > 0) {
      const double interval = kept[i] - kept[i - 1];
      const double ratio = interval / repetition_time;
      // Ratios past 2^53 are no whole number of TRs anyway (and would overflow llround).
      const int64_t k = std::fabs(ratio) < 9e15 ? std::llround(ratio) : std::numeric_limits<int64_t>::max();
      if (k < 1 || std::abs(ratio - static_cast<double>(k)) > options.trigger_tolerance) {
        throw FormatError(fmt::format(
            "{}: irregular interval of {} between the triggers at {} and {} (expected a multiple of the repetition "
            "time {:g} s within {:g} %)",
            what, seconds(interval), seconds(kept[i - 1]), seconds(kept[i]), repetition_time,
            100 * options.trigger_tolerance));
      }
      if (k - 1 > options.max_missing_triggers) {
        throw FormatError(fmt::format("{}: {} ({:.6g} TRs) without a trigger between {} and {}: more than {} missing "
                                      "triggers in a row (an interrupted scan, or two runs in one file?)",
                                      what, seconds(interval), std::round(ratio), seconds(kept[i - 1]), seconds(kept[i]),
                                      options.max_missing_triggers));
      }
      for (int64_t j = 1; j < k; ++j) {
        const double t = kept[i - 1] + interval * static_cast<double>(j) / static_cast<double>(k);
        onsets.push_back(t);
        repaired.push_back(t);
      }
    }
    onsets.push_back(kept[i]);
  }
  out.interpolated = static_cast<int64_t>(repaired.size());
  if (!repaired.empty()) {
    out.warnings.push_back(fmt::format("{}: {} interpolated at {}", what,
                                       count_of(static_cast<int64_t>(repaired.size()), "missing trigger"),
                                       time_list(repaired)));
  }
  if (kept.size() >= 3) {
    std::vector<double> intervals;
    for (std::size_t i = 1; i < onsets.size(); ++i) intervals.push_back(onsets[i] - onsets[i - 1]);
    std::nth_element(intervals.begin(), intervals.begin() + intervals.size() / 2, intervals.end());
    const double median = intervals[intervals.size() / 2];
    if (std::abs(median - repetition_time) > 0.01 * repetition_time) {
      out.warnings.push_back(fmt::format("{}: triggers come every {:.6g} s (median) but the repetition time is {:g} s",
                                         what, median, repetition_time));
    }
  }

  const auto total = static_cast<int64_t>(onsets.size());
  if (options.dummy_scans < 0) {
    throw ConfigError(fmt::format("dummy scans must be >= 0, found {}", options.dummy_scans));
  }
  if (options.dummy_scans > 0) {
    if (options.dummy_scans >= total) {
      throw ConfigError(fmt::format("{}: {} dummy scans to drop but only {} triggers", what, options.dummy_scans, total));
    }
    onsets.erase(onsets.begin(), onsets.begin() + options.dummy_scans);
    out.dummies_dropped = options.dummy_scans;
  }
  const auto count = static_cast<int64_t>(onsets.size());
  if (num_volumes >= 0 && count != num_volumes) {  // < 0: any count (inference, no target table)
    std::string detail = fmt::format("{} found", out.triggers_found);
    if (out.duplicates) detail += fmt::format(", {} duplicates dropped", out.duplicates);
    if (out.interpolated) detail += fmt::format(", {} interpolated", out.interpolated);
    if (out.dummies_dropped) detail += fmt::format(", {} dummy scans dropped", out.dummies_dropped);
    std::string hint;
    if (count > num_volumes) {
      hint = fmt::format(" If the first {} triggers belong to dummy scans that the table leaves out, drop them with "
                         "the dummy-scans option (--dummy-scans {}).",
                         count - num_volumes, out.dummies_dropped + count - num_volumes);
    }
    throw ConfigError(fmt::format("{}: {} volume triggers ({}) but the target table has {} rows (volumes).{}", what,
                                  count, detail, num_volumes, hint));
  }
  out.onsets = std::move(onsets);
  return out;
}

}  // namespace neurobolt
