#pragma once
// Real-time inference (EEG-fMRI neurofeedback and other online tools): EEG samples are pushed as
// the amplifier delivers them, volumes as the scanner's triggers arrive, and a prediction comes
// out for each volume as soon as the 16 s window before it is complete. The preprocessing is the
// checkpoint's, done incrementally (EegStreamPreprocessor: equal to the offline path bit for
// bit), and each window is demeaned and predicted as `infer` does, so a replayed recording gives
// infer's predictions. Plain C++ (no LibTorch types).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "neurobolt/infer.hpp"
#include "neurobolt/preprocess.hpp"
#include "neurobolt/recording.hpp"

namespace neurobolt {

struct StreamOptions {
  std::string device = "cpu";
  std::vector<std::string> bad_channels;               // recording channel names
  std::map<std::string, std::string> channel_types;    // name -> BIDS type, as in EegPreprocessOptions
  std::string missing_channels;                        // "interpolate", "zero", "error"; "" = as trained
  // Set: a volume every `tr` seconds from `first_volume_offset` on, without push_volume.
  std::optional<double> tr;
  double first_volume_offset = 0.0;
};

struct StreamPrediction {
  int64_t volume = 0;         // 0, 1, ... in the order the volumes were pushed (or ticked)
  double time = 0.0;          // s from the recording's start: the end of its window
  bool complete = true;       // false: the window reaches before the recording's start or past its
                              // end (values NaN, `infer`'s n/a)
  std::vector<float> values;  // one per ROI, in the units the model was trained on
  double compute_seconds = 0; // preprocessing the window and running the model
};

class Streamer {
 public:
  // `header`: the recording's channels and rate, as a reader's header_only read gives them (or
  // filled in by the caller for a live amplifier). Errors as infer's for the checkpoint and the
  // channels; a checkpoint whose preprocessing has zero-phase filters is a ConfigError.
  Streamer(const std::string& checkpoint, const Recording& header, const StreamOptions& options = {});
  ~Streamer();
  Streamer(const Streamer&) = delete;
  Streamer& operator=(const Streamer&) = delete;

  // `count` new samples of every recording channel, data[c * count + s] in header order; the
  // predictions whose windows this completes are computed before it returns.
  void push_samples(const float* data, int64_t count);
  // A volume whose window ends at `time` s (a trigger's onset). Any order; predicted once its
  // window is complete.
  void push_volume(double time);
  // The end of the recording: pending volumes are predicted (with the offline path's padding at
  // the end) or marked incomplete.
  void finish();
  // The predictions made since the last call, in the order they were made.
  std::vector<StreamPrediction> take();

  const std::vector<std::string>& rois() const;
  double sample_rate() const;       // the model's input rate
  int64_t window_samples() const;   // at the model's rate
  double samples_received_seconds() const;  // recording time pushed so far
  const PreprocessReport& report() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `neurobolt stream`: replays a recording through a Streamer as if it were being recorded, in
// chunks of `chunk_seconds` at `speed` times real time (0: as fast as possible), with the volume
// times `infer` would use (triggers, --tr or --stride, through infer_volume_grid), and writes the
// predictions as infer's table (ROI columns, one row per volume, n/a without a full window).
struct StreamReplayOptions {
  InferOptions grid;  // tr, first_volume_offset, stride, trigger_labels, dummy_scans, missing_channels, device
  double speed = 1.0;
  double chunk_seconds = 0.01;
  std::string output;  // TSV path ("" = none)
  bool force = false;
};
struct StreamReplayEvent {
  StreamPrediction prediction;
  // Wall seconds from pushing the window's last raw sample to the prediction (the resampler needs
  // about 10 output samples after it, 50 ms at 200 Hz, before the window's end is final).
  double latency_seconds = 0;
};
struct StreamReplaySummary {
  int64_t volumes = 0, predicted = 0;
  double recording_seconds = 0, wall_seconds = 0;
  std::vector<double> latencies;  // per predicted volume, seconds
  std::vector<double> computes;   // per predicted volume, seconds
  std::string grid_source;
  std::vector<std::string> warnings;
};
StreamReplaySummary run_stream_replay(const std::string& checkpoint, const std::string& recording,
                                      const StreamReplayOptions& options,
                                      const std::function<void(const StreamReplayEvent&)>& on_prediction = {});

}  // namespace neurobolt
