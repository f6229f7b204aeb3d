// Per-recording EEG preprocessing shared by prepare and infer (rules in neurobolt/preprocess.hpp).
#include "neurobolt/preprocess.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/montage.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt {
namespace {

std::string upper(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// Channel names compare as map_channels compares them.
std::string channel_key(const std::string& name) { return upper(canonical_channel_name(name)); }

bool is_eeg(const Channel& channel, const std::map<std::string, std::string>& types) {
  auto it = types.find(channel.name);
  if (it == types.end()) {
    const std::string key = channel_key(channel.name);
    it = std::find_if(types.begin(), types.end(), [&](const auto& entry) { return channel_key(entry.first) == key; });
  }
  if (it != types.end()) return upper(it->second) == "EEG";
  return channel.type == ChannelType::eeg;
}

std::string plural(std::size_t n, const char* one, const char* many) { return n == 1 ? one : many; }

void check_finite(const Recording& rec, int64_t channel) {
  const float* x = rec.channel_data(channel);
  for (int64_t s = 0; s < rec.num_samples; ++s) {
    if (std::isfinite(x[s])) continue;
    const double t = static_cast<double>(s) / rec.sample_rate;
    bool in_gap = false;
    for (const auto& g : rec.gaps) in_gap = in_gap || (t >= g.onset && t < g.onset + g.duration);
    throw FormatError(fmt::format("'{}': channel '{}' sample {} ({:.3f} s): expected a finite value, found {}{}",
                                  rec.source, rec.channels[channel].name, s + 1, t,
                                  std::isnan(x[s]) ? "NaN" : (x[s] > 0 ? "+Inf" : "-Inf"),
                                  in_gap ? " (a gap of the discontinuous recording)" : ""));
  }
}

void validate(const EegPreprocessOptions& o) {
  if (o.channels.empty()) throw ConfigError("EEG preprocessing: no output channels given");
  if (!(o.sample_rate > 0)) {
    throw ConfigError(fmt::format("EEG preprocessing: sample rate must be > 0 Hz, found {}", o.sample_rate));
  }
  if (o.max_read_bytes < 1) {
    throw ConfigError(fmt::format("EEG preprocessing: max read bytes must be >= 1, found {}", o.max_read_bytes));
  }
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

}  // namespace

const char* to_string(MissingChannelPolicy policy) {
  switch (policy) {
    case MissingChannelPolicy::interpolate: return "interpolate";
    case MissingChannelPolicy::zero: return "zero";
    case MissingChannelPolicy::error: return "error";
  }
  return "?";
}

MissingChannelPolicy parse_missing_channel_policy(const std::string& text) {
  for (auto p : {MissingChannelPolicy::interpolate, MissingChannelPolicy::zero, MissingChannelPolicy::error})
    if (text == to_string(p)) return p;
  throw ConfigError(fmt::format("missing-channel policy: expected interpolate, zero or error, found '{}'", text));
}

std::vector<std::string> standard_eeg_channels(const Recording& header,
                                               const std::map<std::string, std::string>& channel_types) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& channel : header.channels) {
    if (!is_eeg(channel, channel_types) || !has_standard_position(channel.name)) continue;
    if (seen.insert(channel_key(channel.name)).second) out.push_back(canonical_channel_name(channel.name));
  }
  return out;
}

EegChannelPlan plan_eeg_channels(const Recording& header, const std::vector<std::string>& bad_channels,
                                 const EegPreprocessOptions& options) {
  validate(options);
  const std::string& path = header.source;
  std::set<std::string> bad_keys;
  for (const auto& b : bad_channels) bad_keys.insert(channel_key(b));
  std::vector<std::string> good_names;  // the recording's channels that are not marked bad
  std::vector<int64_t> good_index;
  for (int64_t i = 0; i < header.num_channels(); ++i) {
    if (bad_keys.count(channel_key(header.channels[i].name)) > 0) continue;
    good_names.push_back(header.channels[i].name);
    good_index.push_back(i);
  }
  const ChannelMapping mapping = map_channels(good_names, options.channels, true);

  EegChannelPlan plan;
  plan.channels = options.channels;
  for (const auto& src : mapping.source)
    plan.source.push_back(src ? std::optional<int64_t>(good_index[*src]) : std::nullopt);
  for (const auto& w : mapping.warnings) plan.report.warnings.push_back(fmt::format("'{}': {}", path, w));
  plan.report.unmapped = mapping.unmapped;
  if (mapping.missing.empty()) return plan;

  auto marked_bad = [&](const std::string& missing) {
    std::string out;
    for (const auto& b : bad_channels)
      if (channel_key(b) == channel_key(missing)) out += fmt::format(" ('{}' is marked bad)", b);
    return out;
  };
  const auto& missing = mapping.missing;
  switch (options.missing) {
    case MissingChannelPolicy::error: {
      std::string bad;
      for (const auto& m : missing) bad += marked_bad(m);
      throw ConfigError(
          fmt::format("'{}': {} required {} missing: {}{} (the recording has: {}); interpolate them "
                      "(--missing-channels interpolate) or zero-fill them (--missing-channels zero)",
                      path, missing.size(), plural(missing.size(), "channel is", "channels are"),
                      fmt::join(missing, ", "), bad, fmt::join(good_names, ", ")));
    }
    case MissingChannelPolicy::zero:
      plan.report.zero_filled = missing;
      plan.report.warnings.push_back(fmt::format(
          "'{}': {} {} zero-filled", path, plural(missing.size(), "channel", "channels"), fmt::join(missing, ", ")));
      return plan;
    case MissingChannelPolicy::interpolate: break;
  }

  for (const auto& m : missing) {
    if (!has_standard_position(m)) {
      throw ConfigError(
          fmt::format("'{}': required channel '{}' is missing{} and cannot be interpolated: it has no "
                      "position in the standard 10-05 system; zero-fill it instead (--missing-channels "
                      "zero)",
                      path, m, marked_bad(m)));
    }
  }
  std::vector<std::string> source_names;
  std::set<std::string> seen;
  for (int64_t i : good_index) {
    const Channel& channel = header.channels[i];
    if (!is_eeg(channel, options.channel_types) || !has_standard_position(channel.name)) continue;
    if (!seen.insert(channel_key(channel.name)).second) continue;
    source_names.push_back(channel.name);
    plan.interpolation_source.push_back(i);
  }
  if (static_cast<int64_t>(source_names.size()) < kMinInterpolationSources) {
    std::string bad;
    for (const auto& m : missing) bad += marked_bad(m);
    throw ConfigError(fmt::format(
        "'{}': cannot interpolate {}{}: {} good EEG {} with a standard 10-05 position "
        "({}), at least {} needed; zero-fill instead (--missing-channels zero)",
        path, fmt::join(missing, ", "), bad, source_names.size(), plural(source_names.size(), "channel", "channels"),
        source_names.empty() ? "none" : fmt::format("{}", fmt::join(source_names, ", ")), kMinInterpolationSources));
  }
  plan.interpolation = standard_interpolation(source_names, missing);
  for (const auto& m : missing) {
    const auto it = std::find(options.channels.begin(), options.channels.end(), m);
    plan.interpolation_target.push_back(it - options.channels.begin());
  }
  plan.report.interpolated = missing;
  plan.report.interpolation_sources = source_names;
  return plan;
}

PreprocessedEeg preprocess_eeg(const Recording& header, const EegChannelPlan& plan, const EegPreprocessOptions& options,
                               const PreprocessProgress& progress) {
  validate(options);
  const std::string& path = header.source;
  if (!(header.sample_rate > 0) || header.num_samples <= 0) {
    throw FormatError(fmt::format("'{}': no samples to preprocess (sample rate {} Hz, {} samples)", path,
                                  header.sample_rate, header.num_samples));
  }
  auto report = [&](double fraction, const char* stage) {
    if (progress) progress(fraction, stage);
  };
  const auto C = static_cast<int64_t>(plan.channels.size());
  const auto ratio = signal::resample_ratio(header.sample_rate, options.sample_rate);
  const signal::PolyphaseResampler resampler(ratio.up, ratio.down);
  const int64_t n_out = resampler.output_length(header.num_samples);

  PreprocessedEeg out;
  out.num_samples = n_out;
  out.sample_rate = options.sample_rate;
  out.source_rate = header.sample_rate;
  out.report = plan.report;
  out.data.assign(static_cast<std::size_t>(C * n_out), 0.0f);

  // Recording channels to read, in recording order: the output row each is copied into and the
  // interpolation source it is.
  struct Needed {
    int64_t row = -1;
    int64_t source = -1;
  };
  std::map<int64_t, Needed> needed;
  for (int64_t c = 0; c < C; ++c)
    if (plan.source[c]) needed[*plan.source[c]].row = c;
  for (std::size_t s = 0; s < plan.interpolation_source.size(); ++s)
    needed[plan.interpolation_source[s]].source = static_cast<int64_t>(s);
  std::vector<int64_t> order;
  for (const auto& entry : needed) order.push_back(entry.first);

  const int64_t bytes_per_channel = header.num_samples * static_cast<int64_t>(sizeof(float));
  const int64_t per_group = std::max<int64_t>(1, options.max_read_bytes / bytes_per_channel);
  const auto num_channels = static_cast<int64_t>(order.size());
  std::vector<float> scratch;
  for (int64_t first = 0; first < num_channels; first += per_group) {
    const int64_t last = std::min(num_channels, first + per_group);
    const double done = static_cast<double>(first) / static_cast<double>(num_channels);
    report(0.8 * done, "reading");
    ReadOptions read;
    for (int64_t k = first; k < last; ++k) read.channels.push_back(header.channels[order[k]].name);
    const Recording rec = read_recording(path, read);
    if (rec.num_samples != header.num_samples || rec.sample_rate != header.sample_rate) {
      throw Error(ErrorKind::internal, fmt::format("'{}': header and data disagree on the length", path));
    }
    report(0.8 * (done + 0.5 * static_cast<double>(last - first) / static_cast<double>(num_channels)), "resampling");
    for (int64_t k = first; k < last; ++k) {
      const int64_t from = rec.find_channel(header.channels[order[k]].name);
      check_finite(rec, from);
      const Needed& use = needed[order[k]];
      float* resampled = nullptr;
      if (use.row >= 0) {
        resampled = out.data.data() + use.row * n_out;
      } else {
        scratch.resize(static_cast<std::size_t>(n_out));
        resampled = scratch.data();
      }
      if (ratio.up == 1 && ratio.down == 1) {
        std::copy(rec.channel_data(from), rec.channel_data(from) + rec.num_samples, resampled);
      } else {
        resampler.apply(rec.channel_data(from), rec.num_samples, resampled);
      }
      if (use.source < 0) continue;
      // Each source adds its share to every interpolated channel, so that no source has to be
      // kept at the output rate.
      for (std::size_t t = 0; t < plan.interpolation_target.size(); ++t) {
        const double w = plan.interpolation.weight(static_cast<int64_t>(t), use.source);
        float* target = out.data.data() + plan.interpolation_target[t] * n_out;
        for (int64_t i = 0; i < n_out; ++i) target[i] = static_cast<float>(target[i] + w * resampled[i]);
      }
    }
  }

  if (options.highpass_hz || options.notch_hz) {
    report(0.8, "filtering");
    std::optional<signal::IirFilter> highpass, notch;
    if (options.highpass_hz) {
      highpass = signal::butter(options.highpass_order, *options.highpass_hz, options.sample_rate,
                                signal::FilterType::highpass);
    }
    if (options.notch_hz) notch = signal::iirnotch(*options.notch_hz, options.notch_quality, options.sample_rate);
    std::vector<bool> has_data(static_cast<std::size_t>(C), false);
    for (int64_t c = 0; c < C; ++c) has_data[c] = plan.source[c].has_value();
    for (auto t : plan.interpolation_target) has_data[t] = true;
    std::vector<double> x(static_cast<std::size_t>(n_out));
    for (int64_t c = 0; c < C; ++c) {
      if (!has_data[c]) continue;
      float* channel = out.data.data() + c * n_out;
      std::copy(channel, channel + n_out, x.begin());
      if (highpass) {
        if (n_out <= signal::sosfiltfilt_padlen(highpass->sos)) {
          throw ConfigError(fmt::format("'{}': too short for the EEG high-pass", path));
        }
        x = signal::sosfiltfilt(highpass->sos, x);
      }
      if (notch) x = signal::filtfilt(notch->b, notch->a, x);
      std::copy(x.begin(), x.end(), channel);
    }
  }
  report(1.0, "done");
  return out;
}

PreprocessedEeg preprocess_eeg(const std::string& eeg_path, const std::vector<std::string>& bad_channels,
                               const EegPreprocessOptions& options, const PreprocessProgress& progress) {
  validate(options);
  ReadOptions header_only;
  header_only.header_only = true;
  const Recording header = read_recording(eeg_path, header_only);
  const EegChannelPlan plan = plan_eeg_channels(header, bad_channels, options);
  return preprocess_eeg(header, plan, options, progress);
}

VolumeTriggers find_volume_triggers(const Recording& header, const std::vector<BidsEvent>& events,
                                    const std::string& events_path, const std::vector<std::string>& labels,
                                    std::vector<std::string>& warnings) {
  const bool automatic = labels.empty();
  const auto& tried = automatic ? default_trigger_labels() : labels;
  const double end = header.duration();
  auto from_annotations = [&](const std::string& label) {
    std::vector<double> t;
    for (const auto& a : header.annotations)
      if (trigger_label_matches(label, a.label)) t.push_back(a.onset);
    return t;
  };
  auto from_events = [&](const std::string& label) {
    std::vector<double> t;
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto& e = events[i];
      if (!trigger_label_matches(label, e.trial_type) && !trigger_label_matches(label, e.value)) continue;
      if (!std::isfinite(e.onset) || e.onset < 0 || e.onset > end + 0.5 / header.sample_rate) {
        throw FormatError(
            fmt::format("'{}' row {}: trigger '{}' onset: expected 0 to {} s (the end of '{}'), found {} s",
                        events_path, i + 1, label, end, header.source, e.onset));
      }
      t.push_back(e.onset);
    }
    return t;
  };
  VolumeTriggers found;
  for (const auto& label : tried) {
    if (!found.times.empty() && !automatic) break;
    auto times = from_annotations(label);
    std::string source = "EEG annotations";
    if (times.empty()) {
      times = from_events(label);
      source = "events.tsv";
    }
    if (times.empty()) continue;
    if (found.times.empty()) {
      found = VolumeTriggers{std::move(times), label, source};
    } else {
      warnings.push_back(fmt::format("'{}': trigger '{}' used; '{}' also occurs ({} times) and was ignored",
                                     header.source, found.label, label, times.size()));
    }
  }
  if (found.times.empty()) {
    throw ConfigError(
        fmt::format("'{}': no volume trigger found (tried {}); {}. Name the trigger (--trigger LABEL) or "
                    "give the first volume's onset (--first-volume-offset SECONDS)",
                    header.source, fmt::format("'{}'", fmt::join(tried, "', '")), marker_summary(header, events)));
  }
  return found;
}

}  // namespace neurobolt
