#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "neurobolt/error.hpp"
#include "neurobolt/roi.hpp"
#include "neurobolt/tsv.hpp"

namespace neurobolt {
namespace {

std::string read_text_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(fmt::format("cannot read {} '{}': {}", what, path,
                              std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open {} '{}' for reading", what, path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool parse_integer(std::string_view s, int64_t& value) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

std::vector<std::string_view> split_whitespace(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const std::size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) tokens.push_back(line.substr(start, i - start));
  }
  return tokens;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::pair<int64_t, std::string>> labels_from_tsv(const std::string& path) {
  const TsvTable table = read_tsv(path);
  const int64_t index_column = table.require_column("index");
  const int64_t name_column = table.require_column("name");
  std::vector<std::pair<int64_t, std::string>> labels;
  for (int64_t r = 0; r < table.num_rows(); ++r) {
    int64_t index = 0;
    if (!parse_integer(table.rows[r][index_column], index))
      throw FormatError(fmt::format("{}: expected an integer label index, found '{}'", table.where(r, index_column),
                                    table.rows[r][index_column]));
    const std::string name = table.text(r, name_column);
    if (name.empty())
      throw FormatError(fmt::format("{}: expected a label name, found none", table.where(r, name_column)));
    labels.emplace_back(index, name);
  }
  return labels;
}

std::vector<std::pair<int64_t, std::string>> labels_from_text(const std::string& path) {
  std::string text = read_text_file(path, "atlas label file");
  std::string_view rest(text);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);
  std::vector<std::pair<int64_t, std::string>> labels;
  int64_t line_number = 0;
  while (!rest.empty()) {
    ++line_number;
    const std::size_t end = std::min(rest.find('\n'), rest.size());
    const std::string_view line = trim(rest.substr(0, end));
    rest.remove_prefix(std::min(end + 1, rest.size()));
    if (line.empty() || line.front() == '#') continue;
    const auto tokens = split_whitespace(line);
    int64_t index = 0;
    if (tokens.size() < 2 || !parse_integer(tokens[0], index))
      throw FormatError(
          fmt::format("'{}' line {}: expected 'index name', found '{}'", path, line_number, line.substr(0, 60)));
    int64_t code = 0;
    std::string name;
    if (tokens.size() == 3 && parse_integer(tokens[2], code)) {
      name = std::string(tokens[1]);  // "index name code", as AAL and AICHA ship them
    } else {
      name = std::string(trim(line.substr(static_cast<std::size_t>(tokens[1].data() - line.data()))));
    }
    labels.emplace_back(index, std::move(name));
  }
  return labels;
}

std::string join_limited(const std::vector<std::string>& items, std::size_t limit = 10) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < limit; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > limit) out += fmt::format(" and {} more", items.size() - limit);
  return out;
}

void clean_timeseries(TargetSeries& series, const ExtractionOptions& options) {
  if (!options.detrend && options.confound_columns.empty()) return;
  const int64_t volumes = series.num_volumes;
  const int64_t regressors = 2 + static_cast<int64_t>(options.confound_columns.size());
  if (volumes <= regressors)
    throw ConfigError(fmt::format("'{}': {} volumes are too few to remove {} regressors (intercept, trend{})",
                                  series.path, volumes, regressors,
                                  options.confound_columns.empty() ? "" : ", confounds"));
  Eigen::MatrixXd design(volumes, regressors);
  for (int64_t t = 0; t < volumes; ++t) {
    design(t, 0) = 1.0;
    design(t, 1) = static_cast<double>(t) / static_cast<double>(volumes - 1) - 0.5;
  }
  if (!options.confound_columns.empty()) {
    if (options.confounds_path.empty())
      throw ConfigError(fmt::format("'{}': confound columns ({}) are given but no confounds file", series.path,
                                    join_limited(options.confound_columns)));
    const TsvTable confounds = read_tsv(options.confounds_path);
    if (confounds.num_rows() != volumes)
      throw ConfigError(fmt::format("confounds '{}' has {} rows, BOLD '{}' has {} volumes", options.confounds_path,
                                    confounds.num_rows(), series.path, volumes));
    for (std::size_t k = 0; k < options.confound_columns.size(); ++k) {
      const std::string& name = options.confound_columns[k];
      const int64_t column = confounds.find_column(name);
      if (column < 0)
        throw ConfigError(fmt::format("confounds '{}' has no column '{}'; it has {}", options.confounds_path, name,
                                      join_limited(confounds.columns, 20)));
      auto values = confounds.numeric_column(column);
      double sum = 0.0;
      int64_t finite = 0;
      for (double v : values)
        if (std::isfinite(v)) sum += v, ++finite;
      if (finite == 0)
        throw ConfigError(fmt::format("confounds '{}' column '{}' is n/a in every row", options.confounds_path, name));
      for (int64_t t = 0; t < volumes; ++t)
        design(t, 2 + static_cast<int64_t>(k)) =
            std::isfinite(values[t]) ? values[t] : sum / static_cast<double>(finite);
    }
  }
  Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> y(series.data.data(), volumes,
                                                                                       series.num_rois());
  const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(design);
  const Eigen::MatrixXd beta = qr.solve(Eigen::MatrixXd(y));
  y -= design * beta;
}

}  // namespace

TargetSeries read_timeseries_tsv(const std::string& path) {
  const TsvTable table = read_tsv(path);
  if (table.num_rows() == 0)
    throw FormatError(fmt::format("'{}': expected one row per volume, found a header only", path));
  TargetSeries series;
  series.path = path;
  series.source = "tsv";
  series.roi_names = table.columns;
  series.num_volumes = table.num_rows();
  const int64_t rois = table.num_columns();
  series.data.resize(static_cast<std::size_t>(series.num_volumes * rois));
  int64_t missing = 0;
  for (int64_t v = 0; v < series.num_volumes; ++v)
    for (int64_t r = 0; r < rois; ++r) {
      const double value = table.number(v, r);
      if (std::isnan(value)) ++missing;
      series.data[v * rois + r] = value;
    }
  if (missing > 0)
    series.warnings.push_back(
        fmt::format("'{}': {} of {} values are n/a (kept as NaN)", path, missing, series.num_volumes * rois));
  return series;
}

std::vector<std::string> Atlas::roi_names() const {
  std::vector<std::string> names;
  names.reserve(rois.size());
  for (const auto& roi : rois) names.push_back(roi.name);
  return names;
}

std::vector<std::pair<int64_t, std::string>> read_atlas_labels(const std::string& path) {
  const bool tsv = std::filesystem::path(path).extension() == ".tsv";
  auto labels = tsv ? labels_from_tsv(path) : labels_from_text(path);
  if (labels.empty()) throw FormatError(fmt::format("'{}': expected atlas labels, found none", path));
  std::set<int64_t> seen;
  for (const auto& [index, name] : labels)
    if (!seen.insert(index).second)
      throw FormatError(fmt::format("'{}': label index {} appears more than once ('{}')", path, index, name));
  return labels;
}

Atlas read_atlas(const std::string& image_path, const std::string& labels_path) {
  NiftiImage image = read_nifti(image_path);
  Atlas atlas;
  atlas.path = image_path;
  atlas.grid = image.grid;
  atlas.warnings = std::move(image.warnings);
  const int64_t nvox = image.grid.num_voxels();
  const int64_t nx = image.grid.dims[0], ny = image.grid.dims[1];

  std::map<int64_t, std::string> names;
  if (!labels_path.empty())
    for (auto& [index, name] : read_atlas_labels(labels_path)) names.emplace(index, std::move(name));

  if (image.num_volumes == 1) {
    std::map<int64_t, AtlasRoi> by_label;
    for (int64_t v = 0; v < nvox; ++v) {
      const float x = image.data[v];
      if (x == 0.0f) continue;
      const double label = std::nearbyint(static_cast<double>(x));
      if (!std::isfinite(x) || label < 0 || label > 2147483647.0 || std::fabs(x - label) > 1e-3)
        throw FormatError(
            fmt::format("'{}' voxel ({}, {}, {}): expected a non-negative integer label, found {} "
                        "(a probabilistic atlas needs a 4-D image with one volume per ROI)",
                        image_path, v % nx, (v / nx) % ny, v / (nx * ny), x));
      by_label[static_cast<int64_t>(label)].voxels.push_back(v);
    }
    if (by_label.empty())
      throw FormatError(fmt::format("'{}': expected labelled voxels, found only zeros", image_path));
    std::vector<std::string> unnamed, absent;
    for (auto& [label, roi] : by_label) {
      roi.label = label;
      roi.weights.assign(roi.voxels.size(), 1.0f);
      auto it = names.find(label);
      if (it != names.end()) {
        roi.name = it->second;
      } else {
        roi.name = std::to_string(label);
        if (!labels_path.empty()) unnamed.push_back(roi.name);
      }
      atlas.rois.push_back(std::move(roi));
    }
    for (const auto& [index, name] : names)
      if (index != 0 && !by_label.count(index)) absent.push_back(fmt::format("{} '{}'", index, name));
    if (!unnamed.empty())
      atlas.warnings.push_back(fmt::format("'{}': {} labels have no name in '{}' and are named by value: {}",
                                           image_path, unnamed.size(), labels_path, join_limited(unnamed)));
    if (!absent.empty())
      atlas.warnings.push_back(fmt::format("'{}': {} labels of '{}' have no voxels and are left out: {}", image_path,
                                           absent.size(), labels_path, join_limited(absent)));
    return atlas;
  }

  atlas.probabilistic = true;
  const int64_t volumes = image.num_volumes;
  int64_t first_index = 1;
  if (!names.empty()) {
    const int64_t lo = names.begin()->first, hi = names.rbegin()->first;
    const bool contiguous = static_cast<int64_t>(names.size()) == volumes && hi - lo + 1 == volumes;
    if (!contiguous || (lo != 0 && lo != 1))
      throw ConfigError(
          fmt::format("'{}' lists {} labels with indices {}..{}; the 4-D atlas '{}' has {} volumes, "
                      "so expected indices 0..{} or 1..{}",
                      labels_path, names.size(), lo, hi, image_path, volumes, volumes - 1, volumes));
    first_index = lo;
  }
  std::vector<std::string> empty;
  for (int64_t r = 0; r < volumes; ++r) {
    AtlasRoi roi;
    roi.label = r;
    roi.name = names.empty() ? std::to_string(r + 1) : names.at(r + first_index);
    const float* w = image.volume(r);
    for (int64_t v = 0; v < nvox; ++v)
      if (w[v] > 0.0f && std::isfinite(w[v])) {
        roi.voxels.push_back(v);
        roi.weights.push_back(w[v]);
      }
    if (roi.voxels.empty()) {
      empty.push_back(fmt::format("volume {} '{}'", r, roi.name));
      continue;
    }
    atlas.rois.push_back(std::move(roi));
  }
  if (atlas.rois.empty())
    throw FormatError(
        fmt::format("'{}': expected positive weights, found none in any of its {} volumes", image_path, volumes));
  if (!empty.empty())
    atlas.warnings.push_back(fmt::format("'{}': {} no voxel with a weight > 0 and {} left out: {}", image_path,
                                         empty.size() == 1 ? "1 ROI has" : fmt::format("{} ROIs have", empty.size()),
                                         empty.size() == 1 ? "is" : "are", join_limited(empty)));
  return atlas;
}

TargetSeries extract_roi_timeseries(const NiftiImage& bold, const Atlas& atlas, const ExtractionOptions& options) {
  const NiftiGrid& grid = bold.grid;
  const int64_t nvox = grid.num_voxels();
  const int64_t volumes = bold.num_volumes;
  if (static_cast<int64_t>(bold.data.size()) != nvox * volumes)
    throw ConfigError(fmt::format("'{}': expected {} voxel values, found {} (was it read header-only?)", bold.path,
                                  nvox * volumes, bold.data.size()));
  if (!atlas.grid.same_as(grid))
    throw ConfigError(
        fmt::format("grid mismatch: BOLD '{}' is {}; atlas '{}' is {}. Resample the atlas onto the "
                    "BOLD grid first (nearest neighbour for a label image)",
                    bold.path, grid.describe(), atlas.path, atlas.grid.describe()));

  // A voxel that is NaN or infinite in any volume (e.g. outside a masked brain) would turn its
  // ROI's mean into NaN; it is left out of every ROI instead.
  std::vector<uint8_t> bad(static_cast<std::size_t>(nvox), 0);
  for (int64_t t = 0; t < volumes; ++t) {
    const float* x = bold.volume(t);
    for (int64_t v = 0; v < nvox; ++v) bad[v] |= static_cast<uint8_t>(!std::isfinite(x[v]));
  }

  TargetSeries series;
  series.path = bold.path;
  series.source = "nifti";
  series.num_volumes = volumes;
  series.repetition_time = bold.repetition_time;
  series.warnings = bold.warnings;
  // (voxel, ROI, normalised weight) triplets sorted by voxel, so that each volume is read in
  // memory order whatever the layout of the ROIs; the sums stay in a small cache-resident row.
  struct Entry {
    int64_t voxel;
    int64_t roi;
    double weight;
  };
  const int64_t rois = static_cast<int64_t>(atlas.rois.size());
  std::vector<Entry> entries;
  int64_t dropped = 0;
  for (int64_t r = 0; r < rois; ++r) {
    const AtlasRoi& roi = atlas.rois[r];
    series.roi_names.push_back(roi.name);
    if (roi.weights.size() != roi.voxels.size())
      throw ConfigError(fmt::format("atlas '{}' ROI '{}': {} voxels but {} weights", atlas.path, roi.name,
                                    roi.voxels.size(), roi.weights.size()));
    const std::size_t first = entries.size();
    double total = 0.0;
    for (std::size_t i = 0; i < roi.voxels.size(); ++i) {
      const int64_t v = roi.voxels[i];
      if (v < 0 || v >= nvox)
        throw ConfigError(fmt::format("atlas '{}' ROI '{}': voxel index {} is outside the grid ({} voxels)", atlas.path,
                                      roi.name, v, nvox));
      if (bad[v]) {
        ++dropped;
        continue;
      }
      entries.push_back({v, r, roi.weights[i]});
      total += roi.weights[i];
    }
    if (!(total > 0.0))
      throw ConfigError(fmt::format("atlas '{}' ROI '{}' (label {}): no voxel with finite values in BOLD '{}'",
                                    atlas.path, roi.name, roi.label, bold.path));
    for (std::size_t i = first; i < entries.size(); ++i) entries[i].weight /= total;
  }
  if (dropped > 0)
    series.warnings.push_back(
        fmt::format("'{}': {} atlas voxels are NaN or infinite in some volume and are left out", bold.path, dropped));
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.voxel < b.voxel; });

  series.data.assign(static_cast<std::size_t>(volumes * rois), 0.0);
  for (int64_t t = 0; t < volumes; ++t) {
    const float* x = bold.volume(t);
    double* out = series.data.data() + t * rois;
    for (const Entry& e : entries) out[e.roi] += e.weight * static_cast<double>(x[e.voxel]);
  }
  clean_timeseries(series, options);
  return series;
}

}  // namespace neurobolt
