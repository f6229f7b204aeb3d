#pragma once
// Training randomness (dropout, stochastic depth) drawn per window: each window of a batch has
// its own generator, seeded from the default generator once per forward pass, and every mask
// row of window i comes from generator i. A window's masks are then the same whether the batch
// runs whole or in parts on several threads (train_step_in_parts), and the default generator
// advances by the same draws either way (what checkpoints save and --resume restores).
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <vector>

namespace neurobolt::detail {

// One generator per window, seeded from the default CPU generator (one draw each).
std::vector<at::Generator> draw_window_generators(int64_t windows);

// Makes `generators` (one per window of the batch this thread's forward sees) the source of
// the masks below, on this thread, for the scope's lifetime. Nests; null = none.
class WindowRandomScope {
 public:
  explicit WindowRandomScope(const std::vector<at::Generator>* generators);
  ~WindowRandomScope();
  WindowRandomScope(const WindowRandomScope&) = delete;
  WindowRandomScope& operator=(const WindowRandomScope&) = delete;

 private:
  const std::vector<at::Generator>* saved_;
};

// The generators of this thread's scope (null outside one).
const std::vector<at::Generator>* window_generators();

// Dropout of x ([batch, ...]) with probability p: torch::dropout outside a scope, else masks
// drawn per window (x * mask / (1 - p), the mask kept as bool for backward).
torch::Tensor window_dropout(const torch::Tensor& x, double p, bool training);

// The same with a torch::nn::Dropout module's probability and mode.
template <typename DropoutModule>
torch::Tensor window_dropout(const DropoutModule& module, const torch::Tensor& x) {
  return window_dropout(x, module->options.p(), module->is_training());
}

// A [batch, 1, ..., 1] (rank `dims`) tensor of Bernoulli(keep) draws, one per window, in x's
// dtype and device.
torch::Tensor window_bernoulli(const torch::Tensor& x, int64_t dims, double keep);

}  // namespace neurobolt::detail
