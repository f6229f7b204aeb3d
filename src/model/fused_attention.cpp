#include "model/fused_attention.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "model/attention_kernel.hpp"

namespace neurobolt::detail {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

AttentionShape shape_of(const torch::Tensor& q, double scale) {
  return AttentionShape{q.size(0), q.size(1), q.size(2), q.size(3), static_cast<float>(scale)};
}

// The kernels need the last axis contiguous; any other strides are read as they are.
torch::Tensor with_unit_last_stride(const torch::Tensor& t) { return t.stride(3) == 1 ? t : t.contiguous(); }

template <typename T>
HeadArray<T> heads_of(const torch::Tensor& t) {
  return HeadArray<T>{t.data_ptr<float>(), t.stride(0), t.stride(1), t.stride(2)};
}

struct FusedAttention : torch::autograd::Function<FusedAttention> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in, const torch::Tensor& k_in,
                               const torch::Tensor& v_in, double scale) {
    auto q = with_unit_last_stride(q_in), k = with_unit_last_stride(k_in), v = with_unit_last_stride(v_in);
    const auto shape = shape_of(q, scale);
    // Token-major output [B, N, H, d], returned as the [B, H, N, d] view of it.
    auto out = torch::empty({shape.batch, shape.tokens, shape.heads, shape.head_dim}, q.options()).transpose(1, 2);
    auto lse = torch::empty({shape.batch, shape.heads, shape.tokens}, q.options());
    auto qa = heads_of<const float>(q), ka = heads_of<const float>(k), va = heads_of<const float>(v);
    auto oa = heads_of<float>(out);
    float* lp = lse.data_ptr<float>();
    at::parallel_for(0, shape.batch * shape.heads, 1, [&](int64_t begin, int64_t end) {
      attention_forward_cpu(shape, qa, ka, va, oa, lp, begin, end);
    });
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    auto grad_out = with_unit_last_stride(grad_outputs[0]);
    auto grad_q = torch::empty(q.sizes(), q.options()), grad_k = torch::empty(k.sizes(), k.options()),
         grad_v = torch::empty(v.sizes(), v.options());
    const auto shape = shape_of(q, ctx->saved_data["scale"].toDouble());
    auto qa = heads_of<const float>(q), ka = heads_of<const float>(k), va = heads_of<const float>(v),
         oa = heads_of<const float>(out), ga = heads_of<const float>(grad_out);
    auto dqa = heads_of<float>(grad_q), dka = heads_of<float>(grad_k), dva = heads_of<float>(grad_v);
    const float* lp = lse.data_ptr<float>();
    at::parallel_for(0, shape.batch * shape.heads, 1, [&](int64_t begin, int64_t end) {
      attention_backward_cpu(shape, qa, ka, va, oa, lp, ga, dqa, dka, dva, begin, end);
    });
    return {grad_q, grad_k, grad_v, torch::Tensor()};
  }
};

}  // namespace

bool fused_attention_supported(const torch::Tensor& q) {
  return q.device().is_cpu() && q.scalar_type() == torch::kFloat && q.dim() == 4;
}

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  TORCH_CHECK(fused_attention_supported(q) && k.sizes() == q.sizes() && v.sizes() == q.sizes() &&
                  k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "fused_attention: expects float32 CPU tensors of equal shape [B, H, N, d]");
  return FusedAttention::apply(q, k, v, scale);
}

torch::Tensor composite_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  return torch::matmul((q * scale), k.transpose(-2, -1)).softmax(-1).matmul(v);
}

}  // namespace neurobolt::detail
