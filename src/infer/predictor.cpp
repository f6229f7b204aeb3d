// load_predictor: any neurobolt checkpoint behind the plain-C++ Predictor interface.
#include <fmt/format.h>
#include <torch/torch.h>

#include <optional>

#include "neurobolt/checkpoint.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/predictor.hpp"
#include "neurobolt/ridge.hpp"

namespace neurobolt {
namespace {

class NetworkPredictor : public Predictor {
 public:
  NetworkPredictor(NeuroBOLT model, std::string metadata, const torch::Device& device)
      : model_(std::move(model)), metadata_(std::move(metadata)), device_(device) {
    model_->to(device_);
    model_->eval();
  }
  std::string arch() const override { return "neurobolt"; }
  const std::vector<std::string>& channels() const override { return model_->config().channels; }
  const std::vector<std::string>& rois() const override { return model_->config().rois; }
  double sample_rate() const override { return model_->config().sample_rate; }
  int64_t window_samples() const override { return model_->config().window_samples; }
  const std::string& metadata_json() const override { return metadata_; }

  void predict(const float* windows, int64_t batch, float* out) override {
    if (batch <= 0) return;
    torch::NoGradGuard no_grad;
    const auto& c = model_->config();
    auto x = torch::from_blob(const_cast<float*>(windows), {batch, c.num_channels(), c.window_samples}, torch::kFloat);
    auto y = model_->forward(x.to(device_)).to(torch::kCPU, torch::kFloat).contiguous();
    std::copy(y.data_ptr<float>(), y.data_ptr<float>() + y.numel(), out);
  }

 private:
  NeuroBOLT model_;
  std::string metadata_;
  torch::Device device_;
};

}  // namespace

std::unique_ptr<Predictor> load_predictor(const std::string& path, const std::string& device) {
  const std::string arch = checkpoint_arch(path);
  if (arch == "ridge") return load_ridge_predictor(path);
  if (arch != "neurobolt") {
    throw FormatError(fmt::format("'{}': unknown model architecture '{}' (this neurobolt knows neurobolt and ridge)",
                                  path, arch));
  }
  std::optional<torch::Device> where;
  try {
    where.emplace(device);
  } catch (const c10::Error&) {
    throw UsageError(fmt::format("device: expected cpu, cuda or cuda:N, found '{}'", device));
  }
  if (where->is_cuda() && !torch::cuda::is_available()) {
    throw DeviceError(fmt::format("device {}: no CUDA device is available", device));
  }
  std::string metadata;
  auto model = load_checkpoint(path, &metadata);
  return std::make_unique<NetworkPredictor>(std::move(model), std::move(metadata), *where);
}

}  // namespace neurobolt
