#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "neurobolt/channels.hpp"
#include "neurobolt/config.hpp"
#include "neurobolt/error.hpp"
#include "test_support.hpp"

using namespace neurobolt;

TEST_CASE("built-in configs are the JSON files in models/", "[config]") {
  for (const auto& name : builtin_config_names()) {
    INFO(name);
    auto from_file = ModelConfig::from_file((test::source_dir() / "models" / (name + ".json")).string());
    CHECK(builtin_config(name) == from_file);
  }
  auto names = builtin_config_names();
  CHECK(std::find(names.begin(), names.end(), "neurobolt-base") != names.end());
  CHECK(std::find(names.begin(), names.end(), "neurobolt-tiny") != names.end());
}

TEST_CASE("the base config is the paper's configuration", "[config]") {
  auto c = builtin_config("neurobolt-base");
  CHECK(c.sample_rate == 200);
  CHECK(c.window_samples == 3200);
  CHECK(c.window_seconds() == 16.0);
  CHECK(c.embed_dim == 200);
  CHECK(c.temporal.depth == 12);
  CHECK(c.temporal.heads == 10);
  CHECK(c.spectral.depth == 4);
  CHECK(c.spectral.heads == 8);
  CHECK(c.spectral.scales == 4);
  CHECK(c.spectral_tokens() == 32);
  CHECK(c.num_patches() == 16);
  CHECK(c.channels == neurobolt_paper_channels());
}

TEST_CASE("configs round-trip through JSON", "[config]") {
  auto c = builtin_config("neurobolt-tiny");
  c.rois = {"V1", "thalamus"};
  c.temporal.drop_path = 0.2;
  auto back = ModelConfig::from_json(c.to_json(), "roundtrip");
  CHECK(back == c);
  CHECK(back.num_rois() == 2);
}

TEST_CASE("num_rois gives default names and must agree with rois", "[config]") {
  auto j = builtin_config("neurobolt-tiny").to_json();
  auto with_num = j.substr(0, j.rfind('}')) + ", \"num_rois\": 3}";
  // rois is present with 1 name, so 3 disagrees.
  CHECK_THROWS_WITH(ModelConfig::from_json(with_num, "x.json"),
                    Catch::Contains("x.json") && Catch::Contains("num_rois") && Catch::Contains("length of 'rois' (1)"));
  CHECK(default_roi_names(3) == std::vector<std::string>{"roi0", "roi1", "roi2"});
}

namespace {
// The tiny config's JSON with the first `from` replaced by `to`.
std::string replaced(const std::string& from, const std::string& to) {
  auto s = builtin_config("neurobolt-tiny").to_json();
  const auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  return s.replace(pos, from.size(), to);
}
}  // namespace

TEST_CASE("config errors name the key, the expectation and what was found", "[config]") {
  CHECK_THROWS_AS(ModelConfig::from_json("{", "bad.json"), ConfigError);
  CHECK_THROWS_WITH(ModelConfig::from_json("{\"nmae\": \"x\"}", "bad.json"),
                    Catch::Contains("bad.json") && Catch::Contains("unknown key 'nmae'"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"depth\": 2", "\"depht\": 2"), "c.json"),
                    Catch::Contains("unknown key 'temporal.depht'"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"depth\": 2", "\"depth\": 0"), "c.json"),
                    Catch::Contains("'temporal.depth'") && Catch::Contains("positive") && Catch::Contains("found 0"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"depth\": 2", "\"depth\": \"two\""), "c.json"),
                    Catch::Contains("'temporal.depth'") && Catch::Contains("an integer"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"drop\": 0.1", "\"drop\": 1.5"), "c.json"),
                    Catch::Contains("'temporal.drop'") && Catch::Contains("[0, 1)"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"FP1\"", "\"XYZ\""), "c.json"),
                    Catch::Contains("'channels'") && Catch::Contains("unknown channel 'XYZ'"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"FP2\"", "\"fp1\""), "c.json"),
                    Catch::Contains("'channels'") && Catch::Contains("twice"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"embed_dim\": 50", "\"embed_dim\": 64"), "c.json"),
                    Catch::Contains("'embed_dim'") && Catch::Contains("found 64"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"window_samples\": 3200", "\"window_samples\": 3100"), "c.json"),
                    Catch::Contains("'window_samples'") && Catch::Contains("multiple of patch_size"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"dim_head\": 25", "\"dim_head\": 20"), "c.json"),
                    Catch::Contains("'spectral.dim_head'"));
  CHECK_THROWS_AS(ModelConfig::from_file("/nonexistent/config.json"), IoError);
  CHECK_THROWS_WITH(load_config("no-such-config"), Catch::Contains("neurobolt-base"));
}

TEST_CASE("channel names map to the LaBraM position vocabulary", "[config][channels]") {
  CHECK(position_vocabulary().size() == 136);
  CHECK(position_index("FP1") == 0);
  CHECK(position_index("Fp1") == 0);
  CHECK(position_index(" fp1. ") == 0);
  CHECK(position_index("TP10") == 57);
  CHECK(position_index("FTT9h") == position_index("FTT9H"));
  CHECK_FALSE(position_index("EOG").has_value());
  CHECK(normalize_channel_name(" Cz..") == "CZ");
}

TEST_CASE("config sizes have upper bounds, checked before anything is allocated", "[config]") {
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"depth\": 2", "\"depth\": 1000000000"), "c.json"),
                    "c.json: key 'temporal.depth': expected at most 1024, found 1000000000");
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"max_positions\": 1000", "\"max_positions\": 4000000000000"), "c.json"),
                    "c.json: key 'spectral.max_positions': expected at most 1048576, found 4000000000000");
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"ff_mult\": 2", "\"ff_mult\": 100000"), "c.json"),
                    Catch::Contains("'spectral.ff_mult': expected at most 64"));
  CHECK_THROWS_WITH(ModelConfig::from_json(replaced("\"embed_dim\": 50", "\"embed_dim\": 9000000000"), "c.json"),
                    Catch::Contains("'embed_dim': expected at most 65536"));
  // Each size within its bound, together too large: refused by the parameter estimate.
  auto big = builtin_config("neurobolt-base");
  big.temporal.depth = 1024;
  big.temporal.mlp_ratio = 64;
  CHECK_THROWS_WITH(big.validate(), Catch::Contains("expected a model of at most 1.07e+09 parameters"));
  CHECK_THROWS_WITH(ModelConfig::from_json(R"({"name": "x", "num_rois": 100000000000})", "c.json"),
                    Catch::Contains("key 'num_rois': expected an integer from 1 to 1048576"));
  // 100000 ROIs (a fine atlas) stay allowed.
  auto many = builtin_config("neurobolt-tiny");
  many.rois = default_roi_names(100000);
  CHECK_NOTHROW(many.validate());
}

TEST_CASE("a model file that is HDF5 or binary is named as such, not as broken JSON", "[config]") {
  test::TempDir dir;
  const auto h5 = (dir / "cut.h5").string();
  std::ofstream(h5, std::ios::binary) << std::string("\x89HDF\r\n\x1a\n\0\0\0\0", 12);
  CHECK_THROWS_AS(ModelConfig::from_file(h5), FormatError);
  CHECK_THROWS_WITH(ModelConfig::from_file(h5),
                    "'" + h5 + "': an HDF5 file that is not a readable neurobolt checkpoint (truncated, or written "
                    "by another program); expected a neurobolt checkpoint or a model config JSON");
  const auto bin = (dir / "x.bin").string();
  std::ofstream(bin, std::ios::binary) << std::string("PK\3\4\0\0", 6);
  CHECK_THROWS_WITH(ModelConfig::from_file(bin), Catch::Contains("a binary file; expected a neurobolt checkpoint"));
}

TEST_CASE("forward FLOPs per window follow the architecture", "[config]") {
  const auto base = forward_flops(builtin_config("neurobolt-base"));
  // Temporal: 26 x 16 patches through the convolutions (25 positions, 8 channels), then 12 blocks
  // over 417 tokens of width 200 (qkv + proj + MLP 200-800-200, and the two attention products).
  const double tokens = 26 * 16 + 1;
  const double blocks = 12 * (2 * tokens * 200 * (4 * 200 + 2 * 800) + 4 * tokens * tokens * 200);
  CHECK(base.temporal == Approx(26 * 16 * 2 * 25 * (8 * 15 + 2 * 8 * 8 * 3) + blocks));
  CHECK(base.temporal_blocks == Approx(blocks));
  CHECK(base.temporal_conv + base.temporal_blocks == Approx(base.temporal));
  CHECK(base.spectral_front + base.spectral_blocks == Approx(base.spectral));
  CHECK(base.spectral_front > 0);
  CHECK(base.head == Approx(2 * 200));
  CHECK(base.total() == Approx(9.832e9).epsilon(1e-3));
  // Twice the channels: twice the linear work, four times the temporal attention products.
  auto wide = builtin_config("neurobolt-base");
  wide.channels.clear();
  for (int k = 0; k < 52; ++k) wide.channels.push_back(fmt::format("E{}", k));
  CHECK(forward_flops(wide).spectral == Approx(2 * base.spectral));
}
