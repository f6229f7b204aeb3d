// Train/val/test splits: chronological within a run (the reference's intra-scan rule), by subject,
// and k folds by subject. See dataset.hpp for the rules.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

// A shuffle that gives the same order on every platform (std::shuffle's is unspecified).
std::vector<std::string> shuffled_subjects(const std::vector<std::string>& subjects, uint64_t seed) {
  std::vector<std::string> order(subjects.begin(), subjects.end());
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  std::mt19937_64 rng(seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

int64_t subject_count(double fraction, int64_t n) {
  if (fraction <= 0) return 0;
  return std::max<int64_t>(1, std::llround(fraction * static_cast<double>(n)));
}

}  // namespace

const char* to_string(SplitMode mode) {
  switch (mode) {
    case SplitMode::intra_run: return "intra-run";
    case SplitMode::cross_subject: return "cross-subject";
    case SplitMode::kfold: return "kfold";
  }
  return "?";
}

SplitMode parse_split_mode(const std::string& text) {
  if (text == "intra-run" || text == "intra_run") return SplitMode::intra_run;
  if (text == "cross-subject" || text == "cross_subject") return SplitMode::cross_subject;
  if (text == "kfold" || text == "k-fold") return SplitMode::kfold;
  throw ConfigError(fmt::format("split: expected intra-run, cross-subject or kfold, found '{}'", text));
}

const char* to_string(Split split) {
  switch (split) {
    case Split::excluded: return "excluded";
    case Split::train: return "train";
    case Split::val: return "val";
    case Split::test: return "test";
  }
  return "?";
}

std::vector<Split> intra_run_split(int64_t num_windows, double repetition_time, double window_seconds,
                                   const SplitSpec& spec) {
  if (!(repetition_time > 0)) {
    throw ConfigError(fmt::format("intra-run split: repetition time must be > 0 s, found {}", repetition_time));
  }
  if (spec.train_fraction < 0 || spec.val_fraction < 0 || spec.train_fraction + spec.val_fraction > 1) {
    throw ConfigError(fmt::format("intra-run split: fractions must be >= 0 with train + val <= 1, found train {} val {}",
                                  spec.train_fraction, spec.val_fraction));
  }
  const double n = static_cast<double>(num_windows);
  const int64_t gap = static_cast<int64_t>(std::ceil(std::max(spec.min_gap_seconds, window_seconds) / repetition_time));
  // Python's int() of the same double products, as the reference computes them.
  const int64_t train_end = static_cast<int64_t>(spec.train_fraction * n);
  const int64_t val_end = train_end + static_cast<int64_t>(spec.val_fraction * n);
  std::vector<Split> labels(static_cast<std::size_t>(num_windows), Split::excluded);
  for (int64_t i = 0; i < num_windows; ++i) {
    if (i < train_end) labels[i] = Split::train;
    else if (i >= train_end + gap && i < val_end) labels[i] = Split::val;
    else if (i >= val_end + gap) labels[i] = Split::test;
  }
  return labels;
}

std::vector<Split> cross_subject_split(const std::vector<std::string>& subjects, const SplitSpec& spec) {
  const std::set<std::string> known(subjects.begin(), subjects.end());
  std::map<std::string, Split> assigned;
  if (!spec.val_subjects.empty() || !spec.test_subjects.empty()) {
    for (const auto& [list, split] : {std::pair{&spec.val_subjects, Split::val}, std::pair{&spec.test_subjects, Split::test}}) {
      for (const auto& s : *list) {
        if (!known.count(s)) {
          throw ConfigError(fmt::format("cross-subject split: {} subject '{}' is not in the dataset (subjects: {})",
                                        to_string(split), s, fmt::join(known, ", ")));
        }
        const auto [it, inserted] = assigned.emplace(s, split);
        if (!inserted && it->second != split) {
          throw ConfigError(fmt::format("cross-subject split: subject '{}' is listed for both val and test", s));
        }
      }
    }
  } else {
    const auto order = shuffled_subjects(subjects, spec.seed);
    const auto n = static_cast<int64_t>(order.size());
    const int64_t num_test = subject_count(spec.test_subject_fraction, n);
    const int64_t num_val = subject_count(spec.val_subject_fraction, n);
    if (num_test + num_val >= n) {
      throw ConfigError(fmt::format("cross-subject split: {} subjects cannot give {} val and {} test subjects and "
                                    "leave one for training (list them, or lower the fractions)",
                                    n, num_val, num_test));
    }
    for (int64_t i = 0; i < num_test; ++i) assigned[order[i]] = Split::test;
    for (int64_t i = num_test; i < num_test + num_val; ++i) assigned[order[i]] = Split::val;
  }
  std::vector<Split> out;
  bool any_train = false;
  for (const auto& s : subjects) {
    const auto it = assigned.find(s);
    out.push_back(it == assigned.end() ? Split::train : it->second);
    any_train = any_train || out.back() == Split::train;
  }
  if (!any_train && !subjects.empty()) {
    throw ConfigError(fmt::format("cross-subject split: no subject is left for training (subjects: {})",
                                  fmt::join(known, ", ")));
  }
  return out;
}

std::vector<int64_t> subject_folds(const std::vector<std::string>& subjects, int64_t folds, uint64_t seed) {
  const auto order = shuffled_subjects(subjects, seed);
  if (folds < 2 || folds > static_cast<int64_t>(order.size())) {
    throw ConfigError(fmt::format("kfold split: folds must be from 2 to the number of subjects ({}), found {}",
                                  order.size(), folds));
  }
  std::map<std::string, int64_t> fold_of;
  for (std::size_t i = 0; i < order.size(); ++i) fold_of[order[i]] = static_cast<int64_t>(i) % folds;
  std::vector<int64_t> out;
  for (const auto& s : subjects) out.push_back(fold_of.at(s));
  return out;
}

Split fold_split(int64_t subject_fold, int64_t selected, int64_t folds) {
  if (subject_fold == selected) return Split::test;
  if (folds >= 3 && subject_fold == (selected + 1) % folds) return Split::val;
  return Split::train;
}

}  // namespace neurobolt
