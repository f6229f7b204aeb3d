#include "model/fused_mlp.hpp"

#include <torch/torch.h>

namespace neurobolt::detail {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct FusedMlp : torch::autograd::Function<FusedMlp> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w1,
                               const torch::Tensor& b1, const torch::Tensor& w2, const torch::Tensor& b2) {
    auto hidden = torch::linear(x, w1, b1);
    ctx->save_for_backward({x, hidden, w1, w2});
    return torch::linear(torch::gelu(hidden), w2, b2);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &hidden = saved[1], &w1 = saved[2], &w2 = saved[3];
    auto grad = grad_outputs[0];
    const int64_t width = x.size(-1), hidden_width = hidden.size(-1), out_width = grad.size(-1);
    auto grad_2d = grad.reshape({-1, out_width});
    auto activated = torch::gelu(hidden).reshape({-1, hidden_width});
    auto grad_w2 = grad_2d.t().mm(activated);
    auto grad_b2 = grad_2d.sum(0);
    auto grad_hidden = torch::gelu_backward(grad_2d.mm(w2), hidden.reshape({-1, hidden_width}));
    auto grad_w1 = grad_hidden.t().mm(x.reshape({-1, width}));
    auto grad_b1 = grad_hidden.sum(0);
    auto grad_x = grad_hidden.mm(w1).reshape(x.sizes());
    return {grad_x, grad_w1, grad_b1, grad_w2, grad_b2};
  }
};

}  // namespace

torch::Tensor fused_mlp(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                        const torch::Tensor& b2) {
  if (!torch::GradMode::is_enabled()) return torch::linear(torch::gelu(torch::linear(x, w1, b1)), w2, b2);
  return FusedMlp::apply(x, w1, b1, w2, b2);
}

}  // namespace neurobolt::detail
