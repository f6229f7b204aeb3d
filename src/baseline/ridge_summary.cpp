// Describing checkpoints without loading a model: the architecture attribute, and a ridge summary.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "io/h5.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/predictor.hpp"
#include "neurobolt/ridge.hpp"

namespace neurobolt {

std::string checkpoint_arch(const std::string& path) {
  const auto file = h5::File::open_read(path);
  if (!file.has_attribute("/", "format") || file.string_attribute("/", "format") != "neurobolt-checkpoint") {
    throw FormatError(fmt::format("'{}': not a neurobolt checkpoint (root attribute 'format' is not "
                                  "'neurobolt-checkpoint'; a reference .pth needs 'neurobolt convert' first)",
                                  path));
  }
  return file.has_attribute("/", "arch") ? file.string_attribute("/", "arch") : std::string("neurobolt");
}

namespace {

nlohmann::json metadata_of(const RidgeCheckpoint& c) {
  auto j = nlohmann::json::parse(c.metadata_json, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

}  // namespace

std::string format_ridge_summary(const std::string& path, const RidgeCheckpoint& c) {
  std::vector<std::string> bands;
  for (const auto& [low, high] : c.features.bands) bands.push_back(fmt::format("{:g}-{:g}", low, high));
  const double window = static_cast<double>(c.window_samples) / c.sample_rate;
  std::string out = fmt::format("{} (checkpoint, ridge baseline)\n", path);
  out += fmt::format("input      {} channels x {} samples ({:g} s at {:g} Hz): {}\n", c.channels.size(),
                     c.window_samples, window, c.sample_rate, fmt::join(c.channels, " "));
  out += fmt::format("output     {} ROI{}: {}\n", c.rois.size(), c.rois.size() == 1 ? "" : "s", fmt::join(c.rois, " "));
  out += fmt::format("features   {}: log band power ({} Hz) in {} sub-windows of {:g} s per channel\n",
                     c.model.num_features, fmt::join(bands, ", "), c.features.sub_windows,
                     window / static_cast<double>(c.features.sub_windows));
  std::vector<std::string> alphas;
  for (double a : c.model.alpha) alphas.push_back(fmt::format("{:g}", a));
  out += fmt::format("penalty    per ROI: {}\n", fmt::join(alphas, " "));
  const auto meta = metadata_of(c);
  if (meta.contains("training") && meta["training"].is_object() && meta["training"].contains("val_mean_r") &&
      meta["training"]["val_mean_r"].is_number()) {
    out += fmt::format("validation mean r {:+.3f}\n", meta["training"]["val_mean_r"].get<double>());
  }
  return out;
}

std::string ridge_summary_json(const std::string& path, const RidgeCheckpoint& c) {
  nlohmann::ordered_json j;
  j["kind"] = "model";
  j["arch"] = "ridge";
  j["source"] = path;
  j["config"] = nlohmann::json::parse(c.config_json());
  j["alpha"] = c.model.alpha;
  j["features"] = c.model.num_features;
  j["metadata"] = metadata_of(c);
  return j.dump(2);
}

}  // namespace neurobolt
