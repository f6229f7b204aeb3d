// neurobolt train: a prepared dataset -> RUN_DIR/best.h5, last.h5, metrics.jsonl (the deep model,
// include/neurobolt/train.hpp, or the ridge baseline, include/neurobolt/ridge.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "common.hpp"
#include "core/plural.hpp"
#include "neurobolt/checkpoint.hpp"
#include "neurobolt/distributed.hpp"
#include "neurobolt/error.hpp"
#include "prepare_options.hpp"
#include "neurobolt/ridge.hpp"
#include "neurobolt/train.hpp"

namespace neurobolt::cli {
namespace {

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::lround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string r_text(double r) { return std::isfinite(r) ? fmt::format("{:+.3f}", r) : "n/a"; }

// A progress line redrawn in place on a terminal; on a pipe or file, one plain line every 30 s.
class TrainDisplay {
 public:
  TrainDisplay() : quiet_(global_options().quiet), tty_(::isatty(STDERR_FILENO) == 1) {}
  void progress(const TrainProgress& p) {
    if (quiet_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!tty_ && now - last_ < std::chrono::seconds(30)) return;
    if (tty_ && now - last_ < std::chrono::milliseconds(200) && p.step != p.steps) return;
    last_ = now;
    std::string line;
    if (p.phase == "train") {
      const int width = 20;
      const int filled = static_cast<int>(width * p.step / std::max<int64_t>(p.steps, 1));
      line = fmt::format("epoch {}/{} [{}{}] step {}/{} loss {:.4f} val r {} {:.1f} windows/s ETA {}", p.epoch,
                         p.epochs, std::string(filled, '#'), std::string(width - filled, '.'), p.step, p.steps, p.loss,
                         r_text(p.last_val_r), p.windows_per_s, duration(p.eta_s));
    } else {
      line = fmt::format("epoch {}/{} validating {}/{}", p.epoch, p.epochs, p.step, p.steps);
    }
    if (tty_) {
      std::cerr << "\r" << line << "\033[K" << std::flush;
    } else {
      std::cerr << line << std::endl;
    }
  }
  void stage(const std::string& name, double fraction) {
    if (quiet_) return;
    const auto now = std::chrono::steady_clock::now();
    if (fraction < 1.0 && now - last_ < (tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(30000))) return;
    last_ = now;
    const std::string text = fmt::format("ridge: {} {:.0f}%", name, 100 * fraction);
    if (tty_) {
      std::cerr << "\r" << text << "\033[K" << std::flush;
    } else {
      std::cerr << text << std::endl;
    }
  }
  void line(const std::string& text) {
    if (quiet_) return;
    if (tty_) std::cerr << "\r\033[K";
    std::cerr << text << std::endl;
  }

 private:
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point last_{};
};

extern "C" void on_sigint(int) {
  request_training_stop();
  // A second Ctrl-C ends the process at once.
  std::signal(SIGINT, SIG_DFL);
}

std::vector<std::pair<double, double>> parse_bands(const std::vector<std::string>& texts) {
  std::vector<std::pair<double, double>> bands;
  for (const auto& t : texts) {
    const auto dash = t.find('-');
    try {
      if (dash == std::string::npos) throw std::invalid_argument("no dash");
      std::size_t used = 0;
      const double low = std::stod(t.substr(0, dash), &used);
      const double high = std::stod(t.substr(dash + 1));
      bands.emplace_back(low, high);
    } catch (const std::exception&) {
      throw UsageError(fmt::format("--bands: expected LOW-HIGH in Hz (e.g. 8-13), found '{}'", t));
    }
  }
  return bands;
}

// DATA as given, or for a BIDS root the cache "<RUN_DIR>.data.h5" prepared beside the run folder
// (reused while its fingerprint matches; replaced when the inputs or options changed).
std::string dataset_for(const std::string& data, const std::string& run_dir, const TrainOptions& t,
                        const DataOptions& data_options, const CLI::App& cmd) {
  std::error_code ec;
  if (!std::filesystem::is_directory(data, ec)) {
    const auto given = given_data_options(cmd);
    if (!given.empty()) {
      throw UsageError(fmt::format("{}: prepares a BIDS root, but '{}' is a prepared dataset (its options were fixed "
                                   "by neurobolt prepare)",
                                   given.front(), data));
    }
    return data;
  }
  PrepareOptions options = make_prepare_options(data_options, cmd);
  // The window grid of the architecture; the channels of an --init checkpoint, else the data's.
  const bool init_checkpoint = !t.init.empty() && is_checkpoint_file(t.init);
  const ModelConfig arch =
      init_checkpoint ? read_checkpoint_config(t.init) : with_overrides(load_config(t.config), t.overrides);
  options.sample_rate = arch.sample_rate;
  options.window_samples = arch.window_samples;
  options.config_name = arch.name;
  if (options.channels.empty() && init_checkpoint) options.channels = arch.channels;
  std::string cache = std::filesystem::path(run_dir).lexically_normal().string();
  while (cache.size() > 1 && cache.back() == '/') cache.pop_back();
  cache += ".data.h5";
  PrepareResult result;
  try {
    result = prepare_with_progress(data, nullptr, cache, options);
  } catch (const IoError&) {
    // An older cache of ours from other inputs or options: replace it. Anything else stays.
    try {
      DatasetReader ours(cache);
    } catch (const Error&) {
      throw IoError(fmt::format("'{}' exists and is not a neurobolt dataset: not replaced", cache));
    }
    options.force = true;
    result = prepare_with_progress(data, nullptr, cache, options);
  }
  note(result.up_to_date ? fmt::format("dataset: '{}' (prepared before from the same inputs and options)", cache)
                         : fmt::format("dataset: prepared '{}' ({} windows)", cache, result.num_windows));
  return cache;
}

}  // namespace

void register_train(CLI::App& app) {
  struct Options {
    std::string data, run_dir, arch = "neurobolt";
    TrainOptions train;
    std::vector<double> betas;
    double clip_grad = 0;
    // ridge
    std::vector<std::string> bands;
    int64_t sub_windows = 8, inner_folds = 5;
    std::vector<double> alphas;
    DataOptions data_options;  // DATA as a BIDS root
  };
  auto o = std::make_shared<Options>();
  auto& t = o->train;
  auto& r = t.recipe;
  auto* cmd = app.add_subcommand("train", "Train a model (NeuroBOLT or the ridge baseline) on a prepared dataset");
  cmd->footer(
      "The recipe defaults are the reference's (soupeeli/NeuroBOLT main.py). The saved best.h5 is the epoch with the "
      "highest mean validation Pearson r over ROIs (the reference selects on the test split; we never look at it). "
      "Channels and ROIs come from the dataset unless --init fixes the channels. Ctrl-C writes last.h5 and exits "
      "130; --resume continues from it and ends with the same weights as an uninterrupted run (same --threads).");
  cmd->add_option("DATA", o->data,
                  "Prepared dataset (.h5 from neurobolt prepare), or a BIDS root: prepared with the options of "
                  "'neurobolt prepare' below into RUN_DIR.data.h5, reused while its inputs are unchanged")
      ->required();
  cmd->add_option("-o,--output", o->run_dir, "Run folder: best.h5, last.h5, metrics.jsonl")->required();
  cmd->add_option("--arch", o->arch, "Model: the NeuroBOLT network or the ridge band-power baseline")
      ->capture_default_str()
      ->check(CLI::IsMember({"neurobolt", "ridge"}));
  cmd->add_option("--config", t.config, "Architecture: built-in name (neurobolt-base, neurobolt-tiny) or JSON file")
      ->capture_default_str();
  cmd->add_option("--set", t.overrides, "Override a config key, KEY=VALUE (e.g. temporal.depth=4), repeatable");
  cmd->add_option("--init", t.init,
                  "Start from weights: a neurobolt checkpoint, a reference NeuroBOLT .pth or LaBraM weights (.pth)");
  cmd->add_option("--init-from", t.init_from, "What --init is")->capture_default_str()->check(
      CLI::IsMember({"auto", "neurobolt", "labram"}));
  cmd->add_option("--epochs", r.epochs, "Epochs")->capture_default_str()->check(between(1, 1e6));
  cmd->add_option("--batch", r.batch, "Windows per training step")->capture_default_str()->check(between(1, 8192));
  cmd->add_option("--lr", r.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr", r.min_lr, "Learning rate at the end of the cosine")->capture_default_str();
  cmd->add_option("--warmup-lr", r.warmup_lr, "Learning rate at the start of the warm-up")->capture_default_str();
  cmd->add_option("--warmup-epochs", r.warmup_epochs, "Linear warm-up length in epochs")->capture_default_str();
  cmd->add_option("--betas", o->betas, "AdamW betas (two numbers)")->expected(2)->default_str("0.9 0.999");
  cmd->add_option("--eps", r.eps, "AdamW epsilon")->capture_default_str();
  cmd->add_option("--weight-decay", r.weight_decay, "AdamW weight decay (not on biases, norms, embeddings)")
      ->capture_default_str();
  cmd->add_option("--layer-decay", r.layer_decay, "Layer-wise learning-rate decay over the temporal blocks (1 = off)")
      ->capture_default_str();
  cmd->add_option("--clip-grad", o->clip_grad, "Clip the global gradient norm to this value (default off)");
  cmd->add_option("--patience", r.patience, "Stop after this many epochs without a better validation r (0 = never)")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--seed", r.seed, "Seed of initialisation, data order and dropout")->capture_default_str();
  cmd->add_option("--fold", t.fold, "kfold datasets: the held-out fold")->capture_default_str();
  cmd->add_flag("--resume", t.resume, "Continue the run in RUN_DIR from its last.h5");
  cmd->add_flag("--distributed", t.distributed,
                "Data-parallel over the processes that torchrun, SLURM or 'neurobolt launch' started (automatic when "
                "their WORLD_SIZE or SLURM_NTASKS is above 1); --batch is the global batch; with --device cuda:N "
                "a machine's local rank i uses cuda:N+i (NCCL)");
  cmd->add_option("--dist-timeout", t.distributed_timeout_s,
                  "Seconds a rank waits for the others before giving up with an error")
      ->capture_default_str()
      ->check(between(1, 86400));
  cmd->add_option("--checkpoint-minutes", t.checkpoint_minutes, "Also write last.h5 within an epoch this often (0 = off)")
      ->capture_default_str();
  cmd->add_option("--checkpoint-steps", t.checkpoint_steps, "... or every this many steps (0 = off)")
      ->capture_default_str();
  cmd->add_option("--prefetch", t.prefetch_batches, "Batches the background reader keeps ready")
      ->capture_default_str()
      ->check(between(1, 1024));
  cmd->add_option("--eval-batch", t.eval_batch, "Windows per validation batch")->capture_default_str()->check(
      between(1, 8192));
  cmd->add_option("--bands", o->bands, "ridge: frequency bands LOW-HIGH in Hz (default 1-4 4-8 8-13 13-30 30-45)");
  cmd->add_option("--sub-windows", o->sub_windows, "ridge: sub-windows per 16 s window (lags of the FIR model)")
      ->capture_default_str()
      ->check(between(1, 1000));
  cmd->add_option("--alphas", o->alphas, "ridge: penalty grid (default 10^-1 ... 10^6)");
  cmd->add_option("--inner-folds", o->inner_folds, "ridge: inner cross-validation folds (grouped by run)")
      ->capture_default_str()
      ->check(between(2, 100));
  add_data_options(*cmd, o->data_options, "--split-seed");
  add_standard_options(*cmd);

  cmd->callback([o, cmd] {
    apply_runtime();
    auto& g = global_options();
    TrainDisplay display;
    // Each architecture has its own options: the other's are refused, not ignored.
    if (o->arch == "ridge") {
      for (const char* option :
           {"--config", "--set", "--init", "--init-from", "--epochs", "--batch", "--lr", "--min-lr", "--warmup-lr",
            "--warmup-epochs", "--betas", "--eps", "--weight-decay", "--layer-decay", "--clip-grad", "--patience",
            "--seed", "--resume", "--checkpoint-minutes", "--checkpoint-steps", "--prefetch", "--eval-batch",
            "--device", "--precision", "--dist-timeout"})
        refuse_option(*cmd, option, "trains NeuroBOLT, not the ridge baseline (--arch ridge, fitted in closed form on "
                                    "the CPU)");
    } else {
      for (const char* option : {"--bands", "--sub-windows", "--alphas", "--inner-folds"})
        refuse_option(*cmd, option, "applies to the ridge baseline only (--arch ridge)");
    }
    const auto env = distributed_environment();
    if (!o->train.distributed) o->train.distributed = env && env->world_size > 1;
    // Rank 0 reports; the others print only warnings and errors.
    if (o->train.distributed && env && env->rank != 0) g.quiet = true;
    if (o->train.distributed && o->arch == "ridge") {
      throw UsageError("--distributed: the ridge baseline is fitted in closed form by one process (--arch ridge)");
    }
    if (std::error_code ec; o->train.distributed && std::filesystem::is_directory(o->data, ec)) {
      throw UsageError(fmt::format("--distributed: '{}' is a BIDS root; prepare it once with 'neurobolt prepare' and "
                                   "train every rank on that file (ranks would otherwise all write the same cache)",
                                   o->data));
    }
    o->data = dataset_for(o->data, o->run_dir, o->train, o->data_options, *cmd);
    if (o->arch == "ridge") {
      RidgeTrainOptions ro;
      if (!o->bands.empty()) ro.features.bands = parse_bands(o->bands);
      ro.features.sub_windows = o->sub_windows;
      ro.alphas = o->alphas;
      ro.inner_folds = o->inner_folds;
      ro.fold = o->train.fold;
      ro.force = g.force;
      auto result = train_ridge(o->data, o->run_dir, ro, [&](const std::string& stage, double fraction) {
        display.stage(stage, fraction);
      });
      for (const auto& n : result.notes) display.line(n);
      print_result(fmt::format("ridge: {} features, {} training / {} validation windows, {} inner folds, {:.1f} s\n",
                              result.features, result.train_windows, result.val_windows, result.inner_folds,
                              result.seconds));
      std::vector<std::string> per_roi;
      for (double x : result.val_r) per_roi.push_back(r_text(x));
      print_result(fmt::format("validation mean r {}  (per ROI: {})\n", r_text(result.val_mean_r),
                              fmt::join(per_roi, " ")));
      print_result(fmt::format("wrote {} and {}\n", result.best_path, result.metrics_path));
      return;
    }
    auto& t = o->train;
    if (!o->betas.empty()) {
      t.recipe.beta1 = o->betas[0];
      t.recipe.beta2 = o->betas[1];
    }
    if (cmd->count("--clip-grad")) t.recipe.clip_grad = o->clip_grad;
    t.device = g.device;
    t.force = g.force;
    TrainCallbacks callbacks;
    callbacks.progress = [&](const TrainProgress& p) { display.progress(p); };
    callbacks.note = [&](const std::string& line) { display.line(line); };
    callbacks.epoch_done = [&](const EpochReport& e) {
      display.line(fmt::format("epoch {}: train loss {:.4f}, val loss {:.4f}, val r {} (per ROI min {} max {}), "
                               "{:.1f} windows/s, {}{}",
                               e.epoch, e.train_loss, e.val_loss, r_text(e.val_mean_r),
                               e.val_r.empty() ? "n/a" : r_text(*std::min_element(e.val_r.begin(), e.val_r.end())),
                               e.val_r.empty() ? "n/a" : r_text(*std::max_element(e.val_r.begin(), e.val_r.end())),
                               e.windows_per_s, duration(e.seconds), e.best ? " (best)" : ""));
    };
    std::signal(SIGINT, on_sigint);
    const auto result = train_model(o->data, o->run_dir, t, callbacks);
    std::signal(SIGINT, SIG_DFL);
    print_result(fmt::format("trained {}{}; best validation mean r {} at epoch {}\n",
                            count_of(result.epochs_run, "epoch"), result.stopped_early ? " (early stop)" : "",
                            r_text(result.best_val_r), result.best_epoch));
    print_result(fmt::format("wrote {}, {} and {}\n", result.best_path, result.last_path, result.metrics_path));
  });
}

}  // namespace neurobolt::cli
