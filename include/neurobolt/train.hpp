#pragma once
// Training a NeuroBOLT model on a prepared dataset (neurobolt prepare), with the reference's recipe
// (soupeeli/NeuroBOLT main.py + engine.py), checkpoints that resume bit for bit, and a validation
// split that alone picks the saved model. Plain C++: no LibTorch types in this header.
//
// The recipe, step by step (every number is a TrainRecipe field and is recorded in the checkpoint):
//  * AdamW (torch's update: decoupled decay p -= lr * wd * p, bias-corrected moments), betas
//    0.9/0.999, eps 1e-8, weight decay 0.05 except on biases, every 1-D parameter (norms, layer
//    scales) and pos_embed / cls_token / time_embed (the reference's no_weight_decay set).
//  * Layer-wise learning-rate decay 0.65 over the temporal branch: a parameter's lr is scaled by
//    decay^(depth + 1 - layer) with layer 0 for cls_token, pos_embed and patch_embed, layer i + 1
//    for blocks.i, layer depth + 1 (scale 1) for everything else (time_embed, fc_norm, the spectral
//    branch, the head), as LaBraM's LayerDecayValueAssigner.
//  * Learning rate per step: linear warm-up from warmup_lr to lr over warmup_epochs epochs, then
//    cosine from lr to min_lr over the remaining steps (BEiT's cosine_scheduler). Steps per epoch =
//    training windows / batch, the last partial batch dropped (drop_last, as the reference).
//  * Loss: MSE on the z-scored targets. Optional clipping of the global gradient norm.
//  * Each epoch visits the training windows in a seeded random order (chunk by chunk of the HDF5
//    file, so each compressed chunk is inflated once); validation computes Pearson r and MSE per
//    ROI over all validation windows. best.h5 is the epoch with the highest mean validation r
//    (the reference selects on TEST correlation; we never look at the test split).
//  * Determinism: with the same seed, thread count and dataset, two runs give the same weights;
//    a run resumed from any last.h5 (also one written in the middle of an epoch) ends with the
//    same weights as the uninterrupted run. last.h5 holds the weights, the AdamW moments and step,
//    the dropout generator's state, the epoch and step within it and the metrics history.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace neurobolt {

struct TrainRecipe {
  double lr = 3e-4;
  double min_lr = 1e-6;
  double warmup_lr = 1e-6;
  double warmup_epochs = 5;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.05;
  double layer_decay = 0.65;  // 1 disables layer-wise decay
  int64_t batch = 16;
  int64_t epochs = 20;
  std::optional<double> clip_grad;  // max global L2 norm of the gradients; off by default
  int64_t patience = 0;             // stop after this many epochs without a better val r; 0 = never
  uint64_t seed = 0;

  std::string to_json() const;  // a JSON object with every field
};

struct TrainOptions {
  // Model architecture: a built-in config name or a JSON file, then "key=value" overrides
  // (with_overrides). Channels and ROIs come from the dataset unless `init` fixes the channels.
  std::string config = "neurobolt-base";
  std::vector<std::string> overrides;
  // Start from weights: a neurobolt checkpoint (.h5), a reference NeuroBOLT .pth, or a LaBraM
  // pre-training .pth (init_from = "labram"). "" = from scratch (the reference initialisation).
  std::string init;
  std::string init_from = "auto";  // "auto" (by content), "neurobolt", "labram"
  TrainRecipe recipe;
  int64_t fold = 0;  // kfold datasets: the fold held out

  bool resume = false;  // continue RUN_DIR/last.h5
  bool force = false;   // replace an existing run's outputs
  std::string device = "cpu";

  double checkpoint_minutes = 10.0;  // also write last.h5 within an epoch this often; 0 = epoch ends only
  int64_t checkpoint_steps = 0;      // ... or every this many steps (0 = off)
  int64_t prefetch_batches = 4;      // batches the background reader keeps ready
  int64_t eval_batch = 32;

  // Data-parallel training (distributed_environment(): torchrun's or SLURM's variables, or
  // `neurobolt launch`): one process per rank, rendezvous through c10d's TCPStore, gradients
  // averaged with bucketed all-reduce while backward runs: Gloo on the CPU; NCCL on CUDA, where the
  // LibTorch has it, each rank on GPU `device`'s index + its local rank. recipe.batch is the global
  // batch, split evenly across ranks; every rank reads only its share; validation is split and
  // its predictions gathered; rank 0 alone writes the run folder. At start-up every rank's
  // config, recipe, dataset fingerprint and initial weights must equal rank 0's. A rank that
  // exits or falls silent for `distributed_timeout_s` stops the others with an IoError.
  bool distributed = false;
  double distributed_timeout_s = 300;
};

struct TrainProgress {
  std::string phase;  // "train" or "validate"
  int64_t epoch = 0;  // 1-based
  int64_t epochs = 0;
  int64_t step = 0;   // 1-based, within the epoch (validate: batches done)
  int64_t steps = 0;  // per epoch (validate: batches)
  double loss = 0;    // running mean training loss of the epoch
  double lr = 0;      // the base learning rate of this step
  double windows_per_s = 0;
  double eta_s = 0;          // to the end of training
  double last_val_r = 0;     // NaN before the first validation
};

struct EpochReport {
  int64_t epoch = 0;  // 1-based
  int64_t global_step = 0;
  double train_loss = 0;
  double val_loss = 0;
  double val_mean_r = 0;  // NaN without validation windows
  std::vector<double> val_r, val_mse;  // per ROI
  double lr = 0;                       // at the epoch's last step
  double windows_per_s = 0;            // training throughput (forward + backward + update + waiting for data)
  double data_wait_s = 0;              // time the training loop waited for the reader
  double seconds = 0;
  bool best = false;
  std::string json() const;  // the metrics.jsonl line
};

struct TrainCallbacks {
  std::function<void(const TrainProgress&)> progress;  // after each step and validation batch
  std::function<void(const EpochReport&)> epoch_done;
  std::function<void(const std::string&)> note;  // decisions and events, one line each
};

struct TrainResult {
  std::string best_path, last_path, metrics_path;
  int64_t epochs_run = 0;  // completed epochs in total (including before a resume)
  int64_t best_epoch = 0;
  double best_val_r = 0;
  bool stopped_early = false;
  std::vector<EpochReport> history;
};

// Trains on a prepared dataset into run_dir (created if missing): run_dir/best.h5, last.h5 and
// metrics.jsonl. Existing outputs are an IoError unless options.force or options.resume.
// ConfigError for a dataset/config/init mismatch, naming both sides. When request_training_stop()
// is called (e.g. from a SIGINT handler), training stops after the current step, writes last.h5 and
// throws an Error of kind ErrorKind::interrupted.
TrainResult train_model(const std::string& dataset_path, const std::string& run_dir, const TrainOptions& options,
                        const TrainCallbacks& callbacks = {});

// Async-signal-safe: asks a running train_model to stop at the next step boundary.
void request_training_stop() noexcept;

}  // namespace neurobolt
