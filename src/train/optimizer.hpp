#pragma once
// The reference's optimisation recipe: parameter groups (weight decay, layer-wise lr scale), AdamW
// with torch's update rule and state we can save by parameter name, the per-step lr schedule.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "neurobolt/model.hpp"
#include "neurobolt/train.hpp"

namespace neurobolt::train {

struct ParamGroup {
  int64_t layer = 0;          // LaBraM layer id (0 = embeddings, i + 1 = block i, depth + 1 = the rest)
  bool decay = true;
  double weight_decay = 0.0;
  double lr_scale = 1.0;
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;
};

// The reference's get_parameter_groups with LayerDecayValueAssigner (see train.hpp).
std::vector<ParamGroup> parameter_groups(NeuroBOLTImpl& model, const TrainRecipe& recipe);

// Learning rate of global step `step` (0-based) of `total` (BEiT's cosine_scheduler).
double scheduled_lr(const TrainRecipe& recipe, int64_t steps_per_epoch, int64_t step);

class AdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, const TrainRecipe& recipe);
  // One update with learning rate base_lr * group.lr_scale; parameters without a gradient are skipped.
  void step(double base_lr);
  void zero_grad();
  // Scales the gradients so that their global L2 norm is at most max_norm (torch's
  // clip_grad_norm_); returns the norm before clipping.
  double clip_grad_norm(double max_norm);

  int64_t steps() const { return steps_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // First and second moments per parameter name (allocated at the first step).
  struct Moments {
    torch::Tensor exp_avg, exp_avg_sq;
  };
  const std::vector<std::pair<std::string, Moments>>& moments() const { return moments_; }
  // Restores the state saved from moments() and steps(); tensors are copied into place.
  void load(int64_t steps, const std::vector<std::pair<std::string, Moments>>& moments);

 private:
  std::vector<ParamGroup> groups_;
  TrainRecipe recipe_;
  int64_t steps_ = 0;
  std::vector<std::pair<std::string, Moments>> moments_;  // in group order
};

}  // namespace neurobolt::train
