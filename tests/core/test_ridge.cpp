// The ridge baseline: band power features, penalty selection by grouped inner folds, the
// checkpoint and its Predictor, and train_ridge end to end on a simulated study.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>

#include "io/h5.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/ridge.hpp"
#include "neurobolt/simulate.hpp"
#include "test_support.hpp"

using namespace neurobolt;
using Catch::Matchers::Contains;

namespace {

constexpr double kRate = 200.0;
constexpr int64_t kSamples = 3200;

// The kind of neurobolt::Error that f throws, or -1.
int error_kind(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return static_cast<int>(e.kind());
  }
  return -1;
}
constexpr int kFormat = static_cast<int>(ErrorKind::format);
constexpr int kIo = static_cast<int>(ErrorKind::io);
constexpr int kConfig = static_cast<int>(ErrorKind::config);

double sine(double amplitude, double hz, int64_t i) {
  return amplitude * std::sin(2.0 * M_PI * hz * static_cast<double>(i) / kRate + 0.3);
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ma += a[i] / n, mb += b[i] / n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

}  // namespace

TEST_CASE("ridge features: band power of sinusoids lands in the right band and sub-window with power A^2/2", "[ridge]") {
  // Channel 0: 20 µV at 10 Hz in the last 2 s only, 5 µV at 20 Hz throughout. Channel 1: 10 µV at
  // 2.5 Hz, 3 µV at 37.3 Hz (between FFT bins) and a 100 µV offset. Bins are 0.5 Hz apart.
  std::vector<float> window(2 * kSamples);
  for (int64_t i = 0; i < kSamples; ++i) {
    window[i] = static_cast<float>((i >= kSamples - 400 ? sine(20, 10, i) : 0.0) + sine(5, 20, i));
    window[kSamples + i] = static_cast<float>(100.0 + sine(10, 2.5, i) + sine(3, 37.3, i));
  }
  BandPowerFeatures features(BandPowerOptions{}, 2, kSamples, kRate);
  REQUIRE(features.num_features() == 2 * 5 * 8);
  REQUIRE(features.sub_window_samples() == 400);
  std::vector<double> out(80);
  features.compute(window.data(), 1, out.data());
  auto power = [&](int64_t c, int64_t band, int64_t k) { return std::exp(out[(c * 5 + band) * 8 + k]) - 1e-10; };
  enum { delta, theta, alpha, beta, gamma };
  // An on-bin sinusoid of amplitude A has band power A²/2 (µV²) exactly; float32 input rounding
  // allows ~1e-6.
  for (int64_t k = 0; k < 8; ++k) {
    CHECK(power(0, beta, k) == Approx(12.5).epsilon(1e-5));
    CHECK(power(0, alpha, k) == (k == 7 ? Approx(200.0).epsilon(1e-5) : Approx(0.0).margin(1e-6)));
    CHECK(power(0, delta, k) < 1e-6);
    CHECK(power(0, theta, k) < 1e-6);
    CHECK(power(0, gamma, k) < 1e-6);
    CHECK(power(1, delta, k) == Approx(50.0).epsilon(1e-5));  // the offset is removed, not counted
    // Off-bin: the Hann window's leakage stays well inside the 30-45 Hz band.
    CHECK(power(1, gamma, k) == Approx(4.5).epsilon(5e-3));
    CHECK(power(1, theta, k) < 1e-4);
    CHECK(power(1, alpha, k) < 1e-4);
    CHECK(power(1, beta, k) < 1e-3);
  }
  const auto names = features.feature_names({"O1", "O2"});
  CHECK(names[(0 * 5 + alpha) * 8 + 7] == "O1 8-13 Hz -2..0 s");
  CHECK(names[(1 * 5 + delta) * 8 + 0] == "O2 1-4 Hz -16..-14 s");
}

TEST_CASE("ridge features: band power over 0-100 Hz is the windowed signal's energy (Parseval)", "[ridge]") {
  // [0, 100) Hz holds every one-sided bin but Nyquist; Parseval gives sum_j c_j |X_j|² = L sum
  // (x w)² - |X_Nyquist|², divided by L sum w² in the band power.
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0.0, 30.0);
  std::vector<float> window(kSamples);
  for (auto& v : window) v = static_cast<float>(normal(rng));
  BandPowerOptions options;
  options.bands = {{0, 100}};
  options.sub_windows = 4;
  BandPowerFeatures features(options, 1, kSamples, kRate);
  std::vector<double> out(4);
  features.compute(window.data(), 1, out.data());
  const int64_t L = 800;
  for (int64_t k = 0; k < 4; ++k) {
    double mean = 0;
    for (int64_t i = 0; i < L; ++i) mean += window[k * L + i] / static_cast<double>(L);
    double energy = 0, window_energy = 0, nyquist = 0;
    for (int64_t i = 0; i < L; ++i) {
      const double w = 0.5 - 0.5 * std::cos(2 * M_PI * static_cast<double>(i) / static_cast<double>(L));
      const double v = (window[k * L + i] - mean) * w;
      energy += v * v;
      window_energy += w * w;
      nyquist += (i % 2 ? -v : v);
    }
    const double expected = (static_cast<double>(L) * energy - nyquist * nyquist) / (static_cast<double>(L) * window_energy);
    CHECK(std::exp(out[k]) == Approx(expected + 1e-10).epsilon(1e-12));
  }
}

TEST_CASE("ridge features: bands and sub-windows that cannot be computed are refused", "[ridge]") {
  BandPowerOptions options;
  options.bands = {{8, 13}, {30, 120}};
  CHECK_THAT(test::error_of([&] { validate(options, kRate, kSamples); }),
             Contains("'bands[1]' must satisfy 0 <= low < high <= 100 Hz") && Contains("[30, 120]"));
  options.bands = {{10.1, 10.3}};  // between the 0.5 Hz bins of 2 s sub-windows
  CHECK_THAT(test::error_of([&] { validate(options, kRate, kSamples); }), Contains("holds no FFT bin"));
  options.bands = {{8, 13}};
  options.sub_windows = 1000;
  CHECK_THAT(test::error_of([&] { validate(options, kRate, kSamples); }),
             Contains("sub-windows of 3 samples") && Contains("at least 8"));
  options.sub_windows = 0;
  CHECK(error_kind([&] { validate(options, kRate, kSamples); }) == kConfig);
  options.sub_windows = 3;  // 1066 samples each; the 2 leading samples are unused
  BandPowerFeatures three(options, 1, kSamples, kRate);
  CHECK(three.sub_window_samples() == 1066);
}

TEST_CASE("ridge inner folds keep every run whole and fall back to contiguous blocks for one run", "[ridge]") {
  // Runs of different sizes, interleaved in sample order.
  const std::map<int64_t, int64_t> sizes{{10, 50}, {11, 30}, {12, 80}, {13, 10}, {14, 40}, {15, 60}, {16, 20}};
  std::vector<int64_t> groups;
  for (int64_t i = 0; i < 100; ++i) {
    for (const auto& [g, size] : sizes)
      if (i < size) groups.push_back(g);
  }
  const auto folds = make_inner_folds(groups, 5);
  CHECK(folds.grouped);
  CHECK(folds.count == 5);
  std::map<int64_t, std::set<int64_t>> folds_of_group;
  std::vector<int64_t> fill(5, 0);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    folds_of_group[groups[i]].insert(folds.fold[i]);
    fill.at(static_cast<std::size_t>(folds.fold[i]))++;
  }
  for (const auto& [g, f] : folds_of_group) CHECK(f.size() == 1);
  // Largest first to the emptiest fold: 80 | 60 | 50 | 40 | 30+10 ... -> fills within one run of each other.
  CHECK(*std::min_element(fill.begin(), fill.end()) >= 40);
  CHECK(*std::max_element(fill.begin(), fill.end()) <= 80);

  // Fewer runs than folds: one run per fold.
  const std::vector<int64_t> three{0, 0, 0, 1, 1, 1, 2, 2, 2};
  const auto by_run = make_inner_folds(three, 5);
  CHECK(by_run.count == 3);
  CHECK(std::set<int64_t>(by_run.fold.begin(), by_run.fold.end()).size() == 3);

  const auto blocks = make_inner_folds(std::vector<int64_t>(23, 7), 5);
  CHECK_FALSE(blocks.grouped);
  CHECK(blocks.count == 5);
  CHECK(std::is_sorted(blocks.fold.begin(), blocks.fold.end()));
  for (int64_t f = 0; f < 5; ++f) {
    const auto n = std::count(blocks.fold.begin(), blocks.fold.end(), f);
    CHECK((n == 4 || n == 5));
  }

  CHECK_THAT(test::error_of([] { make_inner_folds({0, 0, 1, 1}, 1); }), Contains("'inner_folds' must be >= 2, found 1"));
  CHECK_THAT(test::error_of([] { make_inner_folds(std::vector<int64_t>(9, 0), 5); }),
             Contains("9 training window(s) in one run cannot make 5 blocks"));
  CHECK_THAT(test::error_of([] { make_inner_folds({0, 0, 0, 0, 1}, 2); }), Contains("fold 2 of 2 holds 1 window(s)"));
}

TEST_CASE("ridge recovers a known linear map and predicts nothing from pure noise", "[ridge]") {
  // 6 runs x 100 samples, 20 correlated raw features with offsets; ROIs 0 and 1 are linear in the
  // features plus 5 % noise and an intercept, ROI 2 is independent noise.
  const int64_t runs = 6, per_run = 100, n = runs * per_run, F = 20, R = 3;
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto make_x = [&](int64_t rows) {
    std::vector<double> x(static_cast<std::size_t>(rows * F));
    for (int64_t i = 0; i < rows; ++i) {
      const double shared = normal(rng);
      for (int64_t f = 0; f < F; ++f)
        x[i * F + f] = 5.0 + 0.5 * static_cast<double>(f) + (1.0 + 0.1 * static_cast<double>(f)) * (normal(rng) + 0.6 * shared);
    }
    return x;
  };
  std::vector<double> w_true(F * 2);
  for (auto& w : w_true) w = normal(rng);
  const double intercept_true[2] = {2.0, -1.0};
  auto make_y = [&](const std::vector<double>& x, int64_t rows) {
    std::vector<double> y(static_cast<std::size_t>(rows * R));
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t r = 0; r < 2; ++r) {
        double v = intercept_true[r];
        for (int64_t f = 0; f < F; ++f) v += x[i * F + f] * w_true[f * 2 + r];
        y[i * R + r] = v;
      }
    }
    // Noise at 5 % of each signal's standard deviation.
    for (int64_t r = 0; r < 2; ++r) {
      std::vector<double> column;
      for (int64_t i = 0; i < rows; ++i) column.push_back(y[i * R + r]);
      double mean = 0, var = 0;
      for (double v : column) mean += v / static_cast<double>(rows);
      for (double v : column) var += (v - mean) * (v - mean) / static_cast<double>(rows);
      for (int64_t i = 0; i < rows; ++i) y[i * R + r] += 0.05 * std::sqrt(var) * normal(rng);
    }
    for (int64_t i = 0; i < rows; ++i) y[i * R + 2] = normal(rng);
    return y;
  };
  const auto x = make_x(n);
  const auto y = make_y(x, n);
  RidgeData data;
  data.samples = n;
  data.features = F;
  data.rois = R;
  data.x = x.data();
  data.y = y.data();
  for (int64_t i = 0; i < n; ++i) {
    data.groups.push_back(i / per_run);
    data.times.push_back(static_cast<double>(i % per_run) * 2.0);
  }
  const auto fit = fit_ridge_cv(data, RidgeCvOptions{});
  REQUIRE(fit.alphas == default_ridge_alphas());
  CHECK(fit.folds.grouped);
  CHECK(fit.folds.count == 5);
  const auto& m = fit.model;

  // Fresh data: the fitted map predicts it, and in raw feature units it is the true one.
  const int64_t n_test = 300;
  const auto x_test = make_x(n_test);
  const auto y_test = make_y(x_test, n_test);
  std::vector<double> predicted(static_cast<std::size_t>(n_test * R));
  m.predict(x_test.data(), n_test, predicted.data());
  for (int64_t r = 0; r < 2; ++r) {
    std::vector<double> p, t;
    for (int64_t i = 0; i < n_test; ++i) p.push_back(predicted[i * R + r]), t.push_back(y_test[i * R + r]);
    CHECK(pearson(p, t) > 0.99);
    CHECK(fit.inner_r[r] > 0.99);
    CHECK(m.alpha[r] < 100.0);
    double w_error = 0, w_norm = 0, intercept = m.intercept[r];
    for (int64_t f = 0; f < F; ++f) {
      const double w_raw = m.weights[f * R + r] / m.feature_std[f];
      w_error += (w_raw - w_true[f * 2 + r]) * (w_raw - w_true[f * 2 + r]);
      w_norm += w_true[f * 2 + r] * w_true[f * 2 + r];
      intercept -= w_raw * m.feature_mean[f];
    }
    CHECK(std::sqrt(w_error / w_norm) < 0.05);
    CHECK(intercept == Approx(intercept_true[r]).margin(0.1 * std::sqrt(w_norm)));
  }
  // Noise: whatever penalty it gets, the model predicts nothing on fresh data.
  std::vector<double> p, t;
  double mse = 0;
  for (int64_t i = 0; i < n_test; ++i) {
    p.push_back(predicted[i * R + 2]), t.push_back(y_test[i * R + 2]);
    mse += (p.back() - t.back()) * (p.back() - t.back()) / static_cast<double>(n_test);
  }
  CHECK(std::abs(pearson(p, t)) < 0.15);
  CHECK(mse < 1.1);
}

TEST_CASE("ridge gives pure-noise targets mostly the largest penalty under the one-standard-error rule", "[ridge]") {
  // A tendency, measured over 100 draws of 4 ROIs: each draw 4 runs of 60 windows, 40 features,
  // features and targets AR(1) (0.8) in time like fMRI windows. The best mean r lands anywhere
  // (often on the smallest penalty); the rule moves most choices to the top of the grid.
  const int64_t n = 240, F = 40, R = 4, draws = 100;
  int64_t top_rule = 0, top_best = 0, small_rule = 0, small_best = 0;
  for (int64_t seed = 1; seed <= draws; ++seed) {
    std::mt19937_64 rng(static_cast<uint64_t>(seed));
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> x(n * F), y(n * R);
    for (int64_t f = 0; f < F; ++f) {
      double v = 0;
      for (int64_t i = 0; i < n; ++i) x[i * F + f] = v = 0.8 * v + 0.6 * normal(rng);
    }
    for (int64_t r = 0; r < R; ++r) {
      double v = 0;
      for (int64_t i = 0; i < n; ++i) y[i * R + r] = v = 0.8 * v + 0.6 * normal(rng);
    }
    RidgeData data;
    data.samples = n;
    data.features = F;
    data.rois = R;
    data.x = x.data();
    data.y = y.data();
    for (int64_t i = 0; i < n; ++i) data.groups.push_back(i / 60);
    RidgeCvOptions options;
    const auto rule = fit_ridge_cv(data, options);
    options.one_standard_error = false;
    const auto best = fit_ridge_cv(data, options);
    for (int64_t r = 0; r < R; ++r) {
      top_rule += rule.model.alpha[r] == rule.alphas.back();
      top_best += best.model.alpha[r] == best.alphas.back();
      small_rule += rule.model.alpha[r] < 100;
      small_best += best.model.alpha[r] < 100;
      // Both rules read the same inner-fold table; the rule never picks below the best.
      CHECK(rule.model.alpha[r] >= best.model.alpha[r]);
    }
  }
  INFO("top of the grid: rule " << top_rule << ", best r " << top_best << "; below 100: rule " << small_rule
                                << ", best r " << small_best << " (of 400)");
  CHECK(top_rule >= 260);   // measured 306
  CHECK(top_best <= 200);   // measured 141
  CHECK(small_rule <= 60);  // measured 34
  CHECK(small_best >= 100);  // measured 166
}

TEST_CASE("ridge cross-validates a single run in blocks with their neighbours purged", "[ridge]") {
  const int64_t n = 30, F = 3;
  std::vector<double> x(n * F), y(n);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (auto& v : x) v = normal(rng);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i * F] + 0.1 * normal(rng);
  RidgeData data;
  data.samples = n;
  data.features = F;
  data.rois = 1;
  data.x = x.data();
  data.y = y.data();
  data.groups.assign(n, 0);
  for (int64_t i = 0; i < n; ++i) data.times.push_back(2.0 * static_cast<double>(i));
  RidgeCvOptions options;
  options.folds = 3;
  options.purge_seconds = 4.0;
  const auto fit = fit_ridge_cv(data, options);
  CHECK_FALSE(fit.folds.grouped);
  CHECK(fit.inner_r[0] > 0.9);
  // 10-window blocks spanning 18 s: a purge of 30 s leaves the middle fold nothing to fit on.
  options.purge_seconds = 30.0;
  CHECK_THAT(test::error_of([&] { fit_ridge_cv(data, options); }),
             Contains("fold 2 of 3 leaves 0 window(s) to fit on after removing the 30 s around the held-out block"));
}

namespace {

RidgeCheckpoint small_checkpoint() {
  RidgeCheckpoint c;
  c.channels = {"O1", "O2"};
  c.rois = {"calcarine", "thalamus", "insula"};
  c.features.bands = {{8, 13}, {13, 30}};
  c.features.sub_windows = 2;
  const int64_t F = 2 * 2 * 2, R = 3;
  auto& m = c.model;
  m.num_features = F;
  m.num_rois = R;
  for (int64_t f = 0; f < F; ++f) {
    m.feature_mean.push_back(1.0 + 0.25 * static_cast<double>(f));
    m.feature_std.push_back(0.5 + 0.125 * static_cast<double>(f));
    for (int64_t r = 0; r < R; ++r) m.weights.push_back(0.01 * static_cast<double>(f * R + r) - 0.1);
  }
  m.intercept = {0.5, -0.25, 0.0};
  m.alpha = {10.0, 1e6, 0.1};
  c.metadata_json = R"({"arch": "ridge", "note": "test"})";
  return c;
}

// Writes a checkpoint file field by field so that any one of them can be damaged.
struct CraftedCheckpoint {
  std::string format = "neurobolt-checkpoint";
  int64_t version = 1;
  std::string arch = "ridge";
  nlohmann::json config = nlohmann::json::parse(small_checkpoint().config_json());
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<double>>> datasets;

  CraftedCheckpoint() {
    const auto c = small_checkpoint();
    datasets["/ridge/feature_mean"] = {{8}, c.model.feature_mean};
    datasets["/ridge/feature_std"] = {{8}, c.model.feature_std};
    datasets["/ridge/weights"] = {{8, 3}, c.model.weights};
    datasets["/ridge/intercept"] = {{3}, c.model.intercept};
    datasets["/ridge/alpha"] = {{3}, c.model.alpha};
  }
  std::string write(const std::filesystem::path& path) const {
    auto file = h5::File::create(path.string());
    file.set_attribute("/", "format", format);
    file.set_attribute("/", "format_version", version);
    file.set_attribute("/", "arch", arch);
    file.set_attribute("/", "config", config.dump());
    file.set_attribute("/", "metadata", std::string("{}"));
    file.create_group("/ridge");
    for (const auto& [name, d] : datasets) file.write(name, h5::Type::f64, d.first, d.second.data());
    return path.string();
  }
};

}  // namespace

TEST_CASE("ridge checkpoint round-trips exactly and the predictor applies it", "[ridge]") {
  test::TempDir dir;
  const auto c = small_checkpoint();
  const auto path = (dir / "model.h5").string();
  save_ridge_checkpoint(c, path, false);
  const auto back = read_ridge_checkpoint(path);
  CHECK(back.channels == c.channels);
  CHECK(back.rois == c.rois);
  CHECK(back.sample_rate == 200.0);
  CHECK(back.window_samples == 3200);
  CHECK(back.features.bands == c.features.bands);
  CHECK(back.features.sub_windows == 2);
  CHECK(back.model.feature_mean == c.model.feature_mean);
  CHECK(back.model.feature_std == c.model.feature_std);
  CHECK(back.model.weights == c.model.weights);
  CHECK(back.model.intercept == c.model.intercept);
  CHECK(back.model.alpha == c.model.alpha);
  CHECK(nlohmann::json::parse(back.metadata_json).at("note") == "test");
  CHECK(nlohmann::json::parse(back.config_json()) == nlohmann::json::parse(c.config_json()));

  // Root attributes as documented, for readers in other languages.
  auto file = h5::File::open_read(path);
  CHECK(file.string_attribute("/", "format") == "neurobolt-checkpoint");
  CHECK(file.int_attribute("/", "format_version") == 1);
  CHECK(file.string_attribute("/", "arch") == "ridge");
  CHECK(file.info("/ridge/weights").shape == std::vector<int64_t>{8, 3});
  CHECK(file.info("/ridge/weights").type == h5::Type::f64);

  CHECK_THAT(test::error_of([&] { save_ridge_checkpoint(c, path, false); }),
             Contains("model.h5' already exists (use --force to overwrite)"));
  save_ridge_checkpoint(c, path, true);
  auto wrong = c;
  wrong.model.weights.pop_back();
  CHECK_THAT(test::error_of([&] { save_ridge_checkpoint(wrong, (dir / "wrong.h5").string(), false); }),
             Contains("'weights' must hold 24 values") && Contains("found 23"));
  CHECK_FALSE(std::filesystem::exists(dir / "wrong.h5"));

  // The predictor applies exactly RidgeModel::predict to the features of the windows.
  auto predictor = load_ridge_predictor(path);
  CHECK(predictor->arch() == "ridge");
  CHECK(predictor->channels() == c.channels);
  CHECK(predictor->rois() == c.rois);
  CHECK(predictor->window_samples() == 3200);
  std::mt19937_64 rng(2);
  std::normal_distribution<float> normal(0.0f, 10.0f);
  const int64_t batch = 70;  // more than the predictor's internal step of 64
  std::vector<float> windows(static_cast<std::size_t>(batch * 2 * kSamples));
  for (auto& v : windows) v = normal(rng);
  std::vector<float> out(static_cast<std::size_t>(batch * 3));
  predictor->predict(windows.data(), batch, out.data());
  BandPowerFeatures features(c.features, 2, kSamples, kRate);
  std::vector<double> x(static_cast<std::size_t>(batch * 8)), expected(static_cast<std::size_t>(batch * 3));
  features.compute(windows.data(), batch, x.data());
  c.model.predict(x.data(), batch, expected.data());
  for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == static_cast<float>(expected[i]));
}

TEST_CASE("ridge checkpoints that are crafted or corrupt are FormatErrors naming the field", "[ridge]") {
  test::TempDir dir;
  const auto good = CraftedCheckpoint().write(dir / "good.h5");
  REQUIRE_NOTHROW(read_ridge_checkpoint(good));

  auto expect = [&](const CraftedCheckpoint& crafted, const std::string& name, const std::string& message) {
    const auto path = crafted.write(dir / name);
    INFO(name);
    CHECK(error_kind([&] { read_ridge_checkpoint(path); }) == kFormat);
    CHECK_THAT(test::error_of([&] { read_ridge_checkpoint(path); }), Contains(name) && Contains(message));
    CHECK(error_kind([&] { load_ridge_predictor(path); }) == kFormat);
  };
  {
    CraftedCheckpoint c;
    c.format = "neurobolt-dataset";
    expect(c, "format.h5", "root attribute 'format': expected 'neurobolt-checkpoint', found 'neurobolt-dataset'");
  }
  {
    CraftedCheckpoint c;
    c.version = 2;
    expect(c, "version.h5", "root attribute 'format_version': expected 1, found 2");
  }
  {
    CraftedCheckpoint c;
    c.arch = "neurobolt";
    expect(c, "arch.h5", "root attribute 'arch': expected 'ridge', found 'neurobolt'");
  }
  {
    CraftedCheckpoint c;
    c.datasets["/ridge/weights"] = {{8, 4}, std::vector<double>(32, 0.0)};
    expect(c, "weights.h5", "dataset '/ridge/weights': expected shape [8, 3] (from the config), found [8, 4]");
  }
  {
    CraftedCheckpoint c;
    c.datasets.erase("/ridge/alpha");
    expect(c, "no-alpha.h5", "dataset '/ridge/alpha': expected float64 [3], found no such dataset");
  }
  {
    CraftedCheckpoint c;
    c.datasets["/ridge/feature_std"].second[5] = 0.0;
    expect(c, "std.h5", "dataset '/ridge/feature_std' element 5: expected a positive finite number, found 0");
  }
  {
    CraftedCheckpoint c;
    c.datasets["/ridge/weights"].second[7] = std::nan("");
    expect(c, "nan.h5", "dataset '/ridge/weights' element 7: expected a finite number, found nan");
  }
  {
    CraftedCheckpoint c;
    c.config["channels"] = nlohmann::json::array();
    expect(c, "channels.h5", "config 'channels': expected a list of 1 to 4096 names, found []");
  }
  {
    CraftedCheckpoint c;
    c.config["rois"] = {"a", "a", "b"};
    expect(c, "rois.h5", "config 'rois': expected distinct names, found 'a' twice");
  }
  {
    CraftedCheckpoint c;
    c.config["window_samples"] = -3200;
    expect(c, "samples.h5", "config 'window_samples': expected an integer from 1 to 10000000, found -3200");
  }
  {
    CraftedCheckpoint c;
    c.config["sub_windows"] = 1000;
    expect(c, "sub.h5", "attribute 'config': band power features: 'sub_windows' = 1000");
  }
  {
    CraftedCheckpoint c;
    c.config["bands"] = {{8, 13}, {13}};
    expect(c, "bands.h5", "config 'bands[1]': expected a [low, high] pair of numbers, found [13]");
  }
  {
    CraftedCheckpoint c;
    c.config["dropout"] = 0.1;
    expect(c, "unknown.h5", "unknown key 'dropout'");
  }
  {
    // A config asking for billions of weights is refused before any dataset is touched.
    CraftedCheckpoint c;
    std::vector<std::string> channels;
    for (int i = 0; i < 4096; ++i) channels.push_back(fmt::format("E{}", i));
    nlohmann::json bands = nlohmann::json::array();
    for (int i = 0; i < 200; ++i) bands.push_back({0.5 * i, 0.5 * i + 0.5});
    std::vector<std::string> rois;
    for (int i = 0; i < 1000; ++i) rois.push_back(fmt::format("R{}", i));
    c.config["channels"] = channels;
    c.config["bands"] = bands;
    c.config["rois"] = rois;
    expect(c, "huge.h5", "expected at most 134217728 weights, found 1638400 features x 1000 ROIs");
  }
  {
    CraftedCheckpoint c;
    auto path = c.write(dir / "config-json.h5");
    auto file = h5::File::create(path);
    file.set_attribute("/", "format", std::string("neurobolt-checkpoint"));
    file.set_attribute("/", "format_version", int64_t{1});
    file.set_attribute("/", "arch", std::string("ridge"));
    file.set_attribute("/", "config", std::string("{\"arch\": \"ridge\", "));
    file.close();  // what a reader finds on disk (the structure check reads the file's bytes)
    CHECK(error_kind([&] { read_ridge_checkpoint(path); }) == kFormat);
    CHECK_THAT(test::error_of([&] { read_ridge_checkpoint(path); }), Contains("attribute 'config': expected JSON"));
  }
  // Damaged bytes: a truncated file and a file that is not HDF5 at all.
  const std::string bytes = test::read_bytes(good);
  std::ofstream(dir / "truncated.h5", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  CHECK(error_kind([&] { read_ridge_checkpoint((dir / "truncated.h5").string()); }) == kFormat);
  std::ofstream(dir / "text.h5") << "not a checkpoint\n";
  CHECK(error_kind([&] { read_ridge_checkpoint((dir / "text.h5").string()); }) == kFormat);
  CHECK_THAT(test::error_of([&] { load_ridge_predictor((dir / "missing.h5").string()); }),
             Contains("loading ridge checkpoint") && Contains("missing.h5': no such file"));
  CHECK(error_kind([&] { read_ridge_checkpoint((dir / "missing.h5").string()); }) == kIo);
}

namespace {

// A simulated study for the end-to-end test: 4 subjects x 2 runs x 2 minutes, the 8 channels of
// neurobolt-tiny, BOLD SNR 3; subjects 01 and 02 train, 03 and 04 validate.
struct SimulatedStudy {
  test::TempDir dir;
  std::string dataset;
  SimulatedStudy() {
    SimulationConfig sim = SimulationConfig::defaults();
    sim.subjects = 4;
    sim.runs = 2;
    sim.minutes = 2.0;
    sim.sample_rate = 250.0;
    sim.repetition_time = 2.0;
    sim.snr = 3.0;
    sim.channels = {"Fp1", "Fp2", "C3", "C4", "T7", "T8", "O1", "O2"};
    sim.seed = 1;
    sim.threads = 2;
    write_simulated_dataset(sim, (dir / "sim").string(), false);
    PrepareOptions options;
    options.channels = {"FP1", "FP2", "C3", "C4", "T7", "T8", "O1", "O2"};
    options.split.mode = SplitMode::cross_subject;
    options.split.val_subjects = {"03", "04"};
    dataset = (dir / "sim.h5").string();
    prepare_bids((dir / "sim").string(), dataset, options);
  }
};

const SimulatedStudy& simulated_study() {
  static const SimulatedStudy study;
  return study;
}

}  // namespace

TEST_CASE("train_ridge on a simulated study predicts the coupled ROIs and the predictor agrees exactly", "[ridge][sim]") {
  const auto& study = simulated_study();
  test::TempDir runs;
  const auto run_dir = runs / "ridge";  // created by train_ridge
  std::vector<std::string> stages;
  RidgeTrainOptions options;
  options.batch = 37;
  const auto result = train_ridge(study.dataset, run_dir.string(), options, [&](const std::string& stage, double f) {
    if (stages.empty() || stages.back() != stage) stages.push_back(stage);
    CHECK(f >= 0.0);
    CHECK(f <= 1.0);
  });
  CHECK(stages == std::vector<std::string>{"features", "cross-validation", "writing"});

  DatasetReader reader(study.dataset);
  const auto& rois = reader.roi_names();
  const auto R = static_cast<int64_t>(rois.size());
  CHECK(result.features == 8 * 5 * 8);
  CHECK(result.train_windows == reader.num_windows(Split::train));
  CHECK(result.val_windows == reader.num_windows(Split::val));
  CHECK(result.inner_folds == 4);  // the 4 training runs
  CHECK(result.feature_windows_per_s > 0.0);
  CHECK(result.inner_folds_grouped);
  REQUIRE(static_cast<int64_t>(result.val_r.size()) == R);
  std::map<std::string, double> val_r;
  for (int64_t r = 0; r < R; ++r) val_r[rois[r]] = result.val_r[r];
  std::string table;
  for (int64_t r = 0; r < R; ++r)
    table += fmt::format("{:>20} alpha {:8.3g} inner r {:+.2f} val r {:+.2f}\n", rois[r], result.alpha[r],
                         result.inner_cv_r[r], result.val_r[r]);
  INFO(table);
  // simulate.hpp's roi16: occipital alpha drives calcarine, cuneus, lingual and thalamus (O1/O2
  // see it), central beta and mu drive precentral_L/R (C3/C4); hippocampus and cerebellum have no
  // EEG-visible drive. Over 12 simulation seeds of this study the coupled mean was 0.27 to 0.47;
  // the uncoupled mean ranged from -0.23 to +0.36: 2 x 2 runs of 2 minutes of slow, autocorrelated
  // BOLD hold few independent samples, so "near 0" can only be checked this loosely here (it
  // still catches a leak of validation targets, which drives every ROI towards r = 1).
  const double coupled = (val_r.at("calcarine") + val_r.at("cuneus") + val_r.at("lingual") + val_r.at("thalamus") +
                          val_r.at("precentral_L") + val_r.at("precentral_R")) / 6;
  const double uncoupled = (val_r.at("hippocampus") + val_r.at("cerebellum")) / 2;
  CHECK(coupled > 0.25);
  CHECK(std::abs(uncoupled) < 0.4);
  CHECK(result.val_mean_r == Approx(std::accumulate(result.val_r.begin(), result.val_r.end(), 0.0) / R));

  // The saved model reproduces the training-time validation predictions to the bit.
  REQUIRE(result.val_indices == reader.indices(Split::val));
  auto predictor = load_ridge_predictor(result.best_path);
  CHECK(predictor->channels() == reader.channel_names());
  CHECK(predictor->rois() == rois);
  const auto batch = reader.read_batch(result.val_indices);
  std::vector<float> out(static_cast<std::size_t>(batch.size() * R));
  predictor->predict(batch.windows.data(), batch.size(), out.data());
  REQUIRE(out.size() == result.val_predictions.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < out.size(); ++i) differing += out[i] != result.val_predictions[i];
  CHECK(differing == 0);
  const auto best = read_ridge_checkpoint(result.best_path);
  const auto last = read_ridge_checkpoint(result.last_path);
  CHECK(best.model.weights == last.model.weights);
  CHECK(best.model.alpha == result.alpha);
  const auto metadata = nlohmann::json::parse(predictor->metadata_json());
  CHECK(metadata.at("arch") == "ridge");
  CHECK(metadata.at("dataset").at("fingerprint") == reader.fingerprint());
  CHECK(metadata.at("dataset").at("normalisation").at("mean").size() == static_cast<std::size_t>(R));
  CHECK(metadata.at("training").at("inner_folds") == 4);
  CHECK_THAT(metadata.at("training").at("criterion").get<std::string>(), Contains("one-standard-error rule"));

  std::ifstream metrics(result.metrics_path);
  std::string line, extra;
  REQUIRE(std::getline(metrics, line));
  CHECK_FALSE(std::getline(metrics, extra));
  const auto m = nlohmann::json::parse(line);
  CHECK(m.at("epoch") == 1);
  CHECK(m.at("arch") == "ridge");
  CHECK(m.at("train_loss").get<double>() == Approx(result.train_mse));
  CHECK(m.at("val_mean_r").get<double>() == Approx(result.val_mean_r));
  for (const char* key : {"val_r", "val_mse", "alpha", "inner_cv_r"}) CHECK(m.at(key).size() == static_cast<std::size_t>(R));
  CHECK(m.at("seconds").get<double>() > 0.0);
}

TEST_CASE("train_ridge on one run without validation windows and not over existing outputs without force", "[ridge][sim]") {
  test::TempDir dir;
  SimulationConfig sim = SimulationConfig::defaults();
  sim.subjects = 1;
  sim.minutes = 2.0;
  sim.seed = 9;
  sim.threads = 1;
  write_simulated_dataset(sim, (dir / "sim").string(), false);
  PrepareOptions prepare;
  prepare.channels = {"O1", "O2", "C3", "C4"};
  prepare.split.train_fraction = 0.8;
  prepare.split.val_fraction = 0.0;  // intra-run: train, gap, test
  const auto dataset = (dir / "one.h5").string();
  prepare_bids((dir / "sim").string(), dataset, prepare);

  RidgeTrainOptions options;
  options.features.sub_windows = 4;
  options.inner_folds = 3;
  const auto run_dir = (dir / "run").string();
  const auto result = train_ridge(dataset, run_dir, options);
  CHECK_FALSE(result.inner_folds_grouped);
  CHECK(result.inner_folds == 3);
  CHECK(result.val_windows == 0);
  CHECK(std::isnan(result.val_mean_r));
  for (double r : result.val_r) CHECK(std::isnan(r));
  CHECK(std::any_of(result.notes.begin(), result.notes.end(),
                    [](const std::string& s) { return s.find("no validation windows") != std::string::npos; }));
  CHECK(std::any_of(result.notes.begin(), result.notes.end(),
                    [](const std::string& s) { return s.find("one training run, 3 contiguous blocks") != std::string::npos; }));
  const auto m = nlohmann::json::parse(test::read_bytes(result.metrics_path));
  CHECK(m.at("val_mean_r").is_null());
  CHECK(m.at("val_r").at(0).is_null());

  // A second run into the same folder is refused before any work, and leaves the outputs alone.
  const auto before = test::read_bytes(result.best_path);
  const auto message = test::error_of([&] { train_ridge(dataset, run_dir, options); });
  CHECK_THAT(message, Contains("best.h5' already exists (use --force to overwrite)"));
  CHECK(error_kind([&] { train_ridge(dataset, run_dir, options); }) == kIo);
  CHECK(test::read_bytes(result.best_path) == before);
  options.force = true;
  CHECK_NOTHROW(train_ridge(dataset, run_dir, options));

  // Bad options and data are ConfigErrors.
  options.batch = 0;
  CHECK_THAT(test::error_of([&] { train_ridge(dataset, run_dir, options); }), Contains("'batch' must be >= 1, found 0"));
  options.batch = 64;
  options.alphas = {1.0, -2.0};
  CHECK(error_kind([&] { train_ridge(dataset, run_dir, options); }) == kConfig);
  options.alphas.clear();
  options.fold = 1;
  CHECK_THAT(test::error_of([&] { train_ridge(dataset, run_dir, options); }), Contains("'fold' = 1 needs a kfold dataset"));
}
