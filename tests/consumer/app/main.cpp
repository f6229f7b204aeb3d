// Builds the tiny model from its built-in config, predicts ROI values for two windows of
// (synthetic) EEG given with channel names, and saves and reloads a checkpoint; then the whole
// product through the public headers alone: simulate, prepare, train (NeuroBOLT and ridge),
// infer and evaluate.
#include <neurobolt/checkpoint.hpp>
#include <neurobolt/dataset.hpp>
#include <neurobolt/error.hpp>
#include <neurobolt/eval_job.hpp>
#include <neurobolt/infer.hpp>
#include <neurobolt/model.hpp>
#include <neurobolt/ridge.hpp>
#include <neurobolt/simulate.hpp>
#include <neurobolt/train.hpp>
#include <torch/torch.h>

#include <cmath>
#include <iostream>

namespace {

// simulate -> prepare -> train -> infer -> eval; returns the evaluated mean r (finite when it worked).
double pipeline(const std::string& dir) {
  neurobolt::SimulationConfig sim = neurobolt::SimulationConfig::defaults();
  sim.subjects = 3;
  sim.minutes = 1.5;
  sim.sample_rate = 250.0;
  sim.threads = 1;
  neurobolt::write_simulated_dataset(sim, dir + "/sim", /*force=*/true);

  neurobolt::PrepareOptions prepare;
  prepare.channels = {"Fp1", "Fp2", "C3", "C4", "T7", "T8", "O1", "O2"};
  prepare.rois = {"calcarine", "thalamus"};
  prepare.split.mode = neurobolt::SplitMode::cross_subject;
  prepare.split.val_subjects = {"02"};
  prepare.split.test_subjects = {"03"};
  prepare.force = true;
  neurobolt::prepare_bids(dir + "/sim", dir + "/data.h5", prepare);

  neurobolt::TrainOptions train;
  train.config = "neurobolt-tiny";
  train.recipe.epochs = 1;
  train.recipe.batch = 4;
  train.force = true;
  const auto trained = neurobolt::train_model(dir + "/data.h5", dir + "/run", train);
  neurobolt::RidgeTrainOptions ridge;
  ridge.force = true;
  neurobolt::train_ridge(dir + "/data.h5", dir + "/ridge", ridge);

  neurobolt::InferOptions infer;
  infer.output_dir = dir + "/pred";
  infer.subjects = {"03"};
  infer.force = true;
  const auto inferred = neurobolt::run_inference(trained.best_path, {dir + "/sim"}, infer);

  neurobolt::EvalJob job;
  job.source = trained.best_path;
  job.data = dir + "/data.h5";
  job.baseline = dir + "/ridge/best.h5";
  job.report_path = dir + "/report.html";
  job.force = true;
  const auto outcome = neurobolt::run_evaluation(job);
  std::cout << "pipeline: " << inferred.done << " runs inferred, test mean r " << outcome.model.mean_r
            << ", ridge " << outcome.baseline->mean_r << "\n";
  return inferred.done == 1 ? outcome.model.mean_r : NAN;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer OUTPUT_DIR\n";
    return 2;
  }
  try {
    auto config = neurobolt::builtin_config("neurobolt-tiny");
    neurobolt::NeuroBOLT model(config);
    model->eval();
    torch::NoGradGuard no_grad;
    auto eeg = torch::randn({2, config.num_channels(), config.window_samples}) * 20.0;  // microvolts
    auto prediction = model->forward(eeg, config.channels);
    const std::string path = std::string(argv[1]) + "/tiny.h5";
    neurobolt::save_checkpoint(*model, path, /*force=*/true);
    auto reloaded = neurobolt::load_checkpoint(path);
    const bool same = torch::equal(reloaded->forward(eeg), prediction);
    std::cout << "prediction " << prediction.size(0) << "x" << prediction.size(1) << ", reload "
              << (same ? "identical" : "DIFFERENT") << "\n";
    if (!same) return 1;
    return std::isfinite(pipeline(argv[1])) ? 0 : 1;
  } catch (const neurobolt::Error& e) {
    std::cerr << "neurobolt: " << e.what() << "\n";
    return e.exit_code();
  }
}
