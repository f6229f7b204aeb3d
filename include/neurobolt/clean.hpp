#pragma once
// Cleaning EEG recorded inside an MR scanner (`neurobolt clean`, `prepare --clean`, `infer --clean`):
//
//  1. Gradient artefact: average artefact subtraction (AAS, Allen et al. 2000) on epochs that start
//     at the scanner's volume (or slice) triggers. The scanner's clock is not the amplifier's, so
//     every epoch's artefact sits at its own fraction of a sample from its trigger: each epoch's
//     sub-sample offset is estimated against the mean artefact (cross-correlation maximised over
//     fractional shifts, evaluated in the frequency domain), epochs are aligned by phase shifts,
//     a template is averaged from the `template_epochs` nearest epochs (the epoch itself left
//     out, so its EEG is not subtracted from it), shifted back to the epoch's offset and
//     subtracted. Optionally the residual's principal components over epochs are fitted and
//     removed too (optimal basis sets, as FMRIB's FASTR does). Irregular triggers are repaired
//     and reported: a missing volume trigger is put back on the scanner's grid, one out of place
//     is moved onto it. Then the signal is low-passed and resampled (scipy's resample_poly).
//  2. Ballistocardiogram (BCG): R peaks are detected on the ECG channel (after the gradient
//     correction; band-pass, squared slope, adaptive threshold; the polarity is found from the
//     data, so an inverted ECG works), then every other channel's heartbeat-locked artefact is
//     removed beat by beat: OBS (Niazy et al. 2005: the mean and the first principal components
//     of all heartbeat epochs fitted to each epoch) or AAS (the mean of neighbouring beats).
//
// Channels are processed one group at a time: memory holds at most max_memory_bytes of samples at
// the file's rate (and the whole output at the output rate), whatever the recording's length.
// A recording without a scanner (no triggers and no gradient artefact) is passed through
// unchanged apart from the resampling, with a note saying so.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "neurobolt/recording.hpp"

namespace neurobolt {

enum class TriggerKind { automatic, volume, slice };
const char* to_string(TriggerKind kind);  // "auto", "volume", "slice"
// "auto", "volume" or "slice"; a ConfigError listing them otherwise.
TriggerKind parse_trigger_kind(const std::string& text);

enum class BcgMethod { obs, aas };
const char* to_string(BcgMethod method);  // "obs", "aas"
BcgMethod parse_bcg_method(const std::string& text);

struct CleanOptions {
  bool gradient = true;  // correct the gradient artefact (when the recording has triggers)
  bool bcg = true;       // correct the BCG (when an ECG channel is found)
  // Force the steps even without a scanner (a recording without triggers and artefact is
  // otherwise passed through untouched, with a note).
  bool force_steps = false;

  // Gradient artefact.
  std::vector<std::string> trigger_labels;  // empty: the volume trigger labels prepare uses, then "Slice"
  TriggerKind trigger_kind = TriggerKind::automatic;  // automatic: slice when > 2 triggers per second
  int template_epochs = 30;    // epochs averaged into each epoch's template (the epoch itself excluded)
  // Residual principal components removed, fitted between 70 Hz and the output's band (0: plain
  // AAS; -1: 4 on volume epochs, 0 on slice epochs, where they were measured to fit the pauses'
  // edges rather than the artefact).
  int gradient_components = -1;
  double max_shift_samples = 2.0;  // search range of the sub-sample alignment, samples

  // Output: the corrected signal resampled to this rate (Hz; 0: the file's rate). The resampling
  // filter is the low-pass; lowpass_hz adds a zero-phase Butterworth low-pass (0: none).
  double sample_rate = 250.0;
  double lowpass_hz = 0.0;

  // BCG.
  std::string ecg_channel;  // empty: the channel of type ECG, else one named ECG/EKG
  BcgMethod bcg_method = BcgMethod::obs;
  // OBS: principal components besides the mean. Niazy et al. used 3; on our simulations they also
  // fit the alpha rhythm (EEG's largest structured component), taking r with the true EEG from
  // 0.97 to 0.73, so the default fits the mean heartbeat alone (scaled per beat).
  int bcg_components = 0;
  int bcg_template_beats = 21;  // AAS: beats averaged (the beat itself excluded)

  std::vector<std::string> channels;  // channels to keep (empty: all)
  int64_t max_memory_bytes = 512LL << 20;  // samples at the file's rate held at once
  int threads = 0;  // channels corrected in parallel (0: all cores); results do not depend on it
};

// What each step did, for the user (every figure here is printed by `neurobolt clean`).
struct GradientReport {
  bool applied = false;
  std::string trigger_label;      // the annotation label used
  TriggerKind trigger_kind = TriggerKind::volume;
  int64_t triggers_found = 0;     // matching annotations
  int64_t triggers_inserted = 0;  // missing ones put back on the scanner's grid
  int64_t triggers_moved = 0;     // out-of-place ones moved onto it
  int64_t epochs = 0;             // corrected
  int64_t epoch_samples = 0;      // at the file's rate
  double epoch_seconds = 0.0;     // the median trigger interval
  double repetition_time = 0.0;   // s (volume triggers: the epoch; slice triggers: slices x epoch + gap)
  int64_t slices = 0;             // per volume: counted (slice triggers) or inferred from the artefact; 0 unknown
  double slice_period = 0.0;      // s; 0 unknown
  bool slices_inferred = false;
  double shift_min = 0.0, shift_max = 0.0, shift_sd = 0.0;  // sub-sample offsets found, samples
  int components = 0;             // residual principal components removed
  // Power at the harmonics of the volume (and slice) frequency below the output Nyquist, summed
  // over harmonics, median over channels, uV^2/Hz: before and after the correction (both at the
  // output rate).
  double volume_harmonics_before = 0.0, volume_harmonics_after = 0.0;
  double slice_harmonics_before = 0.0, slice_harmonics_after = 0.0;
  double peak_before_uv = 0.0;  // largest |sample| over channels at the file's rate, before
  double scanned_from = 0.0, scanned_to = 0.0;  // s: the first epoch's start, the last one's end
};

struct BcgReport {
  bool applied = false;
  std::string ecg_channel;
  bool ecg_inverted = false;   // the ECG's R waves point down
  int64_t r_peaks = 0;
  double heart_rate_bpm = 0.0;  // 60 / median RR
  double rr_sd = 0.0;           // s
  int64_t beats_fixed = 0;      // missed beats searched again or extra detections dropped
  BcgMethod method = BcgMethod::obs;
  int components = 0;
  // RMS over channels of the heartbeat-locked average (the evoked BCG), uV: before and after.
  double evoked_rms_before = 0.0, evoked_rms_after = 0.0;
};

struct CleanReport {
  std::string source;
  double input_rate = 0.0, output_rate = 0.0;
  int64_t channels = 0;
  int64_t input_samples = 0, output_samples = 0;
  GradientReport gradient;
  BcgReport bcg;
  std::vector<std::string> notes;     // what was done or skipped and why
  std::vector<std::string> warnings;  // what the user should look at
  double seconds_read = 0.0, seconds_gradient = 0.0, seconds_bcg = 0.0;  // gradient: with the resampling
};

struct CleanedRecording {
  // The cleaned EEG at the output rate; annotations kept, R peaks added as "R-peak" annotations.
  Recording recording;
  std::vector<double> r_peaks;  // s from the first sample
  CleanReport report;
};

struct CleanProgress {
  std::string stage;  // "gradient", "bcg"
  int64_t done = 0;   // channels
  int64_t total = 0;
};

// Cleans the recording at `path` (any format read_recording reads). ConfigError when a step
// cannot be done as asked: no triggers in a recording with a gradient artefact, triggers out of
// order or too irregular, a sampling rate too low for the slice frequency, an ECG channel named
// but absent, no R peaks; each names the file and what was expected versus found.
CleanedRecording clean_recording(const std::string& path, const CleanOptions& options = {},
                                 const std::function<void(const CleanProgress&)>& progress = {});

// The same for a recording already in memory (every channel's samples; a real-time tool's buffer).
CleanedRecording clean_recording(const Recording& recording, const CleanOptions& options = {},
                                 const std::function<void(const CleanProgress&)>& progress = {});

// How a cleaned recording compares with the true clean EEG (a simulation's ground truth, or a
// reference tool's output), channel by channel over the channels both have, after resampling the
// truth to the cleaned rate: what `neurobolt clean --truth` prints.
struct ChannelComparison {
  std::string channel;
  double r = 0.0;                   // Pearson correlation, cleaned vs truth
  double residual_ratio = 0.0;      // RMS(cleaned - truth) / RMS(truth)
  double volume_harmonics = 0.0;    // harmonic_power of (cleaned - truth) at the volume frequency
  double truth_volume_harmonics = 0.0;  // ... of the truth
  double slice_harmonics = 0.0, truth_slice_harmonics = 0.0;
  double heart_harmonics = 0.0, truth_heart_harmonics = 0.0;  // at the heart rate's harmonics (<= 20 Hz)
};
struct CleanComparison {
  std::string truth;
  double seconds_from = 0.0, seconds_to = 0.0;  // the stretch compared (the scanned part, when known)
  std::vector<ChannelComparison> channels;      // EEG channels only
  double median_r = 0.0, min_r = 0.0, median_residual_ratio = 0.0;
};
CleanComparison compare_to_truth(const CleanedRecording& cleaned, const std::string& truth_path);

// `neurobolt clean`: cleans `input`, writes the result as EDF+ to `output` (atomically; an
// existing file only with `force`), and with report_json set the report (and the comparison) as
// JSON there. With truth_path set the cleaned EEG is compared with that recording.
struct CleanFileOptions {
  bool force = false;
  std::string report_json;
  std::string truth_path;
};
struct CleanFileResult {
  CleanReport report;
  std::optional<CleanComparison> comparison;
};
CleanFileResult clean_file(const std::string& input, const std::string& output, const CleanOptions& options,
                           const CleanFileOptions& file_options,
                           const std::function<void(const CleanProgress&)>& progress = {});

// The report (and comparison) as JSON.
std::string to_json(const CleanReport& report, const CleanComparison* comparison = nullptr);
// The options as JSON (what `prepare` records among its parameters).
std::string to_json(const CleanOptions& options);

// The building blocks, for library users and tests.

// The scanner triggers of a recording (header only): positions in samples, sorted, repaired as
// described above. An empty result (with the note) when there are none.
struct ScannerTriggers {
  std::vector<int64_t> samples;  // trigger positions after repair
  std::string label;
  TriggerKind kind = TriggerKind::volume;
  int64_t found = 0, inserted = 0, moved = 0;
  int64_t epoch_samples = 0;     // the median interval
  std::vector<std::string> notes;
};
ScannerTriggers find_scanner_triggers(const Recording& header, const CleanOptions& options = {});

// R peaks (sample indices) of an ECG sampled at `rate` Hz; `inverted` reports the polarity found.
std::vector<int64_t> detect_r_peaks(const float* ecg, int64_t n, double rate, bool* inverted = nullptr,
                                    int64_t* beats_fixed = nullptr);

// Summed power spectral density (Welch, 4-period segments) at the harmonics k * f0 (k >= 1) below
// `max_hz` (and the Nyquist frequency), uV^2/Hz.
double harmonic_power(const float* x, int64_t n, double rate, double f0, double max_hz);

}  // namespace neurobolt
