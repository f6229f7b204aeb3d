// EegStreamPreprocessor: the offline preprocessing (channel plan, polyphase resampling, spline
// interpolation) computed incrementally as samples arrive. Each output sample is computed from
// the same inputs with the same arithmetic as BlockReader in preprocess.cpp, so both agree bit
// for bit.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "neurobolt/error.hpp"
#include "neurobolt/preprocess.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt {

struct EegStreamPreprocessor::Impl {
  struct Needed {
    int64_t recording = 0;  // channel index in the pushed data
    int64_t row = -1;       // output row it is copied into (-1: none)
    int64_t source = -1;    // interpolation source index (-1: none)
    std::vector<float> input;  // its samples [input_first, received)
  };

  Impl(const Recording& h, const EegChannelPlan& p, const EegPreprocessOptions& o, int64_t hist)
      : plan(p), options(o), history(hist), source(h.source), recording_channels(static_cast<int64_t>(h.channels.size())),
        resampler(make_resampler(h, o)) {
    std::map<int64_t, std::pair<int64_t, int64_t>> by_index;  // recording index -> (row, source)
    for (std::size_t c = 0; c < plan.channels.size(); ++c) {
      if (plan.source[c]) by_index.emplace(*plan.source[c], std::make_pair(int64_t{-1}, int64_t{-1}));
    }
    for (std::size_t s = 0; s < plan.interpolation_source.size(); ++s)
      by_index.emplace(plan.interpolation_source[s], std::make_pair(int64_t{-1}, int64_t{-1}));
    for (std::size_t c = 0; c < plan.channels.size(); ++c)
      if (plan.source[c]) by_index[*plan.source[c]].first = static_cast<int64_t>(c);
    for (std::size_t s = 0; s < plan.interpolation_source.size(); ++s)
      by_index[plan.interpolation_source[s]].second = static_cast<int64_t>(s);
    for (const auto& [index, use] : by_index) {
      if (index < 0 || index >= recording_channels) {
        throw Error(ErrorKind::internal, fmt::format("'{}': channel plan names recording channel {} of {}", source,
                                                     index, recording_channels));
      }
      needed.push_back(Needed{index, use.first, use.second, {}});
      names.push_back(h.channels[static_cast<std::size_t>(index)].name);
    }
    output.assign(plan.channels.size(), {});
  }

  static signal::PolyphaseResampler make_resampler(const Recording& header, const EegPreprocessOptions& options) {
    if (!(header.sample_rate > 0)) {
      throw FormatError(fmt::format("'{}': sample rate {} Hz; expected a positive rate", header.source,
                                    header.sample_rate));
    }
    const auto ratio = signal::resample_ratio(header.sample_rate, options.sample_rate);
    return signal::PolyphaseResampler(ratio.up, ratio.down);
  }

  // Outputs [produced, produced + count) from the inputs held, `n` the input length the
  // resampler pads after (the true length at finish(), else an unbounded one).
  void compute(int64_t count, int64_t n) {
    if (count <= 0) return;
    const auto C = static_cast<int64_t>(plan.channels.size());
    std::vector<std::vector<float>> fresh(static_cast<std::size_t>(C), std::vector<float>(static_cast<std::size_t>(count), 0.0f));
    std::vector<float> scratch(static_cast<std::size_t>(count));
    for (const Needed& use : needed) {
      float* resampled = use.row >= 0 ? fresh[static_cast<std::size_t>(use.row)].data() : scratch.data();
      resampler.apply_span(use.input.data(), input_first, static_cast<int64_t>(use.input.size()), n, produced, count,
                           resampled);
      if (use.source < 0) continue;
      for (std::size_t t = 0; t < plan.interpolation_target.size(); ++t) {
        const double w = plan.interpolation.weight(static_cast<int64_t>(t), use.source);
        float* target = fresh[static_cast<std::size_t>(plan.interpolation_target[t])].data();
        for (int64_t i = 0; i < count; ++i) target[i] = static_cast<float>(target[i] + w * resampled[i]);
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      auto& row = output[static_cast<std::size_t>(c)];
      row.insert(row.end(), fresh[static_cast<std::size_t>(c)].begin(), fresh[static_cast<std::size_t>(c)].end());
    }
    produced += count;
    // Keep `history` outputs (dropped in steps of at least `history`, so that trimming is cheap).
    const int64_t held = produced - output_first;
    if (held > 2 * history) {
      const int64_t drop = held - history;
      for (auto& row : output) row.erase(row.begin(), row.begin() + drop);
      output_first += drop;
    }
    // Inputs no later output needs.
    const int64_t keep_from = resampler.input_span(produced, 1, std::numeric_limits<int64_t>::max()).first;
    if (keep_from > input_first) {
      const int64_t drop = std::min<int64_t>(keep_from, received) - input_first;
      for (Needed& use : needed) use.input.erase(use.input.begin(), use.input.begin() + drop);
      input_first += drop;
    }
  }

  EegChannelPlan plan;
  EegPreprocessOptions options;
  int64_t history;
  std::string source;
  int64_t recording_channels;
  signal::PolyphaseResampler resampler;
  std::vector<Needed> needed;
  std::vector<std::string> names;
  int64_t received = 0;     // input samples pushed
  int64_t input_first = 0;  // the first input sample held
  int64_t produced = 0;     // output samples computed
  int64_t output_first = 0; // the first output sample held
  std::vector<std::vector<float>> output;  // per output channel: samples [output_first, produced)
  bool finished = false;
};

EegStreamPreprocessor::EegStreamPreprocessor(const Recording& header, const EegChannelPlan& plan,
                                             const EegPreprocessOptions& options, int64_t history) {
  if (options.highpass_hz || options.notch_hz) {
    throw ConfigError(fmt::format(
        "'{}': the preprocessing has zero-phase filters (high-pass {}, notch {}), which need samples after each "
        "one and cannot run as samples arrive; use a model prepared without --highpass/--notch",
        header.source, options.highpass_hz ? fmt::format("{} Hz", *options.highpass_hz) : "off",
        options.notch_hz ? fmt::format("{} Hz", *options.notch_hz) : "off"));
  }
  if (history < 1) throw ConfigError(fmt::format("stream history: expected at least 1 sample, found {}", history));
  impl_ = std::make_unique<Impl>(header, plan, options, history);
}

EegStreamPreprocessor::~EegStreamPreprocessor() = default;

void EegStreamPreprocessor::push(const float* data, int64_t count) {
  Impl& m = *impl_;
  if (m.finished) throw ConfigError(fmt::format("'{}': samples pushed after the end of the recording", m.source));
  if (count < 0) throw ConfigError(fmt::format("'{}': a chunk of {} samples", m.source, count));
  if (count == 0) return;
  for (std::size_t k = 0; k < m.needed.size(); ++k) {
    Impl::Needed& use = m.needed[k];
    const float* from = data + use.recording * count;
    for (int64_t s = 0; s < count; ++s) {
      if (!std::isfinite(from[s])) {
        throw FormatError(fmt::format("'{}': channel '{}' has a non-finite value at sample {}", m.source, m.names[k],
                                      m.received + s));
      }
    }
    use.input.insert(use.input.end(), from, from + count);
  }
  m.received += count;
  // The outputs whose every input has arrived (the span does not depend on the final length).
  const int64_t unbounded = std::numeric_limits<int64_t>::max();
  int64_t lo = 0, hi = m.resampler.output_length(m.received) - m.produced;
  while (lo < hi) {  // the largest count whose input span ends within what was received
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (m.resampler.input_span(m.produced, mid, unbounded).end <= m.received) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  m.compute(lo, m.received);
}

void EegStreamPreprocessor::finish() {
  Impl& m = *impl_;
  if (m.finished) return;
  m.finished = true;
  m.compute(m.resampler.output_length(m.received) - m.produced, m.received);
}

int64_t EegStreamPreprocessor::received() const { return impl_->received; }
int64_t EegStreamPreprocessor::available() const { return impl_->produced; }
int64_t EegStreamPreprocessor::oldest() const { return impl_->output_first; }
double EegStreamPreprocessor::sample_rate() const { return impl_->options.sample_rate; }
const PreprocessReport& EegStreamPreprocessor::report() const { return impl_->plan.report; }

void EegStreamPreprocessor::read(int64_t first, int64_t count, float* out) const {
  const Impl& m = *impl_;
  if (count < 0 || first < m.output_first || first + count > m.produced) {
    throw Error(ErrorKind::internal, fmt::format("'{}': stream samples [{}, {}) asked, held [{}, {})", m.source, first,
                                                 first + count, m.output_first, m.produced));
  }
  for (std::size_t c = 0; c < m.output.size(); ++c) {
    const auto& row = m.output[c];
    std::copy(row.begin() + (first - m.output_first), row.begin() + (first - m.output_first + count),
              out + static_cast<int64_t>(c) * count);
  }
}

}  // namespace neurobolt
