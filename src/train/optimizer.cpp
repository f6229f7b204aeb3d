#include "train/optimizer.hpp"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

#include "neurobolt/error.hpp"

namespace neurobolt::train {

std::vector<ParamGroup> parameter_groups(NeuroBOLTImpl& model, const TrainRecipe& recipe) {
  const int64_t depth = model.config().temporal.depth;
  const int64_t num_layers = depth + 2;
  static const std::set<std::string> no_decay_names = {"pos_embed", "cls_token", "time_embed"};
  auto layer_of = [&](const std::string& name) -> int64_t {
    if (name == "cls_token" || name == "mask_token" || name == "pos_embed") return 0;
    if (name.rfind("patch_embed", 0) == 0) return 0;
    if (name.rfind("blocks.", 0) == 0) return std::stoll(name.substr(7, name.find('.', 7) - 7)) + 1;
    return num_layers - 1;
  };
  std::map<std::pair<int64_t, bool>, ParamGroup> groups;
  for (const auto& item : model.named_parameters()) {
    const auto& name = item.key();
    const auto& p = item.value();
    if (!p.requires_grad()) continue;
    const bool ends_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool decay = !(p.dim() <= 1 || ends_bias || no_decay_names.count(name));
    const int64_t layer = recipe.layer_decay < 1.0 ? layer_of(name) : num_layers - 1;
    auto& g = groups[{layer, decay}];
    g.layer = layer;
    g.decay = decay;
    g.weight_decay = decay ? recipe.weight_decay : 0.0;
    g.lr_scale = std::pow(recipe.layer_decay, static_cast<double>(num_layers - 1 - layer));
    g.names.push_back(name);
    g.params.push_back(p);
  }
  std::vector<ParamGroup> out;
  for (auto& [key, g] : groups) out.push_back(std::move(g));
  return out;
}

double scheduled_lr(const TrainRecipe& r, int64_t steps_per_epoch, int64_t step) {
  const int64_t total = r.epochs * steps_per_epoch;
  const auto warmup = static_cast<int64_t>(r.warmup_epochs * static_cast<double>(steps_per_epoch));
  if (step < warmup) {
    // np.linspace(warmup_lr, lr, warmup): both ends included.
    if (warmup == 1) return r.warmup_lr;
    return r.warmup_lr + (r.lr - r.warmup_lr) * static_cast<double>(step) / static_cast<double>(warmup - 1);
  }
  const int64_t n = total - warmup;
  if (n <= 0) return r.min_lr;
  const double i = static_cast<double>(std::min(step - warmup, n - 1));
  return r.min_lr + 0.5 * (r.lr - r.min_lr) * (1.0 + std::cos(M_PI * i / static_cast<double>(n)));
}

AdamW::AdamW(std::vector<ParamGroup> groups, const TrainRecipe& recipe) : groups_(std::move(groups)), recipe_(recipe) {
  for (const auto& g : groups_)
    for (std::size_t i = 0; i < g.params.size(); ++i) moments_.push_back({g.names[i], {}});
}

void AdamW::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params)
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

double AdamW::clip_grad_norm(double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (auto& g : groups_)
    for (auto& p : g.params)
      if (p.grad().defined()) norms.push_back(p.grad().norm(2).to(torch::kDouble));
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm(2).item<double>();
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (auto& g : groups_)
      for (auto& p : g.params)
        if (p.grad().defined()) p.grad().mul_(coef);
  }
  return total;
}

void AdamW::step(double base_lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double b1 = recipe_.beta1, b2 = recipe_.beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, static_cast<double>(steps_)));
  std::size_t k = 0;
  for (auto& g : groups_) {
    const double lr = base_lr * g.lr_scale;
    for (auto& p : g.params) {
      auto& m = moments_[k++].second;
      const auto& grad = p.grad();
      if (!grad.defined()) continue;
      if (!m.exp_avg.defined()) {
        m.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
        m.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      }
      // torch.optim.AdamW (single-tensor path), in the same order of operations.
      p.mul_(1.0 - lr * g.weight_decay);
      m.exp_avg.mul_(b1).add_(grad, 1.0 - b1);
      m.exp_avg_sq.mul_(b2).addcmul_(grad, grad, 1.0 - b2);
      auto denom = (m.exp_avg_sq.sqrt() / bias2_sqrt).add_(recipe_.eps);
      p.addcdiv_(m.exp_avg, denom, -lr / bias1);
    }
  }
}

void AdamW::load(int64_t steps, const std::vector<std::pair<std::string, Moments>>& moments) {
  std::map<std::string, const Moments*> by_name;
  for (const auto& [name, m] : moments) by_name[name] = &m;
  std::size_t k = 0;
  for (auto& g : groups_) {
    for (std::size_t i = 0; i < g.params.size(); ++i, ++k) {
      auto it = by_name.find(g.names[i]);
      auto& m = moments_[k].second;
      if (it == by_name.end() || !it->second->exp_avg.defined()) {
        m = {};
        continue;
      }
      const auto& p = g.params[i];
      for (const auto* t : {&it->second->exp_avg, &it->second->exp_avg_sq}) {
        if (t->sizes() != p.sizes()) {
          throw FormatError(fmt::format("optimizer state of '{}': shape does not match the parameter", g.names[i]));
        }
      }
      m.exp_avg = it->second->exp_avg.to(p.device(), p.scalar_type()).clone();
      m.exp_avg_sq = it->second->exp_avg_sq.to(p.device(), p.scalar_type()).clone();
    }
  }
  steps_ = steps;
}

}  // namespace neurobolt::train
