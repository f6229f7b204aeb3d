// Real-time inference: the Streamer (samples and volumes in, one prediction per volume out as soon
// as its window is complete) and `neurobolt stream`'s replay of a recording through it.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <thread>

#include "core/atomic_file.hpp"
#include "infer/checkpoint_preprocessing.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/predictor.hpp"
#include "neurobolt/stream.hpp"

namespace neurobolt {
namespace {

using Clock = std::chrono::steady_clock;

struct Pending {
  int64_t volume = 0;
  double time = 0.0;
  int64_t end = 0;  // the window's end, in samples at the model's rate
};

}  // namespace

struct Streamer::Impl {
  Impl(const std::string& checkpoint, const Recording& h, const StreamOptions& o)
      : header(h), options(o), predictor(load_predictor(checkpoint, o.device)) {
    header.data.clear();
    preprocess = infer_detail::checkpoint_preprocessing(*predictor, o.missing_channels, &demean);
    preprocess.channel_types = o.channel_types;
    plan = plan_eeg_channels(header, o.bad_channels, preprocess);
    S = predictor->window_samples();
    rate = predictor->sample_rate();
    C = static_cast<int64_t>(predictor->channels().size());
    R = static_cast<int64_t>(predictor->rois().size());
    // Two windows and 2 s: a volume pushed up to a window late still finds its samples.
    stream = std::make_unique<EegStreamPreprocessor>(header, plan, preprocess,
                                                     2 * S + static_cast<int64_t>(std::ceil(2 * rate)));
    if (o.tr && !(*o.tr >= 0.01)) {
      throw ConfigError(fmt::format("stream: tr expected at least 0.01 s, found {:g}", *o.tr));
    }
  }

  double received_seconds() const { return static_cast<double>(stream->received()) / header.sample_rate; }

  void add_volume(double time) {
    if (!std::isfinite(time)) throw ConfigError(fmt::format("stream: a volume at time {}", time));
    Pending p;
    p.volume = next_volume++;
    p.time = time;
    p.end = static_cast<int64_t>(std::llround(time * rate));
    if (p.end - S < 0) {
      emit_incomplete(p);
      return;
    }
    pending.insert(std::upper_bound(pending.begin(), pending.end(), p,
                                    [](const Pending& a, const Pending& b) { return a.end < b.end; }),
                   p);
  }

  // The volumes of the automatic grid whose time the samples have reached (at finish(), every one
  // up to the recording's end, as infer's --tr grid).
  void tick() {
    if (!options.tr) return;
    const double reached = received_seconds();
    while (true) {
      const double t = options.first_volume_offset + static_cast<double>(ticks) * *options.tr;
      if (t > reached + 1e-9) break;
      add_volume(t);
      ++ticks;
    }
  }

  void emit_incomplete(const Pending& p) {
    StreamPrediction out;
    out.volume = p.volume;
    out.time = p.time;
    out.complete = false;
    out.values.assign(static_cast<std::size_t>(R), std::numeric_limits<float>::quiet_NaN());
    ready.push_back(std::move(out));
  }

  // Predicts every pending volume whose window is complete, in one batch.
  void process() {
    const int64_t available = stream->available();
    std::size_t count = 0;
    while (count < pending.size() && pending[count].end <= available) ++count;
    if (count == 0) return;
    const auto start = Clock::now();
    windows.resize(count * static_cast<std::size_t>(C * S));
    std::vector<float> piece(static_cast<std::size_t>(C * S));
    for (std::size_t b = 0; b < count; ++b) {
      const int64_t begin = pending[b].end - S;
      if (begin < stream->oldest()) {
        throw ConfigError(fmt::format("stream: the volume at {:.3f} s was pushed after its window's samples were "
                                      "dropped (the streamer keeps {:.1f} s)",
                                      pending[b].time, static_cast<double>(pending[b].end - stream->oldest()) / rate));
      }
      stream->read(begin, S, piece.data());
      infer_detail::copy_window(piece.data(), S, C, S, demean, windows.data() + b * static_cast<std::size_t>(C * S));
    }
    std::vector<float> out(count * static_cast<std::size_t>(R));
    predictor->predict(windows.data(), static_cast<int64_t>(count), out.data());
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (std::size_t b = 0; b < count; ++b) {
      StreamPrediction p;
      p.volume = pending[b].volume;
      p.time = pending[b].time;
      p.values.assign(out.begin() + static_cast<std::ptrdiff_t>(b * static_cast<std::size_t>(R)),
                      out.begin() + static_cast<std::ptrdiff_t>((b + 1) * static_cast<std::size_t>(R)));
      p.compute_seconds = seconds;
      ready.push_back(std::move(p));
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(count));
  }

  Recording header;
  StreamOptions options;
  std::unique_ptr<Predictor> predictor;
  EegPreprocessOptions preprocess;
  EegChannelPlan plan;
  bool demean = true;
  int64_t S = 0, C = 0, R = 0;
  double rate = 0;
  std::unique_ptr<EegStreamPreprocessor> stream;
  std::vector<Pending> pending;  // by window end
  std::vector<StreamPrediction> ready;
  std::vector<float> windows;
  int64_t next_volume = 0;
  int64_t ticks = 0;
  bool finished = false;
};

Streamer::Streamer(const std::string& checkpoint, const Recording& header, const StreamOptions& options)
    : impl_(std::make_unique<Impl>(checkpoint, header, options)) {}

Streamer::~Streamer() = default;

void Streamer::push_samples(const float* data, int64_t count) {
  impl_->stream->push(data, count);
  impl_->tick();
  impl_->process();
}

void Streamer::push_volume(double time) {
  if (impl_->finished) throw ConfigError("stream: a volume pushed after the end of the recording");
  impl_->add_volume(time);
  impl_->process();
}

void Streamer::finish() {
  Impl& m = *impl_;
  if (m.finished) return;
  m.finished = true;
  m.stream->finish();
  m.tick();
  m.process();
  for (const Pending& p : m.pending) m.emit_incomplete(p);  // windows past the recording's end
  m.pending.clear();
}

std::vector<StreamPrediction> Streamer::take() {
  std::vector<StreamPrediction> out;
  out.swap(impl_->ready);
  return out;
}

const std::vector<std::string>& Streamer::rois() const { return impl_->predictor->rois(); }
double Streamer::sample_rate() const { return impl_->rate; }
int64_t Streamer::window_samples() const { return impl_->S; }
double Streamer::samples_received_seconds() const { return impl_->received_seconds(); }
const PreprocessReport& Streamer::report() const { return impl_->plan.report; }

StreamReplaySummary run_stream_replay(const std::string& checkpoint, const std::string& recording,
                                      const StreamReplayOptions& options,
                                      const std::function<void(const StreamReplayEvent&)>& on_prediction) {
  if (!(options.speed >= 0) || !std::isfinite(options.speed)) {
    throw UsageError(fmt::format("--speed: expected a factor >= 0 (0: as fast as possible), found {:g}", options.speed));
  }
  if (!(options.chunk_seconds >= 0.001 && options.chunk_seconds <= 10)) {
    throw UsageError(fmt::format("--chunk-ms: expected 1 to 10000 ms, found {:g}", options.chunk_seconds * 1000));
  }
  if (!options.output.empty()) detail::check_writable_output(options.output, options.force);
  const auto inputs = collect_infer_inputs({recording});
  if (inputs.size() != 1) {
    throw UsageError(fmt::format("stream: '{}' holds {} recordings; give one recording file", recording,
                                 inputs.size()));
  }
  const InferInput& in = inputs.front();
  ReadOptions header_only;
  header_only.header_only = true;
  const Recording header = read_recording(in.eeg_path, header_only);
  if (!(header.sample_rate > 0) || header.num_samples <= 0) {
    throw FormatError(fmt::format("'{}': no samples (sample rate {} Hz, {} samples)", in.eeg_path,
                                  header.sample_rate, header.num_samples));
  }
  StreamOptions so;
  so.device = options.grid.device;
  so.bad_channels = in.bad_channels;
  so.channel_types = in.channel_types;
  so.missing_channels = options.grid.missing_channels;
  Streamer streamer(checkpoint, header, so);
  const double window_seconds = static_cast<double>(streamer.window_samples()) / streamer.sample_rate();
  const VolumeGrid grid = infer_volume_grid(header, in, options.grid, window_seconds);

  StreamReplaySummary summary;
  summary.grid_source = grid.source;
  summary.warnings = grid.warnings;
  for (const auto& w : streamer.report().warnings) summary.warnings.push_back(w);
  summary.volumes = static_cast<int64_t>(grid.times.size());
  summary.recording_seconds = header.duration();
  // Volumes in time order (the streamer numbers them so); rows keep the grid's order.
  std::vector<std::size_t> order(grid.times.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return grid.times[a] < grid.times[b]; });
  const auto R = static_cast<int64_t>(streamer.rois().size());
  std::vector<float> values(grid.times.size() * static_cast<std::size_t>(R), std::numeric_limits<float>::quiet_NaN());
  std::vector<double> arrival(grid.times.size(), 0.0);  // wall s at which each window's last sample was pushed

  ReadOptions all_channels;
  RecordingReader reader(in.eeg_path, all_channels);
  const double fs = header.sample_rate;
  const auto chunk = std::max<int64_t>(1, static_cast<int64_t>(std::llround(options.chunk_seconds * fs)));
  const int64_t block = std::max<int64_t>(chunk, static_cast<int64_t>(std::ceil(10.0 * fs / chunk)) * chunk);
  const int64_t channels = header.num_channels();
  const auto start = Clock::now();
  auto now = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  std::size_t next = 0;  // the next volume (in time order) to push
  auto collect = [&] {
    for (StreamPrediction& p : streamer.take()) {
      const std::size_t row = order[static_cast<std::size_t>(p.volume)];
      StreamReplayEvent event;
      if (p.complete) {
        std::copy(p.values.begin(), p.values.end(), values.begin() + static_cast<std::ptrdiff_t>(row * R));
        event.latency_seconds = now() - arrival[static_cast<std::size_t>(p.volume)];
        summary.latencies.push_back(event.latency_seconds);
        summary.computes.push_back(p.compute_seconds);
        ++summary.predicted;
      }
      event.prediction = std::move(p);
      if (on_prediction) on_prediction(event);
    }
  };
  std::vector<float> piece;
  for (int64_t first = 0; first < header.num_samples; first += block) {
    const Recording data = reader.read(first, std::min(block, header.num_samples - first));
    const int64_t n = data.samples_in_data();
    for (int64_t a = 0; a < n; a += chunk) {
      const int64_t m = std::min(chunk, n - a);
      const double chunk_end = static_cast<double>(first + a + m) / fs;
      if (options.speed > 0) {
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(chunk_end / options.speed)));
      }
      // Volumes whose time this chunk reaches are announced first (a trigger arrives with its volume).
      std::vector<std::size_t> announced;
      while (next < order.size() && grid.times[order[next]] <= chunk_end + 1e-9) {
        streamer.push_volume(grid.times[order[next]]);
        announced.push_back(next++);
      }
      piece.resize(static_cast<std::size_t>(channels * m));
      for (int64_t c = 0; c < channels; ++c)
        std::copy(data.channel_data(c) + a, data.channel_data(c) + a + m, piece.begin() + c * m);
      const double pushed_at = now();
      for (std::size_t k : announced) arrival[k] = pushed_at;
      streamer.push_samples(piece.data(), m);
      collect();
    }
  }
  while (next < order.size()) streamer.push_volume(grid.times[order[next++]]);  // past the end: incomplete
  streamer.finish();
  collect();
  summary.wall_seconds = now();

  if (!options.output.empty()) {
    std::string text = fmt::format("{}\n", fmt::join(streamer.rois(), "\t"));
    for (std::size_t k = 0; k < grid.times.size(); ++k) {
      for (int64_t r = 0; r < R; ++r) {
        const float v = values[k * static_cast<std::size_t>(R) + static_cast<std::size_t>(r)];
        text += std::isfinite(v) ? fmt::format("{:.6g}", v) : "n/a";
        text += r + 1 < R ? '\t' : '\n';
      }
    }
    detail::AtomicOutput out(options.output, options.force);
    out.write_all(text);
    out.commit();
  }
  return summary;
}

}  // namespace neurobolt
