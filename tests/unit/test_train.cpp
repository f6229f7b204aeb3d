// neurobolt train: the reference recipe's pieces (schedule, parameter groups, AdamW) and the
// training loop's guarantees (outputs, resume equals an uninterrupted run, clear mismatches).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "io/h5.hpp"
#include "neurobolt/checkpoint.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/simulate.hpp"
#include "neurobolt/train.hpp"
#include "test_support.hpp"
#include "train/optimizer.hpp"

using namespace neurobolt;
namespace fs = std::filesystem;

namespace {

// A small prepared dataset shared by the tests of this file: 2 subjects x 1 run x 1.5 min of
// simulated EEG-fMRI, the tiny model's 8 channels, subject 02 for validation.
const std::string& tiny_dataset() {
  static test::TempDir dir;
  static const std::string path = [] {
    SimulationConfig sim = SimulationConfig::defaults();
    sim.subjects = 2;
    sim.minutes = 1.5;
    sim.sample_rate = 250.0;
    sim.repetition_time = 2.0;
    sim.seed = 5;
    sim.threads = 1;
    write_simulated_dataset(sim, (dir / "sim").string(), false);
    PrepareOptions options;
    options.channels = {"FP1", "FP2", "C3", "C4", "T7", "T8", "O1", "O2"};
    options.rois = {"calcarine", "thalamus"};
    options.split.mode = SplitMode::cross_subject;
    options.split.val_subjects = {"02"};
    const std::string out = (dir / "data.h5").string();
    prepare_bids((dir / "sim").string(), out, options);
    return out;
  }();
  return path;
}

TrainOptions tiny_options() {
  TrainOptions o;
  o.config = "neurobolt-tiny";
  o.recipe.batch = 4;
  o.recipe.epochs = 2;
  o.recipe.warmup_epochs = 1;
  o.recipe.seed = 3;
  o.checkpoint_minutes = 0;
  return o;
}

std::map<std::string, torch::Tensor> tensors_of(const std::string& path, const std::string& group) {
  auto file = h5::File::open_read(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : file.list(group)) {
    const auto info = file.info(group + "/" + name);
    auto t = torch::empty(info.shape, torch::kFloat);
    if (info.type != h5::Type::f32) continue;
    file.read(group + "/" + name, h5::Type::f32, t.data_ptr<float>());
    out.emplace(name, t);
  }
  return out;
}

void require_same_tensors(const std::string& a, const std::string& b, const std::string& group) {
  const auto x = tensors_of(a, group), y = tensors_of(b, group);
  REQUIRE(x.size() == y.size());
  REQUIRE(!x.empty());
  for (const auto& [name, t] : x) {
    INFO(group << "/" << name);
    REQUIRE(y.count(name));
    CHECK(torch::equal(t, y.at(name)));
  }
}

}  // namespace

TEST_CASE("The learning rate follows BEiT's cosine_scheduler per step", "[train]") {
  TrainRecipe r;
  r.lr = 1e-3;
  r.min_lr = 1e-5;
  r.warmup_lr = 1e-6;
  r.warmup_epochs = 2;
  r.epochs = 5;
  const int64_t steps = 3;  // warm-up: 6 steps, np.linspace(1e-6, 1e-3, 6); cosine over the other 9
  CHECK(train::scheduled_lr(r, steps, 0) == Approx(1e-6).epsilon(1e-12));
  CHECK(train::scheduled_lr(r, steps, 1) == Approx(1e-6 + (1e-3 - 1e-6) / 5).epsilon(1e-12));
  CHECK(train::scheduled_lr(r, steps, 5) == Approx(1e-3).epsilon(1e-12));
  CHECK(train::scheduled_lr(r, steps, 6) == Approx(1e-3).epsilon(1e-12));
  CHECK(train::scheduled_lr(r, steps, 10) == Approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + std::cos(M_PI * 4 / 9))).epsilon(1e-12));
  CHECK(train::scheduled_lr(r, steps, 14) == Approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + std::cos(M_PI * 8 / 9))).epsilon(1e-12));
}

TEST_CASE("Parameter groups: the reference's weight-decay exclusions and layer-wise lr decay", "[train]") {
  NeuroBOLT model(builtin_config("neurobolt-tiny"));  // temporal depth 2: layers 0..3
  TrainRecipe r;
  const auto groups = train::parameter_groups(*model, r);
  std::map<std::string, const train::ParamGroup*> group_of;
  int64_t total = 0;
  for (const auto& g : groups) {
    for (const auto& n : g.names) group_of[n] = &g;
    total += static_cast<int64_t>(g.params.size());
  }
  CHECK(total == static_cast<int64_t>(model->parameters().size()));
  auto check = [&](const std::string& name, bool decay, double scale) {
    INFO(name);
    REQUIRE(group_of.count(name));
    CHECK(group_of[name]->decay == decay);
    CHECK(group_of[name]->weight_decay == (decay ? 0.05 : 0.0));
    CHECK(group_of[name]->lr_scale == Approx(scale).epsilon(1e-12));
  };
  check("pos_embed", false, std::pow(0.65, 3));
  check("cls_token", false, std::pow(0.65, 3));
  check("time_embed", false, 1.0);  // not in the reference's layer-0 list
  check("patch_embed.conv1.weight", true, std::pow(0.65, 3));
  check("patch_embed.conv1.bias", false, std::pow(0.65, 3));
  check("blocks.0.attn.qkv.weight", true, std::pow(0.65, 2));
  check("blocks.0.gamma_1", false, std::pow(0.65, 2));
  check("blocks.1.mlp.fc1.weight", true, 0.65);
  check("blocks.1.norm1.weight", false, 0.65);
  check("fc_norm.weight", false, 1.0);
  check("head.weight", true, 1.0);
  check("head.bias", false, 1.0);
  check("mss_module.channel_tokens.weight", true, 1.0);
}

TEST_CASE("Our AdamW is torch's AdamW, step for step", "[train]") {
  torch::manual_seed(1);
  auto a = torch::randn({7, 5}, torch::requires_grad());
  auto b = a.detach().clone().requires_grad_(true);
  TrainRecipe r;
  train::ParamGroup g;
  g.names = {"w"};
  g.params = {a};
  g.weight_decay = 0.05;
  g.lr_scale = 0.5;
  train::AdamW ours({g}, r);
  torch::optim::AdamW theirs({b}, torch::optim::AdamWOptions(3e-4 * 0.5).weight_decay(0.05).eps(1e-8));
  for (int step = 0; step < 6; ++step) {
    auto grad = torch::randn({7, 5});
    ours.zero_grad();
    theirs.zero_grad();
    a.mutable_grad() = grad.clone();
    b.mutable_grad() = grad.clone();
    ours.step(3e-4);
    theirs.step();
    CHECK(torch::allclose(a, b, 0, 1e-7));
  }
  CHECK(ours.steps() == 6);
}

TEST_CASE("Training writes best.h5, last.h5 and one metrics line per epoch", "[train][slow]") {
  test::TempDir dir;
  const auto run = (dir / "run").string();
  std::vector<EpochReport> epochs;
  TrainCallbacks cb;
  cb.epoch_done = [&](const EpochReport& e) { epochs.push_back(e); };
  const auto result = train_model(tiny_dataset(), run, tiny_options(), cb);
  REQUIRE(result.epochs_run == 2);
  REQUIRE(epochs.size() == 2);
  CHECK(fs::exists(result.best_path));
  CHECK(fs::exists(result.last_path));
  std::ifstream metrics(result.metrics_path);
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    ++lines;
    CHECK(line.find("\"val_mean_r\"") != std::string::npos);
  }
  CHECK(lines == 2);
  for (const auto& e : epochs) {
    CHECK(std::isfinite(e.train_loss));
    CHECK(std::isfinite(e.val_mean_r));
    CHECK(e.val_r.size() == 2);
  }
  // best.h5 is a complete checkpoint of the dataset's channels and ROIs, with the dataset's record.
  std::string metadata;
  auto model = load_checkpoint(result.best_path, &metadata);
  CHECK(model->config().rois == std::vector<std::string>{"calcarine", "thalamus"});
  CHECK(model->config().num_channels() == 8);
  CHECK(metadata.find("\"normalisation\"") != std::string::npos);
  CHECK(metadata.find("\"recipe\"") != std::string::npos);

  // An existing run is not overwritten without force.
  CHECK_THAT(test::error_of([&] { train_model(tiny_dataset(), run, tiny_options()); }),
             Catch::Contains("--force") && Catch::Contains("--resume"));
}

TEST_CASE("A run stopped in the middle of an epoch and resumed ends with the same weights", "[train][slow]") {
  test::TempDir dir;
  const auto whole = (dir / "whole").string(), split = (dir / "split").string();
  train_model(tiny_dataset(), whole, tiny_options());

  TrainCallbacks stop_mid_epoch;
  stop_mid_epoch.progress = [](const TrainProgress& p) {
    if (p.phase == "train" && p.epoch == 2 && p.step == 3) request_training_stop();
  };
  try {
    train_model(tiny_dataset(), split, tiny_options(), stop_mid_epoch);
    FAIL("training was not interrupted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::interrupted);
    CHECK(std::string(e.what()).find("epoch 2 step 3") != std::string::npos);
  }
  auto resumed = tiny_options();
  resumed.resume = true;
  const auto result = train_model(tiny_dataset(), split, resumed);
  CHECK(result.epochs_run == 2);
  require_same_tensors((fs::path(whole) / "last.h5").string(), (fs::path(split) / "last.h5").string(), "/model");
  require_same_tensors((fs::path(whole) / "last.h5").string(), (fs::path(split) / "last.h5").string(),
                       "/optimizer/exp_avg_sq");
  require_same_tensors((fs::path(whole) / "best.h5").string(), (fs::path(split) / "best.h5").string(), "/model");
}

TEST_CASE("Mismatches between config, checkpoint and data name both sides", "[train]") {
  test::TempDir dir;
  auto o = tiny_options();
  o.overrides = {"window_samples=1600", "temporal.max_patches=8"};
  const auto grid = test::error_of([&] { train_model(tiny_dataset(), (dir / "a").string(), o); });
  CHECK_THAT(grid, Catch::Contains("1600") && Catch::Contains("3200"));

  // A checkpoint whose channels the data lacks: the error names them.
  ModelConfig config = builtin_config("neurobolt-tiny");
  config.channels = {"FP1", "FP2", "C3", "C4", "T7", "T8", "O1", "PZ"};
  NeuroBOLT other(config);
  const auto init = (dir / "other.h5").string();
  save_checkpoint(*other, init, false);
  auto from = tiny_options();
  from.init = init;
  const auto channels = test::error_of([&] { train_model(tiny_dataset(), (dir / "b").string(), from); });
  CHECK_THAT(channels, Catch::Contains("PZ") && Catch::Contains("lacks"));

  auto bad = tiny_options();
  bad.overrides = {"temporal.no_such_key=1"};
  CHECK_THAT(test::error_of([&] { train_model(tiny_dataset(), (dir / "c").string(), bad); }),
             Catch::Contains("temporal.no_such_key"));
}

TEST_CASE("Early stopping ends the run after --patience epochs without a better validation r", "[train][slow]") {
  test::TempDir dir;
  auto o = tiny_options();
  // A learning rate too small to change a float32 prediction: validation r never improves after
  // the first epoch.
  o.recipe.lr = o.recipe.min_lr = o.recipe.warmup_lr = 1e-15;
  o.recipe.epochs = 5;
  o.recipe.patience = 2;
  std::vector<std::string> notes;
  TrainCallbacks cb;
  cb.note = [&](const std::string& line) { notes.push_back(line); };
  const auto result = train_model(tiny_dataset(), (dir / "run").string(), o, cb);
  CHECK(result.stopped_early);
  CHECK(result.epochs_run == 3);
  CHECK(result.best_epoch == 1);
  bool said = false;
  for (const auto& n : notes) said = said || n.find("early stop") != std::string::npos;
  CHECK(said);
}
