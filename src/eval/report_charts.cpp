// Inline SVG charts of the HTML report: plain text generation, no library.
#include "eval/report_charts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace neurobolt::report_detail {
namespace {

constexpr double kCharWidth = 6.6;  // average advance of a 12 px sans-serif glyph, for layout only

struct Scale {
  double d0, d1, r0, r1;
  double operator()(double v) const { return r0 + (v - d0) / (d1 - d0) * (r1 - r0); }
};

std::string num(double v) { return fmt::format("{:.1f}", v); }

void finite_range(const std::vector<double>& values, double& lo, double& hi) {
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
}

// Text cut to `max_chars` with an ellipsis (the full text goes in a <title>).
std::string shorten(const std::string& text, std::size_t max_chars) {
  if (text.size() <= max_chars || max_chars < 2) return text;
  std::size_t cut = max_chars - 1;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
  return text.substr(0, cut) + "\u2026";
}

// Polyline path of (x, y) with a break at every non-finite value.
std::string line_path(const std::vector<double>& x, const std::vector<double>& y, const Scale& sx, const Scale& sy) {
  std::string d;
  bool pen = false;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
      pen = false;
      continue;
    }
    d += fmt::format("{}{} {} ", pen ? "L" : "M", num(sx(x[i])), num(sy(y[i])));
    pen = true;
  }
  return d;
}

std::string x_axis(const std::vector<double>& ticks, const Scale& sx, double y, double grid_top, const std::string& label,
                   double label_x) {
  std::string out;
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
  for (double t : ticks) {
    const double x = sx(t);
    out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="{3}"/>)", num(x), num(grid_top), num(y),
                       Palette::grid);
    out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="{3}"/>)", num(x), num(y), num(y + 4),
                       Palette::axis);
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" class="tick">{}</text>)", num(x), num(y + 15),
                       escape(tick_label(t, step)));
  }
  out += fmt::format(R"(<line x1="{0}" y1="{2}" x2="{1}" y2="{2}" stroke="{3}"/>)", num(sx(ticks.front())),
                     num(sx(ticks.back())), num(y), Palette::axis);
  if (!label.empty()) {
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" class="axis-label">{}</text>)", num(label_x),
                       num(y + 30), escape(label));
  }
  return out;
}

std::string y_axis(const std::vector<double>& ticks, const Scale& sy, double x, double grid_right) {
  std::string out;
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
  for (double t : ticks) {
    const double y = sy(t);
    out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{3}"/>)", num(x), num(y), num(grid_right),
                       Palette::grid);
    out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{3}"/>)", num(x - 4), num(y), num(x),
                       Palette::axis);
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end" class="tick">{}</text>)", num(x - 6), num(y + 4),
                       escape(tick_label(t, step)));
  }
  out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="{3}"/>)", num(x), num(sy(ticks.front())),
                     num(sy(ticks.back())), Palette::axis);
  return out;
}

std::string dash_attribute(const std::string& dash) {
  return dash.empty() ? std::string() : fmt::format(R"( stroke-dasharray="{}")", escape(dash));
}

std::string diamond(double x, double y, double r) {
  return fmt::format(R"(<path d="M{} {}L{} {}L{} {}L{} {}Z" fill="{}" stroke="#ffffff" stroke-width="0.8"/>)", num(x),
                     num(y - r), num(x + r), num(y), num(x), num(y + r), num(x - r), num(y), Palette::ceiling);
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double value, int digits) {
  if (std::isnan(value)) return "n/a";
  return fmt::format("{:.{}f}", value, digits);
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0.0, hi = 1.0;
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(lo))) {
    // A flat series still gets a readable axis around its value.
    const double pad = std::max(0.5, 0.1 * std::fabs(lo));
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double residual = raw / magnitude;
  const double step = (residual <= 1.0 ? 1.0 : residual <= 2.0 ? 2.0 : residual <= 5.0 ? 5.0 : 10.0) * magnitude;
  const double start = std::floor(lo / step + 1e-9) * step;
  const double end = std::ceil(hi / step - 1e-9) * step;
  const auto count = static_cast<int64_t>(std::llround((end - start) / step)) + 1;
  std::vector<double> ticks;
  for (int64_t i = 0; i < count; ++i) {
    double t = start + static_cast<double>(i) * step;
    if (std::fabs(t) < 1e-9 * step) t = 0.0;  // no "-0.0" from rounding
    ticks.push_back(t);
  }
  return ticks;
}

std::string tick_label(double value, double step) {
  const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(std::fabs(step)) - 1e-9)));
  if (std::fabs(value) < 0.5 * std::pow(10.0, -decimals)) value = 0.0;
  return fmt::format("{:.{}f}", value, decimals);
}

std::string roi_bar_chart(const RoiBars& bars) {
  const bool has_baseline = !bars.baseline.empty();
  const bool has_ceiling = !bars.ceiling.empty();
  std::size_t longest = 4;
  for (const auto& name : bars.rois) longest = std::max(longest, name.size());
  const double label_width = std::clamp(static_cast<double>(longest) * kCharWidth + 14.0, 70.0, 230.0);
  const auto max_chars = static_cast<std::size_t>((label_width - 14.0) / kCharWidth);
  const double width = 900.0, legend = 34.0, bottom = 46.0;
  const double row = has_baseline ? 30.0 : 20.0, bar = has_baseline ? 11.0 : 12.0;
  const double left = label_width, right = width - 24.0;
  const double height = legend + row * static_cast<double>(bars.rois.size()) + bottom;

  double lo = 0.0, hi = 0.0;
  finite_range(bars.model, lo, hi);
  finite_range(bars.baseline, lo, hi);
  finite_range(bars.ceiling, lo, hi);
  if (hi - lo < 0.1) hi = lo + 0.1;
  const auto ticks = nice_ticks(lo, hi, 8);
  const Scale sx{ticks.front(), ticks.back(), left, right};
  const double plot_top = legend, plot_bottom = height - bottom;

  std::string svg = fmt::format(
      R"(<svg class="chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="Pearson r per ROI">)",
      num(width), num(height), num(width), num(height));
  // Legend.
  double lx = left;
  const auto legend_item = [&](const std::string& swatch, const std::string& label) {
    svg += swatch;
    svg += fmt::format(R"(<text x="{}" y="17" class="legend">{}</text>)", num(lx + 18), escape(label));
    lx += 18 + static_cast<double>(label.size()) * kCharWidth + 22;
  };
  legend_item(fmt::format(R"(<rect x="{}" y="7" width="13" height="12" fill="{}"/>)", num(lx), Palette::model),
              bars.model_label);
  if (has_baseline) {
    legend_item(fmt::format(R"(<rect x="{}" y="7" width="13" height="12" fill="{}" stroke="#6b4a00" stroke-width="0.8"/>)",
                            num(lx), Palette::baseline),
                bars.baseline_label);
  }
  if (has_ceiling) legend_item(diamond(lx + 6.5, 13, 6), bars.ceiling_label);

  svg += x_axis(ticks, sx, plot_bottom, plot_top, "Pearson r", (left + right) / 2);
  svg += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="{3}" stroke-width="1.2"/>)", num(sx(0.0)),
                     num(plot_top), num(plot_bottom), Palette::axis);
  const auto bar_rect = [&](double value, double y, const char* fill, const char* stroke, const std::string& what,
                            const std::string& note) {
    if (std::isnan(value)) {
      return fmt::format(R"(<text x="{}" y="{}" class="na">n/a<title>{}</title></text>)", num(sx(0.0) + 4), num(y + bar - 2),
                         escape(what + ": r undefined" + (note.empty() ? "" : " (" + note + ")")));
    }
    const double x0 = std::min(sx(0.0), sx(value)), x1 = std::max(sx(0.0), sx(value));
    return fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="{}"{}><title>{}</title></rect>)", num(x0),
                       num(y), num(std::max(x1 - x0, 0.5)), num(bar), fill,
                       stroke ? fmt::format(R"( stroke="{}" stroke-width="0.8")", stroke) : std::string(),
                       escape(fmt::format("{}: r = {}", what, fixed(value, 3))));
  };
  for (std::size_t i = 0; i < bars.rois.size(); ++i) {
    const double y = plot_top + row * static_cast<double>(i);
    const std::string& name = bars.rois[i];
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="end" class="roi-label">{}<title>{}</title></text>)",
                       num(left - 8), num(y + row / 2 + 4), escape(shorten(name, max_chars)), escape(name));
    const double top = y + (row - (has_baseline ? 2 * bar + 1 : bar)) / 2;
    svg += bar_rect(bars.model[i], top, Palette::model, nullptr, bars.model_label + " " + name,
                    i < bars.model_notes.size() ? bars.model_notes[i] : "");
    if (has_baseline) {
      svg += bar_rect(bars.baseline[i], top + bar + 1, Palette::baseline, "#6b4a00", bars.baseline_label + " " + name,
                      i < bars.baseline_notes.size() ? bars.baseline_notes[i] : "");
    }
    if (has_ceiling && std::isfinite(bars.ceiling[i])) {
      const double cx = sx(bars.ceiling[i]);
      svg += fmt::format(R"(<g><title>{0}</title><line x1="{1}" y1="{2}" x2="{1}" y2="{3}" stroke="{4}" stroke-width="1"/>{5}</g>)",
                         escape(fmt::format("{} {}: {}", bars.ceiling_label, name, fixed(bars.ceiling[i], 3))), num(cx),
                         num(y + 3), num(y + row - 3), Palette::ceiling, diamond(cx, y + row / 2, 5));
    }
  }
  svg += "</svg>";
  return svg;
}

std::string time_panel(const TimePanel& panel, int width, int height) {
  // The right margin leaves room for half of the last x tick label.
  const double left = 42, right = width - 16.0, top = 8, bottom = height - 34.0;
  double t0 = INFINITY, t1 = -INFINITY;
  finite_range(panel.time, t0, t1);
  if (!(t1 >= t0)) t0 = 0, t1 = 1;
  double y0 = INFINITY, y1 = -INFINITY;
  finite_range(panel.truth, y0, y1);
  finite_range(panel.model, y0, y1);
  finite_range(panel.baseline, y0, y1);
  if (!(y1 >= y0)) y0 = -1, y1 = 1;
  const auto xt = nice_ticks(t0, t1, 5);
  const auto yt = nice_ticks(y0, y1, 5);
  const Scale sx{xt.front(), xt.back(), left, right};
  const Scale sy{yt.front(), yt.back(), bottom, top};

  std::string svg = fmt::format(R"(<svg class="panel" viewBox="0 0 {0} {1}" width="{0}" height="{1}">)", width, height);
  if (!panel.evaluated.empty() && panel.time.size() > 1) {
    // Half a row on each side of every evaluated row, contiguous rows merged into one band.
    std::vector<double> gaps;
    for (std::size_t i = 1; i < panel.time.size(); ++i) gaps.push_back(panel.time[i] - panel.time[i - 1]);
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    const double half = gaps[gaps.size() / 2] / 2;
    std::size_t i = 0;
    while (i < panel.evaluated.size()) {
      if (!panel.evaluated[i]) {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j + 1 < panel.evaluated.size() && panel.evaluated[j + 1]) ++j;
      const double a = std::max(sx(panel.time[i] - half), left), b = std::min(sx(panel.time[j] + half), right);
      svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" class="evaluated-band"/>)", num(a), num(top),
                         num(std::max(b - a, 0.5)), num(bottom - top));
      i = j + 1;
    }
  }
  svg += y_axis(yt, sy, left, right);
  svg += x_axis(xt, sx, bottom, top, panel.x_label, (left + right) / 2);
  svg += fmt::format(R"(<path d="{}" fill="none" stroke="{}" stroke-width="2.4"/>)",
                     line_path(panel.time, panel.truth, sx, sy), Palette::truth);
  if (!panel.baseline.empty()) {
    svg += fmt::format(R"(<path d="{}" fill="none" stroke="{}" stroke-width="1.3" stroke-dasharray="5 3"/>)",
                       line_path(panel.time, panel.baseline, sx, sy), Palette::baseline_line);
  }
  svg += fmt::format(R"(<path d="{}" fill="none" stroke="{}" stroke-width="1.4"/>)",
                     line_path(panel.time, panel.model, sx, sy), Palette::model);
  svg += "</svg>";
  return svg;
}

std::string curve_chart(const std::vector<CurveSeries>& series, const std::string& x_label, const std::string& y_label,
                        int width, int height) {
  const double left = 58, right = width - 14.0, top = 30, bottom = height - 42.0;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  bool integer_x = true;
  for (const auto& s : series) {
    if (s.x.size() > 1) finite_range(s.x, x0, x1);
    for (double x : s.x) integer_x = integer_x && x == std::round(x);
    finite_range(s.y, y0, y1);
  }
  if (!(x1 >= x0)) {
    for (const auto& s : series) finite_range(s.x, x0, x1);
  }
  if (!(x1 >= x0)) x0 = 0, x1 = 1;
  if (!(y1 >= y0)) y0 = 0, y1 = 1;
  auto xt = nice_ticks(x0, x1, 6);
  if (integer_x && xt.size() > 1 && xt[1] - xt[0] < 1.0) {
    // Epochs are whole numbers: no fractional ticks.
    xt.clear();
    for (double x = std::floor(x0); x <= std::ceil(x1) + 1e-9; x += 1.0) xt.push_back(x);
    if (xt.size() == 1) xt.push_back(xt.front() + 1.0);
  }
  const auto yt = nice_ticks(y0, y1, 5);
  const Scale sx{xt.front(), xt.back(), left, right};
  const Scale sy{yt.front(), yt.back(), bottom, top};

  std::string svg = fmt::format(R"(<svg class="chart curve" viewBox="0 0 {0} {1}" width="{0}" height="{1}" role="img" aria-label="{2}">)",
                                width, height, escape(y_label + " against " + x_label));
  double lx = left;
  for (const auto& s : series) {
    svg += fmt::format(R"(<line x1="{}" y1="13" x2="{}" y2="13" stroke="{}" stroke-width="2"{}/>)", num(lx), num(lx + 20),
                       s.colour, dash_attribute(s.dash));
    svg += fmt::format(R"(<text x="{}" y="17" class="legend">{}</text>)", num(lx + 25), escape(s.label));
    lx += 25 + static_cast<double>(s.label.size()) * kCharWidth + 18;
  }
  svg += y_axis(yt, sy, left, right);
  svg += x_axis(xt, sx, bottom, top, x_label, (left + right) / 2);
  svg += fmt::format(R"svg(<text transform="translate(14 {}) rotate(-90)" text-anchor="middle" class="axis-label">{}</text>)svg",
                     num((top + bottom) / 2), escape(y_label));
  for (const auto& s : series) {
    if (s.x.size() == 1 && std::isfinite(s.y[0])) {
      svg += fmt::format(R"(<line x1="{0}" y1="{2}" x2="{1}" y2="{2}" stroke="{3}" stroke-width="1.6"{4}><title>{5}</title></line>)",
                         num(left), num(right), num(sy(s.y[0])), s.colour, dash_attribute(s.dash),
                         escape(fmt::format("{}: {}", s.label, fixed(s.y[0], 4))));
      continue;
    }
    svg += fmt::format(R"(<path d="{}" fill="none" stroke="{}" stroke-width="1.6"{}/>)", line_path(s.x, s.y, sx, sy),
                       s.colour, dash_attribute(s.dash));
    if (s.x.size() <= 60) {
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.y[i])) continue;
        svg += fmt::format(R"(<circle cx="{}" cy="{}" r="2.4" fill="{}"><title>{}</title></circle>)", num(sx(s.x[i])),
                           num(sy(s.y[i])), s.colour,
                           escape(fmt::format("{} at {} {}: {}", s.label, x_label, tick_label(s.x[i], 1), fixed(s.y[i], 4))));
      }
    }
  }
  svg += "</svg>";
  return svg;
}

}  // namespace neurobolt::report_detail
