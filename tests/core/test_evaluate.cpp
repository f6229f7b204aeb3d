// Evaluation metrics, grouping and protocols, and reading predictions against a BIDS dataset.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/evaluate.hpp"
#include "neurobolt/roi.hpp"
#include "neurobolt/signal.hpp"
#include "neurobolt/simulate.hpp"
#include "test_support.hpp"

using namespace neurobolt;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

TEST_CASE("evaluate: ROI metrics equal a hand computation", "[evaluate]") {
  // Column 0: p = 1 2 3 4, t = 2 4 5 4. Means 2.5 and 3.75; deviations p: -1.5 -0.5 0.5 1.5,
  // t: -1.75 0.25 1.25 0.25. Sxy = 3.5, Sxx = 5, Syy = 4.75: r = 3.5 / sqrt(23.75) = 7 / sqrt(95).
  // SSE = 1 + 4 + 4 + 0 = 9: MSE = 2.25, R2 = 1 - 9 / 4.75 = -17/19.
  // Column 1: t = 2p + 1 exactly: r = 1; SSE = sum (p + 1)^2 = 4 + 9 + 16 + 25 = 54; t mean 6,
  // Syy = 4 * 5 = 20: MSE = 13.5, R2 = 1 - 54/20 = -1.7.
  const std::vector<float> predicted{1, 1, 2, 2, 3, 3, 4, 4};
  const std::vector<float> target{2, 3, 4, 5, 5, 7, 4, 9};
  const auto m = roi_metrics(predicted.data(), target.data(), 4, 2);
  REQUIRE(m.size() == 2);
  CHECK(m[0].n == 4);
  CHECK(m[0].r == Approx(7.0 / std::sqrt(95.0)).epsilon(1e-15));
  CHECK(m[0].mse == Approx(2.25).epsilon(1e-15));
  CHECK(m[0].r2 == Approx(-17.0 / 19.0).epsilon(1e-15));
  CHECK(m[0].note.empty());
  CHECK(m[1].r == 1.0);
  CHECK(m[1].mse == Approx(13.5).epsilon(1e-15));
  CHECK(m[1].r2 == Approx(-1.7).epsilon(1e-15));
  CHECK(mean_r(m) == Approx((7.0 / std::sqrt(95.0) + 1.0) / 2).epsilon(1e-15));
}

TEST_CASE("evaluate: ROI metrics skip NaN rows per ROI and explain undefined r", "[evaluate]") {
  // Column 0 has a NaN prediction in row 1 and a NaN target in row 4: pairs are rows 0, 2, 3 with
  // p = 1 3 4 and t = 2 5 4 (means 8/3 and 11/3): Sxy = (-5/3)(-5/3) + (1/3)(4/3) + (4/3)(1/3)
  // = 33/9, Sxx = 42/9, Syy = 42/9: r = 33/42. SSE = 1 + 4 + 0 = 5: MSE 5/3, R2 = 1 - 5/(42/9).
  // Column 1 is constant in the target, column 2 constant in the prediction, column 3 has two
  // pairs only.
  const std::vector<float> predicted{
      1, 1, 5, 1,     //
      kNaN, 2, 5, 2,  //
      3, 3, 5, kNaN,  //
      4, 4, 5, kNaN,  //
      7, 5, 5, kNaN,
  };
  const std::vector<float> target{
      2, 7, 1, 1,  //
      4, 7, 2, 3,  //
      5, 7, 3, 4,  //
      4, 7, 4, 5,  //
      kNaN, 7, 5, kNaN,
  };
  const auto m = roi_metrics(predicted.data(), target.data(), 5, 4);
  REQUIRE(m.size() == 4);
  CHECK(m[0].n == 3);
  CHECK(m[0].r == Approx(33.0 / 42.0).epsilon(1e-14));
  CHECK(m[0].mse == Approx(5.0 / 3.0).epsilon(1e-15));
  CHECK(m[0].r2 == Approx(1.0 - 5.0 * 9.0 / 42.0).epsilon(1e-14));

  CHECK(m[1].n == 5);
  CHECK(std::isnan(m[1].r));
  CHECK(m[1].note == "constant target");
  CHECK(std::isnan(m[1].r2));  // SST = 0
  CHECK(m[1].mse == Approx((36 + 25 + 16 + 9 + 4) / 5.0).epsilon(1e-15));

  CHECK(std::isnan(m[2].r));
  CHECK(m[2].note == "constant prediction");
  // t = 1..5 (mean 3, SST 10), p = 5: SSE = 16 + 9 + 4 + 1 + 0 = 30: R2 = 1 - 3.
  CHECK(m[2].r2 == Approx(-2.0).epsilon(1e-15));

  CHECK(m[3].n == 2);
  CHECK(std::isnan(m[3].r));
  CHECK(m[3].note == "fewer than 3 pairs");
  CHECK(m[3].mse == Approx(0.5).epsilon(1e-15));

  // The mean r over ROIs counts defined values only.
  CHECK(mean_r(m) == Approx(33.0 / 42.0).epsilon(1e-14));
  CHECK(std::isnan(mean_r({m[1], m[2]})));
}

TEST_CASE("evaluate: ROI metrics accumulate in double", "[evaluate]") {
  // A large offset with small, exactly known fluctuations: float sums of squares would lose them.
  const int64_t rows = 100000;
  std::vector<float> predicted(rows), target(rows);
  for (int64_t i = 0; i < rows; ++i) {
    const float s = (i % 2 == 0) ? 1.0f : -1.0f;
    predicted[i] = 1000.0f + s;
    target[i] = 1000.0f + 0.5f * s;
  }
  const auto m = roi_metrics(predicted.data(), target.data(), rows, 1);
  CHECK(m[0].r == Approx(1.0).epsilon(1e-12));
  CHECK(m[0].mse == Approx(0.25).epsilon(1e-12));
  CHECK(m[0].r2 == Approx(0.0).margin(1e-12));  // SSE = SST = 0.25 n
}

// ------------------------------------------------------------------------------------------------
// Grouping and protocols

namespace {

RunSeries make_run(const std::string& name, const std::string& subject, const std::vector<float>& predicted,
                   const std::vector<float>& target, const std::vector<std::string>& row_splits) {
  RunSeries run;
  run.run = name;
  run.subject = subject;
  run.rows = static_cast<int64_t>(target.size());
  run.predicted = predicted;
  run.target = target;
  run.row_splits = row_splits;
  for (int64_t k = 0; k < run.rows; ++k) run.time.push_back(2.0 * static_cast<double>(k));
  return run;
}

}  // namespace

TEST_CASE("evaluate: intra-run protocol: per-run metrics over the test rows, their mean over runs", "[evaluate]") {
  // Run A (subject 01): two training rows, then test rows p = 1 2 3 4, t = 2 4 5 4 (r = 7/sqrt(95)).
  // Run B (subject 02): test rows with t = 2p + 1 (r = 1). Run C (subject 01): training rows only.
  EvaluationInput in;
  in.rois = {"V1"};
  in.protocol = "intra-run";
  in.evaluated_split = "test";
  in.runs.push_back(make_run("sub-01_run-1", "01", {9, 0, 1, 2, 3, 4}, {0, 9, 2, 4, 5, 4},
                             {"train", "train", "test", "test", "test", "test"}));
  in.runs.push_back(make_run("sub-02_run-1", "02", {1, 2, 3, 4, 5}, {3, 5, 7, 9, 0},
                             {"test", "test", "test", "test", "val"}));
  in.runs.push_back(make_run("sub-01_run-2", "01", {1, 2, 3}, {3, 1, 2}, {"train", "train", "train"}));
  const EvaluationResult res = evaluate(in);

  REQUIRE(res.per_run.size() == 2);  // run C has no test row
  CHECK(res.per_run[0].name == "sub-01_run-1");
  CHECK(res.per_run[0].rows == 4);
  CHECK(res.per_run[0].per_roi[0].r == Approx(7.0 / std::sqrt(95.0)).epsilon(1e-14));
  CHECK(res.per_run[1].per_roi[0].r == Approx(1.0).epsilon(1e-15));
  CHECK(res.mean_run_r == Approx((7.0 / std::sqrt(95.0) + 1.0) / 2).epsilon(1e-14));
  // Pooled over the 8 test rows: p = 1 2 3 4 1 2 3 4, t = 2 4 5 4 3 5 7 9 (means 2.5, 4.875):
  // Sxy = 3.5 + 10 = 13.5, Sxx = 10, Syy = 9.8125 + 25.0625 = 34.875.
  CHECK(res.per_roi[0].n == 8);
  CHECK(res.per_roi[0].r == Approx(13.5 / std::sqrt(348.75)).epsilon(1e-14));
  CHECK(res.mean_r == res.per_roi[0].r);
  CHECK(res.num_runs == 2);
  CHECK(res.num_rows == 8);
  CHECK(res.num_subjects == 2);

  // Subject 01 pools only run A's test rows; its training rows and run C do not count.
  REQUIRE(res.per_subject.size() == 2);
  CHECK(res.per_subject[0].name == "01");
  CHECK(res.per_subject[0].rows == 4);
  CHECK(res.per_subject[0].runs == 1);
  CHECK(res.per_subject[0].per_roi[0].r == res.per_run[0].per_roi[0].r);

  // Splits cover every labelled row: train (A's 2 + C's 3), val (B's last), test (8).
  REQUIRE(res.per_split.size() == 3);
  CHECK(res.per_split[0].name == "train");
  CHECK(res.per_split[0].rows == 5);
  CHECK(res.per_split[0].runs == 2);
  CHECK(res.per_split[1].name == "val");
  CHECK(res.per_split[1].rows == 1);
  CHECK(res.per_split[1].per_roi[0].note == "fewer than 3 pairs");
  CHECK(res.per_split[2].name == "test");
  CHECK(res.per_split[2].per_roi[0].r == res.per_roi[0].r);
}

TEST_CASE("evaluate: cross-subject protocol: whole runs pooled and per run", "[evaluate]") {
  EvaluationInput in;
  in.rois = {"a", "b"};
  in.protocol = "cross-subject";
  // Two runs of held-out subject 03, one of 04; row-major [rows, 2].
  auto r1 = make_run("sub-03_run-1", "03", {1, 0, 2, 1, 3, 0, 4, 1}, {2, 5, 4, 5, 5, 5, 4, 5}, {});
  auto r2 = make_run("sub-03_run-2", "03", {1, 1, 2, 2, 3, 3}, {3, 1, 5, 2, 7, 3}, {});
  auto r3 = make_run("sub-04_run-1", "04", {1, 5, 2, 6, 3, 7}, {1, 6, 2, 5, 3, 7}, {});
  for (auto* r : {&r1, &r2, &r3}) {
    r->split = "test";
    r->rows /= 2;  // make_run counted values; two ROIs per row
    r->time.resize(static_cast<std::size_t>(r->rows));
  }
  in.runs = {r1, r2, r3};
  const auto res = evaluate(in);
  REQUIRE(res.per_run.size() == 3);
  // Run 1, ROI a: p = 1 2 3 4, t = 2 4 5 4 (the hand-computed case); ROI b: t constant.
  CHECK(res.per_run[0].per_roi[0].r == Approx(7.0 / std::sqrt(95.0)).epsilon(1e-14));
  CHECK(std::isnan(res.per_run[0].per_roi[1].r));
  CHECK(res.per_run[0].per_roi[1].note == "constant target");
  CHECK(res.per_run[0].mean_r == res.per_run[0].per_roi[0].r);  // undefined r left out
  CHECK(res.per_run[0].split == "test");
  // Run 2: t = 2p + 1 and t = p exactly; run 3: a exact, b = 6 5 7 against 5 6 7 (r = 0.5).
  CHECK(res.per_run[1].mean_r == Approx(1.0).epsilon(1e-15));
  CHECK(res.per_run[2].per_roi[1].r == Approx(0.5).epsilon(1e-14));
  CHECK(res.mean_run_r ==
        Approx((7.0 / std::sqrt(95.0) + 1.0 + (1.0 + 0.5) / 2) / 3).epsilon(1e-14));
  CHECK(res.per_roi[0].n == 10);
  REQUIRE(res.per_subject.size() == 2);
  CHECK(res.per_subject[0].runs == 2);
  CHECK(res.per_subject[0].rows == 7);
  REQUIRE(res.per_split.size() == 1);
  CHECK(res.per_split[0].name == "test");
  CHECK(res.per_split[0].rows == 10);
}

TEST_CASE("evaluate: rejects inconsistent input, naming the run and field", "[evaluate]") {
  EvaluationInput in;
  in.rois = {"a", "b"};
  in.runs.push_back(make_run("sub-01_run-1", "01", {1, 2, 3}, {1, 2, 3, 4}, {}));
  in.runs[0].rows = 2;
  in.runs[0].time.resize(2);
  CHECK_THAT(test::error_of([&] { evaluate(in); }),
             Catch::Matchers::Contains("run 'sub-01_run-1': predicted has 3 values, expected 4 (2 rows x 2 ROIs)"));
  in.runs[0].predicted.push_back(4);
  in.runs[0].split = "testing";
  CHECK_THAT(test::error_of([&] { evaluate(in); }), Catch::Matchers::Contains("split 'testing' is not train, val, test"));
  in.runs[0].split = "test";
  in.runs.push_back(in.runs[0]);
  CHECK_THAT(test::error_of([&] { evaluate(in); }), Catch::Matchers::Contains("run 'sub-01_run-1' is given twice"));
  in.runs.pop_back();
  in.runs[0].time.resize(3);
  CHECK_THAT(test::error_of([&] { evaluate(in); }), Catch::Matchers::Contains("time has 3 values, expected 2 (2 rows or none)"));
  in.rois.clear();
  CHECK_THAT(test::error_of([&] { evaluate(in); }), Catch::Matchers::Contains("no ROIs"));
}

TEST_CASE("evaluate: JSON: keys, NaN as null, provenance", "[evaluate]") {
  EvaluationInput in;
  in.rois = {"V1", "flat"};
  in.protocol = "cross-subject";
  auto run = make_run("sub-01_run-1", "01", {1, 1, 2, 2, 3, 3, 4, 4}, {2, 5, 4, 5, 5, 5, 4, 5}, {});
  run.rows = 4;
  run.time.resize(4);
  run.split = "test";
  in.runs.push_back(run);
  const auto res = evaluate(in);
  const auto j = nlohmann::json::parse(evaluation_json(res, R"({"checkpoint": "m.h5"})"));
  for (const char* key : {"mean_r", "mean_run_r", "rois", "per_roi", "per_run", "per_subject", "per_split", "provenance",
                          "protocol", "evaluated_split", "counts"}) {
    CHECK(j.contains(key));
  }
  CHECK(j["mean_r"].get<double>() == Approx(7.0 / std::sqrt(95.0)).epsilon(1e-14));
  CHECK(j["per_roi"][0]["roi"] == "V1");
  CHECK(j["per_roi"][0]["mse"].get<double>() == Approx(2.25));
  CHECK(j["per_roi"][1]["r"].is_null());
  CHECK(j["per_roi"][1]["note"] == "constant target");
  CHECK(j["per_run"][0]["run"] == "sub-01_run-1");
  CHECK(j["per_run"][0]["split"] == "test");
  CHECK(j["per_subject"][0]["subject"] == "01");
  CHECK(j["per_split"][0]["split"] == "test");
  CHECK(j["counts"]["rows"] == 4);
  CHECK(j["provenance"]["checkpoint"] == "m.h5");
  CHECK(j["protocol"] == "cross-subject");
  CHECK(nlohmann::json::parse(evaluation_json(res, "{}"))["provenance"].empty());
  CHECK_THAT(test::error_of([&] { evaluation_json(res, "[1]"); }), Catch::Matchers::Contains("expected a JSON object"));
}

TEST_CASE("evaluate: splits from a checkpoint's dataset record", "[evaluate]") {
  EvaluationInput in;
  in.rois = {"a"};
  // 200 rows at TR 2 s; the first 6 had no full 16 s window (n/a predictions).
  RunSeries run;
  run.run = "sub-01_task-rest_run-1";
  run.subject = "01";
  run.rows = 200;
  run.repetition_time = 2.0;
  for (int64_t k = 0; k < run.rows; ++k) {
    run.predicted.push_back(k < 6 ? kNaN : static_cast<float>(k % 7));
    run.target.push_back(static_cast<float>(k % 5));
  }
  in.runs.push_back(run);
  const std::string record = R"({"split_mode": "intra-run", "fold": 0, "parameters": {"window_seconds": 16.0,
      "split": {"mode": "intra-run", "train_fraction": 0.8, "val_fraction": 0.1, "min_gap_seconds": 20.0, "seed": 0}}})";
  label_splits_from_record(in, record);
  SplitSpec spec;
  const auto expected = intra_run_split(194, 2.0, 16.0, spec);
  const auto& labels = in.runs[0].row_splits;
  REQUIRE(labels.size() == 200);
  for (int k = 0; k < 6; ++k) CHECK(labels[k].empty());
  int64_t tests = 0;
  for (int k = 6; k < 200; ++k) {
    CHECK(labels[k] == (expected[k - 6] == Split::excluded ? std::string() : std::string(to_string(expected[k - 6]))));
    tests += labels[k] == "test";
  }
  CHECK(tests > 0);
  CHECK(labels.back() == "test");  // the test part is the end of the run
  in.evaluated_split = "test";
  CHECK(evaluate(in).num_rows == tests);

  // Cross-subject by lists; by fractions needs the dataset file.
  label_splits_from_record(in, R"({"split_mode": "cross-subject", "parameters": {"split": {"val_subjects": ["02"],
      "test_subjects": ["sub-01"]}}})");
  CHECK(in.runs[0].split == "test");
  CHECK(in.runs[0].row_splits.empty());
  CHECK_THAT(test::error_of([&] {
               label_splits_from_record(in, R"({"split_mode": "cross-subject", "parameters": {"split": {"val_subjects": [],
                   "test_subjects": []}}})");
             }),
             Catch::Matchers::Contains("subject fractions"));
  CHECK_THAT(test::error_of([&] { label_splits_from_record(in, R"({"split_mode": "intra-run", "parameters": {}})"); }),
             Catch::Matchers::Contains("key 'parameters.split' is missing"));
  in.runs[0].repetition_time = 0;
  CHECK_THAT(test::error_of([&] { label_splits_from_record(in, record); }),
             Catch::Matchers::Contains("run 'sub-01_task-rest_run-1': the intra-run split needs the repetition time"));
}

// ------------------------------------------------------------------------------------------------
// Predictions of `neurobolt infer` against a simulated BIDS dataset

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

// A prediction in infer's format: the TSV (values [rows, R], NaN as n/a) and its sidecar.
void write_prediction(const fs::path& tsv, const std::vector<std::string>& rois, const std::vector<double>& values,
                      const json& sidecar) {
  std::string text;
  for (std::size_t r = 0; r < rois.size(); ++r) text += (r ? "\t" : "") + rois[r];
  text += "\n";
  const std::size_t R = rois.size();
  for (std::size_t k = 0; k < values.size() / R; ++k) {
    for (std::size_t r = 0; r < R; ++r) {
      const double v = values[k * R + r];
      text += (r ? "\t" : "") + (std::isnan(v) ? std::string("n/a") : fmt::format("{:.9g}", v));
    }
    text += "\n";
  }
  write_file(tsv, text);
  std::string name = tsv.filename().string();
  write_file(tsv.parent_path() / (name.substr(0, name.size() - 4) + ".json"), sidecar.dump(2));
}

struct SimulatedStudy {
  test::TempDir dir;
  SimulationConfig config;
  SimulationSummary summary;
  fs::path root;
  std::vector<std::string> rois;  // the predicted ROIs: a reordered subset of the targets'
  std::vector<double> mean{0.3, -0.2, 0.05}, std{1.5, 0.8, 2.5};

  SimulatedStudy() {
    config = SimulationConfig::defaults();
    config.subjects = 2;
    config.minutes = 1.0;  // 27 volumes at TR 2 s, from 5 s
    config.sample_rate = 250.0;
    config.seed = 5;
    config.threads = 1;
    root = dir / "bids";
    summary = write_simulated_dataset(config, root.string(), false);
    rois = {summary.roi_names[5], summary.roi_names[0], summary.roi_names[2]};
    volumes = read_timeseries_tsv(target("01").string()).num_volumes;
  }
  int64_t volumes = 0;
  fs::path target(const std::string& subject) const {
    return root / "derivatives" / "neurobolt-sim" / ("sub-" + subject) / "func" /
           ("sub-" + subject + "_task-rest_run-1_desc-roi_timeseries.tsv");
  }
  // The target as prepare makes it: ROI subset, 0.15 Hz low-pass (order 5, filtfilt), z-scored.
  std::vector<double> prepared(const std::string& subject) const {
    const TargetSeries t = read_timeseries_tsv(target(subject).string());
    const auto f = signal::butter(5, 0.15, 0.5, signal::FilterType::lowpass);
    std::vector<double> out(static_cast<std::size_t>(t.num_volumes) * rois.size());
    for (std::size_t r = 0; r < rois.size(); ++r) {
      const auto c = std::find(t.roi_names.begin(), t.roi_names.end(), rois[r]) - t.roi_names.begin();
      std::vector<double> x;
      for (int64_t v = 0; v < t.num_volumes; ++v) x.push_back(t.at(v, c));
      const auto y = signal::filtfilt(f.b, f.a, x);
      for (int64_t v = 0; v < t.num_volumes; ++v) out[v * rois.size() + r] = (y[v] - mean[r]) / std[r];
    }
    return out;
  }
  std::vector<double> onsets() const {
    std::vector<double> t;
    for (int64_t k = 0; k < volumes; ++k) t.push_back(config.first_volume + 2.0 * static_cast<double>(k));
    return t;
  }
  json sidecar(const std::string& subject) const {
    return json{{"RepetitionTime", 2.0},
                {"StartTime", onsets().front()},
                {"Grid", "triggers"},
                {"VolumeOnsets", onsets()},
                {"Units", "z"},
                {"TargetNormalisation",
                 {{"ROIs", rois}, {"Mean", mean}, {"Std", std}, {"LowpassHz", 0.15}, {"LowpassOrder", 5}}},
                {"Checkpoint", {{"Path", "/models/m.h5"}, {"SHA256", "ab12"}, {"Arch", "neurobolt"}}},
                {"SoftwareVersion", "0.1.0"},
                {"GeneratedBy", "neurobolt infer"},
                {"Source", (root / ("sub-" + subject) / "eeg" / ("sub-" + subject + "_task-rest_run-1_eeg.edf")).string()}};
  }
  // The prediction of the target itself, n/a for the 6 volumes before 16 s of EEG.
  void predict_target(const fs::path& pred_dir, const std::string& subject, const json& side) const {
    auto values = prepared(subject);
    for (std::size_t i = 0; i < 6 * rois.size(); ++i) values[i] = NAN;
    write_prediction(pred_dir / ("sub-" + subject) / "func" / ("sub-" + subject + "_task-rest_run-1_desc-neurobolt_timeseries.tsv"),
                     rois, values, side);
  }
};

}  // namespace

TEST_CASE("evaluate: predictions of the target itself score r = 1 and MSE 0 after prepare's normalisation", "[evaluate][sim]") {
  SimulatedStudy study;
  // The prediction folder inside derivatives/: it must not be searched for targets.
  const fs::path pred = study.root / "derivatives" / "neurobolt-pred";
  write_file(pred / "dataset_description.json",
             R"({"Name": "neurobolt predictions", "BIDSVersion": "1.8.0", "DatasetType": "derivative",
                 "GeneratedBy": [{"Name": "neurobolt infer", "Version": "0.1.0"}]})");
  for (const std::string s : {"01", "02"}) study.predict_target(pred, s, study.sidecar(s));

  const EvaluationInput in = evaluate_against_bids(pred.string(), study.root.string(), BidsOptions{}, {});
  CHECK(in.rois == study.rois);
  REQUIRE(in.runs.size() == 2);
  CHECK(in.runs[0].run == "sub-01_task-rest_run-1");
  CHECK(in.runs[1].subject == "02");
  CHECK(in.runs[0].rows == study.volumes);
  CHECK(in.runs[0].time == study.onsets());
  CHECK(in.runs[0].repetition_time == 2.0);
  CHECK(fs::path(in.runs[0].target_path) == study.target("01"));
  CHECK(std::any_of(in.log.begin(), in.log.end(),
                    [](const std::string& l) { return l.find("'derivatives/neurobolt-pred' not searched") != std::string::npos; }));
  const auto prov = json::parse(in.provenance_json);
  CHECK(prov["checkpoint"]["sha256"] == "ab12");
  CHECK(prov["runs"].size() == 2);

  const auto res = evaluate(in);
  REQUIRE(res.per_roi.size() == 3);
  for (const auto& m : res.per_roi) {
    CHECK(m.n == 2 * (study.volumes - 6));
    CHECK(m.r == Approx(1.0).epsilon(1e-6));
    CHECK(m.mse < 1e-10);
  }
  CHECK(res.mean_run_r == Approx(1.0).epsilon(1e-6));

  // The target values are prepare's: z = (low-passed - Mean) / Std.
  const auto z = study.prepared("02");
  CHECK(in.runs[1].target[10 * 3 + 2] == Approx(z[10 * 3 + 2]).epsilon(1e-6));

  // A subject filter keeps that subject's predictions.
  const auto only = evaluate_against_bids(pred.string(), study.root.string(), BidsOptions{}, {"sub-02"});
  REQUIRE(only.runs.size() == 1);
  CHECK(only.runs[0].subject == "02");
}

TEST_CASE("evaluate: prediction errors name both files and values", "[evaluate][sim]") {
  SimulatedStudy study;
  const std::string root = study.root.string();
  const auto folder = [&](const std::string& name) { return study.dir / name; };
  const auto sidecar_path = [&](const fs::path& pred, const std::string& s) {
    return (pred / ("sub-" + s) / "func" / ("sub-" + s + "_task-rest_run-1_desc-neurobolt_timeseries.json")).string();
  };

  SECTION("TR mismatch") {
    auto side = study.sidecar("01");
    side["RepetitionTime"] = 2.5;
    study.predict_target(folder("tr"), "01", side);
    const auto e = test::error_of([&] { evaluate_against_bids(folder("tr").string(), root, {}, {}); });
    CHECK_THAT(e, Catch::Matchers::Contains(sidecar_path(folder("tr"), "01") + "' has RepetitionTime 2.5 s"));
    CHECK_THAT(e, Catch::Matchers::Contains("its target '" + study.target("01").string() + "' has 2 s"));
    CHECK_THROWS_AS(evaluate_against_bids(folder("tr").string(), root, {}, {}), ConfigError);
  }
  SECTION("a TR within 1 % is accepted") {
    auto side = study.sidecar("01");
    side["RepetitionTime"] = 2.01;
    study.predict_target(folder("tr-ok"), "01", side);
    CHECK(evaluate_against_bids(folder("tr-ok").string(), root, {}, {}).runs.size() == 1);
  }
  SECTION("stride grid") {
    auto side = study.sidecar("01");
    side["Grid"] = "stride";
    study.predict_target(folder("stride"), "01", side);
    CHECK_THAT(test::error_of([&] { evaluate_against_bids(folder("stride").string(), root, {}, {}); }),
               Catch::Matchers::Contains("Grid 'stride'"));
  }
  SECTION("no target") {
    const auto pred = folder("orphan");
    write_prediction(pred / "sub-07" / "func" / "sub-07_task-rest_run-1_desc-neurobolt_timeseries.tsv", study.rois,
                     study.prepared("01"), study.sidecar("01"));
    CHECK_THAT(test::error_of([&] { evaluate_against_bids(pred.string(), root, {}, {}); }),
               Catch::Matchers::Contains("no EEG run with entities sub-07_task-rest_run-1"));
  }
  SECTION("no BIDS name") {
    const auto pred = folder("plain");
    write_prediction(pred / "recording_desc-neurobolt_timeseries.tsv", study.rois, study.prepared("01"), study.sidecar("01"));
    CHECK_THAT(test::error_of([&] { evaluate_against_bids(pred.string(), root, {}, {}); }),
               Catch::Matchers::Contains("its name has no BIDS entities"));
  }
  SECTION("rows against volumes on the trigger grid") {
    auto values = study.prepared("01");
    values.resize(values.size() - study.rois.size());
    const auto pred = folder("short");
    write_prediction(pred / "sub-01" / "func" / "sub-01_task-rest_run-1_desc-neurobolt_timeseries.tsv", study.rois,
                     values, study.sidecar("01"));
    CHECK_THAT(test::error_of([&] { evaluate_against_bids(pred.string(), root, {}, {}); }),
               Catch::Matchers::Contains(fmt::format("has {} rows (one per volume trigger), its target '{}' has {} volumes",
                                                     study.volumes - 1, study.target("01").string(), study.volumes)));
  }
  SECTION("an ROI the target lacks") {
    auto side = study.sidecar("01");
    auto rois = study.rois;
    rois[1] = "no<such>roi";
    side["TargetNormalisation"]["ROIs"] = rois;
    const auto pred = folder("roi");
    write_prediction(pred / "sub-01" / "func" / "sub-01_task-rest_run-1_desc-neurobolt_timeseries.tsv", rois,
                     study.prepared("01"), side);
    CHECK_THAT(test::error_of([&] { evaluate_against_bids(pred.string(), root, {}, {}); }),
               Catch::Matchers::Contains("ROI no<such>roi not in the target table"));
  }
  SECTION("a sidecar key missing") {
    auto side = study.sidecar("01");
    side["TargetNormalisation"].erase("Std");
    study.predict_target(folder("key"), "01", side);
    CHECK_THAT(test::error_of([&] { evaluate_against_bids(folder("key").string(), root, {}, {}); }),
               Catch::Matchers::Contains(sidecar_path(folder("key"), "01") + "': key 'TargetNormalisation.Std' is missing"));
  }
  SECTION("different checkpoints") {
    const auto pred = folder("mixed");
    study.predict_target(pred, "01", study.sidecar("01"));
    auto side = study.sidecar("02");
    side["Checkpoint"]["SHA256"] = "cd34";
    study.predict_target(pred, "02", side);
    CHECK_THAT(test::error_of([&] { evaluate_against_bids(pred.string(), root, {}, {}); }),
               Catch::Matchers::Contains("predictions from different checkpoints"));
  }
}

TEST_CASE("evaluate: noise ceilings from the simulator's summary", "[evaluate][sim]") {
  SimulatedStudy study;
  const auto summary = (study.root / "derivatives" / "neurobolt-sim-truth" / "summary.tsv").string();
  const auto all = read_noise_ceilings(summary, study.summary.roi_names, {});
  REQUIRE(all.size() == study.summary.roi_names.size());
  for (std::size_t r = 0; r < all.size(); ++r) CHECK(all[r] == Approx(study.summary.mean_ceiling[r]).epsilon(1e-6));

  const auto run = simulate_run(study.config, 1, 0, 0);
  const auto one = read_noise_ceilings(summary, {study.rois[0]}, {"sub-02_task-rest_run-01"});
  REQUIRE(one.size() == 1);
  CHECK(one[0] == Approx(run.realised_ceiling[5]).epsilon(1e-6));

  CHECK_THAT(test::error_of([&] { read_noise_ceilings(summary, {"nowhere"}, {}); }),
             Catch::Matchers::Contains("ROI 'nowhere' is not in its 'roi' column"));
  CHECK_THAT(test::error_of([&] { read_noise_ceilings(summary, {study.rois[0]}, {"sub-09_task-rest_run-1"}); }),
             Catch::Matchers::Contains("no row for run 'sub-09_task-rest_run-1'"));
}

TEST_CASE("evaluate: split labels from a prepared dataset equal those from its checkpoint record", "[evaluate][sim]") {
  test::TempDir dir;
  SimulationConfig sim = SimulationConfig::defaults();
  sim.subjects = 2;
  sim.minutes = 5.0;  // about 148 volumes: enough windows for a non-empty intra-run test part
  sim.sample_rate = 250.0;
  sim.seed = 9;
  sim.threads = 1;
  const auto root = dir / "bids";
  const auto summary = write_simulated_dataset(sim, root.string(), false);

  // Predictions as infer makes them: one row per volume, n/a before the first full window.
  const auto make_input = [&](const DatasetReader& reader) {
    EvaluationInput in;
    in.rois = {summary.roi_names[0]};
    for (const auto& name : reader.run_names()) {
      const auto subject = name.substr(4, 2);
      const auto t = read_timeseries_tsv((root / "derivatives" / "neurobolt-sim" / ("sub-" + subject) / "func" /
                                          (name + "_desc-roi_timeseries.tsv"))
                                             .string());
      RunSeries run;
      run.run = name;
      run.subject = subject;
      run.rows = t.num_volumes;
      run.repetition_time = 2.0;
      for (int64_t k = 0; k < run.rows; ++k) {
        run.predicted.push_back(k < 6 ? kNaN : static_cast<float>(k % 3));
        run.target.push_back(static_cast<float>(t.at(k, 0)));
      }
      in.runs.push_back(run);
    }
    RunSeries other = in.runs[0];
    other.run = "sub-03_task-rest_run-1";
    other.subject = "03";
    in.runs.push_back(other);
    return in;
  };

  PrepareOptions options;
  options.channels = {"FP1", "FP2", "C3", "C4", "O1", "O2"};
  SECTION("intra-run") {
    prepare_bids(root.string(), (dir / "intra.h5").string(), options);
    const DatasetReader reader((dir / "intra.h5").string());
    EvaluationInput exact = make_input(reader);
    label_splits(exact, reader);
    CHECK(std::any_of(exact.log.begin(), exact.log.end(), [](const std::string& l) {
      return l.find("run 'sub-03_task-rest_run-1' is not in the dataset") != std::string::npos;
    }));
    exact.runs.pop_back();
    EvaluationInput recorded = make_input(reader);
    recorded.runs.pop_back();
    label_splits_from_record(recorded, checkpoint_dataset_json(reader));
    for (std::size_t i = 0; i < exact.runs.size(); ++i) {
      CHECK(exact.runs[i].row_splits == recorded.runs[i].row_splits);
      const auto& labels = exact.runs[i].row_splits;
      CHECK(labels[5].empty());
      CHECK(labels[6] == "train");
      CHECK(labels.back() == "test");
      CHECK(std::count(labels.begin(), labels.end(), "test") == reader.num_windows(Split::test) / 2);
    }
    exact.evaluated_split = "test";
    CHECK(evaluate(exact).num_rows == reader.num_windows(Split::test));
  }
  SECTION("cross-subject") {
    options.split.mode = SplitMode::cross_subject;
    options.split.test_subjects = {"02"};
    prepare_bids(root.string(), (dir / "cross.h5").string(), options);
    const DatasetReader reader((dir / "cross.h5").string());
    EvaluationInput exact = make_input(reader);
    label_splits(exact, reader);
    CHECK(exact.runs[0].row_splits[3].empty());  // no window: no split
    CHECK(exact.runs[0].row_splits[10] == "train");
    CHECK(exact.runs[1].row_splits[10] == "test");
    CHECK(std::all_of(exact.runs[2].row_splits.begin(), exact.runs[2].row_splits.end(),
                      [](const std::string& s) { return s.empty(); }));
    EvaluationInput recorded = make_input(reader);
    label_splits_from_record(recorded, checkpoint_dataset_json(reader));
    CHECK(recorded.runs[0].split == "train");
    CHECK(recorded.runs[1].split == "test");
    CHECK(recorded.runs[2].split == "train");  // an unlisted subject trains
  }
}
