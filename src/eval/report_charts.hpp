#pragma once
// Inline SVG charts of the HTML report (internal). Every function returns one <svg> element whose
// text is escaped; NaN values are left out (lines break at them).
#include <string>
#include <string_view>
#include <vector>

namespace neurobolt::report_detail {

// HTML/XML escaping of text and attribute values (& < > " ').
std::string escape(std::string_view text);

// "0.412", or "n/a" for NaN; digits after the point.
std::string fixed(double value, int digits);

// Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about `target`
// ticks; the first and last enclose the range.
std::vector<double> nice_ticks(double lo, double hi, int target);
// A tick label with as many decimals as the step needs.
std::string tick_label(double value, double step);

// The report's colours and line styles, shared by the charts and the HTML legends. Distinct in
// luminance and dash pattern so that they survive greyscale printing.
struct Palette {
  static constexpr const char* model = "#1f4e99";     // dark blue
  static constexpr const char* baseline = "#e69f00";  // light orange (bars), dashed lines
  static constexpr const char* baseline_line = "#b35900";
  static constexpr const char* truth = "#9a9a9a";  // light and wide, beneath the darker predictions
  static constexpr const char* ceiling = "#000000";
  static constexpr const char* grid = "#e3e3e3";
  static constexpr const char* axis = "#555555";
};

// Horizontal grouped bars of r per ROI: the model, the baseline below it (when `baseline` is not
// empty) and the ceiling as a diamond marker (when `ceiling` is not empty). Each vector has one
// value per ROI; `notes` gives the reason shown for a NaN model r.
struct RoiBars {
  std::vector<std::string> rois;
  std::vector<double> model, baseline, ceiling;
  std::vector<std::string> model_notes, baseline_notes;
  std::string model_label, baseline_label, ceiling_label;
};
std::string roi_bar_chart(const RoiBars& bars);

// One panel of the time-course small multiples: the true series and the predictions over time.
struct TimePanel {
  std::vector<double> time;  // s
  std::vector<double> truth, model, baseline;  // baseline may be empty
  std::vector<bool> evaluated;                 // rows to shade (empty: none)
  std::string x_label = "time (s)";
};
std::string time_panel(const TimePanel& panel, int width, int height);

// A line chart against epoch: each series a polyline with markers; a series of one point is
// drawn as a horizontal level across the chart (a one-shot fit such as ridge).
struct CurveSeries {
  std::string label;
  std::vector<double> x, y;
  const char* colour = Palette::model;
  std::string dash;  // SVG stroke-dasharray, "" for a solid line
};
std::string curve_chart(const std::vector<CurveSeries>& series, const std::string& x_label, const std::string& y_label,
                        int width, int height);

}  // namespace neurobolt::report_detail
