#pragma once
// Training datasets: EEG windows paired with fMRI volumes, prepared once from a BIDS dataset (or
// explicit EEG + target files) into one HDF5 file, and streamed from it in batches.
//
// What `prepare_bids` / `prepare_files` compute, run by run (one run in memory at a time):
//  * Targets: the ROI series of the run's target table (optionally a subset of ROIs, by name),
//    zero-phase low-passed per ROI (Butterworth order 5 in b/a form, scipy.signal.filtfilt; 0.15 Hz
//    by default, as the reference's get_datasets.py), kept as `targets_raw`; z-scored per ROI with
//    the mean and standard deviation (ddof 0) of the TRAINING windows' targets only.
//  * Volume onsets t_k (seconds from the first EEG sample), one per target row:
//    - from trigger markers: the EEG file's annotations whose label or description (BrainVision
//      "Response/R128" has the description "R128") equals a trigger label, ignoring case and
//      surrounding spaces; when the EEG file has none, the BIDS _events.tsv rows whose trial_type or
//      value equals it. Labels are tried in order and the first that occurs is used; the default
//      order is default_trigger_labels(). Triggers closer than 10 % of a TR to the previous kept one
//      are duplicates (dropped, counted). A median interval further than `trigger_tolerance` from
//      the TR is a ConfigError naming both (a wrong TR). An interval of k TRs (2 <= k <= 1 +
//      max_missing_triggers, within `trigger_tolerance`) lacks k - 1 triggers: they are
//      interpolated evenly, with a warning naming their times. Any other interval is a
//      FormatError naming both triggers. Then the
//      first `dummy_scans` triggers are dropped (scanner triggers of volumes that are not in the
//      target table). The remaining count must equal the number of target rows; otherwise it is a
//      ConfigError stating both numbers (no automatic dropping: a guess could shift every pair).
//    - without triggers (`first_volume_offset` set): t_k = offset + k * TR.
//    The target row's BIDS StartTime is not applied: as in the reference, volume k pairs with the
//    EEG before its acquisition onset.
//  * EEG: preprocess_eeg (preprocess.hpp), the same function `infer` uses: the channels are
//    matched by canonical_channel_name; BIDS channels marked bad count as absent; an absent channel
//    is, by `missing_channels`, interpolated by spherical splines from the run's good EEG channels
//    (the default), zero-filled, or a ConfigError; every sample read must be finite; resampled to
//    `sample_rate` (scipy's resample_poly filter), optionally high-passed (Butterworth,
//    sosfiltfilt) and notched (iirnotch, filtfilt) at that rate. Without `channels`, the channels
//    are the run's EEG channels with a standard 10-05 position that every run has (good or marked
//    bad), in the first run's order and canonical spelling; channels left out are a warning.
//  * Windows: s_k = round(t_k * sample_rate) (the sample nearest to the onset, halves away from
//    zero); window k is samples [s_k - window_samples, s_k), i.e. the 16 s before the onset, as the
//    reference's mne.Epochs(tmin=-16, tmax=0) cropped to 3200 samples. A volume whose window does
//    not lie inside the recording is skipped and counted (before the start / after the end); so is
//    a volume whose target row has a NaN (only possible without the low-pass, which refuses NaN).
//    With demean_windows (the default) each channel of a window has its mean removed, as the
//    reference's baseline=(None, None) does. Stored as float32 microvolts.
//
// Splits (labels per window: 0 train, 1 val, 2 test, -1 excluded):
//  * intra_run: the windows of each run in time order: train = [0, floor(0.8 n)), val =
//    [floor(0.8 n) + gap, floor(0.8 n) + floor(0.1 n)), test = [floor(0.8 n) + floor(0.1 n) + gap, n)
//    with gap = ceil(max(20 s, window) / TR): the reference's rule (the gaps come out of val and
//    test). Gap windows stay in the file, labelled -1, for whole-run inference.
//  * cross_subject: every run of a subject goes to one set. Explicit val/test subject lists (the
//    rest train), or fractions of the subjects (at least one each when the fraction is > 0),
//    drawn after a seeded shuffle of the sorted subject names.
//  * kfold: subjects shuffled (seeded) and dealt round-robin into k folds; `/fold` holds each
//    window's fold. Fold f selected: test = fold f, val = fold (f + 1) % k when k >= 3, train = the
//    rest. `/split` and `/targets` hold fold 0's; training statistics are stored for every fold.
//
// HDF5 layout (all names absolute; strings are variable-length UTF-8; readable with h5py):
//   /windows       float32 [N, C, S]  EEG windows in microvolts, chunks of `chunk_windows` windows,
//                                     shuffle + gzip (`gzip_level`)
//   /targets       float32 [N, R]     z-scored targets (statistics of the training split; kfold: fold 0)
//   /targets_raw   float32 [N, R]     targets after the low-pass, before z-scoring
//   /split         int8    [N]        0 train, 1 val, 2 test, -1 excluded (intra-run gap)
//   /fold          int8    [N]        kfold only: the fold of the window's subject
//   /run           int32   [N]        index into /runs/*
//   /subject       int32   [N]        index into /subjects
//   /volume        int64   [N]        target row (volume index from 0) the window pairs with
//   /onset         float64 [N]        that volume's onset t_k, seconds from the first EEG sample
//   /channel_names, /roi_names, /subjects  string [C], [R], [num_subjects]
//   /runs/name, /runs/eeg_path, /runs/target_path, /runs/onset_source   string [num_runs]
//   /runs/subject int32, /runs/repetition_time float64, /runs/num_volumes int64,
//   /runs/first_window int64, /runs/num_windows int64, /runs/skipped int64,
//   /runs/missing_channels string (JSON array of zero-filled channels)         [num_runs]
//   /runs/interpolated_channels string (JSON array of interpolated channels)   [num_runs]
//   /normalisation/mean, /normalisation/std  float64 [R]  (the stats /targets uses)
//   /normalisation/fold_mean, /normalisation/fold_std  float64 [K, R]  (kfold only)
//   attributes of /: format "neurobolt-dataset", format_version 1, sample_rate (float64),
//     window_samples, num_channels, num_rois (int64), split_mode, channel_names and roi_names
//     (JSON arrays), parameters (JSON: every option used), provenance (JSON: neurobolt version,
//     creation time, input files with sizes and modification times), fingerprint.
//
// Compression: gzip level 1 with shuffle. EEG floats are noise in their low mantissa bits, so
// higher levels gain little: on a 10-minute 32-channel 5 kHz recording (26 channels kept, 292
// windows, 97 MB raw) level 0/1/4/6 gave 97/77/76/76 MB in 0.8/2.1/2.3/2.8 s of preparation.
// One window per chunk: the same size as 4 per chunk, and random batches of 16 read at 1400
// windows/s instead of 930 (a read inflates whole chunks). Reading is bound by inflating
// (~1800 windows/s in order); gzip level 0 reads at 2400 (random) to 10000 (in order) windows/s,
// for a GPU that trains faster than that.
//
// Output is written to a temporary file and renamed at the end: an error leaves no output. An
// existing output whose fingerprint (a hash of the parameters, the input files' paths, sizes and
// modification times, and the neurobolt version) matches is left alone (result.up_to_date);
// any other existing output is an IoError unless `force`.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "neurobolt/bids.hpp"
#include "neurobolt/clean.hpp"
#include "neurobolt/preprocess.hpp"

namespace neurobolt {

enum class SplitMode { intra_run, cross_subject, kfold };
const char* to_string(SplitMode mode);  // "intra-run", "cross-subject", "kfold"
// Parses "intra-run"/"intra_run", "cross-subject"/"cross_subject", "kfold"; ConfigError otherwise.
SplitMode parse_split_mode(const std::string& text);

enum class Split : int8_t { excluded = -1, train = 0, val = 1, test = 2 };
const char* to_string(Split split);  // "excluded", "train", "val", "test"

struct SplitSpec {
  SplitMode mode = SplitMode::intra_run;
  // intra_run
  double train_fraction = 0.8;
  double val_fraction = 0.1;
  double min_gap_seconds = 20.0;  // gap = ceil(max(min_gap_seconds, window seconds) / TR) windows
  // cross_subject: explicit lists (subject labels without "sub-"), or fractions when both are empty.
  std::vector<std::string> val_subjects;
  std::vector<std::string> test_subjects;
  double val_subject_fraction = 0.1;
  double test_subject_fraction = 0.1;
  // kfold
  int64_t folds = 5;
  uint64_t seed = 0;  // shuffles subjects (cross_subject fractions, kfold)
};

// Split labels of one run's n windows in time order (intra_run rule above).
std::vector<Split> intra_run_split(int64_t num_windows, double repetition_time, double window_seconds,
                                   const SplitSpec& spec);
// The set of each subject (cross_subject rule above), in the order of `subjects` (any order; the
// result does not depend on it). ConfigError for unknown or overlapping listed subjects, or when
// the training set would be empty.
std::vector<Split> cross_subject_split(const std::vector<std::string>& subjects, const SplitSpec& spec);
// The fold of each subject (kfold rule above); ConfigError when folds < 2 or folds > subjects.
std::vector<int64_t> subject_folds(const std::vector<std::string>& subjects, int64_t folds, uint64_t seed);
// The set of a window whose subject is in `subject_fold` when fold `selected` of `folds` is tested.
Split fold_split(int64_t subject_fold, int64_t selected, int64_t folds);

// Trigger labels tried when none is given, in order: R128 (BrainVision Recorder's MR volume
// marker), Scan Start (BrainVision "Scanner/Scan Start"), R149 (the reference's VU data),
// "T  1" (BrainVision toggle markers), TR, volume.
const std::vector<std::string>& default_trigger_labels();
// Whether an annotation label (or its description after "type/") equals a trigger label,
// ignoring case and surrounding white space.
bool trigger_label_matches(const std::string& wanted, const std::string& label);
// "markers present: 'R128' x300, ..." (up to 12 labels, from the annotations and BIDS events), or
// "the recording has no markers": what messages about missing triggers show the user.
std::string marker_summary(const Recording& header, const std::vector<BidsEvent>& events = {});

struct OnsetOptions {
  double trigger_tolerance = 0.1;    // max |interval / TR - round(interval / TR)|
  int64_t max_missing_triggers = 3;  // per interval: up to (1 + this) TRs are repaired
  int64_t dummy_scans = 0;           // leading triggers without a target row
};

struct VolumeOnsets {
  std::vector<double> onsets;  // one per target row, seconds
  int64_t triggers_found = 0;  // matching markers before any correction
  int64_t duplicates = 0;
  int64_t interpolated = 0;
  int64_t dummies_dropped = 0;
  std::vector<std::string> warnings;
};

// Volume onsets from trigger times (any order) for a table of `num_volumes` rows (rules above).
// `what` names the triggers in messages, e.g. "'sub-01.vhdr': 'R128' triggers".
VolumeOnsets onsets_from_triggers(std::vector<double> triggers, double repetition_time, int64_t num_volumes,
                                  const OnsetOptions& options, const std::string& what);

struct PrepareOptions {
  // EEG channels the windows hold, in this order (usually a model config's channel list); empty:
  // the EEG channels with a standard position that every run has.
  std::vector<std::string> channels;
  std::string config_name;  // recorded in the parameters only
  // A required channel a run lacks or marks bad: interpolated, zero-filled or an error.
  MissingChannelPolicy missing_channels = MissingChannelPolicy::interpolate;
  double sample_rate = 200.0;           // Hz, the model's rate
  int64_t window_samples = 3200;        // at sample_rate: 16 s
  std::optional<double> eeg_highpass_hz;  // Butterworth high-pass, off by default
  int eeg_highpass_order = 4;
  std::optional<double> notch_hz;  // iirnotch, off by default
  double notch_quality = 30.0;
  bool demean_windows = true;  // subtract each window channel's mean (the reference's baseline)

  std::optional<double> fmri_lowpass_hz = 0.15;  // nullopt: targets are used as they are
  int fmri_lowpass_order = 5;
  std::vector<std::string> rois;  // ROI names to keep, in this order; empty: all of the first run's

  std::vector<std::string> trigger_labels;    // empty: default_trigger_labels()
  std::optional<double> first_volume_offset;  // set: no triggers; onset k = offset + k * TR
  OnsetOptions onsets;

  SplitSpec split;
  // Target discovery (derivatives folders, target entities, atlas). Without derivatives folders
  // and atlas, prepare_bids searches every folder of <root>/derivatives that holds sub-* folders.
  BidsOptions bids;

  // Set: each raw recording is first cleaned of MR gradient and BCG artefacts (clean.hpp) at
  // sample_rate, and the windows come from the cleaned EEG.
  std::optional<CleanOptions> clean;

  int gzip_level = 1;  // 1: fastest; EEG floats compress little more at higher levels
  int64_t chunk_windows = 1;
  bool force = false;
};

// One run given explicitly rather than through BIDS.
struct ExplicitRun {
  std::string eeg_path;
  std::string targets_path;      // ROI time series TSV (read_timeseries_tsv)
  double repetition_time = 0.0;  // seconds
  // Identification; empty: from the EEG file name's BIDS entities, else its stem.
  std::string subject;
  std::string name;
};

struct RunReport {
  std::string name;  // "sub-01_task-rest_run-1"
  std::string subject;
  std::string eeg_path;
  std::string target_path;
  std::string onset_source;  // e.g. "trigger 'R128' (EEG annotations)", "offset 2 s + k * TR"
  double repetition_time = 0.0;
  int64_t num_volumes = 0;
  int64_t num_windows = 0;
  int64_t skipped_before_start = 0;  // no full window: the window would start before the EEG
  int64_t skipped_after_end = 0;     // the onset lies after the EEG's end
  int64_t skipped_nan_target = 0;
  int64_t interpolated_triggers = 0;
  std::vector<std::string> missing_channels;       // zero-filled
  std::vector<std::string> interpolated_channels;  // rebuilt by spherical splines
  std::vector<std::string> unmapped_channels;  // recording channels left out
  std::array<int64_t, 3> windows_per_split{};  // train, val, test
  int64_t excluded_windows = 0;
  std::string cleaning;  // with PrepareOptions::clean: what the artefact correction did
  std::vector<std::string> warnings;
  double seconds = 0.0;

  int64_t skipped() const { return skipped_before_start + skipped_after_end + skipped_nan_target; }
  // "sub-01_task-rest_run-1: 300 volumes, 293 windows (7 skipped: no full 16 s window),
  // interpolated: FT9 FT10, 12.3 s"
  std::string summary(double window_seconds) const;
};

struct PrepareResult {
  std::string output;
  bool up_to_date = false;  // the output already held these inputs and options: nothing done
  std::string fingerprint;
  std::vector<RunReport> runs;
  std::vector<std::string> skipped_runs;  // runs without a target, one line each
  int64_t num_windows = 0;
  std::array<int64_t, 3> windows_per_split{};
  int64_t excluded_windows = 0;
  std::string cleaning;  // with PrepareOptions::clean: what the artefact correction did
  std::vector<std::string> warnings;
  double seconds = 0.0;
};

struct PrepareProgress {
  int64_t run = 0;         // index of the run in progress
  int64_t num_runs = 0;
  std::string run_name;
  std::string stage;       // "reading", "resampling", "filtering", "writing"
  double fraction = 0.0;   // of the whole job, 0..1
};

struct PrepareCallbacks {
  std::function<void(const PrepareProgress&)> progress;
  std::function<void(const RunReport&)> run_done;
};

// The target processing of one run, as prepare applies it (and eval repeats it on measured targets):
// the columns `rois` of `target`, in that order (a ConfigError names the ones it lacks), each
// zero-phase low-passed at `cutoff_hz` (Butterworth of `order`, b/a form, scipy.signal.filtfilt;
// nullopt: no filter; at or above the Nyquist frequency of the TR: skipped, with a line in
// `warnings`). An n/a value with the low-pass on is a FormatError naming the row. Row-major
// [volumes, ROIs].
std::vector<double> process_target_series(const TargetSeries& target, const std::vector<std::string>& rois,
                                          const std::optional<double>& cutoff_hz, int order,
                                          std::vector<std::string>& warnings);

// Prepares every EEG run of a BIDS dataset that has a target (index_bids with options.bids).
PrepareResult prepare_bids(const std::string& bids_root, const std::string& output, const PrepareOptions& options,
                           const PrepareCallbacks& callbacks = {});
// Prepares explicitly named runs.
PrepareResult prepare_files(const std::vector<ExplicitRun>& runs, const std::string& output,
                            const PrepareOptions& options, const PrepareCallbacks& callbacks = {});

// ------------------------------------------------------------------------------------------------
// Reading

struct TargetNormalisation {
  std::vector<double> mean;  // per ROI
  std::vector<double> std;
};

struct Batch {
  std::vector<int64_t> indices;  // window indices, in request order
  int64_t num_channels = 0;
  int64_t window_samples = 0;
  int64_t num_rois = 0;
  std::vector<float> windows;      // [B, C, S] microvolts
  std::vector<float> targets;      // [B, R] z-scored with the reader's normalisation()
  std::vector<float> targets_raw;  // [B, R]

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

// Streams windows from a prepared file without loading it whole: the small per-window tables
// (splits, ids, targets) are read at open; windows are read on request, a contiguous run of
// indices at a time, through a chunk cache. Not thread-safe (neither is the HDF5 library as
// usually built): use it from one thread.
class DatasetReader {
 public:
  // IoError when missing; FormatError when not a neurobolt dataset or inconsistent.
  explicit DatasetReader(const std::string& path);
  ~DatasetReader();
  DatasetReader(DatasetReader&&) noexcept;
  DatasetReader& operator=(DatasetReader&&) noexcept;

  const std::string& path() const;
  int64_t num_windows() const;
  int64_t num_windows(Split split) const;
  // Window indices of a split (with the selected fold for kfold files), ascending.
  const std::vector<int64_t>& indices(Split split) const;
  Split split_of(int64_t window) const;

  int64_t num_channels() const;
  int64_t window_samples() const;
  int64_t num_rois() const;
  double sample_rate() const;
  const std::vector<std::string>& channel_names() const;
  const std::vector<std::string>& roi_names() const;

  SplitMode split_mode() const;
  int64_t num_folds() const;  // 0 unless kfold
  int64_t fold() const;       // the selected fold (kfold), else 0
  // kfold files: re-labels the splits and switches the target statistics. ConfigError otherwise
  // or when out of range.
  void select_fold(int64_t fold);
  // Statistics of the training split in use (targets = (raw - mean) / std).
  const TargetNormalisation& normalisation() const;

  // Windows and targets of the given windows, in the given order. FormatError for an index out of
  // range.
  Batch read_batch(const std::vector<int64_t>& indices) const;

  // Per-window identification.
  int64_t run_of(int64_t window) const;
  int64_t volume_of(int64_t window) const;
  double onset_of(int64_t window) const;
  const std::string& subject_of(int64_t window) const;
  const std::vector<std::string>& run_names() const;
  const std::vector<std::string>& subjects() const;

  std::string parameters_json() const;
  std::string provenance_json() const;
  std::string fingerprint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What a checkpoint records about the dataset it was trained on (a JSON object): "path",
// "fingerprint", "sample_rate", "window_samples", "channel_names", "roi_names", "split_mode",
// "fold", "normalisation" {"mean", "std"} (per ROI, of the training split in use) and
// "parameters" (every preprocessing option of `prepare`), so that `infer` can redo the
// preprocessing and state its units.
std::string checkpoint_dataset_json(const DatasetReader& reader);

}  // namespace neurobolt
