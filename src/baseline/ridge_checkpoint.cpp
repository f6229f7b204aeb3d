// The ridge baseline's checkpoint (layout in ridge.hpp) and its Predictor.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.hpp"
#include "io/h5.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/ridge.hpp"

namespace neurobolt {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "neurobolt-checkpoint";  // shared with the network's checkpoints
constexpr int64_t kFormatVersion = 1;
constexpr const char* kArch = "ridge";
// Bounds that a genuine config never reaches; they keep a crafted file from asking for a huge
// allocation before anything is read.
constexpr int64_t kMaxChannels = 4096;
constexpr int64_t kMaxRois = 100000;
constexpr int64_t kMaxBands = 256;
constexpr int64_t kMaxWindowSamples = 10000000;
constexpr int64_t kMaxWeights = int64_t{1} << 27;  // F x R doubles: 1 GiB

struct Fields {
  std::string path;
  [[noreturn]] void fail(const std::string& field, const std::string& expected, const std::string& found) const {
    throw FormatError(fmt::format("'{}': {}: expected {}, found {}", path, field, expected, found));
  }
};

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

std::string json_excerpt(const json& j) {
  std::string text = j.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

std::vector<std::string> string_list(const json& config, const char* key, int64_t max, const Fields& where) {
  const std::string field = fmt::format("config '{}'", key);
  if (!config.contains(key)) where.fail(field, "a list of names", "no such key");
  const json& list = config.at(key);
  if (!list.is_array() || list.empty() || static_cast<int64_t>(list.size()) > max)
    where.fail(field, fmt::format("a list of 1 to {} names", max), json_excerpt(list));
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& item : list) {
    if (!item.is_string() || item.get<std::string>().empty()) where.fail(field, "non-empty strings", json_excerpt(item));
    if (!seen.insert(item.get<std::string>()).second)
      where.fail(field, "distinct names", fmt::format("'{}' twice", item.get<std::string>()));
    out.push_back(item.get<std::string>());
  }
  return out;
}

int64_t integer(const json& config, const char* key, int64_t min, int64_t max, const Fields& where) {
  const std::string field = fmt::format("config '{}'", key);
  if (!config.contains(key)) where.fail(field, "an integer", "no such key");
  const json& v = config.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max)
    where.fail(field, fmt::format("an integer from {} to {}", min, max), json_excerpt(v));
  return v.get<int64_t>();
}

RidgeCheckpoint parse_config(const std::string& text, const Fields& where) {
  json config;
  try {
    config = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    where.fail("attribute 'config'", "JSON", fmt::format("a parse error ({})", e.what()));
  }
  if (!config.is_object()) where.fail("attribute 'config'", "a JSON object", json_excerpt(config));
  static const std::set<std::string> known{"arch", "channels", "rois", "sample_rate", "window_samples", "bands", "sub_windows"};
  for (const auto& item : config.items()) {
    if (!known.count(item.key()))
      throw FormatError(fmt::format("'{}': attribute 'config': unknown key '{}' (known: {})", where.path, item.key(),
                                    fmt::join(known, ", ")));
  }
  if (!config.contains("arch") || config.at("arch") != kArch)
    where.fail("config 'arch'", "\"ridge\"", config.contains("arch") ? json_excerpt(config.at("arch")) : "no such key");
  RidgeCheckpoint c;
  c.channels = string_list(config, "channels", kMaxChannels, where);
  c.rois = string_list(config, "rois", kMaxRois, where);
  if (!config.contains("sample_rate") || !config.at("sample_rate").is_number() ||
      !(config.at("sample_rate").get<double>() > 0.0) || !(config.at("sample_rate").get<double>() <= 1e6))
    where.fail("config 'sample_rate'", "a number of Hz in (0, 1e6]",
               config.contains("sample_rate") ? json_excerpt(config.at("sample_rate")) : "no such key");
  c.sample_rate = config.at("sample_rate").get<double>();
  c.window_samples = integer(config, "window_samples", 1, kMaxWindowSamples, where);
  c.features.sub_windows = integer(config, "sub_windows", 1, kMaxWindowSamples, where);
  if (!config.contains("bands")) where.fail("config 'bands'", "a list of [low, high] pairs", "no such key");
  const json& bands = config.at("bands");
  if (!bands.is_array() || bands.empty() || static_cast<int64_t>(bands.size()) > kMaxBands)
    where.fail("config 'bands'", fmt::format("a list of 1 to {} [low, high] pairs", kMaxBands), json_excerpt(bands));
  c.features.bands.clear();
  for (std::size_t i = 0; i < bands.size(); ++i) {
    const json& b = bands[i];
    if (!b.is_array() || b.size() != 2 || !b[0].is_number() || !b[1].is_number())
      where.fail(fmt::format("config 'bands[{}]'", i), "a [low, high] pair of numbers", json_excerpt(b));
    c.features.bands.emplace_back(b[0].get<double>(), b[1].get<double>());
  }
  try {
    validate(c.features, c.sample_rate, c.window_samples);
  } catch (const ConfigError& e) {
    throw FormatError(fmt::format("'{}': attribute 'config': {}", where.path, e.message()));
  }
  return c;
}

// Reads a float dataset of exactly `shape` (checked before allocating) and checks its values.
std::vector<double> read_exact(const h5::File& file, const std::string& name, const std::vector<int64_t>& shape,
                               const Fields& where, bool positive) {
  if (!file.exists(name)) where.fail(fmt::format("dataset '{}'", name), fmt::format("float64 {}", shape_text(shape)), "no such dataset");
  const auto info = file.info(name);
  if (info.type != h5::Type::f64 && info.type != h5::Type::f32)
    where.fail(fmt::format("dataset '{}'", name), "float64", h5::type_name(info.type));
  if (info.shape != shape)
    where.fail(fmt::format("dataset '{}'", name), fmt::format("shape {} (from the config)", shape_text(shape)),
               shape_text(info.shape));
  std::vector<double> values(static_cast<std::size_t>(info.numel()));
  file.read(name, h5::Type::f64, values.data());
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]) || (positive && !(values[i] > 0.0)))
      where.fail(fmt::format("dataset '{}' element {}", name, i), positive ? "a positive finite number" : "a finite number",
                 fmt::format("{}", values[i]));
  }
  return values;
}

class RidgePredictor final : public Predictor {
 public:
  explicit RidgePredictor(RidgeCheckpoint checkpoint)
      : checkpoint_(std::move(checkpoint)),
        features_(checkpoint_.features, static_cast<int64_t>(checkpoint_.channels.size()), checkpoint_.window_samples,
                  checkpoint_.sample_rate) {}

  std::string arch() const override { return kArch; }
  const std::vector<std::string>& channels() const override { return checkpoint_.channels; }
  const std::vector<std::string>& rois() const override { return checkpoint_.rois; }
  double sample_rate() const override { return checkpoint_.sample_rate; }
  int64_t window_samples() const override { return checkpoint_.window_samples; }
  const std::string& metadata_json() const override { return checkpoint_.metadata_json; }

  void predict(const float* windows, int64_t batch, float* out) override {
    // Bounded scratch space whatever the batch size.
    constexpr int64_t kStep = 64;
    const int64_t F = checkpoint_.model.num_features, R = checkpoint_.model.num_rois;
    const int64_t window = static_cast<int64_t>(checkpoint_.channels.size()) * checkpoint_.window_samples;
    for (int64_t first = 0; first < batch; first += kStep) {
      const int64_t n = std::min(kStep, batch - first);
      feature_buffer_.resize(static_cast<std::size_t>(n * F));
      output_buffer_.resize(static_cast<std::size_t>(n * R));
      features_.compute(windows + first * window, n, feature_buffer_.data());
      checkpoint_.model.predict(feature_buffer_.data(), n, output_buffer_.data());
      for (int64_t i = 0; i < n * R; ++i) out[first * R + i] = static_cast<float>(output_buffer_[static_cast<std::size_t>(i)]);
    }
  }

 private:
  RidgeCheckpoint checkpoint_;
  BandPowerFeatures features_;
  std::vector<double> feature_buffer_, output_buffer_;
};

}  // namespace

std::string RidgeCheckpoint::config_json() const {
  json bands = json::array();
  for (const auto& [low, high] : features.bands) bands.push_back({low, high});
  return json{{"arch", kArch},
              {"channels", channels},
              {"rois", rois},
              {"sample_rate", sample_rate},
              {"window_samples", window_samples},
              {"bands", bands},
              {"sub_windows", features.sub_windows}}
      .dump();
}

void save_ridge_checkpoint(const RidgeCheckpoint& c, const std::string& path, bool force) {
  validate(c.features, c.sample_rate, c.window_samples);
  const auto C = static_cast<int64_t>(c.channels.size());
  const auto R = static_cast<int64_t>(c.rois.size());
  const int64_t F = C * static_cast<int64_t>(c.features.bands.size()) * c.features.sub_windows;
  const auto& m = c.model;
  auto check = [&](const char* field, int64_t expected, std::size_t found) {
    if (static_cast<int64_t>(found) != expected)
      throw ConfigError(fmt::format("ridge checkpoint '{}': '{}' must hold {} values (F = {} channels x {} bands x {} "
                                    "sub-windows, R = {} ROIs), found {}",
                                    path, field, expected, C, c.features.bands.size(), c.features.sub_windows, R, found));
  };
  if (C < 1 || R < 1) throw ConfigError(fmt::format("ridge checkpoint '{}': expected channels and ROIs, found {} and {}", path, C, R));
  check("num_features", F, static_cast<std::size_t>(m.num_features));
  check("num_rois", R, static_cast<std::size_t>(m.num_rois));
  check("feature_mean", F, m.feature_mean.size());
  check("feature_std", F, m.feature_std.size());
  check("weights", F * R, m.weights.size());
  check("intercept", R, m.intercept.size());
  check("alpha", R, m.alpha.size());
  json metadata = json::parse(c.metadata_json, nullptr, /*allow_exceptions=*/false);
  if (!metadata.is_object())
    throw ConfigError(fmt::format("ridge checkpoint '{}': the metadata must be a JSON object", path));

  detail::AtomicOutput output(path, force);
  {
    auto file = h5::File::create(output.temp_path().string());
    file.set_attribute("/", "format", std::string(kFormat));
    file.set_attribute("/", "format_version", kFormatVersion);
    file.set_attribute("/", "arch", std::string(kArch));
    file.set_attribute("/", "config", c.config_json());
    file.set_attribute("/", "metadata", metadata.dump(2));
    file.create_group("/ridge");
    file.write("/ridge/feature_mean", h5::Type::f64, {F}, m.feature_mean.data());
    file.write("/ridge/feature_std", h5::Type::f64, {F}, m.feature_std.data());
    file.write("/ridge/weights", h5::Type::f64, {F, R}, m.weights.data());
    file.write("/ridge/intercept", h5::Type::f64, {R}, m.intercept.data());
    file.write("/ridge/alpha", h5::Type::f64, {R}, m.alpha.data());
    file.close();
  }
  output.commit();
}

RidgeCheckpoint read_ridge_checkpoint(const std::string& path) {
  const Fields where{path};
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IoError(fmt::format("'{}': no such file", path));
  h5::File file = [&] {
    try {
      return h5::File::open_read(path);
    } catch (const IoError& e) {
      // The file is there and readable, so HDF5 refusing it means its content is damaged.
      if (std::ifstream(path, std::ios::binary).good())
        throw FormatError(fmt::format("'{}': corrupt or truncated HDF5 file ({})", path, e.message()));
      throw;
    }
  }();
  if (!file.has_attribute("/", "format")) where.fail("root attribute 'format'", fmt::format("'{}'", kFormat), "none");
  const std::string format = file.string_attribute("/", "format");
  if (format != kFormat) where.fail("root attribute 'format'", fmt::format("'{}'", kFormat), fmt::format("'{}'", format));
  const int64_t version = file.int_attribute("/", "format_version");
  if (version != kFormatVersion)
    where.fail("root attribute 'format_version'", std::to_string(kFormatVersion), std::to_string(version));
  const std::string arch = file.has_attribute("/", "arch") ? file.string_attribute("/", "arch") : "neurobolt";
  if (arch != kArch) where.fail("root attribute 'arch'", "'ridge'", fmt::format("'{}'", arch));

  RidgeCheckpoint c = parse_config(file.string_attribute("/", "config"), where);
  c.metadata_json = file.has_attribute("/", "metadata") ? file.string_attribute("/", "metadata") : "{}";
  const json metadata = json::parse(c.metadata_json, nullptr, /*allow_exceptions=*/false);
  if (!metadata.is_object()) where.fail("attribute 'metadata'", "a JSON object", json_excerpt(metadata));

  const auto C = static_cast<int64_t>(c.channels.size());
  const auto R = static_cast<int64_t>(c.rois.size());
  const auto B = static_cast<int64_t>(c.features.bands.size());
  const int64_t F = C * B * c.features.sub_windows;  // <= 4096 * 256 * 1.25e6: no overflow
  if (F > kMaxWeights || F * R > kMaxWeights)
    where.fail("attribute 'config'", fmt::format("at most {} weights", kMaxWeights),
               fmt::format("{} features x {} ROIs", F, R));
  auto& m = c.model;
  m.num_features = F;
  m.num_rois = R;
  m.feature_mean = read_exact(file, "/ridge/feature_mean", {F}, where, false);
  m.feature_std = read_exact(file, "/ridge/feature_std", {F}, where, true);
  m.weights = read_exact(file, "/ridge/weights", {F, R}, where, false);
  m.intercept = read_exact(file, "/ridge/intercept", {R}, where, false);
  m.alpha = read_exact(file, "/ridge/alpha", {R}, where, true);
  return c;
}

std::unique_ptr<Predictor> load_ridge_predictor(const std::string& path) {
  try {
    return std::make_unique<RidgePredictor>(read_ridge_checkpoint(path));
  } catch (Error& e) {
    e.add_context(fmt::format("loading ridge checkpoint '{}'", path));
    throw;
  }
}

}  // namespace neurobolt
