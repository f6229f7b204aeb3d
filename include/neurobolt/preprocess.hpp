#pragma once
// The per-recording EEG work that `prepare` (training data) and `infer` (prediction) share, so that
// a model sees the same preprocessing in both:
//  1. channels: the output channels are matched to the recording's by canonical_channel_name
//     (T3 -> T7, "EEG Fp1-REF" -> Fp1, any case). Channels marked bad count as absent. An absent
//     output channel is, by MissingChannelPolicy:
//       interpolate: rebuilt by spherical splines (interpolate.hpp, as MNE-Python's
//         interpolate_bads) from every good EEG channel of the recording that has a standard 10-05
//         position (types from the recording, overridden by EegPreprocessOptions::channel_types,
//         e.g. BIDS _channels.tsv; ECG, EOG, EMG, misc and trigger channels never count). A
//         channel without a standard position, or fewer than kMinInterpolationSources sources, is
//         a ConfigError naming it;
//       zero: filled with zeros;  error: a ConfigError naming it.
//  2. reading: the channels needed (output and interpolation sources) are read in time blocks
//     whose samples at the file's rate stay under max_read_bytes; every sample must be finite.
//  3. resampling to sample_rate (scipy's resample_poly filter), then interpolation (it is linear,
//     so doing it at the lower rate gives the same result for less work), then the optional
//     zero-phase high-pass (Butterworth, sosfiltfilt) and notch (iirnotch, filtfilt).
// Memory: preprocess_eeg holds the output and one time block at the file's rate. EegStream holds
// only the block, whatever the recording's length, unless a filter is on: the zero-phase filters
// run over whole channels, so it then keeps the whole output (at the output rate) instead.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "neurobolt/bids.hpp"
#include "neurobolt/interpolate.hpp"
#include "neurobolt/recording.hpp"

namespace neurobolt {

enum class MissingChannelPolicy { interpolate, zero, error };
const char* to_string(MissingChannelPolicy policy);  // "interpolate", "zero", "error"
// Parses "interpolate", "zero" or "error"; ConfigError listing them otherwise.
MissingChannelPolicy parse_missing_channel_policy(const std::string& text);

// Spherical splines need a few good channels around the missing ones.
constexpr int64_t kMinInterpolationSources = 4;

struct EegPreprocessOptions {
  std::vector<std::string> channels;  // output channels, in this order
  double sample_rate = 200.0;         // output rate (Hz)
  std::optional<double> highpass_hz;  // Butterworth high-pass, off when unset
  int highpass_order = 4;
  std::optional<double> notch_hz;  // iirnotch, off when unset
  double notch_quality = 30.0;
  MissingChannelPolicy missing = MissingChannelPolicy::interpolate;
  // The recording is read in time blocks whose samples at the file's rate stay under this.
  int64_t max_read_bytes = 256LL << 20;
  // Per recording: channel name -> type as BIDS _channels.tsv writes it ("EEG", "ECG", "EOG",
  // "MISC", ...), overriding the reader's type; only "EEG" channels are interpolation sources.
  std::map<std::string, std::string> channel_types;
};

struct PreprocessReport {
  std::vector<std::string> interpolated;  // output channels rebuilt by spherical splines (absent or marked bad)
  std::vector<std::string> zero_filled;   // output channels filled with zeros
  std::vector<std::string> unmapped;      // good recording channels that are no output channel, recording order
  std::vector<std::string> interpolation_sources;  // recording channels the interpolated ones come from
  std::vector<std::string> warnings;
};

struct PreprocessedEeg {
  std::vector<float> data;  // [channels, num_samples] at sample_rate, microvolts, channel-major
  int64_t num_samples = 0;
  double sample_rate = 0.0;
  double source_rate = 0.0;  // the file's rate
  PreprocessReport report;
};

// How a recording's channels become the output channels (step 1 above, from the header alone).
struct EegChannelPlan {
  std::vector<std::string> channels;           // the output channels
  std::vector<std::optional<int64_t>> source;  // recording channel copied into each output channel
  ChannelInterpolation interpolation;          // targets: output channels; sources: recording channel names
  std::vector<int64_t> interpolation_source;   // recording index of each interpolation source
  std::vector<int64_t> interpolation_target;   // output index of each interpolation target
  PreprocessReport report;
};

// The plan for a recording whose header (ReadOptions::header_only) is `header`; errors as in step 1,
// naming the file.
EegChannelPlan plan_eeg_channels(const Recording& header, const std::vector<std::string>& bad_channels,
                                 const EegPreprocessOptions& options);

using PreprocessProgress = std::function<void(double fraction, const std::string& stage)>;

// Reads `eeg_path` (any reader format) and preprocesses it (steps 1-3 above). `bad_channels`
// are recording channel names (e.g. BIDS status "bad"). Progress stages: "reading" (reading
// and resampling, in time blocks), "filtering", "done", with the fraction of this call done.
PreprocessedEeg preprocess_eeg(const std::string& eeg_path, const std::vector<std::string>& bad_channels,
                               const EegPreprocessOptions& options, const PreprocessProgress& progress = {});
// The same for a header already read and planned (header.source is the file read).
PreprocessedEeg preprocess_eeg(const Recording& header, const EegChannelPlan& plan, const EegPreprocessOptions& options,
                               const PreprocessProgress& progress = {});

// The preprocessed output of one recording, read in pieces: what `infer` uses, so that a
// recording of any length is processed with bounded memory (see "Memory" above). Any piece equals
// the same samples of preprocess_eeg's output, bit for bit.
class EegStream {
 public:
  // `progress` reports the whole-recording pass that a filter needs (stages as preprocess_eeg's).
  EegStream(const Recording& header, const EegChannelPlan& plan, const EegPreprocessOptions& options,
            const PreprocessProgress& progress = {});
  ~EegStream();
  EegStream(const EegStream&) = delete;
  EegStream& operator=(const EegStream&) = delete;

  int64_t num_samples() const;  // per channel, at the output rate
  double sample_rate() const;   // the output rate
  // Output samples per file read that keep one read under max_read_bytes: read() calls of this
  // size or more make the most of each read.
  int64_t block_samples() const;
  const PreprocessReport& report() const;
  // True when a filter made the constructor preprocess the whole recording (held in memory).
  bool keeps_whole() const;
  // Output samples [first, first + count) of every output channel: out[c * count + s].
  void read(int64_t first, int64_t count, float* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The same preprocessing for samples that arrive as they are recorded (real-time use): push the
// recording's samples in chunks of any size, at the recording's rate and in its channel order;
// each output sample is computed as soon as every input it depends on has arrived, and equals
// the same sample of EegStream/preprocess_eeg on the whole recording bit for bit (the resampler
// is the same; finish() pads the end as the offline path does). The zero-phase filters need the
// future and are refused (ConfigError); so is non-finite input (FormatError).
class EegStreamPreprocessor {
 public:
  // `header`: the recording's channels and rate (its data unused); `history`: output samples kept
  // for read() (at least one model window).
  EegStreamPreprocessor(const Recording& header, const EegChannelPlan& plan, const EegPreprocessOptions& options,
                        int64_t history);
  ~EegStreamPreprocessor();
  EegStreamPreprocessor(const EegStreamPreprocessor&) = delete;
  EegStreamPreprocessor& operator=(const EegStreamPreprocessor&) = delete;

  // Appends `count` samples of every recording channel: data[c * count + s], c in header order.
  void push(const float* data, int64_t count);
  // The end of the recording: the last outputs, computed with the offline path's zero padding.
  void finish();
  int64_t received() const;   // input samples pushed so far
  int64_t available() const;  // output samples computed so far
  int64_t oldest() const;     // the first output sample still held
  double sample_rate() const; // the output rate
  const PreprocessReport& report() const;
  // Output samples [first, first + count), held (oldest() <= first, first + count <= available()),
  // of every output channel: out[c * count + s].
  void read(int64_t first, int64_t count, float* out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The recording's EEG channels that have a standard 10-05 position (types as in step 1), in
// canonical spelling and recording order, each once: what a model trained on this data can use.
std::vector<std::string> standard_eeg_channels(const Recording& header,
                                               const std::map<std::string, std::string>& channel_types = {});

// Volume triggers of a recording: the header's annotations whose label or description matches a
// label (trigger_label_matches), else the BIDS events whose trial_type or value does. Labels are
// tried in order; with `labels` empty the defaults (default_trigger_labels()) are tried and the
// first that occurs is used, with a warning for each other that occurs too. An event onset outside
// the recording is a FormatError naming `events_path` and the row; no trigger at all is a
// ConfigError listing the markers present.
struct VolumeTriggers {
  std::vector<double> times;  // seconds from the first sample, file order
  std::string label;          // the label matched
  std::string source;         // "EEG annotations" or "events.tsv"
};
VolumeTriggers find_volume_triggers(const Recording& header, const std::vector<BidsEvent>& events,
                                    const std::string& events_path, const std::vector<std::string>& labels,
                                    std::vector<std::string>& warnings);

}  // namespace neurobolt
