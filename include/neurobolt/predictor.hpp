#pragma once
// A trained model of any architecture as `infer` and `eval` use it: 16 s EEG windows in, one value
// per ROI out. Plain C++ (no LibTorch types), so programs that only run models need no torch
// headers. load_predictor (in libneurobolt) opens any neurobolt checkpoint: the NeuroBOLT network
// or the ridge baseline.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace neurobolt {

class Predictor {
 public:
  virtual ~Predictor() = default;

  virtual std::string arch() const = 0;                          // "neurobolt", "ridge"
  virtual const std::vector<std::string>& channels() const = 0;  // input channels, in input order
  virtual const std::vector<std::string>& rois() const = 0;      // outputs, in output order
  virtual double sample_rate() const = 0;                        // Hz of the input windows
  virtual int64_t window_samples() const = 0;                    // samples per channel and window
  // The checkpoint's metadata (JSON object): "dataset" holds the preprocessing parameters and target
  // normalisation of the data it was trained on (see checkpoint_dataset_json), "training" its recipe.
  virtual const std::string& metadata_json() const = 0;

  // windows: [batch, channels(), window_samples()] float32 microvolts, row-major; out: [batch,
  // rois()] in the units the model was trained on (z-scored targets).
  virtual void predict(const float* windows, int64_t batch, float* out) = 0;
};

// The architecture a neurobolt checkpoint holds: its root attribute "arch" ("neurobolt" when absent,
// as in files written before the baseline existed). IoError when missing, FormatError when the
// file is not a neurobolt checkpoint.
std::string checkpoint_arch(const std::string& path);

// Opens a neurobolt checkpoint of any architecture; the model runs on `device` ("cpu", "cuda[:N]").
// IoError when missing, FormatError when not a checkpoint, DeviceError for an unusable device.
std::unique_ptr<Predictor> load_predictor(const std::string& path, const std::string& device = "cpu");

}  // namespace neurobolt
