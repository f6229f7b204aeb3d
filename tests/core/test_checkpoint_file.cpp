// The torch-free checkpoint reader (src/checkpoint/checkpoint_file.cpp) that
// load_checkpoint builds on: what it reads from a valid file, and the error for
// each way a file can fail to be a checkpoint this version loads. Loading into
// a model is tested in tests/unit/test_checkpoint.cpp.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_file.hpp"
#include "io/h5.hpp"
#include "neurobolt/checkpoint_format.hpp"
#include "neurobolt/config.hpp"
#include "neurobolt/error.hpp"
#include "test_support.hpp"

using neurobolt::test::error_of;
using neurobolt::test::TempDir;
namespace h5 = neurobolt::h5;
using neurobolt::detail::CheckpointFile;

namespace {

struct Attributes {
  std::string format = neurobolt::kCheckpointFormat;
  int64_t version = neurobolt::kCheckpointVersion;
  std::string arch = "neurobolt";
  std::string config = neurobolt::builtin_config("neurobolt-tiny").to_json();
  bool metadata = true;
};

// A checkpoint with two weights (float32 2 x 3, int64 scalar) under /model.
void write(const std::string &path, const Attributes &a) {
  auto file = h5::File::create(path);
  file.set_attribute("/", "format", a.format);
  file.set_attribute("/", "format_version", a.version);
  file.set_attribute("/", "arch", a.arch);
  file.set_attribute("/", "config", a.config);
  if (a.metadata) file.set_attribute("/", "metadata", std::string(R"({"note": "x"})"));
  file.create_group(neurobolt::detail::kWeightsGroup);
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};
  file.write("/model/head.weight", h5::Type::f32, {2, 3}, w.data());
  const std::vector<int64_t> n = {42};
  file.write("/model/norm.num_batches_tracked", h5::Type::i64, {}, n.data());
  file.close();
}

}  // namespace

TEST_CASE("checkpoint file: config, metadata and weights read without LibTorch", "[checkpoint_file]") {
  TempDir dir;
  const std::string path = (dir / "c.h5").string();
  write(path, {});
  REQUIRE(neurobolt::detail::has_checkpoint_format(path));
  {
    const CheckpointFile file(path);
    CHECK(file.config().name == "neurobolt-tiny");
    CHECK(file.metadata_json() == R"({"note": "x"})");
    const auto tensors = file.tensors();
    REQUIRE(tensors.size() == 2);
    CHECK(tensors[0].name == "head.weight");
    CHECK(tensors[0].dataset == "/model/head.weight");
    CHECK(tensors[0].type == h5::Type::f32);
    CHECK(tensors[0].shape == std::vector<int64_t>{2, 3});
    CHECK(tensors[0].numel == 6);
    CHECK(tensors[1].type == h5::Type::i64);
    CHECK(tensors[1].shape.empty());
    CHECK(tensors[1].numel == 1);
    std::vector<float> w(6);
    file.read(tensors[0], h5::Type::f32, w.data());
    CHECK(w == std::vector<float>{1, 2, 3, 4, 5, 6});
    std::vector<double> as_double(6);
    file.read(tensors[0], h5::Type::f64, as_double.data());
    CHECK(as_double[5] == 6.0);
    int64_t n = 0;
    file.read(tensors[1], h5::Type::i64, &n);
    CHECK(n == 42);
  }

  Attributes no_metadata;
  no_metadata.metadata = false;
  write(path, no_metadata);
  CHECK(CheckpointFile(path).metadata_json() == "{}");
}

TEST_CASE(
    "checkpoint file: each way of not being a loadable checkpoint has "
    "its error",
    "[checkpoint_file]") {
  TempDir dir;
  const std::string path = (dir / "c.h5").string();

  Attributes other;
  other.format = "neurobolt-dataset";
  write(path, other);
  CHECK_FALSE(neurobolt::detail::has_checkpoint_format(path));
  CHECK(error_of([&] { CheckpointFile{path}; }) == "'" + path +
                                                       "': not a neurobolt checkpoint (root attribute 'format' is not "
                                                       "'neurobolt-checkpoint')");

  Attributes newer;
  newer.version = neurobolt::kCheckpointVersion + 1;
  write(path, newer);
  CHECK(error_of([&] { CheckpointFile{path}; }) ==
        "'" + path +
            "': checkpoint format version 2 is newer than this neurobolt reads "
            "(1)");

  Attributes ridge;
  ridge.arch = "ridge";
  write(path, ridge);
  CHECK(error_of([&] { CheckpointFile{path}; }) ==
        "'" + path +
            "' holds a 'ridge' model, not a NeuroBOLT network (infer and eval "
            "open every kind)");

  Attributes bad_config;
  bad_config.config = R"({"name": "x", "embed_dim": -3})";
  write(path, bad_config);
  const std::string config_error = error_of([&] { CheckpointFile{path}; });
  CHECK_THAT(config_error, Catch::StartsWith(path + ": attribute 'config'"));

  // Not HDF5 at all, and a file that is not there: errors, and
  // has_checkpoint_format says no.
  const std::string text = (dir / "c.json").string();
  std::FILE *f = std::fopen(text.c_str(), "wb");
  REQUIRE(f != nullptr);
  std::fputs("{\"name\": \"neurobolt-tiny\"}\n", f);
  std::fclose(f);
  CHECK_FALSE(neurobolt::detail::has_checkpoint_format(text));
  CHECK_THROWS_AS(CheckpointFile{text}, neurobolt::FormatError);
  const std::string missing = (dir / "none.h5").string();
  CHECK_FALSE(neurobolt::detail::has_checkpoint_format(missing));
  CHECK_THROWS_AS(CheckpointFile{missing}, neurobolt::IoError);
}
