// train_ridge: the baseline's training run over a prepared dataset (see ridge.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "core/time_text.hpp"
#include "core/atomic_file.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/ridge.hpp"

namespace neurobolt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

json number_or_null(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

json numbers(const std::vector<double>& values) {
  json out = json::array();
  for (double x : values) out.push_back(number_or_null(x));
  return out;
}

struct RoiScore {
  double r = kNaN;
  double mse = kNaN;
};

// Pearson r and MSE of each ROI column of [n, R] predictions against targets.
std::vector<RoiScore> score(const std::vector<double>& predicted, const std::vector<double>& target, int64_t n, int64_t R) {
  std::vector<RoiScore> out(static_cast<std::size_t>(R));
  if (n < 1) return out;
  for (int64_t r = 0; r < R; ++r) {
    double mp = 0, mt = 0, se = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double p = predicted[static_cast<std::size_t>(i * R + r)], t = target[static_cast<std::size_t>(i * R + r)];
      mp += p;
      mt += t;
      se += (p - t) * (p - t);
    }
    mp /= static_cast<double>(n);
    mt /= static_cast<double>(n);
    double spp = 0, stt = 0, spt = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double p = predicted[static_cast<std::size_t>(i * R + r)] - mp, t = target[static_cast<std::size_t>(i * R + r)] - mt;
      spp += p * p;
      stt += t * t;
      spt += p * t;
    }
    out[static_cast<std::size_t>(r)].mse = se / static_cast<double>(n);
    if (n > 1 && spp > 0 && stt > 0) out[static_cast<std::size_t>(r)].r = spt / std::sqrt(spp * stt);
  }
  return out;
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? kNaN : sum / static_cast<double>(values.size());
}

}  // namespace

RidgeTrainResult train_ridge(const std::string& dataset_path, const std::string& run_dir, const RidgeTrainOptions& options,
                             const std::function<void(const std::string& stage, double fraction)>& progress) {
  const auto start = Clock::now();
  auto report = [&](const char* stage, double fraction) {
    if (progress) progress(stage, fraction);
  };
  if (options.batch < 1) throw ConfigError(fmt::format("ridge training: 'batch' must be >= 1, found {}", options.batch));
  if (options.inner_folds < 2)
    throw ConfigError(fmt::format("ridge training: 'inner_folds' must be >= 2, found {}", options.inner_folds));
  for (double a : options.alphas) {
    if (!(a > 0.0) || !std::isfinite(a))
      throw ConfigError(fmt::format("ridge training: every alpha must be a positive finite number, found {}", a));
  }

  DatasetReader reader(dataset_path);
  if (reader.split_mode() == SplitMode::kfold) {
    reader.select_fold(options.fold);
  } else if (options.fold != 0) {
    throw ConfigError(fmt::format("ridge training: 'fold' = {} needs a kfold dataset; '{}' is split {}", options.fold,
                                  dataset_path, to_string(reader.split_mode())));
  }
  const int64_t C = reader.num_channels(), S = reader.window_samples(), R = reader.num_rois();
  BandPowerFeatures extractor(options.features, C, S, reader.sample_rate());
  const int64_t F = extractor.num_features();
  const auto& train_indices = reader.indices(Split::train);
  const auto& val_indices = reader.indices(Split::val);
  if (train_indices.empty())
    throw ConfigError(fmt::format("ridge training: '{}' has no training windows (split {}{})", dataset_path,
                                  to_string(reader.split_mode()),
                                  reader.split_mode() == SplitMode::kfold ? fmt::format(", fold {}", reader.fold()) : ""));

  RidgeTrainResult result;
  const fs::path dir(run_dir);
  result.best_path = (dir / "best.h5").string();
  result.last_path = (dir / "last.h5").string();
  result.metrics_path = (dir / "metrics.jsonl").string();
  // Refuse before any work rather than after minutes of it.
  std::error_code ec;
  for (const auto& path : {result.best_path, result.last_path, result.metrics_path}) {
    if (fs::exists(path, ec) && !options.force)
      throw IoError(fmt::format("'{}' already exists (use --force to overwrite)", path));
  }
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) throw IoError(fmt::format("cannot create the run folder '{}'", run_dir));

  // Stream the windows; keep only features and targets. This thread reads (HDF5 is not
  // thread-safe) while a second one computes the features of the batch before, so that the
  // features cost no wall time as long as they are faster than reading.
  const auto n_train = static_cast<int64_t>(train_indices.size());
  const auto n_val = static_cast<int64_t>(val_indices.size());
  std::vector<double> x_train(static_cast<std::size_t>(n_train * F)), y_train(static_cast<std::size_t>(n_train * R));
  std::vector<double> x_val(static_cast<std::size_t>(n_val * F)), y_val(static_cast<std::size_t>(n_val * R));
  int64_t done = 0;
  std::future<double> pending;  // the feature seconds of the batch in flight
  auto extract = [&](const std::vector<int64_t>& indices, std::vector<double>& x, std::vector<double>& y) {
    for (std::size_t first = 0; first < indices.size(); first += static_cast<std::size_t>(options.batch)) {
      const std::size_t last = std::min(indices.size(), first + static_cast<std::size_t>(options.batch));
      const std::vector<int64_t> chunk(indices.begin() + static_cast<std::ptrdiff_t>(first),
                                       indices.begin() + static_cast<std::ptrdiff_t>(last));
      const auto t0 = Clock::now();
      auto batch = std::make_shared<const Batch>(reader.read_batch(chunk));
      result.read_seconds += seconds_since(t0);
      if (pending.valid()) result.feature_seconds += pending.get();
      double* x_out = x.data() + first * static_cast<std::size_t>(F);
      double* y_out = y.data() + first * static_cast<std::size_t>(R);
      pending = std::async(std::launch::async, [&extractor, batch, x_out, y_out] {
        const auto t1 = Clock::now();
        extractor.compute(batch->windows.data(), batch->size(), x_out);
        std::copy(batch->targets.begin(), batch->targets.end(), y_out);
        return seconds_since(t1);
      });
      done += batch->size();
      report("features", static_cast<double>(done) / static_cast<double>(n_train + n_val));
    }
  };
  extract(train_indices, x_train, y_train);
  extract(val_indices, x_val, y_val);
  if (pending.valid()) result.feature_seconds += pending.get();
  result.feature_windows_per_s =
      result.feature_seconds > 0 ? static_cast<double>(n_train + n_val) / result.feature_seconds : kNaN;

  report("cross-validation", 0.0);
  const auto fit_start = Clock::now();
  RidgeData data;
  data.samples = n_train;
  data.features = F;
  data.rois = R;
  data.x = x_train.data();
  data.y = y_train.data();
  for (int64_t i : train_indices) {
    data.groups.push_back(reader.run_of(i));
    data.times.push_back(reader.onset_of(i));
  }
  RidgeCvOptions cv_options;
  cv_options.alphas = options.alphas;
  cv_options.folds = options.inner_folds;
  cv_options.one_standard_error = options.one_standard_error;
  // As prepare's intra-run gap: windows closer than this share EEG or haemodynamics.
  cv_options.purge_seconds = std::max(20.0, static_cast<double>(S) / reader.sample_rate());
  RidgeCvResult cv;
  try {
    cv = fit_ridge_cv(data, cv_options);
  } catch (Error& e) {
    e.add_context(fmt::format("ridge training on '{}'", dataset_path));
    throw;
  }
  result.fit_seconds = seconds_since(fit_start);
  report("cross-validation", 1.0);
  const RidgeModel& model = cv.model;

  result.alpha = model.alpha;
  result.inner_cv_r = cv.inner_r;
  result.alphas = cv.alphas;
  result.inner_folds = cv.folds.count;
  result.inner_folds_grouped = cv.folds.grouped;
  result.features = F;
  result.train_windows = n_train;
  result.val_windows = n_val;
  result.notes.push_back(
      cv.folds.grouped
          ? fmt::format("inner cross-validation: {} folds of whole runs ({} training runs)", cv.folds.count,
                        [&] {
                          std::set<int64_t> runs(data.groups.begin(), data.groups.end());
                          return runs.size();
                        }())
          : fmt::format("inner cross-validation: one training run, {} contiguous blocks, {:g} s left out around each "
                        "held-out block",
                        cv.folds.count, cv_options.purge_seconds));
  int64_t at_top = 0, at_bottom = 0;
  for (double a : model.alpha) {
    at_top += a == cv.alphas.back();
    at_bottom += a == cv.alphas.front() && cv.alphas.size() > 1;
  }
  if (at_top > 0)
    result.notes.push_back(fmt::format("{} of {} ROIs took the largest penalty ({:g}): no smaller one did clearly better "
                                       "in the inner folds",
                                       at_top, R, cv.alphas.back()));
  if (at_bottom > 0)
    result.notes.push_back(fmt::format("{} of {} ROIs took the smallest penalty ({:g}); a grid reaching lower may fit "
                                       "better",
                                       at_bottom, R, cv.alphas.front()));

  std::vector<double> predicted(static_cast<std::size_t>(n_train * R));
  model.predict(x_train.data(), n_train, predicted.data());
  double train_se = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i) train_se += (predicted[i] - y_train[i]) * (predicted[i] - y_train[i]);
  result.train_mse = train_se / static_cast<double>(predicted.size());
  for (const auto& s : score(predicted, y_train, n_train, R)) result.train_r.push_back(s.r);

  // Validation from float32 predictions: what the Predictor returns for the same windows.
  predicted.assign(static_cast<std::size_t>(n_val * R), 0.0);
  model.predict(x_val.data(), n_val, predicted.data());
  result.val_indices = val_indices;
  result.val_predictions.assign(predicted.begin(), predicted.end());
  const std::vector<double> val_as_float(result.val_predictions.begin(), result.val_predictions.end());
  result.val_r.assign(static_cast<std::size_t>(R), kNaN);
  result.val_mse.assign(static_cast<std::size_t>(R), kNaN);
  result.val_mean_r = kNaN;
  if (n_val > 0) {
    const auto scores = score(val_as_float, y_val, n_val, R);
    for (int64_t r = 0; r < R; ++r) {
      result.val_r[static_cast<std::size_t>(r)] = scores[static_cast<std::size_t>(r)].r;
      result.val_mse[static_cast<std::size_t>(r)] = scores[static_cast<std::size_t>(r)].mse;
    }
    result.val_mean_r = mean_of(result.val_r);
  } else {
    result.notes.push_back("no validation windows: val_r, val_mse and val_mean_r are NaN (null in metrics.jsonl)");
  }

  report("writing", 0.0);
  RidgeCheckpoint checkpoint;
  checkpoint.channels = reader.channel_names();
  checkpoint.rois = reader.roi_names();
  checkpoint.sample_rate = reader.sample_rate();
  checkpoint.window_samples = S;
  checkpoint.features = options.features;
  checkpoint.model = model;
  const json training{{"alphas", cv.alphas},
                      {"inner_folds", cv.folds.count},
                      {"inner_folds_grouped_by_run", cv.folds.grouped},
                      {"purge_seconds", cv.folds.grouped ? json(nullptr) : json(cv_options.purge_seconds)},
                      {"criterion", ridge_criterion(options.one_standard_error)},
                      {"inner_cv_r", numbers(cv.inner_r)},
                      {"train_windows", n_train},
                      {"val_windows", n_val},
                      {"train_mse", number_or_null(result.train_mse)},
                      {"val_mean_r", number_or_null(result.val_mean_r)},
                      {"val_r", numbers(result.val_r)}};
  checkpoint.metadata_json = json{{"arch", "ridge"},
                                  {"neurobolt_version", NEUROBOLT_VERSION},
                                  {"created", detail::utc_now_iso()},
                                  {"dataset", json::parse(checkpoint_dataset_json(reader))},
                                  {"training", training}}
                                 .dump();
  save_ridge_checkpoint(checkpoint, result.best_path, options.force);
  report("writing", 0.4);
  save_ridge_checkpoint(checkpoint, result.last_path, options.force);
  report("writing", 0.8);

  result.seconds = seconds_since(start);
  const double val_loss = n_val > 0 ? mean_of(result.val_mse) : kNaN;
  const json line{{"epoch", 1},
                  {"arch", "ridge"},
                  {"train_loss", number_or_null(result.train_mse)},
                  {"val_loss", number_or_null(val_loss)},
                  {"val_mean_r", number_or_null(result.val_mean_r)},
                  {"val_r", numbers(result.val_r)},
                  {"val_mse", numbers(result.val_mse)},
                  {"alpha", numbers(result.alpha)},
                  {"inner_cv_r", numbers(result.inner_cv_r)},
                  {"seconds", result.seconds}};
  detail::AtomicOutput metrics(result.metrics_path, options.force);
  metrics.write_all(line.dump() + "\n");
  metrics.commit();
  report("writing", 1.0);
  return result;
}

}  // namespace neurobolt
