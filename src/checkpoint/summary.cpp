#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "neurobolt/checkpoint.hpp"
#include "core/plural.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

// For the text view: a list of more than a few names becomes "N names: prefix.* (k), ..." (the
// JSON view keeps every name).
void shorten_name_lists(nlohmann::json& j) {
  constexpr std::size_t kShown = 8;
  if (j.is_object()) {
    for (auto& [key, value] : j.items()) shorten_name_lists(value);
  } else if (j.is_array()) {
    const bool names = j.size() > kShown && std::all_of(j.begin(), j.end(), [](const auto& v) { return v.is_string(); });
    if (names) {
      j = fmt::format("{} names: {}", j.size(), summarize_names(j.get<std::vector<std::string>>()));
    } else {
      for (auto& value : j) shorten_name_lists(value);
    }
  }
}

bool has_extension(const std::string& path, const char* ext) {
  return std::filesystem::path(path).extension() == ext;
}

ParameterCounts counts_for(const ModelConfig& config) {
  NeuroBOLT model(config);
  return count_parameters(*model);
}

}  // namespace

ModelSummary summarize_model(const std::string& path_or_name) {
  ModelSummary s;
  std::error_code ec;
  if (!std::filesystem::exists(path_or_name, ec)) {
    const auto names = builtin_config_names();
    if (std::find(names.begin(), names.end(), path_or_name) == names.end()) {
      throw IoError(fmt::format("'{}': no such file, and not a built-in config ({})", path_or_name, fmt::join(names, ", ")));
    }
    s.source = "built-in config";
    s.config = builtin_config(path_or_name);
    s.parameters = counts_for(s.config);
    return s;
  }
  if (has_extension(path_or_name, ".pth") || has_extension(path_or_name, ".pt")) {
    auto imported = import_pth(path_or_name, ImportOptions{});
    s.source = "PyTorch .pth";
    s.config = imported.model->config();
    s.parameters = count_parameters(*imported.model);
    return s;
  }
  if (is_checkpoint_file(path_or_name)) {
    s.source = "checkpoint";
    auto model = load_checkpoint(path_or_name, &s.metadata_json);
    s.config = model->config();
    s.parameters = count_parameters(*model);
    return s;
  }
  s.source = "config file";
  s.config = ModelConfig::from_file(path_or_name);
  s.parameters = counts_for(s.config);
  return s;
}

std::string format_summary(const ModelSummary& s) {
  const auto& c = s.config;
  std::string out;
  out += fmt::format("{} ({})\n", c.name, s.source);
  out += fmt::format("input      {} channels x {} samples ({} s at {} Hz): {}\n", c.num_channels(), c.window_samples,
                     c.window_seconds(), c.sample_rate, fmt::join(c.channels, " "));
  out += fmt::format("output     {}: {}\n", count_of(c.num_rois(), "ROI"), fmt::join(c.rois, " "));
  out += fmt::format("temporal   dim {}, {}, {}, {} of {}\n", c.embed_dim, count_of(c.temporal.depth, "block"),
                     count_of(c.temporal.heads, "head"), count_of(c.num_patches(), "patch", "patches"),
                     count_of(c.patch_size, "sample"));
  std::vector<int64_t> windows;
  for (int64_t n = 0; n < c.spectral.scales; ++n) windows.push_back(c.spectral.base_window << n);
  out += fmt::format("spectral   windows {} samples, {}, {}, {} per channel\n", fmt::join(windows, "/"),
                     count_of(c.spectral.depth, "layer"), count_of(c.spectral.heads, "head"),
                     count_of(c.spectral_tokens(), "token"));
  out += fmt::format("parameters temporal {}, spectral {}, head {}, total {}\n", s.parameters.temporal,
                     s.parameters.spectral, s.parameters.head, s.parameters.total());
  if (s.metadata_json != "{}") {
    std::string text = s.metadata_json;
    try {
      auto metadata = nlohmann::json::parse(s.metadata_json);
      shorten_name_lists(metadata);
      text = metadata.dump(2);
    } catch (const nlohmann::json::exception&) {
      // Not JSON (written by another tool): shown as it is.
    }
    out += "metadata   " + text + "\n";
  }
  return out;
}

}  // namespace neurobolt
