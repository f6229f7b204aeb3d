// Our HDF5 checkpoints and the .pth importer on every form of reference file.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/h5.hpp"
#include "neurobolt/checkpoint.hpp"
#include "neurobolt/error.hpp"
#include "test_support.hpp"

using namespace neurobolt;
namespace fs = std::filesystem;

namespace {
const auto kPthDir = test::test_data_dir() / "pth";

ModelConfig micro_config() { return ModelConfig::from_file((test::test_data_dir() / "neurobolt-micro.json").string()); }

NeuroBOLT micro_model(uint64_t seed) {
  torch::manual_seed(seed);
  return NeuroBOLT(micro_config());
}

void check_equal_weights(NeuroBOLTImpl& a, NeuroBOLTImpl& b) {
  auto sa = state_dict(a), sb = state_dict(b);
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].first);
    CHECK(sa[i].first == sb[i].first);
    CHECK(torch::equal(sa[i].second, sb[i].second));
  }
}

void check_expected_sums(NeuroBOLTImpl& model) {
  std::ifstream in(kPthDir / "neurobolt_micro_expected.json");
  auto expected = nlohmann::json::parse(in);
  auto state = state_dict(model);
  REQUIRE(state.size() == expected.size());
  for (const auto& [name, tensor] : state) {
    INFO(name);
    REQUIRE(expected.contains(name));
    auto t = tensor.to(torch::kDouble);
    CHECK(t.sum().item<double>() == Approx(expected[name][0].get<double>()).margin(1e-5));
    CHECK(t.pow(2).sum().item<double>() == Approx(expected[name][1].get<double>()).margin(1e-5));
  }
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  return out;
}
}  // namespace

TEST_CASE("the micro fixtures' key list is the model's state dict", "[checkpoint]") {
  auto model = micro_model(0);
  std::ifstream in(kPthDir / "neurobolt_micro_keys.tsv");
  std::string line;
  size_t i = 0;
  auto state = state_dict(*model);
  while (std::getline(in, line)) {
    REQUIRE(i < state.size());
    CHECK(line.substr(0, line.find('\t')) == state[i].first);
    ++i;
  }
  CHECK(i == state.size());
}

TEST_CASE("checkpoints round-trip weights, config and metadata exactly", "[checkpoint]") {
  test::TempDir dir;
  auto model = micro_model(11);
  const auto path = (dir / "m.h5").string();
  save_checkpoint(*model, path, false, R"({"epochs": 3})");
  CHECK(files_in(dir.path()) == std::vector<fs::path>{"m.h5"});  // no temporary left behind
  CHECK(is_checkpoint_file(path));
  CHECK(read_checkpoint_config(path) == model->config());

  std::string metadata;
  auto loaded = load_checkpoint(path, &metadata);
  check_equal_weights(*model, *loaded);
  auto meta = nlohmann::json::parse(metadata);
  CHECK(meta["epochs"] == 3);
  CHECK(meta.contains("neurobolt_version"));

  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 3200}) * 20.0;
  CHECK(torch::equal(model->forward(x), loaded->forward(x)));

  // Datasets are named by the reference's state-dict keys under /model.
  auto file = h5::File::open_read(path);
  CHECK(file.exists("/model/mss_module.transformer.layers.layers.0.0.fn.to_q.weight"));
  CHECK(file.info("/model/mss_module.index").type == h5::Type::i64);
}

TEST_CASE("saving never overwrites without force", "[checkpoint]") {
  test::TempDir dir;
  auto model = micro_model(12);
  const auto path = (dir / "m.h5").string();
  save_checkpoint(*model, path, false);
  CHECK_THROWS_WITH(save_checkpoint(*model, path, false), Catch::Contains("already exists") && Catch::Contains("--force"));
  auto other = micro_model(13);
  save_checkpoint(*other, path, true);
  check_equal_weights(*other, *load_checkpoint(path));
  CHECK_THROWS_AS(save_checkpoint(*model, (dir / "no/such/folder/m.h5").string(), false), IoError);
  CHECK_THROWS_AS(save_checkpoint(*model, path, true, "[1, 2]"), ConfigError);
}

TEST_CASE("broken checkpoints give errors that name the file", "[checkpoint]") {
  test::TempDir dir;
  CHECK_THROWS_AS(load_checkpoint((dir / "missing.h5").string()), IoError);

  const auto text = (dir / "text.h5").string();
  std::ofstream(text) << "not hdf5";
  CHECK_THROWS_WITH(load_checkpoint(text), Catch::Contains("text.h5") && Catch::Contains("not an HDF5 file"));

  // An HDF5 file that is not ours.
  const auto io = (test::shared_dir() / "fixtures/neurobolt_ref/neurobolt_r4_perturbed_io.h5").string();
  CHECK_THROWS_WITH(load_checkpoint(io), Catch::Contains("not a neurobolt checkpoint"));

  auto model = micro_model(14);
  const auto good = (dir / "good.h5").string();
  save_checkpoint(*model, good, false);

  // Truncated copy.
  const auto truncated = (dir / "truncated.h5").string();
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, fs::file_size(good) / 2);
  CHECK_THROWS_AS(load_checkpoint(truncated), Error);

  // Config that no longer matches the weights (two blocks instead of one).
  const auto edited = (dir / "edited.h5").string();
  auto config = micro_config();
  config.temporal.depth = 2;
  {
    auto src = h5::File::open_read(good);
    auto dst = h5::File::create(edited);
    dst.set_attribute("/", "format", std::string(kCheckpointFormat));
    dst.set_attribute("/", "format_version", kCheckpointVersion);
    dst.set_attribute("/", "config", config.to_json());
    dst.create_group("/model");
    for (const auto& name : src.list("/model")) {
      auto info = src.info("/model/" + name);
      std::vector<char> buffer(static_cast<size_t>(info.numel()) * h5::type_size(info.type));
      src.read("/model/" + name, info.type, buffer.data());
      dst.write("/model/" + name, info.type, info.shape, buffer.data());
    }
  }
  CHECK_THROWS_WITH(load_checkpoint(edited),
                    Catch::Contains("edited.h5") && Catch::Contains("17 missing from the checkpoint") &&
                        Catch::Contains("blocks.1.gamma_1"));
}

TEST_CASE("the reference's training-checkpoint and DDP forms import with their extras skipped", "[checkpoint][pth]") {
  ImportOptions options;
  options.config = micro_config();
  auto training = import_pth((kPthDir / "neurobolt_micro_training.pth").string(), options);
  CHECK(training.found_under == "model");
  CHECK(training.report.complete());
  std::string skipped;
  for (const auto& s : training.skipped) skipped += s + ";";
  CHECK_THAT(skipped, Catch::Contains("optimizer (dict)") && Catch::Contains("epoch (int)") &&
                          Catch::Contains("args (argparse.Namespace)") && Catch::Contains("scaler (dict)"));
  check_expected_sums(*training.model);
  CHECK(training.model->config().rois == std::vector<std::string>{"V1", "thalamus"});

  auto module = import_pth((kPthDir / "neurobolt_micro_module.pth").string(), options);
  CHECK(module.found_under == "module");
  check_equal_weights(*training.model, *module.model);
}

TEST_CASE("strict import lists missing, unexpected and mismatched keys; partial loads what fits", "[checkpoint][pth]") {
  // The micro weights into the base config: nearly everything mismatches or is missing.
  try {
    import_pth((kPthDir / "neurobolt_micro_training.pth").string(), ImportOptions{});
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    CHECK_THAT(message, Catch::Contains("neurobolt_micro_training.pth") && Catch::Contains("missing from the checkpoint") &&
                            Catch::Contains("blocks.1.gamma_1") && Catch::Contains("with another shape or dtype") &&
                            Catch::Contains("cls_token: checkpoint float [1, 1, 50] vs model float [1, 1, 200]") &&
                            Catch::Contains("more") && Catch::Contains("--partial"));
    CHECK(message.find('\n') == std::string::npos);
  }
  // A checkpoint of another model entirely.
  CHECK_THROWS_WITH(import_pth((kPthDir / "ordered_dict.pth").string(), ImportOptions{}),
                    Catch::Contains("not in the model"));

  auto config = micro_config();
  config.temporal.depth = 2;  // one block more than the file has
  ImportOptions partial;
  partial.config = config;
  partial.partial = true;
  auto result = import_pth((kPthDir / "neurobolt_micro_training.pth").string(), partial);
  CHECK(result.report.unexpected.empty());
  CHECK(result.report.mismatched.empty());
  CHECK(result.report.missing.size() == 17);  // every key of blocks.1
  CHECK(result.report.missing.front().rfind("blocks.1.", 0) == 0);
}

TEST_CASE("LaBraM pre-training weights go into the temporal branch only", "[checkpoint][pth]") {
  ImportOptions options;
  options.source = ImportSource::labram;
  options.config = micro_config();
  options.seed = 3;
  auto labram = import_pth((kPthDir / "labram_micro.pth").string(), options);
  CHECK(labram.report.complete());
  std::string dropped;
  for (const auto& d : labram.dropped) dropped += d + ";";
  CHECK_THAT(dropped, Catch::Contains("student.mask_token") && Catch::Contains("student.lm_head.weight") &&
                          Catch::Contains("student.norm.weight") && Catch::Contains("teacher.cls_token") &&
                          Catch::Contains("projection_head.0.weight"));
  // The temporal weights equal the NeuroBOLT-form fixture's (the generator used the same values).
  ImportOptions plain;
  plain.config = micro_config();
  auto reference = import_pth((kPthDir / "neurobolt_micro_training.pth").string(), plain);
  auto a = state_dict(*labram.model), b = state_dict(*reference.model);
  int compared = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& name = a[i].first;
    const bool temporal = name.rfind("mss_module.", 0) != 0 && name.rfind("head.", 0) != 0 && name.rfind("fc_norm.", 0) != 0;
    if (temporal) {
      INFO(name);
      CHECK(torch::equal(a[i].second, b[i].second));
      ++compared;
    }
  }
  CHECK(compared == 32);  // tokens + embeddings (3), patch_embed (12), one block (17)
  // A NeuroBOLT file is not a LaBraM file.
  CHECK_THROWS_WITH(import_pth((kPthDir / "neurobolt_micro_training.pth").string(), options),
                    Catch::Contains("no 'student.' weights"));
}

TEST_CASE("convert_pth writes a checkpoint with provenance and refuses to overwrite", "[checkpoint][pth]") {
  test::TempDir dir;
  ImportOptions options;
  options.config = micro_config();
  const auto out = (dir / "micro.h5").string();
  convert_pth((kPthDir / "neurobolt_micro_training.pth").string(), out, options, false);
  std::string metadata;
  auto model = load_checkpoint(out, &metadata);
  check_expected_sums(*model);
  auto meta = nlohmann::json::parse(metadata);
  CHECK(meta["imported_from"]["file"] == "neurobolt_micro_training.pth");
  CHECK(meta["imported_from"]["state_dict_under"] == "model");
  CHECK_THROWS_AS(convert_pth((kPthDir / "neurobolt_micro_training.pth").string(), out, options, false), IoError);
}

TEST_CASE("a checkpoint with 3000 ROI names (a config beyond 64 KiB) is written and read back", "[checkpoint]") {
  test::TempDir dir;
  auto config = micro_config();
  config.rois.clear();
  for (int i = 0; i < 3000; ++i) config.rois.push_back(fmt::format("Left-Hemisphere-Parcel-{:04d}", i));
  REQUIRE(config.to_json().size() > 65536);
  torch::manual_seed(3);
  NeuroBOLT model(config);
  const auto path = (dir / "atlas.h5").string();
  save_checkpoint(*model, path, false, R"({"note": "3000 ROIs"})");
  CHECK(read_checkpoint_config(path) == config);
  auto loaded = load_checkpoint(path);
  CHECK(loaded->config().rois.size() == 3000);
  check_equal_weights(*model, *loaded);
}

TEST_CASE("a checkpoint dataset whose shape disagrees with the config is reported, not allocated", "[checkpoint]") {
  test::TempDir dir;
  auto model = micro_model(5);
  const auto path = (dir / "inflated.h5").string();
  save_checkpoint(*model, path, false);
  {
    // Replace head.bias by a chunked dataset of 2^40 elements: a few bytes on disk, 4 TiB if read.
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    REQUIRE(H5Ldelete(f, "/model/head.bias", H5P_DEFAULT) >= 0);
    const hsize_t dims[1] = {hsize_t{1} << 40}, chunk[1] = {1024};
    const hid_t space = H5Screate_simple(1, dims, nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    const hid_t ds = H5Dcreate2(f, "/model/head.bias", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    REQUIRE(ds >= 0);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(f);
  }
  // Refused when the dataset is opened, before the weights are compared with the config: its
  // declared size is bounded by what the file can hold (1032 times its size, deflate's limit).
  CHECK_THROWS_WITH(load_checkpoint(path),
                    Catch::Contains("inflated.h5': dataset '/model/head.bias': expected at most") &&
                        Catch::Contains("(1032 times the file's size), found [1099511627776] values of 4 bytes"));
}
