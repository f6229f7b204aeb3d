// Builds the tiny model from its built-in config, predicts ROI values for two windows of
// (synthetic) EEG given with channel names, and saves and reloads a checkpoint.
#include <neurobolt/checkpoint.hpp>
#include <neurobolt/error.hpp>
#include <neurobolt/model.hpp>
#include <torch/torch.h>

#include <iostream>

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
    return same ? 0 : 1;
  } catch (const neurobolt::Error& e) {
    std::cerr << "neurobolt: " << e.what() << "\n";
    return e.exit_code();
  }
}
