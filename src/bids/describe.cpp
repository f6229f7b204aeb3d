// Descriptions of recordings, BIDS datasets and prepared datasets (`neurobolt info PATH`).
#include "neurobolt/describe.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/h5.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kInfoExpects =
    "an EEG recording (.edf .bdf .vhdr .set), a BIDS dataset folder, a prepared dataset or checkpoint (.h5), a "
    "model config (.json) or a reference .pth";

// Text column where values start in the text forms.
constexpr int kLabelWidth = 13;
constexpr std::size_t kLineWidth = 100;
// Labels listed in the text form of a recording; JSON has them all.
constexpr std::size_t kTextLabels = 12;
// Longest parameter value shown in the text form of a prepared dataset.
constexpr std::size_t kLongValue = 60;

std::string field(const std::string& label, const std::string& value) {
  return fmt::format("{:<{}} {}\n", label, kLabelWidth - 1, value);
}

// Items joined by `separator` and wrapped to kLineWidth, continuation lines indented to the
// value column; `lead` characters of the value precede them on the first line.
std::string wrapped(const std::vector<std::string>& items, const std::string& separator = " ", std::size_t lead = 0) {
  std::string out, line;
  for (const auto& item : items) {
    if (!line.empty() && kLabelWidth + lead + line.size() + separator.size() + item.size() > kLineWidth) {
      lead = 0;
      out += line + separator.substr(0, separator.find_last_not_of(' ') + 1) + "\n" + std::string(kLabelWidth, ' ');
      line.clear();
    } else if (!line.empty()) {
      line += separator;
    }
    line += item;
  }
  return out + line;
}

// Channel and ROI names may hold spaces ("EEG Fpz-Cz"); then commas keep them apart.
std::string names_text(const std::vector<std::string>& names, std::size_t lead) {
  const bool spaces = std::any_of(names.begin(), names.end(), [](const auto& n) { return n.find(' ') != n.npos; });
  return wrapped(names, spaces ? ", " : " ", lead);
}

// "16: name name ..." wrapped.
std::string counted_names(const std::vector<std::string>& names) {
  const std::string lead = fmt::format("{}: ", names.size());
  return lead + names_text(names, lead.size());
}

std::string plural(int64_t n, const std::string& word) { return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s"); }

std::string upper(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string duration_text(double seconds) {
  if (!(seconds >= 60.0)) return fmt::format("{:.6g} s", seconds);
  const auto whole = static_cast<int64_t>(seconds);
  if (seconds < 3600.0) return fmt::format("{:.6g} s ({} min {} s)", seconds, whole / 60, whole % 60);
  return fmt::format("{:.6g} s ({} h {} min)", seconds, whole / 3600, whole / 60 % 60);
}

std::string bytes_text(int64_t bytes) {
  if (bytes < 1000 * 1000) return fmt::format("{:.1f} kB", bytes / 1e3);
  if (bytes < int64_t{1000} * 1000 * 1000) return fmt::format("{:.1f} MB", bytes / 1e6);
  return fmt::format("{:.2f} GB", bytes / 1e9);
}

double median(std::vector<double> values) {
  if (values.empty()) return std::nan("");
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper_half = values[mid];
  if (values.size() % 2 == 1) return upper_half;
  return 0.5 * (*std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid)) + upper_half);
}

bool is_default_trigger(const std::string& label) {
  const auto& wanted = default_trigger_labels();
  return std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) { return trigger_label_matches(w, label); });
}

// One marker: its time and the label (or labels, for an events.tsv row) that may name a trigger.
struct Marker {
  double onset = 0.0;
  std::vector<std::string> labels;
};

// Per default trigger label that occurs among the markers, in default order.
std::vector<TriggerSummary> find_triggers(const std::vector<Marker>& markers, const std::string& source) {
  std::vector<TriggerSummary> out;
  for (const auto& wanted : default_trigger_labels()) {
    TriggerSummary t;
    t.label = wanted;
    t.source = source;
    std::vector<double> onsets;
    for (const auto& m : markers) {
      for (const auto& label : m.labels) {
        if (!trigger_label_matches(wanted, label)) continue;
        onsets.push_back(m.onset);
        if (std::find(t.labels.begin(), t.labels.end(), label) == t.labels.end()) t.labels.push_back(label);
        break;
      }
    }
    if (onsets.empty()) continue;
    std::sort(onsets.begin(), onsets.end());
    std::sort(t.labels.begin(), t.labels.end());
    t.count = static_cast<int64_t>(onsets.size());
    t.first_onset = onsets.front();
    t.last_onset = onsets.back();
    std::vector<double> intervals;
    for (std::size_t i = 1; i < onsets.size(); ++i) intervals.push_back(onsets[i] - onsets[i - 1]);
    t.median_interval = median(intervals);
    for (double interval : intervals)
      if (std::fabs(interval - t.median_interval) > 0.1 * t.median_interval) ++t.irregular_intervals;
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<Marker> annotation_markers(const std::vector<Annotation>& annotations) {
  std::vector<Marker> markers;
  markers.reserve(annotations.size());
  for (const auto& a : annotations) markers.push_back(Marker{a.onset, {a.label}});
  return markers;
}

// "Scan Start: 300 in EEG annotations (as 'Scanner/Scan Start') from 0.144 s to 645.984 s, median
// interval 2.16 s, 0 irregular"
std::string trigger_text(const TriggerSummary& t) {
  std::vector<std::string> quoted;
  for (const auto& l : t.labels) quoted.push_back("'" + l + "'");
  std::string text = fmt::format("{}: {} in {}", t.label, t.count, t.source);
  if (t.labels.size() != 1 || t.labels.front() != t.label) text += fmt::format(" (as {})", fmt::join(quoted, ", "));
  if (t.count < 2) return text + fmt::format(" at {:.6g} s", t.first_onset);
  text += fmt::format(" from {:.6g} s to {:.6g} s, every {:.6g} s (median: the TR they imply)", t.first_onset,
                      t.last_onset, t.median_interval);
  if (t.irregular_intervals > 0)
    text += fmt::format(", {} more than 10 % off", plural(t.irregular_intervals, "interval"));
  return text;
}

// Embedded JSON text as JSON, or as a string when it does not parse.
json parsed_or_text(const std::string& text) {
  json value = json::parse(text, nullptr, false);
  return value.is_discarded() ? json(text) : value;
}

json trigger_to_json(const TriggerSummary& t) {
  return json{{"label", t.label},
              {"labels", t.labels},
              {"source", t.source},
              {"count", t.count},
              {"first_onset", t.first_onset},
              {"last_onset", t.last_onset},
              {"median_interval", t.median_interval},
              {"irregular_intervals", t.irregular_intervals}};
}

template <typename T>
void tally(std::vector<Tally<T>>& tallies, const T& value) {
  for (auto& t : tallies) {
    if (t.value == value) {
      ++t.count;
      return;
    }
  }
  tallies.push_back(Tally<T>{value, 1});
}

template <typename T>
void sort_by_value(std::vector<Tally<T>>& tallies) {
  std::sort(tallies.begin(), tallies.end(), [](const auto& a, const auto& b) { return a.value < b.value; });
}

// "EDF+C (3 runs), BDF (1 run)"
template <typename T, typename Format>
std::string tally_text(const std::vector<Tally<T>>& tallies, Format&& format) {
  std::vector<std::string> parts;
  for (const auto& t : tallies) parts.push_back(fmt::format("{} ({})", format(t.value), plural(t.count, "run")));
  return parts.empty() ? std::string("none") : fmt::format("{}", fmt::join(parts, ", "));
}

json string_tally_json(const std::vector<Tally<std::string>>& tallies) {
  json out = json::object();
  for (const auto& t : tallies) out[t.value] = t.count;
  return out;
}

template <typename T>
json number_tally_json(const std::vector<Tally<T>>& tallies) {
  json out = json::array();
  for (const auto& t : tallies) out.push_back(json{{"value", t.value}, {"runs", t.count}});
  return out;
}

std::string relative_to(const std::string& path, const fs::path& root) {
  const fs::path relative = fs::path(path).lexically_relative(root);
  return relative.empty() ? path : relative.string();
}

// The derivatives folder a target lies in, or "BOLD + atlas" for an image in the raw dataset.
std::string target_origin(const TargetSeries& target, const fs::path& root, const std::vector<std::string>& derivatives) {
  const fs::path relative = fs::path(target.path).lexically_relative(root);
  for (const auto& d : derivatives) {
    const fs::path folder = (fs::path(d).is_absolute() ? fs::path(d).lexically_relative(root) : fs::path(d))
                                .lexically_normal();
    const fs::path inside = relative.lexically_relative(folder);
    if (!inside.empty() && *inside.begin() != "..") {
      std::string name = folder.string();
      if (!name.empty() && name.back() == '/') name.pop_back();
      return target.source == "nifti" ? name + " (BOLD + atlas)" : name;
    }
  }
  return target.source == "nifti" ? "BOLD + atlas" : relative.parent_path().string();
}

BidsRunSummary summarize_run(const EegRun& run, const fs::path& root, const std::vector<std::string>& derivatives) {
  BidsRunSummary s;
  s.path = relative_to(run.path, root);
  s.entities = run.entities;
  s.bad_channels = run.bad_channels;
  if (run.target) {
    s.has_target = true;
    s.target_path = relative_to(run.target->path, root);
    s.target_origin = target_origin(*run.target, root, derivatives);
    s.repetition_time = run.target->repetition_time;
    s.num_volumes = run.target->num_volumes;
    s.roi_names = run.target->roi_names;
  }
  ReadOptions header_only;
  header_only.header_only = true;
  Recording head;
  try {
    head = read_recording(run.path, header_only);
  } catch (const Error& e) {
    // One unreadable run should not hide the rest of the dataset; it is shown in its place.
    s.error = e.what();
    return s;
  }
  s.format = head.format;
  s.sample_rate = head.sample_rate;
  s.num_channels = head.num_channels();
  s.duration = head.duration();

  auto found = find_triggers(annotation_markers(head.annotations), "EEG annotations");
  if (found.empty()) {
    std::vector<Marker> events;
    for (const auto& e : run.events) events.push_back(Marker{e.onset, {e.trial_type, e.value}});
    found = find_triggers(events, "events.tsv");
  }
  if (!found.empty()) s.trigger = found.front();

  if (!s.has_target) return s;
  if (s.trigger.count == 0) {
    s.notes.push_back(fmt::format("no volume trigger (tried '{}'); prepare needs --trigger LABEL or "
                                  "--first-volume-offset SECONDS",
                                  fmt::join(default_trigger_labels(), "', '")));
    return s;
  }
  if (s.trigger.count >= 2 && std::fabs(s.trigger.median_interval - s.repetition_time) > 0.1 * s.repetition_time) {
    s.notes.push_back(fmt::format("'{}' triggers come every {:.6g} s, but the target's TR is {:.6g} s",
                                  s.trigger.label, s.trigger.median_interval, s.repetition_time));
  }
  if (s.trigger.count != s.num_volumes) {
    s.notes.push_back(fmt::format("{} '{}' triggers for {} target volumes (prepare interpolates missing triggers; "
                                  "extra leading ones need --dummy-scans)",
                                  s.trigger.count, s.trigger.label, s.num_volumes));
  }
  return s;
}

std::vector<std::string> sorted_unique(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  values.erase(std::remove(values.begin(), values.end(), std::string()), values.end());
  return values;
}

}  // namespace

const char* to_string(InfoKind kind) {
  switch (kind) {
    case InfoKind::recording: return "recording";
    case InfoKind::bids: return "bids";
    case InfoKind::dataset: return "dataset";
    case InfoKind::model: return "model";
  }
  return "?";
}

InfoKind info_kind(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (fs::is_directory(status)) return InfoKind::bids;
  if (!fs::exists(status)) {
    const auto names = builtin_config_names();
    if (std::find(names.begin(), names.end(), path) != names.end()) return InfoKind::model;
    throw IoError(fmt::format("'{}': no such file or folder (expected {}, or a built-in config name: {})", path,
                              kInfoExpects, fmt::join(names, ", ")));
  }
  const std::string extension = io::lowercase(fs::path(path).extension().string());
  // Companion files (.vmrk .eeg .dat .fdt) go to the reader, whose error names the header to give.
  static const std::set<std::string> recording_extensions{".edf", ".bdf", ".vhdr", ".set",
                                                          ".vmrk", ".eeg", ".dat", ".fdt"};
  if (recording_extensions.count(extension)) return InfoKind::recording;
  if (extension == ".json" || extension == ".pth" || extension == ".pt") return InfoKind::model;
  h5::silence_library_errors();
  if (extension == ".h5" || extension == ".hdf5" || (fs::is_regular_file(status) && H5Fis_hdf5(path.c_str()) > 0)) {
    const h5::File file = [&path] {
      try {
        return h5::File::open_read(path);
      } catch (const FormatError& e) {
        throw FormatError(fmt::format("{}; expected a neurobolt checkpoint or prepared dataset", e.what()));
      }
    }();
    const std::string format =
        file.has_attribute("/", "format") ? "'" + file.string_attribute("/", "format") + "'" : "none";
    if (format == "'neurobolt-dataset'") return InfoKind::dataset;
    if (format == "'neurobolt-checkpoint'") return InfoKind::model;
    throw FormatError(fmt::format("'{}': root attribute 'format': expected 'neurobolt-dataset' (a prepared dataset) or "
                                  "'neurobolt-checkpoint', found {}",
                                  path, format));
  }
  throw FormatError(fmt::format("'{}': expected {}, found {}", path, kInfoExpects,
                                fs::is_regular_file(status)
                                    ? fmt::format("a file with extension '{}'", extension.empty() ? "none" : extension)
                                    : std::string("neither a regular file nor a folder")));
}

// ------------------------------------------------------------------------------------------------
// Recordings

RecordingSummary summarize_recording(const Recording& recording) {
  RecordingSummary s;
  s.path = recording.source;
  s.format = recording.format;
  s.sample_rate = recording.sample_rate;
  s.num_samples = recording.num_samples;
  s.duration = recording.duration();
  s.start_time = recording.start_time;
  s.channels = recording.channels;
  s.num_annotations = static_cast<int64_t>(recording.annotations.size());
  std::map<std::string, int64_t> counts;
  for (const auto& a : recording.annotations) ++counts[a.label];
  for (const auto& [label, count] : counts) s.labels.push_back(LabelCount{label, count, is_default_trigger(label)});
  std::stable_sort(s.labels.begin(), s.labels.end(), [](const auto& a, const auto& b) { return a.count > b.count; });
  s.triggers = find_triggers(annotation_markers(recording.annotations), "EEG annotations");
  s.gaps = recording.gaps;
  s.warnings = recording.warnings;
  return s;
}

RecordingSummary describe_recording(const std::string& path) {
  ReadOptions options;
  options.header_only = true;
  return summarize_recording(read_recording(path, options));
}

std::string format_recording(const RecordingSummary& s) {
  std::string out = fmt::format("{} (EEG recording)\n", s.path);
  out += field("format", fmt::format("{}, {:g} Hz, {}", s.format, s.sample_rate, plural(s.channels.size(), "channel")));
  out += field("duration", fmt::format("{}, {} samples", duration_text(s.duration), s.num_samples));
  out += field("start", s.start_time.empty() ? "unknown" : s.start_time);

  // Channels grouped by type and unit, in order of first appearance.
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  std::vector<std::string> type_counts;
  std::map<std::string, int64_t> per_type;
  std::vector<std::string> type_order;
  for (const auto& c : s.channels) {
    const std::string type = upper(to_string(c.type));
    if (per_type[type]++ == 0) type_order.push_back(type);
    const std::string key = fmt::format("{}, {}", type, c.unit.empty() ? "no unit" : c.unit);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
    if (it == groups.end()) it = groups.insert(groups.end(), {key, {}});
    it->second.push_back(c.name);
  }
  for (const auto& type : type_order) type_counts.push_back(fmt::format("{} {}", per_type[type], type));
  out += field("channels", fmt::format("{}{}{}", s.channels.size(), s.channels.empty() ? "" : ": ",
                                       fmt::join(type_counts, ", ")));
  for (const auto& [key, names] : groups) out += field("", key + ": " + names_text(names, key.size() + 2));

  out += field("annotations", s.num_annotations == 0 ? std::string("none")
                                                    : fmt::format("{}, {}", s.num_annotations,
                                                                  plural(s.labels.size(), "distinct label")));
  for (std::size_t i = 0; i < s.labels.size() && i < kTextLabels; ++i) {
    const auto& l = s.labels[i];
    out += field(fmt::format("{:>10}", l.count), fmt::format("{}{}", l.label, l.trigger ? "   <- volume trigger" : ""));
  }
  if (s.labels.size() > kTextLabels)
    out += field("", fmt::format("... and {} more (--json lists all)", plural(s.labels.size() - kTextLabels, "label")));

  if (s.triggers.empty()) {
    out += field("triggers", fmt::format("none (looked for '{}')", fmt::join(default_trigger_labels(), "', '")));
  } else {
    for (std::size_t i = 0; i < s.triggers.size(); ++i)
      out += field(i == 0 ? "triggers" : "", trigger_text(s.triggers[i]));
    if (s.triggers.size() > 1)
      out += field("", fmt::format("prepare uses '{}' unless --trigger names another", s.triggers.front().label));
  }

  if (s.gaps.empty()) {
    out += field("gaps", "none");
  } else {
    double total = 0.0;
    for (const auto& g : s.gaps) total += g.duration;
    out += field("gaps", fmt::format("{} totalling {:.6g} s (no samples; read as NaN)", plural(s.gaps.size(), "gap"),
                                     total));
    for (std::size_t i = 0; i < s.gaps.size() && i < 5; ++i)
      out += field("", fmt::format("{:.6g} s for {:.6g} s", s.gaps[i].onset, s.gaps[i].duration));
    if (s.gaps.size() > 5) out += field("", fmt::format("... and {} more", s.gaps.size() - 5));
  }
  if (s.warnings.empty()) out += field("warnings", "none");
  for (std::size_t i = 0; i < s.warnings.size(); ++i) out += field(i == 0 ? "warnings" : "", s.warnings[i]);
  return out;
}

std::string recording_json(const RecordingSummary& s, int indent) {
  json channels = json::array();
  for (const auto& c : s.channels) channels.push_back(json{{"name", c.name}, {"type", to_string(c.type)}, {"unit", c.unit}});
  json labels = json::array();
  for (const auto& l : s.labels) labels.push_back(json{{"label", l.label}, {"count", l.count}, {"trigger", l.trigger}});
  json triggers = json::array();
  for (const auto& t : s.triggers) triggers.push_back(trigger_to_json(t));
  json gaps = json::array();
  for (const auto& g : s.gaps) gaps.push_back(json{{"onset", g.onset}, {"duration", g.duration}});
  const json out{{"kind", "recording"},
                 {"path", s.path},
                 {"format", s.format},
                 {"sample_rate", s.sample_rate},
                 {"num_samples", s.num_samples},
                 {"duration", s.duration},
                 {"start_time", s.start_time},
                 {"num_channels", s.channels.size()},
                 {"channels", channels},
                 {"annotations", json{{"count", s.num_annotations}, {"labels", labels}}},
                 {"triggers", triggers},
                 {"gaps", gaps},
                 {"warnings", s.warnings}};
  return out.dump(indent);
}

// ------------------------------------------------------------------------------------------------
// BIDS datasets

BidsSummary describe_bids(const std::string& root, const BidsOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw IoError(fmt::format("BIDS dataset '{}' does not exist or is not a folder", root));
  fs::path root_path = fs::path(root).lexically_normal();
  if (!root_path.has_filename()) root_path = root_path.parent_path();

  BidsOptions bids = options;
  if (bids.derivatives.empty() && bids.atlas.empty()) bids.derivatives = target_derivatives(root_path.string());

  BidsSummary s;
  s.root = root_path.string();
  s.derivatives = bids.derivatives;
  s.atlas = bids.atlas;
  BidsDataset dataset;
  try {
    dataset = index_bids(root_path.string(), bids);
  } catch (const Error& e) {
    // Target problems (ambiguous or malformed targets) are reported, and the EEG side still
    // described; an error on the EEG side itself is thrown again by the second pass.
    if (e.kind() != ErrorKind::config && e.kind() != ErrorKind::format) throw;
    s.target_error = e.what();
    BidsOptions eeg_only = bids;
    eeg_only.find_targets = false;
    dataset = index_bids(root_path.string(), eeg_only);
  }
  s.name = dataset.name;
  s.log = dataset.log;

  std::vector<std::string> subjects, sessions, tasks;
  for (const auto& run : dataset.runs) {
    s.runs.push_back(summarize_run(run, root_path, bids.derivatives));
    const auto& r = s.runs.back();
    subjects.push_back(r.entities.sub);
    sessions.push_back(r.entities.ses);
    tasks.push_back(r.entities.task);
    tally(s.runs_per_subject, r.entities.sub);
    if (r.error.empty()) {
      tally(s.formats, r.format);
      tally(s.sample_rates, r.sample_rate);
      tally(s.channel_counts, r.num_channels);
    }
    if (!r.has_target) continue;
    ++s.num_with_target;
    tally(s.target_origins, r.target_origin);
    tally(s.repetition_times, r.repetition_time);
    if (s.num_with_target == 1) {
      s.roi_names = r.roi_names;
    } else if (r.roi_names != s.roi_names) {
      s.roi_mismatches.push_back(fmt::format("{}: {} ({})", r.path, plural(r.roi_names.size(), "ROI"),
                                             fmt::join(r.roi_names, " ")));
    }
  }
  s.subjects = sorted_unique(subjects);
  s.sessions = sorted_unique(sessions);
  s.tasks = sorted_unique(tasks);
  sort_by_value(s.runs_per_subject);
  sort_by_value(s.formats);
  sort_by_value(s.sample_rates);
  sort_by_value(s.channel_counts);
  sort_by_value(s.target_origins);
  sort_by_value(s.repetition_times);
  return s;
}

std::string format_bids(const BidsSummary& s) {
  std::string out =
      fmt::format("{} (BIDS dataset{})\n", s.root, s.name.empty() ? std::string() : fmt::format(" '{}'", s.name));
  const auto list = [](const std::vector<std::string>& values) {
    return values.empty() ? std::string("none") : counted_names(values);
  };
  out += field("subjects", list(s.subjects));
  out += field("sessions", list(s.sessions));
  out += field("tasks", list(s.tasks));
  std::vector<std::string> per_subject;
  for (const auto& t : s.runs_per_subject) per_subject.push_back(fmt::format("sub-{} {}", t.value, t.count));
  const std::string runs = plural(s.runs.size(), "EEG run") + " (";
  out += field("runs", fmt::format("{}{}), {} with an fMRI target", runs,
                                   per_subject.empty() ? "none" : wrapped(per_subject, ", ", runs.size()),
                                   s.num_with_target));
  const auto same = [](const auto& v) { return fmt::format("{}", v); };
  out += field("EEG", fmt::format("{}; {}; {}", tally_text(s.formats, same),
                                  tally_text(s.sample_rates, [](double r) { return fmt::format("{:g} Hz", r); }),
                                  tally_text(s.channel_counts, [](int64_t n) { return plural(n, "channel"); })));
  out += field("targets", s.num_with_target == 0 ? std::string("none") : tally_text(s.target_origins, same));
  if (!s.target_error.empty()) out += field("", "error: " + s.target_error);
  if (s.num_with_target > 0) {
    out += field("TR", tally_text(s.repetition_times, [](double tr) { return fmt::format("{:g} s", tr); }));
    out += field("ROIs", counted_names(s.roi_names));
    for (const auto& m : s.roi_mismatches) out += field("", "other ROIs in " + m);
  }
  std::string searched = s.derivatives.empty() ? "none" : fmt::format("{}", fmt::join(s.derivatives, ", "));
  if (!s.atlas.empty()) searched += fmt::format("; BOLD images with atlas '{}'", s.atlas);
  out += field("searched", searched);

  for (std::size_t i = 0; i < s.runs.size(); ++i) {
    const auto& r = s.runs[i];
    out += field(i == 0 ? "per run" : "", r.path);
    const std::string indent(kLabelWidth + 2, ' ');
    if (!r.error.empty()) {
      out += indent + "EEG unreadable: " + r.error + "\n";
    } else {
      out += indent + fmt::format("EEG {}, {:g} Hz, {}, {}; bad channels: {}\n", r.format, r.sample_rate,
                                  plural(r.num_channels, "channel"), duration_text(r.duration),
                                  r.bad_channels.empty() ? "none" : fmt::format("{}", fmt::join(r.bad_channels, " ")));
      out += indent + "triggers " + (r.trigger.count > 0 ? trigger_text(r.trigger) : std::string("none")) + "\n";
    }
    if (r.has_target) {
      out += indent + fmt::format("target {}: {}, TR {:g} s, {}\n", r.target_path, plural(r.num_volumes, "volume"),
                                  r.repetition_time, plural(r.roi_names.size(), "ROI"));
    } else {
      out += indent + "target none (usable for inference only)\n";
    }
    for (const auto& note : r.notes) out += indent + "note: " + note + "\n";
  }
  if (s.log.empty()) out += field("index log", "empty");
  for (std::size_t i = 0; i < s.log.size(); ++i) out += field(i == 0 ? "index log" : "", s.log[i]);
  return out;
}

std::string bids_json(const BidsSummary& s, int indent) {
  json runs = json::array();
  for (const auto& r : s.runs) {
    json run{{"path", r.path},
             {"entities", json{{"sub", r.entities.sub},
                               {"ses", r.entities.ses},
                               {"task", r.entities.task},
                               {"acq", r.entities.acq},
                               {"run", r.entities.run}}},
             {"bad_channels", r.bad_channels},
             {"notes", r.notes}};
    if (r.error.empty()) {
      run["format"] = r.format;
      run["sample_rate"] = r.sample_rate;
      run["num_channels"] = r.num_channels;
      run["duration"] = r.duration;
      run["trigger"] = r.trigger.count > 0 ? trigger_to_json(r.trigger) : json(nullptr);
    } else {
      run["error"] = r.error;
    }
    run["target"] = r.has_target ? json{{"path", r.target_path},
                                        {"origin", r.target_origin},
                                        {"repetition_time", r.repetition_time},
                                        {"num_volumes", r.num_volumes},
                                        {"num_rois", r.roi_names.size()}}
                                 : json(nullptr);
    runs.push_back(std::move(run));
  }
  const json out{{"kind", "bids"},
                 {"root", s.root},
                 {"name", s.name},
                 {"subjects", s.subjects},
                 {"sessions", s.sessions},
                 {"tasks", s.tasks},
                 {"num_runs", s.runs.size()},
                 {"num_with_target", s.num_with_target},
                 {"runs_per_subject", string_tally_json(s.runs_per_subject)},
                 {"formats", string_tally_json(s.formats)},
                 {"sample_rates", number_tally_json(s.sample_rates)},
                 {"channel_counts", number_tally_json(s.channel_counts)},
                 {"target_origins", string_tally_json(s.target_origins)},
                 {"repetition_times", number_tally_json(s.repetition_times)},
                 {"roi_names", s.roi_names},
                 {"roi_mismatches", s.roi_mismatches},
                 {"target_error", s.target_error.empty() ? json(nullptr) : json(s.target_error)},
                 {"derivatives", s.derivatives},
                 {"atlas", s.atlas},
                 {"runs", runs},
                 {"log", s.log}};
  return out.dump(indent);
}

// ------------------------------------------------------------------------------------------------
// Prepared datasets

DatasetSummary describe_dataset(const std::string& path) {
  const DatasetReader reader(path);
  DatasetSummary s;
  s.path = path;
  std::error_code ec;
  s.file_bytes = static_cast<int64_t>(fs::file_size(path, ec));
  s.num_windows = reader.num_windows();
  s.num_channels = reader.num_channels();
  s.window_samples = reader.window_samples();
  s.sample_rate = reader.sample_rate();
  s.num_rois = reader.num_rois();
  s.channel_names = reader.channel_names();
  s.roi_names = reader.roi_names();
  s.subjects = reader.subjects();
  s.split_mode = to_string(reader.split_mode());
  s.num_folds = reader.num_folds();
  for (const auto& name : reader.run_names()) s.runs.push_back(DatasetRunSummary{name, "", 0, {}});
  for (int64_t w = 0; w < s.num_windows; ++w) {
    auto& run = s.runs.at(static_cast<std::size_t>(reader.run_of(w)));
    run.subject = reader.subject_of(w);
    ++run.windows;
    const Split split = reader.split_of(w);
    if (split == Split::excluded) {
      ++s.excluded_windows;
    } else {
      ++run.windows_per_split[static_cast<std::size_t>(split)];
      ++s.windows_per_split[static_cast<std::size_t>(split)];
    }
  }
  s.parameters_json = reader.parameters_json();
  s.provenance_json = reader.provenance_json();
  s.fingerprint = reader.fingerprint();
  return s;
}

std::string format_dataset(const DatasetSummary& s) {
  std::string out = fmt::format("{} (prepared dataset, {})\n", s.path, bytes_text(s.file_bytes));
  out += field("windows", fmt::format("{} x {} channels x {} samples ({:g} s at {:g} Hz)", s.num_windows,
                                      s.num_channels, s.window_samples,
                                      s.sample_rate > 0 ? static_cast<double>(s.window_samples) / s.sample_rate : 0.0,
                                      s.sample_rate));
  std::string split = fmt::format("{}: train {}, val {}, test {}", s.split_mode, s.windows_per_split[0],
                                  s.windows_per_split[1], s.windows_per_split[2]);
  if (s.excluded_windows > 0) split += fmt::format(", {} in intra-run gaps", s.excluded_windows);
  if (s.num_folds > 0) split += fmt::format(" (fold 0 of {})", s.num_folds);
  out += field("split", split);
  out += field("channels", counted_names(s.channel_names));
  out += field("ROIs", counted_names(s.roi_names));
  out += field("subjects", counted_names(s.subjects));
  for (std::size_t i = 0; i < s.runs.size(); ++i) {
    const auto& r = s.runs[i];
    out += field(i == 0 ? "runs" : "", fmt::format("{}: {} (train {}, val {}, test {})", r.name,
                                                    plural(r.windows, "window"), r.windows_per_split[0],
                                                    r.windows_per_split[1], r.windows_per_split[2]));
  }
  // Parameters and provenance as one "key=value" item each, so that lists wrap; long values
  // (method descriptions, file lists) are left to --json.
  const auto items = [](const std::string& text) {
    std::vector<std::string> parts;
    const json object = json::parse(text, nullptr, false);
    if (!object.is_object()) return std::vector<std::string>{text};
    int64_t long_values = 0;
    for (const auto& [key, value] : object.items()) {
      const std::string shown = value.is_string() ? value.get<std::string>() : value.dump();
      if (shown.size() > kLongValue) {
        ++long_values;
        continue;
      }
      parts.push_back(fmt::format("{}={}", key, shown));
    }
    if (long_values > 0) parts.push_back(fmt::format("({} more in --json)", long_values));
    return parts;
  };
  out += field("parameters", wrapped(items(s.parameters_json), ", "));
  out += field("provenance", wrapped(items(s.provenance_json), ", "));
  out += field("fingerprint", s.fingerprint);
  return out;
}

std::string dataset_json(const DatasetSummary& s, int indent) {
  json runs = json::array();
  for (const auto& r : s.runs) {
    runs.push_back(json{{"name", r.name},
                        {"subject", r.subject},
                        {"windows", r.windows},
                        {"train", r.windows_per_split[0]},
                        {"val", r.windows_per_split[1]},
                        {"test", r.windows_per_split[2]}});
  }
  const json out{{"kind", "dataset"},
                 {"path", s.path},
                 {"file_bytes", s.file_bytes},
                 {"num_windows", s.num_windows},
                 {"num_channels", s.num_channels},
                 {"window_samples", s.window_samples},
                 {"sample_rate", s.sample_rate},
                 {"num_rois", s.num_rois},
                 {"channel_names", s.channel_names},
                 {"roi_names", s.roi_names},
                 {"subjects", s.subjects},
                 {"split_mode", s.split_mode},
                 {"num_folds", s.num_folds},
                 {"splits",
                  json{{"train", s.windows_per_split[0]},
                       {"val", s.windows_per_split[1]},
                       {"test", s.windows_per_split[2]},
                       {"excluded", s.excluded_windows}}},
                 {"runs", runs},
                 {"parameters", parsed_or_text(s.parameters_json)},
                 {"provenance", parsed_or_text(s.provenance_json)},
                 {"fingerprint", s.fingerprint}};
  return out.dump(indent);
}

// ------------------------------------------------------------------------------------------------
// Models

std::string model_json(const std::string& source, const ModelConfig& config, const std::array<int64_t, 3>& parameters,
                       const std::string& metadata_json, int indent) {
  const json out{{"kind", "model"},
                 {"name", config.name},
                 {"source", source},
                 {"config", json::parse(config.to_json())},
                 {"parameters",
                  json{{"temporal", parameters[0]},
                       {"spectral", parameters[1]},
                       {"head", parameters[2]},
                       {"total", parameters[0] + parameters[1] + parameters[2]}}},
                 {"metadata", parsed_or_text(metadata_json.empty() ? "{}" : metadata_json)}};
  return out.dump(indent);
}

}  // namespace neurobolt
