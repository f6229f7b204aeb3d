// neurobolt train: the training loop, its checkpoints and resuming (recipe and guarantees in
// include/neurobolt/train.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/plural.hpp"
#include "core/time_text.hpp"
#include "checkpoint/checkpoint_io.hpp"
#include "core/atomic_file.hpp"
#include "io/h5.hpp"
#include "neurobolt/channels.hpp"
#include "neurobolt/checkpoint.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "dist/group.hpp"
#include "neurobolt/distributed.hpp"
#include "neurobolt/evaluate.hpp"
#include "neurobolt/hash.hpp"
#include "neurobolt/montage.hpp"
#include "neurobolt/pth.hpp"
#include "neurobolt/train.hpp"
#include "train/loader.hpp"
#include "train/optimizer.hpp"

namespace neurobolt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop_requested{false};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json number_or_null(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }
double number_or_nan(const json& j) { return j.is_number() ? j.get<double>() : kNaN; }

// --- data order ------------------------------------------------------------------------------

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Fisher-Yates with a portable generator (std::shuffle's result differs between standard libraries).
template <typename T>
void shuffle(std::vector<T>& v, uint64_t& state) {
  for (std::size_t i = v.size(); i > 1; --i) {
    state = splitmix64(state);
    const auto j = static_cast<std::size_t>((static_cast<unsigned __int128>(state) * i) >> 64);
    std::swap(v[i - 1], v[j]);
  }
}

// The windows of one epoch: chunks of the HDF5 file in random order, the windows of each chunk in
// random order, so a compressed chunk is inflated once per epoch.
std::vector<int64_t> epoch_order(const std::vector<int64_t>& train, int64_t chunk, uint64_t seed, int64_t epoch) {
  uint64_t state = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch) + 1));
  std::vector<std::vector<int64_t>> chunks;
  for (auto i : train) {
    if (chunks.empty() || chunks.back().front() / chunk != i / chunk) chunks.emplace_back();
    chunks.back().push_back(i);
  }
  shuffle(chunks, state);
  std::vector<int64_t> order;
  for (auto& c : chunks) {
    shuffle(c, state);
    order.insert(order.end(), c.begin(), c.end());
  }
  return order;
}

// --- model set-up ----------------------------------------------------------------------------

// Rows of the dataset's channels that feed the model's channels, in model order.
std::vector<int64_t> channel_rows(const ModelConfig& config, const DatasetReader& reader, const std::string& source) {
  const auto mapping = map_channels(reader.channel_names(), config.channels, /*allow_missing=*/true);
  if (!mapping.missing.empty()) {
    throw ConfigError(fmt::format("{} needs channel{} {} which dataset '{}' lacks (it has: {}); prepare the data with "
                                  "these channels (neurobolt prepare --config/--channels) or train from scratch",
                                  source, mapping.missing.size() > 1 ? "s" : "", fmt::join(mapping.missing, ", "),
                                  reader.path(), fmt::join(reader.channel_names(), ", ")));
  }
  std::vector<int64_t> rows;
  for (const auto& row : mapping.source) rows.push_back(*row);
  return rows;
}

void check_grid(const ModelConfig& config, const DatasetReader& reader, const std::string& source) {
  if (config.sample_rate != reader.sample_rate() || config.window_samples != reader.window_samples()) {
    throw ConfigError(fmt::format("{} takes {}-sample windows at {} Hz, dataset '{}' holds {}-sample windows at {} Hz",
                                  source, config.window_samples, config.sample_rate, reader.path(),
                                  reader.window_samples(), reader.sample_rate()));
  }
}

// The architecture from --config/--set with the dataset's channels and ROIs.
ModelConfig scratch_config(const TrainOptions& o, const DatasetReader& reader) {
  ModelConfig config = with_overrides(load_config(o.config), o.overrides);
  check_grid(config, reader, fmt::format("config '{}'", config.name));
  config.channels = reader.channel_names();
  config.rois = reader.roi_names();
  bool all_labram = true;
  for (const auto& ch : config.channels) all_labram = all_labram && position_index(ch).has_value();
  if (!all_labram) {
    // Electrodes outside LaBraM's vocabulary: one position row per channel of this model.
    config.temporal.positions = "channels";
    config.temporal.vocabulary_rows = config.num_channels() + 1;
  }
  config.validate();
  return config;
}

struct InitResult {
  NeuroBOLT model{nullptr};
  json description = json::object();
};

// A model with `config`, the weights of `source` where they fit; the head is re-initialised when
// the ROIs differ (as the reference does when it fine-tunes on other ROIs).
NeuroBOLT adapt_rois(NeuroBOLTImpl& source, ModelConfig config, const std::vector<std::string>& rois, json& description,
                     const TrainCallbacks& cb) {
  const bool same_rois = source.config().rois == rois;
  config.rois = rois;
  NeuroBOLT model(config);
  StateDict state;
  for (auto& [name, tensor] : state_dict(source)) {
    if (!same_rois && name.rfind("head.", 0) == 0) continue;
    state.emplace_back(name, tensor);
  }
  auto report = load_state_dict(*model, state, /*strict=*/false);
  if (!report.unexpected.empty() || !report.mismatched.empty()) {
    throw ConfigError(fmt::format("initial weights do not fit: {}", report.summary()));
  }
  if (!same_rois) {
    description["head"] = fmt::format("re-initialised for the dataset's {} (the initial model had {})",
                                      count_of(static_cast<int64_t>(rois.size()), "ROI"), source.config().rois.size());
    if (cb.note) cb.note(fmt::format("init: head re-initialised for {}", count_of(static_cast<int64_t>(rois.size()), "ROI")));
  }
  return model;
}

InitResult build_model(const TrainOptions& o, const DatasetReader& reader, const TrainCallbacks& cb) {
  InitResult out;
  torch::manual_seed(o.recipe.seed);
  if (o.init.empty()) {
    out.model = NeuroBOLT(scratch_config(o, reader));
    out.description = {{"from", "scratch"}, {"initialisation", "reference (truncated normal, head x head_init_scale)"}};
    return out;
  }
  std::error_code ec;
  if (!fs::exists(o.init, ec)) throw IoError(fmt::format("--init '{}': no such file", o.init));
  std::string kind = o.init_from;
  if (kind == "auto") {
    if (is_checkpoint_file(o.init)) {
      kind = "checkpoint";
    } else {
      const auto contents = read_pth(o.init);
      bool student = false;
      for (const auto& [name, tensor] : contents.tensors) student = student || name.rfind("student.", 0) == 0;
      kind = student ? "labram" : "neurobolt";
    }
  }
  out.description = {{"from", o.init}, {"kind", kind}};
  if (kind == "checkpoint") {
    auto source = load_checkpoint(o.init);
    ModelConfig config = with_overrides(source->config(), o.overrides);
    check_grid(config, reader, fmt::format("checkpoint '{}'", o.init));
    out.model = adapt_rois(*source, config, reader.roi_names(), out.description, cb);
  } else if (kind == "neurobolt") {
    ImportOptions io;
    io.config = with_overrides(load_config(o.config), o.overrides);
    io.seed = o.recipe.seed;
    auto imported = import_pth(o.init, io);
    check_grid(imported.model->config(), reader, fmt::format("'{}'", o.init));
    out.model = adapt_rois(*imported.model, imported.model->config(), reader.roi_names(), out.description, cb);
  } else if (kind == "labram") {
    ModelConfig config = scratch_config(o, reader);
    if (config.temporal.positions != "labram") {
      std::vector<std::string> outside;
      for (const auto& ch : config.channels)
        if (!position_index(ch)) outside.push_back(ch);
      throw ConfigError(fmt::format("--init '{}': LaBraM weights embed electrodes of its own vocabulary; dataset '{}' "
                                    "has {} outside it (see neurobolt info --channels)",
                                    o.init, reader.path(), fmt::join(outside, ", ")));
    }
    ImportOptions io;
    io.source = ImportSource::labram;
    io.config = config;
    io.seed = o.recipe.seed;
    auto imported = import_pth(o.init, io);
    out.model = imported.model;
    out.description["dropped"] = imported.dropped.size();
    out.description["notes"] = imported.notes;
  } else {
    throw ConfigError(fmt::format("--init-from: expected auto, neurobolt or labram, found '{}'", o.init_from));
  }
  if (cb.note) cb.note(fmt::format("init: weights from '{}' ({})", o.init, kind));
  return out;
}

// --- validation ------------------------------------------------------------------------------

struct Validation {
  double loss = kNaN, mean_r = kNaN;
  std::vector<double> r, mse;
};

// A host tensor on the compute device: on CUDA through a pinned buffer with an asynchronous copy
// (the step's loss.item() is the only synchronisation); elsewhere as it is.
torch::Tensor to_device(const torch::Tensor& host, const torch::Device& device) {
  if (!device.is_cuda()) return host;
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

torch::Tensor batch_input(const Batch& batch, const std::vector<int64_t>& rows, bool identity, const torch::Device& device) {
  auto x = torch::from_blob(const_cast<float*>(batch.windows.data()),
                            {batch.size(), batch.num_channels, batch.window_samples}, torch::kFloat);
  return to_device(identity ? x.clone() : x.index_select(1, torch::tensor(rows, torch::kLong)), device);
}

Validation validate(NeuroBOLTImpl& model, const DatasetReader& reader, const std::vector<int64_t>& all_indices,
                    const std::vector<int64_t>& rows, bool identity, const TrainOptions& o, const torch::Device& device,
                    const std::function<void(int64_t, int64_t)>& progress, dist::Group* group) {
  Validation v;
  const int64_t R = model.config().num_rois();
  v.r.assign(static_cast<std::size_t>(R), kNaN);
  v.mse.assign(static_cast<std::size_t>(R), kNaN);
  if (all_indices.empty()) return v;
  // Distributed: each rank predicts a contiguous share; the shares are gathered (a sum of
  // tables zero outside each rank's rows) so that every rank computes the same metrics.
  const int ranks = group ? group->size() : 1, rank = group ? group->rank() : 0;
  const auto total = static_cast<int64_t>(all_indices.size());
  const int64_t first = total * rank / ranks, last = total * (rank + 1) / ranks;
  const std::vector<int64_t> indices(all_indices.begin() + first, all_indices.begin() + last);
  std::vector<std::vector<int64_t>> batches;
  for (std::size_t i = 0; i < indices.size(); i += static_cast<std::size_t>(o.eval_batch)) {
    batches.emplace_back(indices.begin() + static_cast<std::ptrdiff_t>(i),
                         indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), i + o.eval_batch)));
  }
  model.eval();
  torch::NoGradGuard no_grad;
  std::vector<float> predicted, target;
  train::BatchLoader loader(reader, batches, o.prefetch_batches);
  for (std::size_t b = 0; b < batches.size(); ++b) {
    const Batch batch = loader.next();
    auto out = model.forward(batch_input(batch, rows, identity, device)).to(torch::kCPU).contiguous();
    predicted.insert(predicted.end(), out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
    target.insert(target.end(), batch.targets.begin(), batch.targets.end());
    if (progress) progress(static_cast<int64_t>(b) + 1, static_cast<int64_t>(batches.size()));
  }
  if (group) {
    auto gathered = torch::zeros({2, total, R}, torch::kFloat);
    if (last > first) {
      gathered[0].narrow(0, first, last - first).copy_(torch::from_blob(predicted.data(), {last - first, R}, torch::kFloat));
      gathered[1].narrow(0, first, last - first).copy_(torch::from_blob(target.data(), {last - first, R}, torch::kFloat));
    }
    group->allreduce_sum(gathered);
    predicted.assign(gathered[0].data_ptr<float>(), gathered[0].data_ptr<float>() + total * R);
    target.assign(gathered[1].data_ptr<float>(), gathered[1].data_ptr<float>() + total * R);
  }
  const auto n = total;
  const auto metrics = roi_metrics(predicted.data(), target.data(), n, R);
  double mse_sum = 0;
  for (int64_t r = 0; r < R; ++r) {
    v.r[r] = metrics[r].r;
    v.mse[r] = metrics[r].mse;
    mse_sum += metrics[r].mse;
  }
  v.mean_r = mean_r(metrics);
  v.loss = mse_sum / static_cast<double>(R);
  return v;
}

// --- checkpoints -----------------------------------------------------------------------------

struct State {
  int64_t epoch = 0;  // 0-based index of the epoch in progress
  int64_t step = 0;   // next step within it
  int64_t global_step = 0;
  double loss_sum = 0;
  int64_t loss_count = 0;
  double best_val_r = kNaN;
  int64_t best_epoch = 0;
  int64_t bad_epochs = 0;
  std::vector<EpochReport> history;
};

EpochReport report_from_json(const json& j) {
  EpochReport e;
  e.epoch = j.value("epoch", int64_t{0});
  e.global_step = j.value("step", int64_t{0});
  e.train_loss = number_or_nan(j.value("train_loss", json()));
  e.val_loss = number_or_nan(j.value("val_loss", json()));
  e.val_mean_r = number_or_nan(j.value("val_mean_r", json()));
  for (const auto& x : j.value("val_r", json::array())) e.val_r.push_back(number_or_nan(x));
  for (const auto& x : j.value("val_mse", json::array())) e.val_mse.push_back(number_or_nan(x));
  e.lr = number_or_nan(j.value("lr", json()));
  e.windows_per_s = number_or_nan(j.value("windows_per_s", json()));
  e.data_wait_s = number_or_nan(j.value("data_wait_s", json()));
  e.seconds = number_or_nan(j.value("seconds", json()));
  e.best = j.value("best", false);
  return e;
}

json state_json(const State& s, const TrainRecipe& recipe, int64_t steps_per_epoch, const std::string& fingerprint) {
  json history = json::array();
  for (const auto& e : s.history) history.push_back(json::parse(e.json()));
  return {{"epoch", s.epoch},
          {"step", s.step},
          {"global_step", s.global_step},
          {"loss_sum", s.loss_sum},
          {"loss_count", s.loss_count},
          {"best_val_r", number_or_null(s.best_val_r)},
          {"best_epoch", s.best_epoch},
          {"bad_epochs", s.bad_epochs},
          {"steps_per_epoch", steps_per_epoch},
          {"threads", at::get_num_threads()},
          {"dataset_fingerprint", fingerprint},
          {"recipe", json::parse(recipe.to_json())},
          {"history", history}};
}

TrainRecipe recipe_from_json(const json& j) {
  TrainRecipe r;
  r.lr = j.at("lr");
  r.min_lr = j.at("min_lr");
  r.warmup_lr = j.at("warmup_lr");
  r.warmup_epochs = j.at("warmup_epochs");
  r.beta1 = j.at("beta1");
  r.beta2 = j.at("beta2");
  r.eps = j.at("eps");
  r.weight_decay = j.at("weight_decay");
  r.layer_decay = j.at("layer_decay");
  r.batch = j.at("batch");
  r.epochs = j.at("epochs");
  if (j.at("clip_grad").is_number()) r.clip_grad = j.at("clip_grad").get<double>();
  r.patience = j.at("patience");
  r.seed = j.at("seed");
  return r;
}

class Checkpointer {
 public:
  Checkpointer(std::string run_dir, json dataset, json training_base)
      : dir_(std::move(run_dir)), dataset_(std::move(dataset)), training_base_(std::move(training_base)) {}

  std::string best_path() const { return (fs::path(dir_) / "best.h5").string(); }
  std::string last_path() const { return (fs::path(dir_) / "last.h5").string(); }
  std::string metrics_path() const { return (fs::path(dir_) / "metrics.jsonl").string(); }

  std::string metadata(const State& s, const EpochReport* epoch) const {
    json training = training_base_;
    training["epoch"] = s.epoch;
    training["global_step"] = s.global_step;
    training["selection"] = "highest mean Pearson r over ROIs on the validation split";
    if (epoch) {
      training["val_mean_r"] = number_or_null(epoch->val_mean_r);
      training["val_r"] = json::parse(epoch->json()).at("val_r");
      training["selected_epoch"] = epoch->epoch;
    }
    return json{{"arch", "neurobolt"},
                {"neurobolt_version", NEUROBOLT_VERSION},
                {"created", detail::utc_now_iso()},
                {"dataset", dataset_},
                {"training", training}}
        .dump();
  }

  void save_best(NeuroBOLTImpl& model, const State& s, const EpochReport& epoch) const {
    std::lock_guard<std::mutex> lock(train::hdf5_mutex());
    save_checkpoint(model, best_path(), /*force=*/true, metadata(s, &epoch));
  }

  void save_last(NeuroBOLTImpl& model, const train::AdamW& optimizer, const State& s, const json& state) const {
    std::lock_guard<std::mutex> lock(train::hdf5_mutex());
    detail::write_checkpoint(model, last_path(), /*force=*/true, metadata(s, nullptr), [&](h5::File& file) {
      file.set_attribute("/", "training_state", state.dump());
      file.create_group("/optimizer");
      file.create_group("/optimizer/exp_avg");
      file.create_group("/optimizer/exp_avg_sq");
      file.set_attribute("/optimizer", "steps", optimizer.steps());
      for (const auto& [name, m] : optimizer.moments()) {
        if (!m.exp_avg.defined()) continue;
        for (const auto& [group, t] : {std::pair{"exp_avg", &m.exp_avg}, std::pair{"exp_avg_sq", &m.exp_avg_sq}}) {
          auto cpu = t->detach().to(torch::kCPU).contiguous();
          std::vector<int64_t> shape(cpu.sizes().begin(), cpu.sizes().end());
          file.write(fmt::format("/optimizer/{}/{}", group, name), h5::Type::f32, shape, cpu.data_ptr<float>());
        }
      }
      auto generator = at::detail::getDefaultCPUGenerator();
      torch::Tensor rng;
      {
        std::lock_guard<std::mutex> g(generator.mutex());
        rng = generator.get_state().contiguous();
      }
      file.create_group("/rng");
      file.write("/rng/cpu", h5::Type::u8, {rng.numel()}, rng.data_ptr<uint8_t>());
    });
  }

  void write_metrics(const State& s) const {
    detail::AtomicOutput out(metrics_path(), /*force=*/true);
    std::string text;
    for (const auto& e : s.history) text += e.json() + "\n";
    out.write_all(text);
    out.commit();
  }

 private:
  std::string dir_;
  json dataset_;
  json training_base_;
};

// Restores optimizer moments and the dropout generator from last.h5 (sizes checked against the
// model before anything is read).
void restore_optimizer_and_rng(const std::string& path, train::AdamW& optimizer) {
  std::lock_guard<std::mutex> lock(train::hdf5_mutex());
  auto file = h5::File::open_read(path);
  std::vector<std::pair<std::string, train::AdamW::Moments>> moments;
  for (const auto& group : optimizer.groups()) {
    for (std::size_t i = 0; i < group.names.size(); ++i) {
      const auto& name = group.names[i];
      const auto& p = group.params[i];
      train::AdamW::Moments m;
      const std::string a = "/optimizer/exp_avg/" + name, b = "/optimizer/exp_avg_sq/" + name;
      if (file.exists(a) && file.exists(b)) {
        for (const auto* dataset : {&a, &b}) {
          const auto info = file.info(*dataset);
          if (info.shape != std::vector<int64_t>(p.sizes().begin(), p.sizes().end())) {
            throw FormatError(fmt::format("'{}': '{}' does not have the shape of parameter '{}'", path, *dataset, name));
          }
        }
        m.exp_avg = torch::empty(p.sizes(), torch::kFloat);
        m.exp_avg_sq = torch::empty(p.sizes(), torch::kFloat);
        file.read(a, h5::Type::f32, m.exp_avg.data_ptr<float>());
        file.read(b, h5::Type::f32, m.exp_avg_sq.data_ptr<float>());
      }
      moments.emplace_back(name, m);
    }
  }
  optimizer.load(file.int_attribute("/optimizer", "steps"), moments);
  const auto info = file.info("/rng/cpu");
  if (info.shape.size() != 1 || info.shape[0] <= 0 || info.shape[0] > (1 << 20)) {
    throw FormatError(fmt::format("'{}': '/rng/cpu' must be a byte vector", path));
  }
  auto rng = torch::empty({info.shape[0]}, torch::kUInt8);
  file.read("/rng/cpu", h5::Type::u8, rng.data_ptr<uint8_t>());
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> g(generator.mutex());
  generator.set_state(rng);
}

void check_recipe(const TrainRecipe& r) {
  auto require = [](bool ok, const char* what, const std::string& found) {
    if (!ok) throw ConfigError(fmt::format("training recipe: {}, found {}", what, found));
  };
  require(r.lr > 0, "--lr must be > 0", fmt::format("{}", r.lr));
  require(r.min_lr >= 0 && r.warmup_lr >= 0, "--min-lr and --warmup-lr must be >= 0",
          fmt::format("{} and {}", r.min_lr, r.warmup_lr));
  require(r.warmup_epochs >= 0, "--warmup-epochs must be >= 0", fmt::format("{}", r.warmup_epochs));
  require(r.beta1 >= 0 && r.beta1 < 1 && r.beta2 >= 0 && r.beta2 < 1, "--betas must lie in [0, 1)",
          fmt::format("{} {}", r.beta1, r.beta2));
  require(r.eps > 0, "--eps must be > 0", fmt::format("{}", r.eps));
  require(r.weight_decay >= 0, "--weight-decay must be >= 0", fmt::format("{}", r.weight_decay));
  require(r.layer_decay > 0 && r.layer_decay <= 1, "--layer-decay must lie in (0, 1]", fmt::format("{}", r.layer_decay));
  require(r.batch >= 1, "--batch must be >= 1", fmt::format("{}", r.batch));
  require(r.epochs >= 1, "--epochs must be >= 1", fmt::format("{}", r.epochs));
  require(!r.clip_grad || *r.clip_grad > 0, "--clip-grad must be > 0", fmt::format("{}", r.clip_grad.value_or(0)));
  require(r.patience >= 0, "--patience must be >= 0", fmt::format("{}", r.patience));
}

}  // namespace

std::string TrainRecipe::to_json() const {
  return json{{"lr", lr},
              {"min_lr", min_lr},
              {"warmup_lr", warmup_lr},
              {"warmup_epochs", warmup_epochs},
              {"beta1", beta1},
              {"beta2", beta2},
              {"eps", eps},
              {"weight_decay", weight_decay},
              {"layer_decay", layer_decay},
              {"batch", batch},
              {"epochs", epochs},
              {"clip_grad", clip_grad ? json(*clip_grad) : json(nullptr)},
              {"patience", patience},
              {"seed", seed},
              {"optimizer", "AdamW (torch update rule); no decay on biases, 1-D parameters, pos/time embeddings, cls"},
              {"schedule", "linear warm-up from warmup_lr, then cosine to min_lr, per step"},
              {"loss", "MSE on z-scored targets"}}
      .dump();
}

std::string EpochReport::json() const {
  nlohmann::json r = nlohmann::json::array(), m = nlohmann::json::array();
  for (double x : val_r) r.push_back(number_or_null(x));
  for (double x : val_mse) m.push_back(number_or_null(x));
  return nlohmann::json{{"epoch", epoch},
                        {"arch", "neurobolt"},
                        {"step", global_step},
                        {"train_loss", number_or_null(train_loss)},
                        {"val_loss", number_or_null(val_loss)},
                        {"val_mean_r", number_or_null(val_mean_r)},
                        {"val_r", r},
                        {"val_mse", m},
                        {"lr", number_or_null(lr)},
                        {"windows_per_s", number_or_null(windows_per_s)},
                        {"data_wait_s", number_or_null(data_wait_s)},
                        {"seconds", number_or_null(seconds)},
                        {"best", best}}
      .dump();
}

void request_training_stop() noexcept { g_stop_requested.store(true); }

TrainResult train_model(const std::string& dataset_path, const std::string& run_dir, const TrainOptions& o,
                        const TrainCallbacks& cb) {
  g_stop_requested.store(false);
  // The caller may hold a NoGradGuard (as inference code does): training needs gradients.
  torch::AutoGradMode enable_grad(true);
  torch::Device device(o.device);  // distributed on CUDA: this rank's GPU (below)
  if (o.prefetch_batches < 1 || o.eval_batch < 1) {
    throw ConfigError(fmt::format("prefetch batches and eval batch must be >= 1, found {} and {}", o.prefetch_batches,
                                  o.eval_batch));
  }

  std::unique_ptr<DatasetReader> reader_holder;
  {
    std::lock_guard<std::mutex> lock(train::hdf5_mutex());
    reader_holder = std::make_unique<DatasetReader>(dataset_path);
    if (reader_holder->split_mode() == SplitMode::kfold) reader_holder->select_fold(o.fold);
  }
  const DatasetReader& reader = *reader_holder;
  const auto& train_indices = reader.indices(Split::train);
  const auto& val_indices = reader.indices(Split::val);

  std::unique_ptr<dist::Group> group;
  if (o.distributed) {
    const auto env = distributed_environment();
    if (!env) {
      throw ConfigError("distributed training: no RANK/WORLD_SIZE (torchrun, neurobolt launch) or SLURM_PROCID/"
                        "SLURM_NTASKS in the environment");
    }
    if (!(o.distributed_timeout_s > 0)) {
      throw ConfigError(fmt::format("distributed timeout must be > 0 s, found {}", o.distributed_timeout_s));
    }
    if (device.is_cuda()) {
      dist::require_nccl();
      device = dist::rank_device(device, env->local_rank, static_cast<int64_t>(torch::cuda::device_count()));
    }
    group = std::make_unique<dist::Group>(
        *env, std::chrono::milliseconds(static_cast<int64_t>(o.distributed_timeout_s * 1000)), device);
  }
  const bool lead = !group || group->rank() == 0;  // writes the run folder and reports
  const int world = group ? group->size() : 1;
  const TrainCallbacks quiet;
  const TrainCallbacks& out = lead ? cb : quiet;
  auto note = [&out](const std::string& line) {
    if (out.note) out.note(line);
  };

  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw IoError(fmt::format("cannot create run folder '{}': {}", run_dir, ec.message()));

  const json dataset_record = json::parse(checkpoint_dataset_json(reader));
  State s;
  TrainRecipe recipe = o.recipe;
  NeuroBOLT model{nullptr};
  json init_description;
  const std::string last = (fs::path(run_dir) / "last.h5").string();
  if (o.resume) {
    if (!fs::exists(last, ec)) {
      throw IoError(fmt::format("--resume: '{}' does not exist (nothing to resume in '{}')", last, run_dir));
    }
    std::string metadata;
    {
      std::lock_guard<std::mutex> lock(train::hdf5_mutex());
      model = load_checkpoint(last, &metadata);
      auto file = h5::File::open_read(last);
      if (!file.has_attribute("/", "training_state")) {
        throw FormatError(fmt::format("'{}': no training state (not written by neurobolt train)", last));
      }
      const json st = json::parse(file.string_attribute("/", "training_state"));
      if (st.at("dataset_fingerprint") != reader.fingerprint()) {
        throw ConfigError(fmt::format("--resume: '{}' was trained on data with fingerprint {}, dataset '{}' has {}",
                                      last, st.at("dataset_fingerprint").get<std::string>(), dataset_path,
                                      reader.fingerprint()));
      }
      recipe = recipe_from_json(st.at("recipe"));
      if (o.recipe.epochs != recipe.epochs && o.recipe.epochs != TrainRecipe{}.epochs) {
        throw ConfigError(fmt::format("--resume: the run was started with --epochs {}; changing it to {} would change "
                                      "its learning-rate schedule",
                                      recipe.epochs, o.recipe.epochs));
      }
      s.epoch = st.at("epoch");
      s.step = st.at("step");
      s.global_step = st.at("global_step");
      s.loss_sum = st.at("loss_sum");
      s.loss_count = st.at("loss_count");
      s.best_val_r = number_or_nan(st.at("best_val_r"));
      s.best_epoch = st.at("best_epoch");
      s.bad_epochs = st.at("bad_epochs");
      for (const auto& line : st.at("history")) s.history.push_back(report_from_json(line));
      if (st.at("threads").get<int>() != at::get_num_threads()) {
        note(fmt::format("warning: the run used {}, this one {}: the result will differ from an "
                         "uninterrupted run in the last bits",
                         count_of(st.at("threads").get<int>(), "thread"), at::get_num_threads()));
      }
      const json meta = json::parse(metadata);
      init_description = meta.at("training").value("init", json::object());
    }
    note(fmt::format("resuming '{}' at epoch {} step {} with its own recipe (lr {:g}, batch {}, {} epochs, seed {}); "
                     "recipe options given now are not used",
                     last, s.epoch + 1, s.step, recipe.lr, recipe.batch, recipe.epochs, recipe.seed));
  } else {
    for (const char* name : {"best.h5", "last.h5", "metrics.jsonl"}) {
      if (fs::exists(fs::path(run_dir) / name, ec) && !o.force) {
        throw IoError(fmt::format("'{}' already holds a run ({}): --resume continues it, --force replaces it", run_dir,
                                  name));
      }
    }
    check_recipe(recipe);
    auto built = build_model(o, reader, out);
    model = built.model;
    init_description = built.description;
  }
  check_recipe(recipe);
  const ModelConfig& config = model->config();
  const auto rows = channel_rows(config, reader,
                                 o.resume          ? fmt::format("'{}'", last)
                                 : o.init.empty() ? fmt::format("model '{}'", config.name)
                                                  : fmt::format("--init '{}' (model '{}')", o.init, config.name));
  bool identity = static_cast<int64_t>(rows.size()) == reader.num_channels();
  for (std::size_t i = 0; identity && i < rows.size(); ++i) identity = rows[i] == static_cast<int64_t>(i);
  if (config.rois != reader.roi_names()) {
    throw ConfigError(fmt::format("model ROIs ({}) differ from dataset '{}' ROIs ({})", fmt::join(config.rois, ", "),
                                  dataset_path, fmt::join(reader.roi_names(), ", ")));
  }

  const auto n_train = static_cast<int64_t>(train_indices.size());
  if (n_train < recipe.batch) {
    throw ConfigError(fmt::format("dataset '{}' has {} training windows, fewer than one batch of {}", dataset_path,
                                  n_train, recipe.batch));
  }
  if (recipe.batch % world != 0) {
    throw ConfigError(fmt::format("distributed training: the global batch {} does not split evenly over {} ranks "
                                  "(choose a multiple of {})",
                                  recipe.batch, world, world));
  }
  const int64_t local_batch = recipe.batch / world;
  const int64_t steps_per_epoch = n_train / recipe.batch;
  if (val_indices.empty()) {
    note("warning: the dataset has no validation windows: best.h5 is the last epoch (no selection possible)");
  }
  int64_t chunk = 1;
  {
    const json parameters = dataset_record.at("parameters");
    if (parameters.contains("chunk_windows") && parameters["chunk_windows"].is_number_integer()) {
      chunk = std::max<int64_t>(1, parameters["chunk_windows"].get<int64_t>());
    }
  }

  model->to(device);
  train::AdamW optimizer(train::parameter_groups(*model, recipe), recipe);
  if (o.resume) restore_optimizer_and_rng(last, optimizer);
  std::unique_ptr<dist::GradientSync> gradient_sync;
  if (group) {
    // Every rank must run the same thing from the same start.
    const std::string config_json = config.to_json(), recipe_json = recipe.to_json(), data = reader.fingerprint();
    group->check_same({"model config", "training recipe", "dataset fingerprint", "step", "initial weights"},
                      {fnv1a(config_json), fnv1a(recipe_json), fnv1a(data), static_cast<uint64_t>(s.global_step),
                       dist::fingerprint(model->parameters())});
    std::vector<torch::Tensor> trainable;
    for (const auto& p : model->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    gradient_sync = std::make_unique<dist::GradientSync>(*group, trainable);
    // Dropout and drop-path masks: each rank its own stream (rank 0 keeps the single-process one).
    if (group->rank() > 0) torch::manual_seed(recipe.seed + 1000003ull * static_cast<uint64_t>(group->rank()) + s.global_step);
    note(fmt::format("distributed: {} ranks ({}), {} windows per rank and step, {} all-reduce in buckets of 25 MB{}",
                     world, group->environment().source, local_batch, group->backend(),
                     device.is_cuda() ? fmt::format(", one GPU per rank (rank 0: {})", device.str()) : ""));
  }

  json training_base{{"recipe", json::parse(recipe.to_json())},
                     {"init", init_description},
                     {"config_overrides", o.overrides},
                     {"threads", at::get_num_threads()},
                     {"device", device.str()},
                     {"steps_per_epoch", steps_per_epoch},
                     {"train_windows", n_train},
                     {"val_windows", val_indices.size()}};
  Checkpointer checkpoints(run_dir, dataset_record, training_base);
  TrainResult result;
  result.best_path = checkpoints.best_path();
  result.last_path = checkpoints.last_path();
  result.metrics_path = checkpoints.metrics_path();

  auto save_last = [&] {
    if (lead) checkpoints.save_last(*model, optimizer, s, state_json(s, recipe, steps_per_epoch, reader.fingerprint()));
  };
  note(fmt::format("training {} ({} parameters) on {}: {} ({} of {} per epoch), {}, {}, {}",
                   config.name, count_parameters(*model).total(), dataset_path, count_of(n_train, "training window"),
                   count_of(steps_per_epoch, "step"), recipe.batch,
                   count_of(static_cast<int64_t>(val_indices.size()), "validation window"),
                   count_of(recipe.epochs, "epoch"), count_of(at::get_num_threads(), "thread")));

  double mean_step_s = 0, last_validation_s = 0;
  int64_t timed_steps = 0;
  auto last_save = Clock::now();
  bool stopped_early = false;
  for (; s.epoch < recipe.epochs; ++s.epoch, s.step = 0, s.loss_sum = 0, s.loss_count = 0) {
    const auto epoch_start = Clock::now();
    const auto order = epoch_order(train_indices, chunk, recipe.seed, s.epoch);
    std::vector<std::vector<int64_t>> batches;
    // Global batch k is order[k*B, (k+1)*B); rank r takes its r-th share (all of it alone).
    const int64_t share = group ? group->rank() * local_batch : 0;
    for (int64_t k = s.step; k < steps_per_epoch; ++k) {
      batches.emplace_back(order.begin() + k * recipe.batch + share, order.begin() + k * recipe.batch + share + local_batch);
    }
    model->train();
    double lr = 0;
    int64_t windows = 0;
    double wait = 0;
    {
      train::BatchLoader loader(reader, batches, o.prefetch_batches);
      while (s.step < steps_per_epoch) {
        const auto step_start = Clock::now();
        const Batch batch = loader.next();
        auto x = batch_input(batch, rows, identity, device);
        auto y = to_device(
            torch::from_blob(const_cast<float*>(batch.targets.data()), {batch.size(), batch.num_rois}, torch::kFloat).clone(),
            device);
        lr = train::scheduled_lr(recipe, steps_per_epoch, s.global_step);
        optimizer.zero_grad();
        // Several processes: one backward whose gradient hooks feed the all-reduce buckets.
        if (gradient_sync) gradient_sync->begin();
        auto loss = mse_forward_backward(model, x, y, /*whole=*/gradient_sync != nullptr);
        if (gradient_sync) gradient_sync->finish();
        // The global batch's loss (the mean of the ranks' means: equal shares), the same on every
        // rank, so that a non-finite loss stops all of them together.
        const double loss_value = group ? group->sum(loss.item<double>()) / world : loss.item<double>();
        if (!std::isfinite(loss_value)) {
          throw ConfigError(fmt::format("training loss is {} at epoch {} step {} (lr {:.3g}): lower --lr or set "
                                        "--clip-grad",
                                        loss_value, s.epoch + 1, s.step + 1, lr));
        }
        if (recipe.clip_grad) optimizer.clip_grad_norm(*recipe.clip_grad);
        optimizer.step(lr);
        s.loss_sum += loss_value;
        ++s.loss_count;
        ++s.global_step;
        ++s.step;
        windows += batch.size() * world;  // the global batch: every rank took its share

        const double step_s = std::chrono::duration<double>(Clock::now() - step_start).count();
        mean_step_s = (mean_step_s * static_cast<double>(timed_steps) + step_s) / static_cast<double>(timed_steps + 1);
        ++timed_steps;
        if (out.progress) {
          TrainProgress p;
          p.phase = "train";
          p.epoch = s.epoch + 1;
          p.epochs = recipe.epochs;
          p.step = s.step;
          p.steps = steps_per_epoch;
          p.loss = s.loss_sum / static_cast<double>(s.loss_count);
          p.lr = lr;
          const double elapsed = std::chrono::duration<double>(Clock::now() - epoch_start).count();
          p.windows_per_s = elapsed > 0 ? static_cast<double>(windows) / elapsed : 0;
          const int64_t remaining = (recipe.epochs - s.epoch) * steps_per_epoch - s.step;
          p.eta_s = static_cast<double>(remaining) * mean_step_s +
                    static_cast<double>(recipe.epochs - s.epoch) * last_validation_s;
          p.last_val_r = s.history.empty() ? kNaN : s.history.back().val_mean_r;
          out.progress(p);
        }
        // Within the epoch only: its end writes last.h5 anyway.
        if (s.step == steps_per_epoch) continue;
        const bool by_steps = o.checkpoint_steps > 0 && s.step % o.checkpoint_steps == 0;
        const bool by_time = o.checkpoint_minutes > 0 &&
                             std::chrono::duration<double>(Clock::now() - last_save).count() >= 60.0 * o.checkpoint_minutes;
        const bool stop = g_stop_requested.load();
        if (by_steps || by_time || stop) {
          save_last();
          last_save = Clock::now();
          note(fmt::format("checkpoint: '{}' at epoch {} step {}", checkpoints.last_path(), s.epoch + 1, s.step));
        }
        if (stop) {
          throw Error(ErrorKind::interrupted,
                      fmt::format("training stopped at epoch {} step {}; '{}' holds the state (--resume continues it)",
                                  s.epoch + 1, s.step, checkpoints.last_path()));
        }
      }
      wait = loader.wait_seconds();
    }
    const double train_s = std::chrono::duration<double>(Clock::now() - epoch_start).count();

    const auto validation_start = Clock::now();
    const Validation v = validate(*model, reader, val_indices, rows, identity, o, device, [&](int64_t b, int64_t n) {
      if (!out.progress) return;
      TrainProgress p;
      p.phase = "validate";
      p.epoch = s.epoch + 1;
      p.epochs = recipe.epochs;
      p.step = b;
      p.steps = n;
      p.loss = s.loss_count ? s.loss_sum / static_cast<double>(s.loss_count) : kNaN;
      p.lr = lr;
      p.last_val_r = s.history.empty() ? kNaN : s.history.back().val_mean_r;
      out.progress(p);
    }, group.get());
    last_validation_s = std::chrono::duration<double>(Clock::now() - validation_start).count();

    EpochReport e;
    e.epoch = s.epoch + 1;
    e.global_step = s.global_step;
    e.train_loss = s.loss_count ? s.loss_sum / static_cast<double>(s.loss_count) : kNaN;
    e.val_loss = v.loss;
    e.val_mean_r = v.mean_r;
    e.val_r = v.r;
    e.val_mse = v.mse;
    e.lr = lr;
    e.windows_per_s = train_s > 0 ? static_cast<double>(windows) / train_s : 0;
    e.data_wait_s = wait;
    e.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    const bool improved = val_indices.empty() || (std::isfinite(v.mean_r) && (!std::isfinite(s.best_val_r) || v.mean_r > s.best_val_r));
    e.best = improved;
    if (improved) {
      s.best_val_r = v.mean_r;
      s.best_epoch = e.epoch;
      s.bad_epochs = 0;
    } else {
      ++s.bad_epochs;
    }
    s.history.push_back(e);
    if (improved && lead) checkpoints.save_best(*model, s, e);

    // The state after this epoch: the next one starts at its first step.
    State after = s;
    ++after.epoch;
    after.step = 0;
    after.loss_sum = 0;
    after.loss_count = 0;
    if (lead) {
      checkpoints.save_last(*model, optimizer, after, state_json(after, recipe, steps_per_epoch, reader.fingerprint()));
      checkpoints.write_metrics(s);
    }
    last_save = Clock::now();
    if (out.epoch_done) out.epoch_done(e);
    if (recipe.patience > 0 && s.bad_epochs >= recipe.patience && s.epoch + 1 < recipe.epochs) {
      note(fmt::format("early stop: no better validation r for {} epochs (best {:.4f} at epoch {})", s.bad_epochs,
                       s.best_val_r, s.best_epoch));
      stopped_early = true;
      ++s.epoch;
      break;
    }
    if (g_stop_requested.load() && s.epoch + 1 < recipe.epochs) {
      throw Error(ErrorKind::interrupted,
                  fmt::format("training stopped after epoch {}; '{}' holds the state (--resume continues it)",
                              s.epoch + 1, checkpoints.last_path()));
    }
  }
  if (o.resume && timed_steps == 0 && !stopped_early) note(fmt::format("'{}': the run had already finished", last));

  result.epochs_run = static_cast<int64_t>(s.history.size());
  result.best_epoch = s.best_epoch;
  result.best_val_r = s.best_val_r;
  result.stopped_early = stopped_early;
  result.history = s.history;
  return result;
}

}  // namespace neurobolt
