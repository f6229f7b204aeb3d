// Per-recording EEG preprocessing shared by prepare and infer (rules in neurobolt/preprocess.hpp).
#include "neurobolt/preprocess.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

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

// Samples of a channel as read (a range: Recording::data_first on).
void check_finite(const Recording& rec, int64_t channel) {
  const float* x = rec.channel_data(channel);
  for (int64_t i = 0; i < rec.samples_in_data(); ++i) {
    if (std::isfinite(x[i])) continue;
    const int64_t s = rec.data_first + i;
    const double t = static_cast<double>(s) / rec.sample_rate;
    bool in_gap = false;
    for (const auto& g : rec.gaps) in_gap = in_gap || (t >= g.onset && t < g.onset + g.duration);
    throw FormatError(fmt::format("'{}': channel '{}' sample {} ({:.3f} s): expected a finite value, found {}{}",
                                  rec.source, rec.channels[channel].name, s + 1, t,
                                  std::isnan(x[i]) ? "NaN" : (x[i] > 0 ? "+Inf" : "-Inf"),
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
      if (missing.size() == options.channels.size()) {
        // Nothing would be read: a dataset (or prediction) of zeros, whatever the file holds.
        throw ConfigError(fmt::format("'{}': none of the {} required channels ({}) is in the recording (it has: {}); "
                                      "zero-filling all of them would give zeros only",
                                      path, missing.size(), fmt::join(missing, ", "), fmt::join(good_names, ", ")));
      }
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

namespace {

// A stretch [first, first + count) of preprocessed samples asked of a recording with n of them.
void check_span(const std::string& source, int64_t first, int64_t count, int64_t n) {
  if (first < 0 || count < 0 || first + count > n) {
    throw Error(ErrorKind::internal,
                fmt::format("'{}': preprocessed samples [{}, {}) asked of {}", source, first, first + count, n));
  }
}

// Reads and resamples a recording's output channels in time blocks (steps 2 and 3 before the
// filters): what preprocess_eeg and EegStream share.
class BlockReader {
 public:
  BlockReader(const Recording& header, const EegChannelPlan& plan, const EegPreprocessOptions& options)
      : header_(header), plan_(plan), resampler_(make_resampler(header, options)) {
    if (!(header.sample_rate > 0) || header.num_samples <= 0) {
      throw FormatError(fmt::format("'{}': no samples to preprocess (sample rate {} Hz, {} samples)", header.source,
                                    header.sample_rate, header.num_samples));
    }
    num_samples_ = resampler_.output_length(header.num_samples);
    // Recording channels to read, in recording order: the output row each is copied into and the
    // interpolation source it is.
    std::map<int64_t, Needed> needed;
    for (std::size_t c = 0; c < plan.channels.size(); ++c)
      if (plan.source[c]) needed[*plan.source[c]].row = static_cast<int64_t>(c);
    for (std::size_t s = 0; s < plan.interpolation_source.size(); ++s)
      needed[plan.interpolation_source[s]].source = static_cast<int64_t>(s);
    std::vector<std::string> names;
    for (const auto& [index, use] : needed) {
      needed_.push_back(use);
      names.push_back(header.channels[index].name);
    }
    if (!names.empty()) {
      ReadOptions read;
      read.channels = names;
      file_ = std::make_unique<RecordingReader>(header.source, read);
      const Recording& opened = file_->header();
      if (opened.num_samples != header.num_samples || opened.sample_rate != header.sample_rate) {
        throw Error(ErrorKind::internal, fmt::format("'{}': header and data disagree on the length", header.source));
      }
    }
    // Output samples per block so that the needed channels' input stays under max_read_bytes.
    const auto bytes_per_input = static_cast<double>(std::max<std::size_t>(1, names.size()) * sizeof(float));
    const double inputs = std::max(1.0, static_cast<double>(options.max_read_bytes) / bytes_per_input);
    block_ = std::max<int64_t>(
        1, static_cast<int64_t>(inputs * static_cast<double>(resampler_.up()) / static_cast<double>(resampler_.down())));
  }

  int64_t num_samples() const { return num_samples_; }
  int64_t block_samples() const { return block_; }

  // Output samples [first, first + count), unfiltered, into out[c * count + s]; reads the file in
  // blocks of block_samples().
  void read(int64_t first, int64_t count, float* out) {
    const auto C = static_cast<int64_t>(plan_.channels.size());
    check_span(header_.source, first, count, num_samples_);
    std::fill(out, out + C * count, 0.0f);
    for (int64_t a = first; a < first + count; a += block_) {
      const int64_t m = std::min(block_, first + count - a);
      if (!file_) continue;
      const auto span = resampler_.input_span(a, m, header_.num_samples);
      const Recording rec = file_->read(span.first, span.end - span.first);
      for (std::size_t k = 0; k < needed_.size(); ++k) {
        const auto from = static_cast<int64_t>(k);  // read.channels order
        check_finite(rec, from);
        const Needed& use = needed_[k];
        float* resampled = nullptr;
        if (use.row >= 0) {
          resampled = out + use.row * count + (a - first);
        } else {
          scratch_.resize(static_cast<std::size_t>(m));
          resampled = scratch_.data();
        }
        resampler_.apply_span(rec.channel_data(from), rec.data_first, rec.samples_in_data(), header_.num_samples, a, m,
                              resampled);
        if (use.source < 0) continue;
        // Each source adds its share to every interpolated channel, so that no source has to be
        // kept at the output rate.
        for (std::size_t t = 0; t < plan_.interpolation_target.size(); ++t) {
          const double w = plan_.interpolation.weight(static_cast<int64_t>(t), use.source);
          float* target = out + plan_.interpolation_target[t] * count + (a - first);
          for (int64_t i = 0; i < m; ++i) target[i] = static_cast<float>(target[i] + w * resampled[i]);
        }
      }
    }
  }

 private:
  struct Needed {
    int64_t row = -1;
    int64_t source = -1;
  };
  static signal::PolyphaseResampler make_resampler(const Recording& header, const EegPreprocessOptions& options) {
    validate(options);
    if (!(header.sample_rate > 0)) return signal::PolyphaseResampler(1, 1);  // refused in the constructor
    const auto ratio = signal::resample_ratio(header.sample_rate, options.sample_rate);
    return signal::PolyphaseResampler(ratio.up, ratio.down);
  }

  const Recording& header_;
  const EegChannelPlan& plan_;
  signal::PolyphaseResampler resampler_;
  int64_t num_samples_ = 0;
  int64_t block_ = 1;
  std::vector<Needed> needed_;             // per channel read, recording order
  std::unique_ptr<RecordingReader> file_;  // the channels needed (none: every output zero-filled)
  std::vector<float> scratch_;
};

bool has_filters(const EegPreprocessOptions& o) { return o.highpass_hz.has_value() || o.notch_hz.has_value(); }

// The optional zero-phase filters, over whole channels (data: [channels, n] channel-major).
void apply_filters(const Recording& header, const EegChannelPlan& plan, const EegPreprocessOptions& options,
                   float* data, int64_t n) {
  if (!has_filters(options)) return;
  const auto C = static_cast<int64_t>(plan.channels.size());
  std::optional<signal::IirFilter> highpass, notch;
  if (options.highpass_hz) {
    highpass = signal::butter(options.highpass_order, *options.highpass_hz, options.sample_rate,
                              signal::FilterType::highpass);
  }
  if (options.notch_hz) notch = signal::iirnotch(*options.notch_hz, options.notch_quality, options.sample_rate);
  std::vector<bool> has_data(static_cast<std::size_t>(C), false);
  for (int64_t c = 0; c < C; ++c) has_data[c] = plan.source[c].has_value();
  for (auto t : plan.interpolation_target) has_data[t] = true;
  std::vector<double> x(static_cast<std::size_t>(n));
  for (int64_t c = 0; c < C; ++c) {
    if (!has_data[c]) continue;
    float* channel = data + c * n;
    std::copy(channel, channel + n, x.begin());
    if (highpass) {
      if (n <= signal::sosfiltfilt_padlen(highpass->sos)) {
        throw ConfigError(fmt::format("'{}': too short for the EEG high-pass", header.source));
      }
      x = signal::sosfiltfilt(highpass->sos, x);
    }
    if (notch) x = signal::filtfilt(notch->b, notch->a, x);
    std::copy(x.begin(), x.end(), channel);
  }
}

// The whole preprocessed recording from an opened reader: blocks, then the filters.
PreprocessedEeg preprocess_whole(BlockReader& reader, const Recording& header, const EegChannelPlan& plan,
                                 const EegPreprocessOptions& options, const PreprocessProgress& progress) {
  auto report = [&](double fraction, const char* stage) {
    if (progress) progress(fraction, stage);
  };
  const auto C = static_cast<int64_t>(plan.channels.size());
  const int64_t n_out = reader.num_samples();

  PreprocessedEeg out;
  out.num_samples = n_out;
  out.sample_rate = options.sample_rate;
  out.source_rate = header.sample_rate;
  out.report = plan.report;
  out.data.assign(static_cast<std::size_t>(C * n_out), 0.0f);

  const int64_t block = reader.block_samples();
  std::vector<float> piece;
  for (int64_t a = 0; a < n_out; a += block) {
    report(0.8 * static_cast<double>(a) / static_cast<double>(n_out), "reading");
    const int64_t m = std::min(block, n_out - a);
    piece.resize(static_cast<std::size_t>(C * m));
    reader.read(a, m, piece.data());
    for (int64_t c = 0; c < C; ++c)
      std::copy(piece.begin() + c * m, piece.begin() + (c + 1) * m, out.data.begin() + c * n_out + a);
  }
  if (has_filters(options)) {
    report(0.8, "filtering");
    apply_filters(header, plan, options, out.data.data(), n_out);
  }
  report(1.0, "done");
  return out;
}

}  // namespace

PreprocessedEeg preprocess_eeg(const Recording& header, const EegChannelPlan& plan, const EegPreprocessOptions& options,
                               const PreprocessProgress& progress) {
  validate(options);
  BlockReader reader(header, plan, options);
  return preprocess_whole(reader, header, plan, options, progress);
}

struct EegStream::Impl {
  Impl(const Recording& h, const EegChannelPlan& p, const EegPreprocessOptions& o)
      : header(h), plan(p), options(o), reader(header, plan, options) {}
  Recording header;  // without samples
  EegChannelPlan plan;
  EegPreprocessOptions options;
  BlockReader reader;
  std::optional<PreprocessedEeg> whole;  // with filters: the whole filtered output
};

EegStream::EegStream(const Recording& header, const EegChannelPlan& plan, const EegPreprocessOptions& options,
                     const PreprocessProgress& progress) {
  validate(options);
  Recording bare = header;
  bare.data.clear();
  bare.data.shrink_to_fit();
  impl_ = std::make_unique<Impl>(bare, plan, options);
  if (has_filters(options)) {
    impl_->whole = preprocess_whole(impl_->reader, impl_->header, impl_->plan, impl_->options, progress);
  }
}

EegStream::~EegStream() = default;

int64_t EegStream::num_samples() const { return impl_->reader.num_samples(); }
double EegStream::sample_rate() const { return impl_->options.sample_rate; }
int64_t EegStream::block_samples() const { return impl_->reader.block_samples(); }
const PreprocessReport& EegStream::report() const { return impl_->plan.report; }
bool EegStream::keeps_whole() const { return impl_->whole.has_value(); }

void EegStream::read(int64_t first, int64_t count, float* out) {
  if (!impl_->whole) {
    impl_->reader.read(first, count, out);
    return;
  }
  const auto& w = *impl_->whole;
  check_span(impl_->header.source, first, count, w.num_samples);
  const auto C = static_cast<int64_t>(impl_->plan.channels.size());
  for (int64_t c = 0; c < C; ++c)
    std::copy(w.data.begin() + c * w.num_samples + first, w.data.begin() + c * w.num_samples + first + count,
              out + c * count);
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
      warnings.push_back(fmt::format("'{}': trigger '{}' used; '{}' also occurs ({}) and was ignored", header.source,
                                     found.label, label,
                                     times.size() == 1 ? std::string("once") : fmt::format("{} times", times.size())));
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
