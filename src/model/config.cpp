#include "neurobolt/config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/json_reader.hpp"
#include "model/builtin_configs.hpp"
#include "neurobolt/channels.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/montage.hpp"

namespace neurobolt {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

class Checker {
 public:
  explicit Checker(std::string source) : source_(std::move(source)) {}
  void require(bool ok, const std::string& key, const std::string& expected, const std::string& found) const {
    if (!ok) throw ConfigError(fmt::format("{}: key '{}': expected {}, found {}", source_, key, expected, found));
  }
  void positive(int64_t v, const std::string& key) const { require(v > 0, key, "a positive integer", fmt::format("{}", v)); }
  void positive(double v, const std::string& key) const { require(v > 0, key, "a positive number", fmt::format("{}", v)); }
  void probability(double v, const std::string& key) const {
    require(v >= 0.0 && v < 1.0, key, "a dropout probability in [0, 1)", fmt::format("{}", v));
  }

 private:
  std::string source_;
};

// Upper bounds on the sizes a config declares, checked before any product of them is formed or
// anything is allocated: each far above the reference model's (shown in parentheses) and below
// what would overflow or exhaust memory. A config from a file (or a checkpoint) is untrusted.
constexpr int64_t kMaxWindowSamples = 1 << 24;  // window_samples, patch_size, base_window (3200)
constexpr int64_t kMaxWidth = 1 << 16;          // embed_dim, conv_channels, dim_head (200, 8, 25)
constexpr int64_t kMaxDepth = 1024;             // temporal.depth, spectral.depth (12, 4)
constexpr int64_t kMaxHeads = 1024;             // temporal.heads, spectral.heads (10, 8)
constexpr int64_t kMaxTable = 1 << 20;          // max_patches, vocabulary_rows, max_positions (16, 129, 1000)
constexpr double kMaxMultiplier = 64;           // temporal.mlp_ratio, spectral.ff_mult (4, 4)
constexpr int64_t kMaxRois = 1 << 20;           // outputs (1; an atlas has at most thousands)
constexpr double kMaxParameters = 1 << 30;      // about 4 GiB of float32 weights (the reference: 5.4 M)

// Parameters and buffers a config builds, over-estimated, to refuse a model that cannot fit before
// LibTorch tries to allocate it.
double estimated_parameters(const ModelConfig& c) {
  const double d = static_cast<double>(c.embed_dim);
  const auto& t = c.temporal;
  const auto& s = c.spectral;
  const double temporal_block = d * d * (4.0 + 2.0 * t.mlp_ratio) + 16.0 * d;
  const double temporal = static_cast<double>(t.depth) * temporal_block +
                          static_cast<double>(t.max_patches + t.vocabulary_rows + 1) * d +
                          static_cast<double>(t.conv_channels) * static_cast<double>(t.conv_channels) * 8.0;
  const double inner = static_cast<double>(s.heads) * static_cast<double>(s.dim_head);
  const double spectral_layer = 4.0 * d * inner + 2.0 * d * d * static_cast<double>(s.ff_mult) + 16.0 * d;
  double windows = 0;
  for (int64_t n = 0; n < s.scales; ++n) {
    const double window = static_cast<double>(s.base_window << n);
    const double frames = static_cast<double>(c.window_samples) / window;
    windows += (window / 2 + 1) * d + frames * static_cast<double>(c.spectral_tokens()) + d;
  }
  const double spectral = static_cast<double>(s.depth) * spectral_layer + windows +
                          static_cast<double>(s.max_positions) * d +
                          static_cast<double>(c.num_channels() + 1) * d;
  const double head = (d + 1) * static_cast<double>(c.num_rois());
  return temporal + spectral + head;
}

void check_bounds(const ModelConfig& c, const Checker& check) {
  auto at_most = [&](int64_t v, int64_t bound, const char* key) {
    check.require(v <= bound, key, fmt::format("at most {}", bound), fmt::format("{}", v));
  };
  at_most(c.window_samples, kMaxWindowSamples, "window_samples");
  at_most(c.patch_size, kMaxWindowSamples, "patch_size");
  at_most(c.embed_dim, kMaxWidth, "embed_dim");
  at_most(c.temporal.depth, kMaxDepth, "temporal.depth");
  at_most(c.temporal.heads, kMaxHeads, "temporal.heads");
  check.require(c.temporal.mlp_ratio <= kMaxMultiplier, "temporal.mlp_ratio", fmt::format("at most {:g}", kMaxMultiplier),
                fmt::format("{:g}", c.temporal.mlp_ratio));
  at_most(c.temporal.conv_channels, kMaxWidth, "temporal.conv_channels");
  at_most(c.temporal.conv_groups, kMaxWidth, "temporal.conv_groups");
  at_most(c.temporal.max_patches, kMaxTable, "temporal.max_patches");
  at_most(c.temporal.vocabulary_rows, kMaxTable, "temporal.vocabulary_rows");
  at_most(c.spectral.base_window, kMaxWindowSamples, "spectral.base_window");
  at_most(c.spectral.depth, kMaxDepth, "spectral.depth");
  at_most(c.spectral.heads, kMaxHeads, "spectral.heads");
  at_most(c.spectral.dim_head, kMaxWidth, "spectral.dim_head");
  at_most(c.spectral.ff_mult, static_cast<int64_t>(kMaxMultiplier), "spectral.ff_mult");
  at_most(c.spectral.max_positions, kMaxTable, "spectral.max_positions");
  check.require(c.num_rois() <= kMaxRois, "rois", fmt::format("at most {} ROIs", kMaxRois), fmt::format("{}", c.num_rois()));
}

void validate_config(const ModelConfig& c, const std::string& source) {
  const Checker check(source);
  check.require(!c.name.empty(), "name", "a non-empty string", "\"\"");
  check_bounds(c, check);
  check.positive(c.sample_rate, "sample_rate");
  check.positive(c.window_samples, "window_samples");
  check.positive(c.patch_size, "patch_size");
  check.positive(c.embed_dim, "embed_dim");
  check.positive(c.input_scale, "input_scale");
  check.positive(c.init_std, "init_std");
  check.require(c.head_init_scale >= 0, "head_init_scale", "a number >= 0", fmt::format("{}", c.head_init_scale));
  check.require(c.window_samples % c.patch_size == 0, "window_samples",
                fmt::format("a multiple of patch_size ({})", c.patch_size), fmt::format("{}", c.window_samples));

  const auto& t = c.temporal;
  check.positive(t.depth, "temporal.depth");
  check.positive(t.heads, "temporal.heads");
  check.positive(t.mlp_ratio, "temporal.mlp_ratio");
  check.positive(t.conv_channels, "temporal.conv_channels");
  check.positive(t.conv_groups, "temporal.conv_groups");
  check.positive(t.max_patches, "temporal.max_patches");
  check.require(t.vocabulary_rows >= 2, "temporal.vocabulary_rows", "an integer >= 2", fmt::format("{}", t.vocabulary_rows));
  check.require(t.layer_scale >= 0, "temporal.layer_scale", "a number >= 0 (0 disables layer scale)",
                fmt::format("{}", t.layer_scale));
  check.probability(t.drop, "temporal.drop");
  check.probability(t.attn_drop, "temporal.attn_drop");
  check.probability(t.drop_path, "temporal.drop_path");
  check.require(c.num_patches() <= t.max_patches, "temporal.max_patches",
                fmt::format("at least window_samples / patch_size = {}", c.num_patches()), fmt::format("{}", t.max_patches));
  check.require(t.conv_channels % t.conv_groups == 0, "temporal.conv_groups",
                fmt::format("a divisor of temporal.conv_channels ({})", t.conv_channels), fmt::format("{}", t.conv_groups));
  // The first temporal convolution (kernel 15, stride 8, padding 7) turns a patch into
  // conv_steps time steps of conv_channels features: that is the token width.
  const int64_t conv_steps = (c.patch_size + 2 * 7 - 15) / 8 + 1;
  check.require(c.embed_dim == t.conv_channels * conv_steps, "embed_dim",
                fmt::format("temporal.conv_channels x conv time steps = {} x {} = {}", t.conv_channels, conv_steps,
                            t.conv_channels * conv_steps),
                fmt::format("{}", c.embed_dim));
  check.require(c.embed_dim % t.heads == 0, "temporal.heads", fmt::format("a divisor of embed_dim ({})", c.embed_dim),
                fmt::format("{}", t.heads));
  check.require(static_cast<int64_t>(c.embed_dim * t.mlp_ratio) > 0, "temporal.mlp_ratio", "a hidden width >= 1",
                fmt::format("{}", t.mlp_ratio));

  const auto& s = c.spectral;
  check.positive(s.base_window, "spectral.base_window");
  check.require(s.scales >= 1 && s.scales <= 16, "spectral.scales", "an integer in [1, 16]", fmt::format("{}", s.scales));
  check.positive(s.depth, "spectral.depth");
  check.positive(s.heads, "spectral.heads");
  check.positive(s.dim_head, "spectral.dim_head");
  check.positive(s.ff_mult, "spectral.ff_mult");
  check.positive(s.max_positions, "spectral.max_positions");
  check.probability(s.attn_out_drop, "spectral.attn_out_drop");
  check.probability(s.ff_drop, "spectral.ff_drop");
  check.probability(s.pe_drop, "spectral.pe_drop");
  check.require(s.heads * s.dim_head == c.embed_dim, "spectral.dim_head",
                fmt::format("embed_dim / spectral.heads = {} / {}", c.embed_dim, s.heads), fmt::format("{}", s.dim_head));
  const int64_t largest = s.base_window << (s.scales - 1);
  check.require(c.window_samples % largest == 0, "spectral.scales",
                fmt::format("window_samples ({}) divisible by the largest window base_window * 2^(scales-1) = {}",
                            c.window_samples, largest),
                fmt::format("{}", s.scales));
  check.require(c.spectral_tokens() <= s.max_positions, "spectral.max_positions",
                fmt::format("at least window_samples / base_window = {}", c.spectral_tokens()),
                fmt::format("{}", s.max_positions));

  check.require(!c.channels.empty(), "channels", "a non-empty list of electrode names", "an empty list");
  check.require(t.positions == "labram" || t.positions == "channels", "temporal.positions", "\"labram\" or \"channels\"",
                fmt::format("\"{}\"", t.positions));
  const bool labram = t.positions == "labram";
  if (!labram) {
    check.require(t.vocabulary_rows == c.num_channels() + 1, "temporal.vocabulary_rows",
                  fmt::format("channels + 1 = {} (temporal.positions is \"channels\")", c.num_channels() + 1),
                  fmt::format("{}", t.vocabulary_rows));
  }
  std::set<std::string> seen;
  for (const auto& ch : c.channels) {
    if (labram) {
      auto index = position_index(ch);
      check.require(index.has_value(), "channels",
                    "names of LaBraM's electrode vocabulary (see neurobolt info --channels; other 10-05 electrodes "
                    "need temporal.positions \"channels\")",
                    fmt::format("unknown channel '{}'", ch));
      check.require(*index + 1 < t.vocabulary_rows, "channels",
                    fmt::format("channels with a position-embedding row below temporal.vocabulary_rows ({})",
                                t.vocabulary_rows),
                    fmt::format("'{}' at row {}", ch, *index + 1));
    } else {
      check.require(standard_montage(StandardMontage::standard_1005).find(ch).has_value(), "channels",
                    "electrodes of the 10-05 system", fmt::format("unknown channel '{}'", ch));
    }
    check.require(seen.insert(channel_key(ch)).second, "channels", "unique names",
                  fmt::format("'{}' twice", ch));
  }
  check.require(!c.rois.empty(), "rois", "at least one ROI", "none");
  std::set<std::string> roi_seen;
  for (const auto& roi : c.rois) {
    check.require(!roi.empty(), "rois", "non-empty names", "an empty name");
    check.require(roi_seen.insert(roi).second, "rois", "unique names", fmt::format("'{}' twice", roi));
  }
  const double parameters = estimated_parameters(c);
  check.require(parameters <= kMaxParameters, "embed_dim, depth, heads, widths and table sizes together",
                fmt::format("a model of at most {:.3g} parameters", kMaxParameters),
                fmt::format("about {:.3g} parameters", parameters));
}

}  // namespace

std::vector<std::string> default_roi_names(int64_t n) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < n; ++i) names.push_back(fmt::format("roi{}", i));
  return names;
}

void ModelConfig::validate() const { validate_config(*this, name.empty() ? "<config>" : "config '" + name + "'"); }

ModelConfig ModelConfig::from_json(const std::string& json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw ConfigError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  ModelConfig c;
  detail::JsonReader top(root, "", source);
  top.text("name", c.name);
  top.number("sample_rate", c.sample_rate);
  top.number("window_samples", c.window_samples);
  top.number("patch_size", c.patch_size);
  top.number("embed_dim", c.embed_dim);
  top.number("input_scale", c.input_scale);
  top.number("init_std", c.init_std);
  top.number("head_init_scale", c.head_init_scale);
  top.texts("channels", c.channels);
  top.texts("rois", c.rois);
  int64_t num_rois = -1;
  top.number("num_rois", num_rois);
  if (num_rois != -1) {
    if (num_rois < 1 || num_rois > kMaxRois) {
      top.fail("num_rois", fmt::format("an integer from 1 to {}", kMaxRois), fmt::format("{}", num_rois));
    }
    if (!top.has("rois")) {
      c.rois = default_roi_names(num_rois);
    } else if (static_cast<int64_t>(c.rois.size()) != num_rois) {
      top.fail("num_rois", fmt::format("the length of 'rois' ({})", c.rois.size()), fmt::format("{}", num_rois));
    }
  }
  if (const json* t = top.find("temporal")) {
    detail::JsonReader r(*t, "temporal", source);
    auto& o = c.temporal;
    r.number("depth", o.depth);
    r.number("heads", o.heads);
    r.number("mlp_ratio", o.mlp_ratio);
    r.number("conv_channels", o.conv_channels);
    r.number("conv_groups", o.conv_groups);
    r.flag("qk_norm", o.qk_norm);
    r.flag("qkv_bias", o.qkv_bias);
    r.number("layer_scale", o.layer_scale);
    r.number("drop", o.drop);
    r.number("attn_drop", o.attn_drop);
    r.number("drop_path", o.drop_path);
    r.number("max_patches", o.max_patches);
    r.number("vocabulary_rows", o.vocabulary_rows);
    r.text("positions", o.positions);
    r.finish();
  }
  if (const json* s = top.find("spectral")) {
    detail::JsonReader r(*s, "spectral", source);
    auto& o = c.spectral;
    r.number("base_window", o.base_window);
    r.number("scales", o.scales);
    r.number("depth", o.depth);
    r.number("heads", o.heads);
    r.number("dim_head", o.dim_head);
    r.number("ff_mult", o.ff_mult);
    r.number("attn_out_drop", o.attn_out_drop);
    r.number("ff_drop", o.ff_drop);
    r.number("pe_drop", o.pe_drop);
    r.number("max_positions", o.max_positions);
    r.finish();
  }
  top.finish();
  validate_config(c, source);
  return c;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open config file '{}'", path));
  constexpr std::streamoff kMaxConfigBytes = 64 << 20;  // a config with a million ROI names is ~20 MB
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size > kMaxConfigBytes) {
    throw FormatError(fmt::format("'{}': file size: expected at most {} MiB for a model config JSON, found {} bytes",
                                  path, kMaxConfigBytes >> 20, size));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  // A file the checkpoint reader did not take: say what it is rather than how JSON fails on it.
  static constexpr char kHdf5Signature[] = "\x89HDF\r\n\x1a\n";
  if (text.compare(0, 8, kHdf5Signature, 8) == 0) {
    throw FormatError(fmt::format("'{}': an HDF5 file that is not a readable neurobolt checkpoint (truncated, or "
                                  "written by another program); expected a neurobolt checkpoint or a model config "
                                  "JSON",
                                  path));
  }
  if (text.find('\0') != std::string::npos) {
    throw FormatError(fmt::format("'{}': a binary file; expected a neurobolt checkpoint (.h5) or a model config JSON",
                                  path));
  }
  return from_json(text, path);
}

std::string ModelConfig::to_json(int indent) const {
  ordered_json j;
  j["name"] = name;
  j["sample_rate"] = sample_rate;
  j["window_samples"] = window_samples;
  j["patch_size"] = patch_size;
  j["embed_dim"] = embed_dim;
  j["input_scale"] = input_scale;
  j["init_std"] = init_std;
  j["head_init_scale"] = head_init_scale;
  j["channels"] = channels;
  j["rois"] = rois;
  j["temporal"] = {{"depth", temporal.depth},
                   {"heads", temporal.heads},
                   {"mlp_ratio", temporal.mlp_ratio},
                   {"conv_channels", temporal.conv_channels},
                   {"conv_groups", temporal.conv_groups},
                   {"qk_norm", temporal.qk_norm},
                   {"qkv_bias", temporal.qkv_bias},
                   {"layer_scale", temporal.layer_scale},
                   {"drop", temporal.drop},
                   {"attn_drop", temporal.attn_drop},
                   {"drop_path", temporal.drop_path},
                   {"max_patches", temporal.max_patches},
                   {"vocabulary_rows", temporal.vocabulary_rows},
                   {"positions", temporal.positions}};
  j["spectral"] = {{"base_window", spectral.base_window},
                   {"scales", spectral.scales},
                   {"depth", spectral.depth},
                   {"heads", spectral.heads},
                   {"dim_head", spectral.dim_head},
                   {"ff_mult", spectral.ff_mult},
                   {"attn_out_drop", spectral.attn_out_drop},
                   {"ff_drop", spectral.ff_drop},
                   {"pe_drop", spectral.pe_drop},
                   {"max_positions", spectral.max_positions}};
  return j.dump(indent);
}

ForwardFlops forward_flops(const ModelConfig& c) {
  const auto C = static_cast<double>(c.num_channels());
  const auto d = static_cast<double>(c.embed_dim);
  ForwardFlops f;
  // Temporal: three convolutions per patch (stride 8, kernel 15, then 3 and 3), then the blocks
  // over the class token and every channel x patch.
  const double patches = C * static_cast<double>(c.num_patches());
  const auto conv = static_cast<double>(c.temporal.conv_channels);
  const double positions = static_cast<double>((c.patch_size + 2 * 7 - 15) / 8 + 1);
  f.temporal_conv = patches * 2.0 * positions * (conv * 15.0 + 2.0 * conv * conv * 3.0);
  const double tokens = patches + 1.0;
  const double hidden = d * c.temporal.mlp_ratio;
  f.temporal_blocks = static_cast<double>(c.temporal.depth) *
                      (2.0 * tokens * d * (3.0 * d + d + 2.0 * hidden) + 4.0 * tokens * tokens * d);
  f.temporal = f.temporal_conv + f.temporal_blocks;
  // Spectral: per scale the frequency projection and the frame projection, then linear attention
  // (k^T v and q (k^T v) per head) and the feed-forward over channels x tokens.
  const auto per_channel = static_cast<double>(c.spectral_tokens());
  for (int64_t n = 0; n < c.spectral.scales; ++n) {
    const auto window = static_cast<double>(c.spectral.base_window << n);
    const double frames = static_cast<double>(c.window_samples / (c.spectral.base_window << n));
    f.spectral_front += 2.0 * C * frames * (std::floor(window / 2) + 1) * d + 2.0 * C * d * frames * per_channel;
  }
  const double s_tokens = C * per_channel;
  const auto heads = static_cast<double>(c.spectral.heads);
  const auto dim_head = static_cast<double>(c.spectral.dim_head);
  const double inner = heads * dim_head;
  const double ff = d * static_cast<double>(c.spectral.ff_mult);
  f.spectral_blocks = static_cast<double>(c.spectral.depth) *
                      (2.0 * s_tokens * d * 3.0 * inner + 2.0 * s_tokens * inner * d +
                       4.0 * s_tokens * heads * dim_head * dim_head + 4.0 * s_tokens * d * ff);
  f.spectral = f.spectral_front + f.spectral_blocks;
  f.head = 2.0 * d * static_cast<double>(c.num_rois());
  return f;
}

bool ModelConfig::operator==(const ModelConfig& o) const {
  // The JSON form holds every field, so it is the complete comparison.
  return to_json(-1) == o.to_json(-1);
}

std::vector<std::string> builtin_config_names() {
  std::vector<std::string> names;
  for (const auto& entry : detail::builtin_config_texts()) names.push_back(entry.first);
  return names;
}

ModelConfig builtin_config(const std::string& name) {
  for (const auto& [builtin_name, text] : detail::builtin_config_texts()) {
    if (builtin_name == name) return ModelConfig::from_json(text, "built-in config '" + name + "'");
  }
  throw ConfigError(fmt::format("unknown built-in config '{}' (known: {})", name,
                                fmt::join(builtin_config_names(), ", ")));
}

ModelConfig load_config(const std::string& path_or_name) {
  std::ifstream probe(path_or_name);
  if (probe.good()) return ModelConfig::from_file(path_or_name);
  const auto names = builtin_config_names();
  if (std::find(names.begin(), names.end(), path_or_name) != names.end()) return builtin_config(path_or_name);
  throw IoError(fmt::format("config '{}' is neither a readable file nor a built-in config ({})", path_or_name,
                            fmt::join(names, ", ")));
}

ModelConfig with_overrides(const ModelConfig& base, const std::vector<std::string>& assignments) {
  if (assignments.empty()) return base;
  json root = json::parse(base.to_json(-1));
  for (const auto& assignment : assignments) {
    const auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError(fmt::format("config override '{}': expected KEY=VALUE (e.g. temporal.depth=4)", assignment));
    }
    const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
    json* node = &root;
    std::size_t begin = 0;
    while (true) {
      const auto dot = key.find('.', begin);
      const std::string part = key.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin);
      if (!node->is_object() || !node->contains(part)) {
        throw ConfigError(fmt::format("config override '{}': unknown key '{}' (keys: neurobolt info CONFIG --json)",
                                      assignment, key));
      }
      node = &(*node)[part];
      if (dot == std::string::npos) break;
      begin = dot + 1;
    }
    json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) value = text;  // a bare word: a string
    const bool number_ok = node->is_number() && value.is_number();
    if (!number_ok && value.type() != node->type()) {
      throw ConfigError(fmt::format("config override '{}': '{}' takes a {}, found a {}", assignment, key,
                                    node->type_name(), value.type_name()));
    }
    *node = value;
  }
  return ModelConfig::from_json(root.dump(), "config overrides");
}

}  // namespace neurobolt
