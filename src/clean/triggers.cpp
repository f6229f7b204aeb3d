// Scanner triggers for the gradient correction: which markers, in order, on the scanner's grid.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "clean/common.hpp"
#include "neurobolt/clean.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {

const char* to_string(TriggerKind kind) {
  switch (kind) {
    case TriggerKind::automatic: return "auto";
    case TriggerKind::volume: return "volume";
    case TriggerKind::slice: return "slice";
  }
  return "?";
}

TriggerKind parse_trigger_kind(const std::string& text) {
  if (text == "auto") return TriggerKind::automatic;
  if (text == "volume") return TriggerKind::volume;
  if (text == "slice") return TriggerKind::slice;
  throw ConfigError(fmt::format("trigger kind: expected 'auto', 'volume' or 'slice', found '{}'", text));
}

const char* to_string(BcgMethod method) { return method == BcgMethod::obs ? "obs" : "aas"; }

BcgMethod parse_bcg_method(const std::string& text) {
  if (text == "obs") return BcgMethod::obs;
  if (text == "aas") return BcgMethod::aas;
  throw ConfigError(fmt::format("BCG method: expected 'obs' or 'aas', found '{}'", text));
}

namespace {

// Labels tried when none is given: the volume markers `prepare` knows, then slice markers
// (BrainVision Analyzer writes "Scanner/s"; we accept that only with the Scanner type).
bool matches(const std::string& wanted, const Annotation& a) {
  if (wanted == "s") return a.type == "Scanner" && trigger_label_matches("s", a.label);
  return trigger_label_matches(wanted, a.label);
}

std::string at_seconds(int64_t sample, double rate) { return fmt::format("{:.3f} s", static_cast<double>(sample) / rate); }

}  // namespace

ScannerTriggers find_scanner_triggers(const Recording& header, const CleanOptions& options) {
  ScannerTriggers out;
  const double fs = header.sample_rate;
  if (!(fs > 0)) throw FormatError(fmt::format("'{}': no sampling rate", header.source));
  std::vector<std::string> tried = options.trigger_labels;
  if (tried.empty()) {
    tried = default_trigger_labels();
    tried.push_back("Slice");
    tried.push_back("s");
  }
  std::vector<double> onsets;
  for (const auto& label : tried) {
    for (const auto& a : header.annotations)
      if (matches(label, a)) onsets.push_back(a.onset);
    if (!onsets.empty()) {
      out.label = label;
      break;
    }
  }
  if (onsets.empty()) {
    out.notes.push_back(fmt::format("no scanner triggers (tried '{}'); {}", fmt::join(tried, "', '"),
                                    marker_summary(header)));
    return out;
  }
  out.found = static_cast<int64_t>(onsets.size());
  const std::string what = fmt::format("'{}': '{}' triggers", header.source, out.label);
  // Markers come in file order; a scanner's never go back in time.
  for (std::size_t i = 1; i < onsets.size(); ++i) {
    if (onsets[i] < onsets[i - 1]) {
      throw ConfigError(fmt::format("{} out of order: #{} at {:.4f} s comes after #{} at {:.4f} s", what, i + 1,
                                    onsets[i], i, onsets[i - 1]));
    }
  }
  std::vector<int64_t> t;
  int64_t duplicates = 0;
  for (double onset : onsets) {
    const auto s = static_cast<int64_t>(std::llround(onset * fs));
    if (!t.empty() && s - t.back() < 2) {
      ++duplicates;
      continue;
    }
    t.push_back(s);
  }
  if (t.size() < 3) {
    throw ConfigError(fmt::format("{}: expected at least 3 to build an artefact template, found {}", what, t.size()));
  }
  std::vector<int64_t> d(t.size() - 1);
  for (std::size_t i = 0; i + 1 < t.size(); ++i) d[i] = t[i + 1] - t[i];
  const int64_t m = clean_detail::upper_median(d);
  // Closer than a tenth of the usual interval: the same event marked twice.
  std::vector<int64_t> kept{t[0]};
  for (std::size_t i = 1; i < t.size(); ++i) {
    if (t[i] - kept.back() < std::max<int64_t>(2, m / 10)) {
      ++duplicates;
      continue;
    }
    kept.push_back(t[i]);
  }
  t.swap(kept);
  if (duplicates > 0) out.notes.push_back(fmt::format("{} duplicate trigger{} dropped", duplicates, duplicates > 1 ? "s" : ""));

  out.kind = options.trigger_kind;
  if (out.kind == TriggerKind::automatic) {
    out.kind = static_cast<double>(m) / fs < 0.5 ? TriggerKind::slice : TriggerKind::volume;
  }
  // The scanner's grid: every interval is the median one, give or take the clock drift and the
  // marker's rounding to a sample.
  const double tol = clean_detail::grid_tolerance(m);
  int64_t long_intervals = 0;
  for (std::size_t i = 0; i + 1 < t.size(); ++i)
    if (static_cast<double>(t[i + 1] - t[i]) > static_cast<double>(m) + tol) ++long_intervals;
  // Slice triggers with a pause at the end of every volume: the long intervals are the pauses.
  const bool periodic_pauses = long_intervals >= 3 && long_intervals * 25 >= static_cast<int64_t>(t.size());

  std::vector<int64_t> fixed{t[0]};
  for (std::size_t i = 1; i < t.size(); ++i) {
    const int64_t prev = fixed.back();
    const double dd = static_cast<double>(t[i] - prev);
    if (std::fabs(dd - static_cast<double>(m)) <= tol) {
      fixed.push_back(t[i]);
      continue;
    }
    const double k = std::round(dd / static_cast<double>(m));
    if (!periodic_pauses && k >= 2 && std::fabs(dd - k * static_cast<double>(m)) <= k * tol) {
      // Missing triggers: put them back evenly between their neighbours.
      for (int j = 1; j < static_cast<int>(k); ++j)
        fixed.push_back(prev + static_cast<int64_t>(std::llround(dd * j / k)));
      out.inserted += static_cast<int64_t>(k) - 1;
      out.notes.push_back(fmt::format("{} missing trigger{} after {} put back on the scanner's grid",
                                      static_cast<int64_t>(k) - 1, k > 2 ? "s" : "", at_seconds(prev, fs)));
      fixed.push_back(t[i]);
      continue;
    }
    // Out of place: the next trigger is where two intervals put it.
    const bool has_next = i + 1 < t.size();
    const double two = has_next ? static_cast<double>(t[i + 1] - prev) : 0.0;
    if (k <= 1 && has_next && std::fabs(two - 2.0 * static_cast<double>(m)) <= 2 * tol) {
      const int64_t moved = prev + static_cast<int64_t>(std::llround(two / 2));
      out.notes.push_back(fmt::format("trigger at {} is {} samples off the scanner's grid: moved to {}",
                                      at_seconds(t[i], fs), t[i] - moved, at_seconds(moved, fs)));
      fixed.push_back(moved);
      ++out.moved;
      continue;
    }
    if (k <= 1 && !has_next && dd < 1.5 * static_cast<double>(m)) {
      const int64_t moved = prev + m;
      out.notes.push_back(fmt::format("last trigger at {} is {} samples off the scanner's grid: moved to {}",
                                      at_seconds(t[i], fs), t[i] - moved, at_seconds(moved, fs)));
      fixed.push_back(moved);
      ++out.moved;
      continue;
    }
    if (dd > static_cast<double>(m)) {
      // A pause (the end of a volume's slices, or scanning stopped and resumed): nothing to repair.
      if (!periodic_pauses) {
        out.notes.push_back(fmt::format("pause of {:.3f} s in the triggers after {}", dd / fs, at_seconds(prev, fs)));
      }
      fixed.push_back(t[i]);
      continue;
    }
    throw ConfigError(fmt::format(
        "{} are too irregular to correct: {} samples from the trigger at {} to the next at {}, expected {} "
        "(+-{:.0f}) or a multiple; name the right marker with --trigger",
        what, t[i] - prev, at_seconds(prev, fs), at_seconds(t[i], fs), m, tol));
  }
  out.samples = std::move(fixed);
  out.epoch_samples = m;
  return out;
}

}  // namespace neurobolt
