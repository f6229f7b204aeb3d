// The self-contained HTML evaluation report (contents in report.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "core/plural.hpp"
#include "core/atomic_file.hpp"
#include "eval/report_charts.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/report.hpp"

namespace neurobolt {
namespace {

using report_detail::escape;
using report_detail::fixed;
using report_detail::Palette;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const char* kStyle = R"css(
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", sans-serif;
       margin: 0 auto; max-width: 1180px; padding: 16px 28px 48px; color: #1a1a1a; background: #ffffff; line-height: 1.45; }
h1 { font-size: 1.7rem; margin: 0.3em 0 0.1em; }
h2 { font-size: 1.25rem; margin: 1.8em 0 0.6em; padding-bottom: 4px; border-bottom: 1px solid #d0d0d0; }
h3 { font-size: 1.05rem; margin: 1.2em 0 0.4em; }
p.lead { color: #444; margin: 0 0 0.6em; }
p.note { color: #555; font-size: 0.88rem; margin: 0.4em 0; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: 3px 18px; font-size: 0.9rem; margin: 0; }
dl.provenance dt { font-weight: 600; color: #333; }
dl.provenance dd { margin: 0; overflow-wrap: anywhere; font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 0.85rem; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 0.6em 0; }
.card { border: 1px solid #cfcfcf; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.card .label { font-size: 0.8rem; color: #555; }
.card .value { font-size: 1.45rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .sub { font-size: 0.85rem; color: #444; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.88rem; font-variant-numeric: tabular-nums; margin: 0.3em 0 0.8em; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e2e2e2; }
th { background: #f2f2f2; text-align: center; font-weight: 600; }
td.name { text-align: left; max-width: 22em; overflow-wrap: anywhere; }
td.num { text-align: right; }
td.sep, th.sep { border-left: 2px solid #bdbdbd; }
tr.mean td { font-weight: 600; border-top: 2px solid #bdbdbd; }
span.na { color: #9a1b1b; font-style: italic; cursor: help; }
details { margin: 0.3em 0; }
details > summary { cursor: pointer; font-weight: 600; padding: 3px 0; }
details details { margin-left: 1.2em; }
svg { font-family: inherit; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg text.tick { font-size: 11px; fill: #333333; }
svg text.axis-label { font-size: 12px; fill: #222222; }
svg text.legend, svg text.roi-label { font-size: 12px; fill: #1a1a1a; }
svg text.na { font-size: 11px; fill: #9a1b1b; font-style: italic; }
svg rect.evaluated-band { fill: #ececec; }
.legend-row { display: flex; flex-wrap: wrap; gap: 18px; align-items: center; font-size: 0.88rem; margin: 0.3em 0 0.6em; }
.legend-row svg { vertical-align: middle; }
.tc-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(350px, 1fr)); gap: 10px 18px; }
figure.tc { margin: 0; }
figure.tc figcaption { font-size: 0.85rem; display: flex; justify-content: space-between; gap: 8px; }
figure.tc figcaption .roi { font-weight: 600; overflow-wrap: anywhere; }
figure.tc figcaption .r { color: #333; white-space: nowrap; font-variant-numeric: tabular-nums; }
svg.panel { width: 100%; height: auto; display: block; }
.curves { display: flex; flex-wrap: wrap; gap: 18px; }
.run-chooser { margin: 0.4em 0 0.8em; font-size: 0.9rem; }
footer { margin-top: 3em; font-size: 0.8rem; color: #666; }
@media print { details > *:not(summary) { display: block; } }
)css";

// Adds a run chooser over the time-course <details> (the page works without it) and marks the
// page as scripted, which the browser test checks.
const char* kScript = R"js(
(function () {
  var runs = document.querySelectorAll('details.run-courses');
  if (runs.length > 1) {
    var label = document.createElement('label');
    label.className = 'run-chooser';
    label.appendChild(document.createTextNode('Run: '));
    var select = document.createElement('select');
    select.id = 'run-select';
    for (var i = 0; i < runs.length; i++) {
      var option = document.createElement('option');
      option.value = String(i);
      option.textContent = runs[i].getAttribute('data-run');
      if (runs[i].open) option.selected = true;
      select.appendChild(option);
    }
    select.addEventListener('change', function () {
      for (var k = 0; k < runs.length; k++) runs[k].open = (String(k) === select.value);
    });
    label.appendChild(select);
    runs[0].parentNode.insertBefore(label, runs[0]);
  }
  document.body.setAttribute('data-report-ready', '1');
})();
)js";

std::string r_cell(const RoiMetrics& m, bool first_of_model) {
  const std::string cls = first_of_model ? "num sep" : "num";
  if (std::isnan(m.r)) {
    return fmt::format(R"(<td class="{}"><span class="na" title="{}">n/a</span></td>)", cls,
                       escape(m.note.empty() ? "undefined" : m.note));
  }
  return fmt::format(R"(<td class="{}">{}</td>)", cls, fixed(m.r, 3));
}

std::string metric_cells(const RoiMetrics& m) {
  const auto value = [](double v, int digits) {
    return std::isnan(v) ? std::string(R"(<span class="na" title="undefined">n/a</span>)") : fixed(v, digits);
  };
  return r_cell(m, true) + fmt::format(R"(<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>)",
                                       value(m.mse, 3), value(m.r2, 3), m.n);
}

// The baseline's metrics in the model's ROI order (a missing ROI gets undefined metrics).
std::vector<RoiMetrics> align(const std::vector<std::string>& rois, const std::vector<std::string>& from_rois,
                              const std::vector<RoiMetrics>& from) {
  std::vector<RoiMetrics> out(rois.size());
  for (std::size_t r = 0; r < rois.size(); ++r) {
    const auto it = std::find(from_rois.begin(), from_rois.end(), rois[r]);
    if (it != from_rois.end() && static_cast<std::size_t>(it - from_rois.begin()) < from.size()) {
      out[r] = from[it - from_rois.begin()];
    } else {
      out[r].note = "ROI not in the baseline";
    }
  }
  return out;
}

struct Labels {
  std::string model, baseline;
  bool has_baseline = false;
  bool has_ceiling = false;
  std::string ceiling;
};

std::string roi_table(const std::vector<std::string>& rois, const std::vector<RoiMetrics>& model,
                      const std::vector<RoiMetrics>* baseline, const std::vector<double>* ceiling, const Labels& labels,
                      double model_mean, double baseline_mean) {
  std::string h = R"(<div class="scroll"><table class="metrics"><thead><tr><th rowspan="2">ROI</th>)";
  h += fmt::format(R"(<th colspan="4" class="sep">{}</th>)", escape(labels.model));
  if (baseline) h += fmt::format(R"(<th colspan="4" class="sep">{}</th>)", escape(labels.baseline));
  if (ceiling) h += fmt::format(R"(<th rowspan="2" class="sep">{}</th>)", escape(labels.ceiling));
  h += "</tr><tr>";
  const int groups = baseline ? 2 : 1;
  for (int g = 0; g < groups; ++g) h += R"(<th class="sep">r</th><th>MSE</th><th>R²</th><th>n</th>)";
  h += "</tr></thead><tbody>";
  for (std::size_t r = 0; r < rois.size(); ++r) {
    h += fmt::format(R"(<tr><td class="name">{}</td>)", escape(rois[r]));
    h += metric_cells(model[r]);
    if (baseline) h += metric_cells((*baseline)[r]);
    if (ceiling) h += fmt::format(R"(<td class="num sep">{}</td>)", fixed((*ceiling)[r], 3));
    h += "</tr>";
  }
  h += fmt::format(R"(<tr class="mean"><td class="name">mean over ROIs</td><td class="num sep">{}</td><td colspan="3"></td>)",
                   fixed(model_mean, 3));
  if (baseline) h += fmt::format(R"(<td class="num sep">{}</td><td colspan="3"></td>)", fixed(baseline_mean, 3));
  if (ceiling) {
    double sum = 0;
    int count = 0;
    for (double c : *ceiling) {
      if (std::isfinite(c)) sum += c, ++count;
    }
    h += fmt::format(R"(<td class="num sep">{}</td>)", fixed(count ? sum / count : kNaN, 3));
  }
  h += "</tr></tbody></table></div>";
  return h;
}

// One <details> per kind of group: an overview (mean r per group) and each group's full table.
std::string group_section(const std::string& title, const std::string& id, const std::vector<std::string>& rois,
                          const std::vector<GroupMetrics>& model, const EvaluationResult* baseline,
                          const std::vector<GroupMetrics>* baseline_groups, const Labels& labels, bool show_subject) {
  std::map<std::string, const GroupMetrics*> base;
  if (baseline_groups)
    for (const auto& g : *baseline_groups) base[g.name] = &g;
  std::string h = fmt::format(R"(<details id="{}"><summary>{} ({})</summary>)", id, escape(title), model.size());
  if (model.empty()) return h + R"(<p class="note">None.</p></details>)";
  h += R"(<div class="scroll"><table class="groups"><thead><tr><th>name</th>)";
  if (show_subject) h += "<th>subject</th>";
  h += fmt::format(R"(<th>rows</th><th class="sep">{} mean r</th>)", escape(labels.model));
  if (labels.has_baseline) h += fmt::format(R"(<th class="sep">{} mean r</th>)", escape(labels.baseline));
  h += "</tr></thead><tbody>";
  for (const auto& g : model) {
    h += fmt::format(R"(<tr><td class="name">{}</td>)", escape(g.name));
    if (show_subject) h += fmt::format(R"(<td class="name">{}</td>)", escape(g.subject));
    h += fmt::format(R"(<td class="num">{}</td><td class="num sep">{}</td>)", g.rows, fixed(g.mean_r, 3));
    if (labels.has_baseline) {
      const auto it = base.find(g.name);
      h += fmt::format(R"(<td class="num sep">{}</td>)", it == base.end() ? "n/a" : fixed(it->second->mean_r, 3));
    }
    h += "</tr>";
  }
  h += "</tbody></table></div>";
  for (const auto& g : model) {
    h += fmt::format(R"(<details><summary>{}</summary>)", escape(g.name));
    std::vector<RoiMetrics> aligned;
    const auto it = base.find(g.name);
    const bool with_baseline = labels.has_baseline && it != base.end();
    if (with_baseline) aligned = align(rois, baseline->rois, it->second->per_roi);
    h += roi_table(rois, g.per_roi, with_baseline ? &aligned : nullptr, nullptr, labels, g.mean_r,
                   with_baseline ? it->second->mean_r : kNaN);
    h += "</details>";
  }
  return h + "</details>";
}

std::string card(const std::string& label, const std::string& value, const std::string& sub) {
  return fmt::format(R"(<div class="card"><div class="label">{}</div><div class="value">{}</div>{}</div>)", escape(label),
                     escape(value), sub.empty() ? "" : fmt::format(R"(<div class="sub">{}</div>)", escape(sub)));
}

std::string line_swatch(const char* colour, bool dashed, double width) {
  return fmt::format(R"(<svg width="28" height="10" aria-hidden="true"><line x1="1" y1="5" x2="27" y2="5" stroke="{}" stroke-width="{}"{}/></svg>)",
                     colour, width, dashed ? R"( stroke-dasharray="5 3")" : "");
}

const GroupMetrics* find_group(const std::vector<GroupMetrics>& groups, const std::string& name) {
  for (const auto& g : groups)
    if (g.name == name) return &g;
  return nullptr;
}

std::string time_course_section(const ReportInput& in, const Labels& labels) {
  const auto& runs = in.model.runs;
  std::string h = R"(<section id="time-courses"><h2>Predicted and true time courses</h2>)";
  if (runs.empty()) return h + R"(<p class="note">No run series were given.</p></section>)";
  const auto& rois = in.model.evaluation.rois;
  const auto R = static_cast<int64_t>(rois.size());
  const std::string& split = in.model.evaluation.evaluated_split;
  h += R"(<p class="lead">One panel per ROI; values in the units of the evaluation (z units of the training targets for )"
       R"(neurobolt predictions). r is over the run's evaluated rows.</p>)";
  h += R"(<div class="legend-row">)";
  h += "<span>" + line_swatch(Palette::truth, false, 2.4) + " measured</span>";
  h += "<span>" + line_swatch(Palette::model, false, 1.4) + " " + escape(labels.model) + "</span>";
  if (labels.has_baseline) h += "<span>" + line_swatch(Palette::baseline_line, true, 1.3) + " " + escape(labels.baseline) + "</span>";
  if (!split.empty()) {
    h += fmt::format(R"(<span><svg width="20" height="12" aria-hidden="true"><rect width="20" height="12" fill="#ececec" stroke="#bbbbbb"/></svg> evaluated rows ({})</span>)",
                     escape(split));
  }
  h += "</div>";

  // Which runs to draw: the chosen one and the first others, up to the limit.
  std::size_t chosen = 0;
  if (!in.time_course_run.empty()) {
    while (chosen < runs.size() && runs[chosen].run != in.time_course_run) ++chosen;
  }
  std::vector<std::size_t> drawn{chosen};
  for (std::size_t i = 0; i < runs.size() && static_cast<int64_t>(drawn.size()) < std::max<int64_t>(1, in.max_time_course_runs); ++i) {
    if (i != chosen) drawn.push_back(i);
  }
  std::sort(drawn.begin(), drawn.end());

  std::map<std::string, const RunSeries*> baseline_runs;
  std::vector<int64_t> baseline_column(rois.size(), -1);
  if (in.baseline) {
    for (const auto& run : in.baseline->runs) baseline_runs[run.run] = &run;
    const auto& brois = in.baseline->evaluation.rois;
    for (std::size_t r = 0; r < rois.size(); ++r) {
      const auto it = std::find(brois.begin(), brois.end(), rois[r]);
      if (it != brois.end()) baseline_column[r] = it - brois.begin();
    }
  }
  for (std::size_t index : drawn) {
    const RunSeries& run = runs[index];
    const RunSeries* base = nullptr;
    if (const auto it = baseline_runs.find(run.run); it != baseline_runs.end() && it->second->rows == run.rows) base = it->second;
    const auto BR = in.baseline ? static_cast<int64_t>(in.baseline->evaluation.rois.size()) : 0;
    const GroupMetrics* metrics = find_group(in.model.evaluation.per_run, run.run);
    const GroupMetrics* base_metrics = in.baseline ? find_group(in.baseline->evaluation.per_run, run.run) : nullptr;

    h += fmt::format(R"(<details class="run-courses" data-run="{0}"{1}><summary>{0}{2}</summary><div class="tc-grid">)",
                     escape(run.run), index == chosen ? " open" : "",
                     metrics ? escape(fmt::format(" \u2014 mean r {}", fixed(metrics->mean_r, 3))) : "");
    std::vector<double> time(static_cast<std::size_t>(run.rows));
    std::string x_label = "time (s)";
    for (int64_t k = 0; k < run.rows; ++k) {
      if (!run.time.empty()) time[k] = run.time[k];
      else if (run.repetition_time > 0) time[k] = static_cast<double>(k) * run.repetition_time;
      else time[k] = static_cast<double>(k), x_label = "row";
    }
    std::vector<bool> evaluated;
    if (!split.empty()) {
      for (int64_t k = 0; k < run.rows; ++k) evaluated.push_back(run.split_of(k) == split);
    }
    for (int64_t r = 0; r < R; ++r) {
      report_detail::TimePanel panel;
      panel.time = time;
      panel.evaluated = evaluated;
      panel.x_label = x_label;
      for (int64_t k = 0; k < run.rows; ++k) {
        panel.truth.push_back(run.target[k * R + r]);
        panel.model.push_back(run.predicted[k * R + r]);
        if (base && baseline_column[r] >= 0) panel.baseline.push_back(base->predicted[k * BR + baseline_column[r]]);
      }
      std::string r_text = "r " + (metrics ? fixed(metrics->per_roi[r].r, 2) : std::string("n/a"));
      if (base_metrics && baseline_column[r] >= 0) {
        r_text += fmt::format(" \u00b7 {} {}", labels.baseline, fixed(base_metrics->per_roi[baseline_column[r]].r, 2));
      }
      h += fmt::format(R"(<figure class="tc"><figcaption><span class="roi">{}</span><span class="r">{}</span></figcaption>{}</figure>)",
                       escape(rois[r]), escape(r_text), report_detail::time_panel(panel, 360, 170));
    }
    h += "</div></details>";
  }
  if (drawn.size() < runs.size()) {
    std::vector<std::string> rest;
    for (std::size_t i = 0; i < runs.size(); ++i)
      if (!std::binary_search(drawn.begin(), drawn.end(), i)) rest.push_back(escape(runs[i].run));
    h += fmt::format(R"(<p class="note">Not drawn ({} more runs; raise the limit to include them): {}</p>)", rest.size(),
                     fmt::join(rest, ", "));
  }
  return h + "</section>";
}

std::string training_section(const ReportInput& in, const Labels& labels) {
  const auto& m = in.model.training;
  const std::vector<TrainingRecord> none;
  const auto& b = in.baseline ? in.baseline->training : none;
  std::string h = R"(<section id="training"><h2>Training</h2>)";
  if (m.empty() && b.empty()) return h + R"(<p class="note">No training log (metrics.jsonl) was given.</p></section>)";
  const auto series = [](const std::vector<TrainingRecord>& records, double TrainingRecord::*field, std::string label,
                         const char* colour, const char* dash) {
    report_detail::CurveSeries s;
    s.label = std::move(label);
    s.colour = colour;
    s.dash = dash;
    for (const auto& r : records) {
      s.x.push_back(static_cast<double>(r.epoch));
      s.y.push_back(r.*field);
    }
    return s;
  };
  const auto any_finite = [](const std::vector<TrainingRecord>& records, double TrainingRecord::*field) {
    return std::any_of(records.begin(), records.end(), [&](const TrainingRecord& r) { return std::isfinite(r.*field); });
  };
  std::vector<report_detail::CurveSeries> loss, r;
  if (!m.empty()) {
    loss.push_back(series(m, &TrainingRecord::train_loss, labels.model + " train loss", Palette::model, ""));
    if (any_finite(m, &TrainingRecord::val_mse)) {
      loss.push_back(series(m, &TrainingRecord::val_mse, labels.model + " val MSE", "#6f8fc9", "2 3"));
    }
    r.push_back(series(m, &TrainingRecord::val_mean_r, labels.model + " val mean r", Palette::model, ""));
  }
  if (!b.empty()) {
    loss.push_back(series(b, &TrainingRecord::train_loss, labels.baseline + " train loss", Palette::baseline_line, "6 3"));
    r.push_back(series(b, &TrainingRecord::val_mean_r, labels.baseline + " val mean r", Palette::baseline_line, "6 3"));
  }
  h += R"(<p class="lead">From the trainer's metrics.jsonl; a fit of one step (ridge) is drawn as a level.</p>)";
  h += R"(<div class="curves">)";
  h += report_detail::curve_chart(loss, "epoch", "loss (MSE)", 560, 290);
  h += report_detail::curve_chart(r, "epoch", "validation mean r", 560, 290);
  h += "</div>";
  if (!m.empty()) {
    const auto best = std::max_element(m.begin(), m.end(), [](const TrainingRecord& a, const TrainingRecord& c) {
      return !(a.val_mean_r >= c.val_mean_r) && !std::isnan(c.val_mean_r);
    });
    h += fmt::format(R"(<p class="note">{} epochs logged{}; best validation mean r {} at epoch {}.</p>)", m.size(),
                     m.back().arch.empty() ? "" : escape(" (" + m.back().arch + ")"), fixed(best->val_mean_r, 3),
                     best->epoch);
  }
  return h + "</section>";
}

// The time courses index the runs by the evaluation's ROIs: sizes must agree.
void check_runs(const ReportModel& model, const std::string& which) {
  const auto R = static_cast<int64_t>(model.evaluation.rois.size());
  for (const auto& run : model.runs) {
    const auto check = [&](const char* field, std::size_t found, int64_t wanted, bool may_be_empty) {
      if (static_cast<int64_t>(found) == wanted || (may_be_empty && found == 0)) return;
      throw ConfigError(fmt::format("report: {} run '{}': {} has {} values, expected {} ({} rows{})", which, run.run,
                                    field, found, wanted, run.rows,
                                    may_be_empty ? " or none" : fmt::format(" x {} ROIs of the evaluation", R)));
    };
    check("predicted", run.predicted.size(), run.rows * R, false);
    check("target", run.target.size(), run.rows * R, false);
    check("time", run.time.size(), run.rows, true);
    check("row_splits", run.row_splits.size(), run.rows, true);
  }
}

}  // namespace

std::string render_report_html(const ReportInput& in) {
  const EvaluationResult& model = in.model.evaluation;
  const auto& rois = model.rois;
  if (!in.noise_ceiling.empty() && in.noise_ceiling.size() != rois.size()) {
    throw ConfigError(fmt::format("report: noise_ceiling has {} values, expected {} (one per ROI) or none",
                                  in.noise_ceiling.size(), rois.size()));
  }
  if (!in.time_course_run.empty() &&
      std::none_of(in.model.runs.begin(), in.model.runs.end(), [&](const RunSeries& r) { return r.run == in.time_course_run; })) {
    throw ConfigError(fmt::format("report: time-course run '{}' is not among the {} runs given", in.time_course_run,
                                  in.model.runs.size()));
  }
  check_runs(in.model, "model");
  if (in.baseline) check_runs(*in.baseline, "baseline");
  const EvaluationResult* baseline = in.baseline ? &in.baseline->evaluation : nullptr;
  Labels labels;
  labels.model = in.model.label.empty() ? "model" : in.model.label;
  labels.baseline = in.baseline && !in.baseline->label.empty() ? in.baseline->label : "baseline";
  labels.has_baseline = baseline != nullptr;
  labels.has_ceiling = !in.noise_ceiling.empty();
  labels.ceiling = in.ceiling_label;
  std::vector<RoiMetrics> base_roi;
  if (baseline) base_roi = align(rois, baseline->rois, baseline->per_roi);

  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += fmt::format("<title>{}</title>\n", escape(in.title));
  h += "<link rel=\"icon\" href=\"data:,\">\n";  // no favicon request
  h += fmt::format("<style>{}</style>\n</head>\n<body>\n", kStyle);
  h += fmt::format("<header><h1>{}</h1>", escape(in.title));
  h += fmt::format(R"(<p class="lead">Protocol: {} &middot; evaluated rows: {}</p></header>)",
                   escape(model.protocol.empty() ? "not stated" : model.protocol),
                   escape(model.evaluated_split.empty() ? "all" : model.evaluated_split + " split"));

  h += R"(<section id="provenance"><h2>Made from</h2>)";
  if (in.provenance.empty()) {
    h += R"(<p class="note">No provenance was given.</p>)";
  } else {
    h += R"(<dl class="provenance">)";
    for (const auto& [key, value] : in.provenance) h += fmt::format("<dt>{}</dt><dd>{}</dd>", escape(key), escape(value));
    h += "</dl>";
  }
  h += "</section>\n";

  h += R"(<section id="summary"><h2>Summary</h2><div class="cards">)";
  const auto with_baseline = [&](double b) { return baseline ? fmt::format("{}: {}", labels.baseline, fixed(b, 3)) : std::string(); };
  h += card(labels.model + " mean r (pooled)", fixed(model.mean_r, 3), with_baseline(baseline ? baseline->mean_r : kNaN));
  h += card(labels.model + " mean r over runs", fixed(model.mean_run_r, 3),
            with_baseline(baseline ? baseline->mean_run_r : kNaN));
  if (labels.has_ceiling) {
    double sum = 0;
    int count = 0;
    for (double c : in.noise_ceiling) {
      if (std::isfinite(c)) sum += c, ++count;
    }
    h += card("mean " + in.ceiling_label, fixed(count ? sum / count : kNaN, 3), "upper bound on r");
  }
  h += card("evaluated", fmt::format("{} rows", model.num_rows),
            fmt::format("{} \u00b7 {} \u00b7 {}", count_of(model.num_runs, "run"), count_of(model.num_subjects, "subject"),
                        count_of(static_cast<int64_t>(rois.size()), "ROI")));
  h += "</div>";
  h += R"(<p class="note">r: Pearson correlation of predicted and measured series. Pooled: one correlation per ROI over )"
       R"(the evaluated rows of all runs together; mean r over runs: each run's mean over ROIs, averaged over runs (the )"
       R"(paper's per-scan figure). MSE and R² (1 − SSE/SST about the measured mean) are in the series' units. n: pairs )"
       R"(used (rows where neither value is missing).</p></section>)";
  h += "\n";

  h += R"(<section id="metrics"><h2>Metrics per ROI</h2>)";
  h += roi_table(rois, model.per_roi, baseline ? &base_roi : nullptr, labels.has_ceiling ? &in.noise_ceiling : nullptr,
                 labels, model.mean_r, baseline ? baseline->mean_r : kNaN);
  h += group_section("Per run", "per-run", rois, model.per_run, baseline, baseline ? &baseline->per_run : nullptr, labels, true);
  h += group_section("Per subject", "per-subject", rois, model.per_subject, baseline,
                     baseline ? &baseline->per_subject : nullptr, labels, false);
  h += group_section("Per split", "per-split", rois, model.per_split, baseline, baseline ? &baseline->per_split : nullptr,
                     labels, false);
  h += "</section>\n";

  h += R"(<section id="r-chart"><h2>Correlation per ROI</h2>)";
  report_detail::RoiBars bars;
  bars.rois = rois;
  bars.model_label = labels.model;
  bars.baseline_label = labels.baseline;
  bars.ceiling_label = in.ceiling_label;
  for (const auto& m : model.per_roi) {
    bars.model.push_back(m.r);
    bars.model_notes.push_back(m.note);
  }
  for (const auto& m : base_roi) {
    bars.baseline.push_back(m.r);
    bars.baseline_notes.push_back(m.note);
  }
  bars.ceiling = in.noise_ceiling;
  h += report_detail::roi_bar_chart(bars);
  h += "</section>\n";

  h += time_course_section(in, labels);
  h += "\n";
  h += training_section(in, labels);
  h += fmt::format("\n<footer>Made by neurobolt {}.</footer>\n", escape(NEUROBOLT_VERSION));
  h += fmt::format("<script>{}</script>\n</body>\n</html>\n", kScript);
  return h;
}

void write_report(const ReportInput& input, const std::string& path, bool force) {
  const std::string html = render_report_html(input);
  detail::AtomicOutput out(path, force);
  out.write_all(html);
  out.commit();
}

std::vector<std::pair<std::string, std::string>> provenance_items(const std::string& json_object) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(json_object);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw FormatError(fmt::format("provenance: invalid JSON ({})", e.what()));
  }
  if (!j.is_object()) throw FormatError(fmt::format("provenance: expected a JSON object, found {}", j.type_name()));
  std::vector<std::pair<std::string, std::string>> out;
  const auto scalar = [](const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return std::string("n/a");
    return v.dump();
  };
  std::function<void(const std::string&, const json&)> walk = [&](const std::string& prefix, const json& v) {
    if (v.is_object()) {
      for (const auto& item : v.items()) walk(prefix.empty() ? item.key() : prefix + "." + item.key(), item.value());
    } else if (v.is_array()) {
      const bool scalars = std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_primitive(); });
      if (!scalars) {
        out.emplace_back(prefix, fmt::format("{} entries", v.size()));
        return;
      }
      std::vector<std::string> parts;
      for (const auto& x : v) {
        if (parts.size() == 12) {
          parts.push_back(fmt::format("\u2026 ({} in all)", v.size()));
          break;
        }
        parts.push_back(scalar(x));
      }
      out.emplace_back(prefix, fmt::format("{}", fmt::join(parts, ", ")));
    } else {
      out.emplace_back(prefix, scalar(v));
    }
  };
  walk("", j);
  return out;
}

}  // namespace neurobolt
