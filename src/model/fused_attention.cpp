#include "model/fused_attention.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "model/attention_kernel.hpp"

namespace neurobolt::detail {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

AttentionShape shape_of(const torch::Tensor& q, double scale) {
  return AttentionShape{q.size(0) * q.size(1), q.size(2), q.size(3), static_cast<float>(scale)};
}

struct FusedAttention : torch::autograd::Function<FusedAttention> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in, const torch::Tensor& k_in,
                               const torch::Tensor& v_in, double scale) {
    auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    auto out = torch::empty_like(q);
    auto lse = torch::empty({q.size(0), q.size(1), q.size(2)}, q.options());
    const auto shape = shape_of(q, scale);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float *op = out.data_ptr<float>(), *lp = lse.data_ptr<float>();
    at::parallel_for(0, shape.heads_total, 1, [&](int64_t begin, int64_t end) {
      attention_forward_cpu(shape, qp, kp, vp, op, lp, begin, end);
    });
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    auto grad_out = grad_outputs[0].contiguous();
    auto grad_q = torch::empty_like(q), grad_k = torch::empty_like(k), grad_v = torch::empty_like(v);
    const auto shape = shape_of(q, ctx->saved_data["scale"].toDouble());
    at::parallel_for(0, shape.heads_total, 1, [&](int64_t begin, int64_t end) {
      attention_backward_cpu(shape, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(),
                             out.data_ptr<float>(), lse.data_ptr<float>(), grad_out.data_ptr<float>(),
                             grad_q.data_ptr<float>(), grad_k.data_ptr<float>(), grad_v.data_ptr<float>(), begin, end);
    });
    return {grad_q, grad_k, grad_v, torch::Tensor()};
  }
};

}  // namespace

bool fused_attention_supported(const torch::Tensor& q) {
  return q.device().is_cpu() && q.scalar_type() == torch::kFloat && q.dim() == 4;
}

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  TORCH_CHECK(fused_attention_supported(q) && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
              "fused_attention: expects float32 CPU tensors of equal shape [B, H, N, d]");
  return FusedAttention::apply(q, k, v, scale);
}

torch::Tensor composite_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  return torch::matmul((q * scale), k.transpose(-2, -1)).softmax(-1).matmul(v);
}

}  // namespace neurobolt::detail
