#pragma once
// The classical baseline (`neurobolt train --arch ridge`): log band power of each EEG channel in
// short sub-windows of the 16 s window, and one ridge regression per ROI. It shows whether a
// dataset carries EEG-predictable signal at all and is what the deep model is compared with.
// Plain C++ and torch-free.
//
// Features. A window [C, S] is cut into K equal sub-windows of L = floor(S / K) samples that end
// at the window's end (the S - K L leading samples, none for 3200 / 8, are unused). For each
// channel and sub-window: subtract the sub-window's mean, multiply by a periodic Hann window, FFT
// (L points), and take the one-sided power spectral density (scipy.signal.periodogram's
// 'density' scaling, µV²/Hz). A band [low, high) sums PSD x bin width over the bins with
// low <= f < high, which is the band's power in µV² (Parseval: a sinusoid of amplitude A well
// inside the band gives A²/2). The feature is ln(power + 1e-10 µV²) (the floor keeps zero-filled
// channels finite). Feature (c, b, k) sits at index (c * B + b) * K + k: C x B x K features.
// Each sub-window is its own lag, so the regression is an FIR model over the window and learns
// each ROI's haemodynamic delay.
//
// Regression. Features are standardised with the training split's mean and standard deviation
// (ddof 0; a constant feature keeps std 1 and so gets no weight). Per ROI, ridge regression of the
// z-scored target on the standardised features with an unpenalised intercept. The penalty alpha is
// chosen per ROI from a grid (default 10^-1, 10^-0.5, ..., 10^6) by inner K-fold cross-validation
// on the TRAINING split only:
//  * folds are grouped by run: windows of one run overlap in time and are autocorrelated, so a run
//    is never split across folds (runs are dealt largest first to the fold with fewest windows;
//    K = min(inner_folds, runs)). With a single training run the folds are K contiguous blocks in
//    time order, and training windows within `purge_seconds` of the held-out block are left out of
//    that fold's fit;
//  * in each fold the fit centres features and targets on the fold's training part (the
//    intercept) and factorises it once (Householder QR then SVD of R, or an SVD of the centred
//    features when there are more features than windows); every alpha then costs one small matrix
//    product;
//  * criterion: the Pearson r between predictions and targets of each held-out fold, averaged over
//    folds (mean inner-fold r). By default the chosen alpha is the LARGEST one whose mean r is
//    within one standard error (over folds) of the best mean r: the "one-standard-error rule"
//    (Hastie, Tibshirani & Friedman, Elements of Statistical Learning, 7.10); `one_standard_error`
//    = false takes the best mean r itself. r ignores the scale of the predictions, so it cannot
//    prefer shrinkage by itself: the best mean r of a target without signal sits at a penalty
//    picked by noise, often the smallest (an overfitted model). The rule prefers the simpler
//    model when the folds cannot tell penalties apart: on autocorrelated pure-noise targets it
//    picks the top of the grid 3 times in 4 (the best mean r: 1 in 3), and on the simulated
//    4-subject study it raised the mean test r over ROIs from 0.27 to 0.29 and lowered the test
//    MSE from 1.18 to 1.05, by avoiding chance picks of tiny penalties.
// Then one refit on the whole training split with each ROI's chosen alpha.
//
// Checkpoint (HDF5, the neurobolt checkpoint format with arch "ridge"): root attributes `format`
// "neurobolt-checkpoint", `format_version` 1, `arch` "ridge", `config` (JSON: arch, channels,
// rois, sample_rate, window_samples, bands [[low, high], ...], sub_windows), `metadata` (JSON:
// arch, neurobolt_version, created, dataset (checkpoint_dataset_json), training); float64 datasets
// /ridge/feature_mean [F], /ridge/feature_std [F], /ridge/weights [F, R] (on standardised
// features), /ridge/intercept [R], /ridge/alpha [R]. A prediction is
// intercept[r] + sum_f (x_f - mean_f) / std_f * weights[f, r], in z-scored target units.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "neurobolt/predictor.hpp"

namespace neurobolt {

// ------------------------------------------------------------------------------------------------
// Band power features

struct BandPowerOptions {
  // [low, high) Hz: delta, theta, alpha, beta, gamma.
  std::vector<std::pair<double, double>> bands = {{1, 4}, {4, 8}, {8, 13}, {13, 30}, {30, 45}};
  int64_t sub_windows = 8;  // K: 2 s each for a 16 s window
};

// ConfigError naming the field unless: at least one band, 0 <= low < high <= sample_rate / 2 and
// at least one FFT bin in each band; 1 <= sub_windows and sub-windows of at least 8 samples.
void validate(const BandPowerOptions& options, double sample_rate, int64_t window_samples);

// Computes the features of windows. Keeps FFT plans and scratch space: use one object per thread.
class BandPowerFeatures {
 public:
  // Validates the options (above) and channels >= 1.
  BandPowerFeatures(const BandPowerOptions& options, int64_t channels, int64_t window_samples, double sample_rate);
  ~BandPowerFeatures();
  BandPowerFeatures(BandPowerFeatures&&) noexcept;
  BandPowerFeatures& operator=(BandPowerFeatures&&) noexcept;

  int64_t num_features() const;        // channels x bands x sub_windows
  int64_t sub_window_samples() const;  // L
  const BandPowerOptions& options() const;
  // "O1 8-13 Hz -2..0 s": channel, band and the sub-window's time relative to the window's end.
  std::vector<std::string> feature_names(const std::vector<std::string>& channels) const;

  // windows: [batch, channels, window_samples] float32 µV, row-major; out: [batch, num_features()].
  // Each window's features depend on that window only (not on the batch it comes in).
  void compute(const float* windows, int64_t batch, double* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ------------------------------------------------------------------------------------------------
// Ridge regression

// A fitted model on standardised features.
struct RidgeModel {
  int64_t num_features = 0;
  int64_t num_rois = 0;
  std::vector<double> feature_mean;  // [F]
  std::vector<double> feature_std;   // [F], > 0
  std::vector<double> weights;       // [F, R] row-major
  std::vector<double> intercept;     // [R]
  std::vector<double> alpha;         // [R] the penalty each ROI was fitted with

  // features: [n, F] row-major; out: [n, R]. Row by row in a fixed order, so a window's
  // prediction does not depend on the other rows (training and inference agree to the bit).
  void predict(const double* features, int64_t n, double* out) const;
};

// The default penalty grid: 10^-1, 10^-0.5, ..., 10^6 (15 values).
std::vector<double> default_ridge_alphas();

// Inner cross-validation folds for samples with these group ids (runs), in sample order (rules
// in the header comment). ConfigError when folds < 2, or when a fold would hold fewer than 2
// samples.
struct InnerFolds {
  std::vector<int64_t> fold;  // per sample, 0 .. count - 1
  int64_t count = 0;
  bool grouped = false;  // whole groups per fold; false: contiguous blocks of a single group
};
InnerFolds make_inner_folds(const std::vector<int64_t>& groups, int64_t folds);

struct RidgeData {
  int64_t samples = 0;
  int64_t features = 0;
  int64_t rois = 0;
  const double* x = nullptr;  // [samples, features] raw (unstandardised) features
  const double* y = nullptr;  // [samples, rois] targets
  std::vector<int64_t> groups;  // per sample: its run
  std::vector<double> times;    // per sample: seconds (volume onset), for purging blocks of one run
};

struct RidgeCvOptions {
  std::vector<double> alphas;  // empty: default_ridge_alphas(); each > 0
  int64_t folds = 5;
  double purge_seconds = 20.0;     // single-run blocks only; train_ridge: max(20 s, window), prepare's gap
  bool one_standard_error = true;  // false: the alpha with the best mean inner-fold r
};

// How the penalty was chosen, in words (for metadata and reports).
std::string ridge_criterion(bool one_standard_error);

struct RidgeCvResult {
  RidgeModel model;                  // refit on every sample with the chosen alphas
  std::vector<double> alphas;        // the grid, ascending
  InnerFolds folds;
  std::vector<double> mean_r;        // [alphas, R] mean inner-fold r
  std::vector<double> standard_error;  // [alphas, R] standard error of that mean over folds
  std::vector<double> inner_r;       // [R] mean inner-fold r at the chosen alpha
};

// Standardises, cross-validates the penalty per ROI and refits (rules in the header comment).
// ConfigError for fewer than 3 samples, a non-positive or non-finite alpha, non-finite data.
RidgeCvResult fit_ridge_cv(const RidgeData& data, const RidgeCvOptions& options);

// ------------------------------------------------------------------------------------------------
// Checkpoint

struct RidgeCheckpoint {
  std::vector<std::string> channels;
  std::vector<std::string> rois;
  double sample_rate = 200.0;
  int64_t window_samples = 3200;
  BandPowerOptions features;
  RidgeModel model;
  std::string metadata_json = "{}";  // a JSON object

  std::string config_json() const;  // the `config` attribute
};

// Writes atomically (temporary file + rename). IoError if `path` exists and not `force`;
// ConfigError when the sizes disagree (F = channels x bands x sub_windows, R = rois).
void save_ridge_checkpoint(const RidgeCheckpoint& checkpoint, const std::string& path, bool force);
// Validates every attribute and dataset size against the config before reading the data: a
// FormatError names the field (never a huge allocation); IoError when the file is missing.
RidgeCheckpoint read_ridge_checkpoint(const std::string& path);

// What `neurobolt info` prints for a ridge checkpoint: inputs, outputs, features, penalties and the
// validation r it was selected with; and the same as a JSON object ("kind": "model", "arch": "ridge").
std::string format_ridge_summary(const std::string& path, const RidgeCheckpoint& checkpoint);
std::string ridge_summary_json(const std::string& path, const RidgeCheckpoint& checkpoint);

// The ridge model behind the Predictor interface: predict() computes the features and applies the
// model exactly as training did.
std::unique_ptr<Predictor> load_ridge_predictor(const std::string& path);

// ------------------------------------------------------------------------------------------------
// Training

struct RidgeTrainOptions {
  BandPowerOptions features;
  std::vector<double> alphas;  // empty: default_ridge_alphas()
  int64_t inner_folds = 5;
  bool one_standard_error = true;  // the penalty rule (see the header comment)
  int64_t batch = 64;              // windows read from the dataset at a time
  int64_t fold = 0;    // kfold datasets: the fold held out
  bool force = false;  // replace existing outputs in run_dir
};

struct RidgeTrainResult {
  std::vector<double> alpha;           // per ROI, chosen
  std::vector<double> inner_cv_r;      // per ROI, mean inner-fold r at the chosen alpha
  std::vector<double> val_r, val_mse;  // per ROI; NaN without validation windows
  std::vector<double> train_r;         // per ROI, in-sample
  double train_mse = 0.0;              // mean over windows and ROIs, in-sample
  double val_mean_r = 0.0;             // NaN without validation windows
  std::vector<double> alphas;          // the grid
  int64_t inner_folds = 0;             // folds used (min(inner_folds, training runs))
  bool inner_folds_grouped = true;     // false: blocks of a single run
  int64_t features = 0;
  int64_t train_windows = 0;
  int64_t val_windows = 0;
  // Validation windows (dataset indices, ascending) and their predictions [val_windows, R]
  // (z-scored units), as load_ridge_predictor's model reproduces them.
  std::vector<int64_t> val_indices;
  std::vector<float> val_predictions;
  double read_seconds = 0.0;     // reading windows from the dataset
  double feature_seconds = 0.0;  // computing features
  double fit_seconds = 0.0;      // cross-validation and refit
  double seconds = 0.0;          // all of train_ridge
  double feature_windows_per_s = 0.0;
  std::string best_path, last_path, metrics_path;
  std::vector<std::string> notes;  // decisions worth telling the user, one line each
};

// Trains the baseline on a prepared dataset into run_dir (created if missing): best.h5 and
// last.h5 (the same model) and metrics.jsonl (one line; keys as the deep trainer's epochs: "epoch"
// 1, "arch" "ridge", "train_loss" (training MSE), "val_mean_r", "val_r", "val_mse", "alpha",
// "inner_cv_r", "seconds"; NaN is written as null). Windows are streamed in batches; only features
// are kept. Every output is checked before any work: an existing one is an IoError naming it
// unless options.force. ConfigError without training windows or for bad options. `progress` gets a
// stage ("features", "cross-validation", "writing") and the fraction of that stage done.
RidgeTrainResult train_ridge(const std::string& dataset_path, const std::string& run_dir,
                             const RidgeTrainOptions& options,
                             const std::function<void(const std::string& stage, double fraction)>& progress = {});

}  // namespace neurobolt
