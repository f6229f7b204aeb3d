// The HTML evaluation report: content, escaping, structure, absent parts; training logs; chart
// scales. "[.report-demo]" writes a realistic report for the browser test.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <vector>

#include "eval/report_charts.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/evaluate.hpp"
#include "neurobolt/report.hpp"
#include "neurobolt/simulate.hpp"
#include "test_support.hpp"

using namespace neurobolt;
using Catch::Matchers::Contains;

namespace {

namespace fs = std::filesystem;

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// Checks that every element is closed in order (void elements and "/>" excepted); returns the
// first problem, or "" when the nesting is sound. Script and style bodies are skipped.
std::string nesting_problem(const std::string& html) {
  static const std::set<std::string> kVoid{"area", "base", "br", "col", "embed", "hr", "img", "input",
                                           "link", "meta", "source", "track", "wbr"};
  std::vector<std::string> open;
  std::size_t i = 0;
  while ((i = html.find('<', i)) != std::string::npos) {
    if (html.compare(i, 4, "<!--") == 0) {
      i = html.find("-->", i);
      if (i == std::string::npos) return "unterminated comment";
      continue;
    }
    if (html.compare(i, 2, "<!") == 0) {
      i = html.find('>', i);
      continue;
    }
    const std::size_t end = html.find('>', i);
    if (end == std::string::npos) return "unterminated tag";
    std::string tag = html.substr(i + 1, end - i - 1);
    i = end + 1;
    const bool closing = !tag.empty() && tag[0] == '/';
    if (closing) tag = tag.substr(1);
    const bool self_closing = !tag.empty() && tag.back() == '/';
    const std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
    if (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0]))) return "bad tag '<" + tag + ">'";
    if (closing) {
      if (open.empty() || open.back() != name) {
        return "'</" + name + ">' closes '" + (open.empty() ? std::string("nothing") : open.back()) + "'";
      }
      open.pop_back();
    } else if (!self_closing && !kVoid.count(name)) {
      open.push_back(name);
      if (name == "script" || name == "style") {
        i = html.find("</" + name + ">", i);
        if (i == std::string::npos) return "unterminated " + name;
      }
    }
  }
  return open.empty() ? "" : "unclosed '" + open.back() + "'";
}

// Smooth z-scored series with a known share predicted: what a model and a weaker baseline give.
struct Synthetic {
  std::vector<std::string> rois;
  std::vector<RunSeries> model_runs, baseline_runs;
};

Synthetic synthetic(const std::vector<std::string>& rois, int subjects, int runs_per_subject, int64_t rows, double tr,
                    uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Synthetic s;
  s.rois = rois;
  const auto R = static_cast<int64_t>(rois.size());
  for (int sub = 1; sub <= subjects; ++sub) {
    for (int run = 1; run <= runs_per_subject; ++run) {
      RunSeries m;
      m.run = fmt::format("sub-{:02d}_task-rest_run-{}", sub, run);
      m.subject = fmt::format("{:02d}", sub);
      m.rows = rows;
      m.repetition_time = tr;
      for (int64_t k = 0; k < rows; ++k) m.time.push_back(5.0 + tr * static_cast<double>(k));
      RunSeries b = m;
      m.predicted.assign(static_cast<std::size_t>(rows * R), 0.0f);
      m.target = m.predicted;
      b.predicted = m.predicted;
      for (int64_t r = 0; r < R; ++r) {
        // AR(1) signal smoothed over a few TRs; predictions share a ROI-dependent part of it.
        const double skill = 0.85 - 0.8 * static_cast<double>(r) / static_cast<double>(std::max<int64_t>(1, R - 1));
        double x = 0, px = 0, bx = 0;
        for (int64_t k = 0; k < rows; ++k) {
          x = 0.9 * x + 0.44 * normal(rng);
          px = 0.7 * px + 0.3 * (skill * x + std::sqrt(1 - skill * skill) * normal(rng) * 0.6);
          bx = 0.7 * bx + 0.3 * (0.6 * skill * x + 0.5 * normal(rng));
          m.target[k * R + r] = static_cast<float>(x);
          m.predicted[k * R + r] = k < 6 ? NAN : static_cast<float>(2.2 * px);
          b.predicted[k * R + r] = k < 6 ? NAN : static_cast<float>(2.0 * bx);
        }
      }
      b.target = m.target;
      // Intra-run labels: the final 10 % of the windows are the test part.
      for (int64_t k = 0; k < rows; ++k) {
        m.row_splits.push_back(k < 6 ? "" : k < rows * 8 / 10 ? "train" : k < rows * 9 / 10 ? "val" : "test");
      }
      b.row_splits = m.row_splits;
      s.model_runs.push_back(std::move(m));
      s.baseline_runs.push_back(std::move(b));
    }
  }
  return s;
}

std::vector<TrainingRecord> training_curve(int epochs) {
  std::vector<TrainingRecord> out;
  for (int e = 1; e <= epochs; ++e) {
    TrainingRecord r;
    r.epoch = e;
    r.train_loss = 0.55 + 0.45 * std::exp(-e / 6.0) + 0.01 * std::sin(e);
    r.val_mse = 0.72 + 0.3 * std::exp(-e / 5.0);
    r.val_mean_r = 0.42 * (1 - std::exp(-e / 5.0)) + 0.01 * std::cos(e);
    r.arch = "neurobolt";
    out.push_back(r);
  }
  return out;
}

ReportInput full_report(const std::vector<std::string>& rois, const std::string& split) {
  const Synthetic s = synthetic(rois, 2, 2, 120, 2.0, 7);
  EvaluationInput m{rois, s.model_runs, "intra-run", split, "{}", {}};
  EvaluationInput b{rois, s.baseline_runs, "intra-run", split, "{}", {}};
  ReportInput in;
  in.title = "Evaluation <of> \"sim\" & more";
  in.provenance = {{"predictions", "/data/pred<1>"}, {"checkpoint", "/m/best.h5"}, {"checkpoint SHA256", "ab12cd"},
                   {"note", "<script>alert(1)</script>"}};
  in.model = {"NeuroBOLT", evaluate(m), s.model_runs, training_curve(12)};
  TrainingRecord ridge;
  ridge.epoch = 1;
  ridge.train_loss = 0.81;
  ridge.val_mean_r = 0.21;
  in.baseline = ReportModel{"ridge", evaluate(b), s.baseline_runs, {ridge}};
  for (std::size_t r = 0; r < rois.size(); ++r) in.noise_ceiling.push_back(0.9 - 0.05 * static_cast<double>(r));
  in.noise_ceiling.back() = NAN;
  return in;
}

}  // namespace

TEST_CASE("report: every part, escaped, well nested, nothing external", "[report]") {
  const std::vector<std::string> rois{"V1 <left>", "A&B", "\"quoted\" 'roi'", "thalamus"};
  const ReportInput in = full_report(rois, "test");
  const std::string html = render_report_html(in);

  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(nesting_problem(html).empty());
  INFO(nesting_problem(html));
  for (const char* part : {R"(<section id="provenance">)", R"(<section id="summary">)", R"(<section id="metrics">)",
                           R"(<details id="per-run">)", R"(<details id="per-subject">)", R"(<details id="per-split">)",
                           R"(<section id="r-chart">)", R"(<section id="time-courses">)", R"(<section id="training">)",
                           "<dl class=\"provenance\">", "<table class=\"metrics\">", "<svg class=\"chart\"",
                           "<svg class=\"chart curve\"", "data-report-ready", "<meta charset=\"utf-8\">"}) {
    CHECK_THAT(html, Contains(part));
  }
  // Escaped names and values; nothing from the data appears raw.
  CHECK_THAT(html, Contains("<title>Evaluation &lt;of&gt; &quot;sim&quot; &amp; more</title>"));
  CHECK_THAT(html, Contains("V1 &lt;left&gt;"));
  CHECK_THAT(html, Contains("A&amp;B"));
  CHECK_THAT(html, Contains("&quot;quoted&quot; &#39;roi&#39;"));
  CHECK_THAT(html, Contains("<dd>&lt;script&gt;alert(1)&lt;/script&gt;</dd>"));
  CHECK(html.find("<left>") == std::string::npos);
  CHECK(html.find("A&B") == std::string::npos);
  CHECK(html.find("alert(1)</script>") == std::string::npos);
  CHECK(count(html, "<script>") == 1);  // ours only

  // Self-contained: no URL, no external resource, no font download.
  for (const char* external : {"http:", "https:", "//cdn", "src=", "@import", "url(", "@font-face"}) {
    CHECK(html.find(external) == std::string::npos);
  }

  // Model and baseline side by side per ROI, with the ceiling column; a NaN ceiling is n/a.
  CHECK(count(html, R"(<th colspan="4" class="sep">NeuroBOLT</th>)") >= 1);
  CHECK(count(html, R"(<th colspan="4" class="sep">ridge</th>)") >= 1);
  CHECK_THAT(html, Contains("noise ceiling"));
  // The chart: one model and one baseline bar per ROI with a defined r, a ceiling marker per finite ceiling.
  for (const auto& roi : rois) {
    const std::string name = report_detail::escape(roi);
    CHECK(count(html, "<title>NeuroBOLT " + name + ": r = ") == 1);
    CHECK(count(html, "<title>ridge " + name + ": r = ") == 1);
    CHECK(count(html, "<title>noise ceiling " + name + ": ") == (roi == rois.back() ? 0u : 1u));
  }
  // Time courses: one panel per ROI for each of the 4 runs, the first open.
  CHECK(count(html, "<svg class=\"panel\"") == 4 * rois.size());
  CHECK(count(html, "class=\"run-courses\"") == 4);
  CHECK(count(html, "class=\"run-courses\" data-run=\"sub-01_task-rest_run-1\" open>") == 1);
  CHECK(count(html, "class=\"evaluated-band\"") == 4 * rois.size());  // one contiguous test part per panel
  // Per-group tables: 4 runs, 2 subjects, 3 splits, each with a full ROI table.
  CHECK(count(html, "<table class=\"metrics\">") == 1 + 4 + 2 + 3);
  CHECK_THAT(html, Contains("Per run (4)"));
  CHECK_THAT(html, Contains("Per split (3)"));
  CHECK_THAT(html, Contains("12 epochs logged (neurobolt)"));
}

TEST_CASE("report: without baseline, ceiling, runs or curves, with undefined r", "[report]") {
  EvaluationInput in;
  in.rois = {"flat", "V1"};
  RunSeries run;
  run.run = "sub-01_run-1";
  run.subject = "01";
  run.rows = 4;
  run.predicted = {1, 1, 2, 2, 3, 3, 4, 4};
  run.target = {5, 2, 5, 4, 5, 5, 5, 4};  // "flat": the target is constant
  in.runs.push_back(run);
  ReportInput report;
  report.model = {"model", evaluate(in), {}, {}};
  const std::string html = render_report_html(report);
  CHECK(nesting_problem(html).empty());
  CHECK_THAT(html, Contains("No provenance was given."));
  CHECK_THAT(html, Contains("No run series were given."));
  CHECK_THAT(html, Contains("No training log (metrics.jsonl) was given."));
  CHECK_THAT(html, Contains(R"(<span class="na" title="constant target">n/a</span>)"));
  CHECK_THAT(html, Contains("model flat: r undefined (constant target)"));
  CHECK(html.find("ridge") == std::string::npos);
  CHECK(html.find("ceiling") == std::string::npos);
  CHECK(html.find("<svg class=\"panel\"") == std::string::npos);
  CHECK(count(html, "<th colspan=\"4\"") == 3);  // pooled, the run's and the subject's table, model only

  // With runs but time unknown, the x axis counts rows.
  report.model.runs = in.runs;
  CHECK_THAT(render_report_html(report), Contains(">row</text>"));

  report.noise_ceiling = {0.5};
  CHECK_THAT(test::error_of([&] { render_report_html(report); }),
             Contains("noise_ceiling has 1 values, expected 2 (one per ROI) or none"));
  report.noise_ceiling.clear();
  report.time_course_run = "sub-09_run-1";
  CHECK_THAT(test::error_of([&] { render_report_html(report); }), Contains("time-course run 'sub-09_run-1' is not among"));
  report.time_course_run.clear();
  report.model.runs[0].target.pop_back();
  CHECK_THAT(test::error_of([&] { render_report_html(report); }),
             Contains("model run 'sub-01_run-1': target has 7 values, expected 8 (4 rows x 2 ROIs of the evaluation)"));
}

TEST_CASE("report: the chosen run is drawn and open, extra runs only listed", "[report]") {
  ReportInput in = full_report({"a", "b"}, "");
  in.time_course_run = "sub-02_task-rest_run-2";
  in.max_time_course_runs = 2;
  const std::string html = render_report_html(in);
  CHECK(count(html, "class=\"run-courses\"") == 2);
  CHECK_THAT(html, Contains("data-run=\"sub-02_task-rest_run-2\" open>"));
  CHECK_THAT(html, Contains("data-run=\"sub-01_task-rest_run-1\">"));
  CHECK_THAT(html, Contains("Not drawn (2 more runs"));
  CHECK(html.find("class=\"evaluated-band\"") == std::string::npos);  // every row evaluated: nothing to shade
}

TEST_CASE("report: write_report is atomic and refuses to overwrite without force", "[report]") {
  test::TempDir dir;
  const auto path = (dir / "report.html").string();
  const ReportInput in = full_report({"a"}, "test");
  write_report(in, path, false);
  CHECK(test::read_bytes(path) == render_report_html(in));
  CHECK_THAT(test::error_of([&] { write_report(in, path, false); }), Contains("already exists (use --force"));
  write_report(in, path, true);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path())) ++files;
  CHECK(files == 1);  // no temporary left behind
  CHECK_THAT(test::error_of([&] { write_report(in, (dir / "missing" / "r.html").string(), false); }),
             Contains("does not exist"));
}

TEST_CASE("report: training metrics: metrics.jsonl lines, nulls, optional keys, errors by line", "[report]") {
  test::TempDir dir;
  const auto path = dir / "metrics.jsonl";
  {
    std::ofstream out(path);
    out << R"({"epoch": 1, "train_loss": 0.9, "val_mean_r": 0.1, "val_r": [0.2, null], "lr": 0.0005, "step": 40, "arch": "neurobolt", "future_key": 3})"
        << "\n\n"
        << R"({"epoch": 2, "train_loss": 0.8, "val_mean_r": null, "val_mse": 0.7, "windows_per_s": 12.5, "seconds": 30})"
        << "\r\n";
  }
  const auto records = read_training_metrics(path.string());
  REQUIRE(records.size() == 2);
  CHECK(records[0].epoch == 1);
  CHECK(records[0].train_loss == 0.9);
  CHECK(records[0].val_r.size() == 2);
  CHECK(std::isnan(records[0].val_r[1]));
  CHECK(records[0].lr == 0.0005);
  CHECK(records[0].step == 40);
  CHECK(records[0].arch == "neurobolt");
  CHECK(std::isnan(records[0].val_mse));
  CHECK(std::isnan(records[1].val_mean_r));
  CHECK(records[1].val_mse == 0.7);
  CHECK(records[1].windows_per_s == 12.5);
  CHECK(records[1].seconds == 30);
  CHECK(records[1].step == -1);

  {
    std::ofstream out(path);
    out << R"({"epoch": 1, "train_loss": 0.9, "val_mean_r": 0.1})" << "\n" << R"({"epoch": 2.5, "train_loss": 1, "val_mean_r": 0})" << "\n";
  }
  CHECK_THAT(test::error_of([&] { read_training_metrics(path.string()); }),
             Contains("metrics.jsonl' line 2: key 'epoch': expected an integer, found 2.5"));
  {
    std::ofstream out(path);
    out << R"({"epoch": 1, "val_mean_r": 0.1})" << "\n";
  }
  CHECK_THAT(test::error_of([&] { read_training_metrics(path.string()); }), Contains("line 1: key 'train_loss' is missing"));
  CHECK_THAT(test::error_of([&] { read_training_metrics((dir / "none.jsonl").string()); }), Contains("cannot open"));
}

TEST_CASE("report: provenance JSON flattened into report rows", "[report]") {
  const auto items = provenance_items(
      R"({"predictions": "/p", "checkpoint": {"path": "/m.h5", "sha256": "ab"}, "derivatives": ["a", "b"],
          "target_lowpass_hz": null, "runs": [{"run": "x"}, {"run": "y"}], "n": 3})");
  const std::vector<std::pair<std::string, std::string>> expected{
      {"checkpoint.path", "/m.h5"}, {"checkpoint.sha256", "ab"}, {"derivatives", "a, b"}, {"n", "3"},
      {"predictions", "/p"},        {"runs", "2 entries"},       {"target_lowpass_hz", "n/a"}};
  CHECK(items == expected);
  CHECK_THAT(test::error_of([] { provenance_items("[]"); }), Contains("expected a JSON object"));
}

TEST_CASE("report: chart scales: round ticks that enclose the data", "[report]") {
  using report_detail::nice_ticks;
  using report_detail::tick_label;
  const auto u = nice_ticks(0.0, 0.83, 8);
  REQUIRE(u.size() == 6);
  for (std::size_t i = 0; i < u.size(); ++i) CHECK(u[i] == Approx(0.2 * static_cast<double>(i)).margin(1e-12));
  const auto t = nice_ticks(-0.13, 0.5, 8);
  REQUIRE(t.size() == 8);
  CHECK(t.front() == Approx(-0.2));
  CHECK(t.back() == Approx(0.5));
  CHECK(tick_label(t[2], t[1] - t[0]) == "0.0");
  CHECK(tick_label(0.2, 0.2) == "0.2");
  CHECK(tick_label(150.0, 50.0) == "150");
  CHECK(tick_label(0.05, 0.05) == "0.05");
  // A flat series still gets an axis around its value.
  const auto flat = nice_ticks(3.0, 3.0, 4);
  CHECK(flat.front() < 3.0);
  CHECK(flat.back() > 3.0);
  CHECK(report_detail::escape("<a href='x'>&\"</a>") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
}

// Writes a realistic report (the simulator's 16 ROIs plus a name with markup, 4 subjects x 2 runs
// of 8 min, model + ridge + ceilings + 40 epochs) to $NEUROBOLT_REPORT_DEMO for the browser test
// (tests/cli/test_report_browser.sh).
TEST_CASE("report: demo for the browser test", "[.report-demo]") {
  const char* target = std::getenv("NEUROBOLT_REPORT_DEMO");
  REQUIRE(target != nullptr);
  std::vector<std::string> rois;
  for (const auto& roi : roi_preset("roi16")) rois.push_back(roi.name);
  rois.push_back("R<&>\"insula\" (posterior, long name)");
  const Synthetic s = synthetic(rois, 4, 2, 240, 2.0, 3);
  EvaluationInput m{rois, s.model_runs, "intra-run", "test", "{}", {}};
  EvaluationInput b{rois, s.baseline_runs, "intra-run", "test", "{}", {}};
  ReportInput in;
  in.title = "NeuroBOLT on simulated EEG-fMRI (demo)";
  in.provenance = {{"predictions", "/work/demo-out/pred"},
                   {"BIDS dataset", "/work/demo-out/sim"},
                   {"checkpoint", "/work/demo-out/model.h5"},
                   {"checkpoint SHA256", "9f2c1b7e4d5a6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081"},
                   {"neurobolt", "0.1.0"},
                   {"date", "2026-12-02T03:00:00Z"}};
  std::vector<TrainingRecord> curve = training_curve(40);
  in.model = {"NeuroBOLT", evaluate(m), s.model_runs, curve};
  TrainingRecord ridge;
  ridge.epoch = 1;
  ridge.train_loss = 0.78;
  ridge.val_mean_r = 0.19;
  in.baseline = ReportModel{"ridge", evaluate(b), s.baseline_runs, {ridge}};
  for (std::size_t r = 0; r < rois.size(); ++r) in.noise_ceiling.push_back(0.93 - 0.02 * static_cast<double>(r));
  in.time_course_run = "sub-02_task-rest_run-1";
  write_report(in, target, true);
  CHECK(fs::file_size(target) > 10000);
}
