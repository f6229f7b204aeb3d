#pragma once
// Pre-norm transformer sub-layers as single autograd functions that keep less for backward:
//   layer_norm_linear: W (LN x) + b
//   layer_norm_mlp:    W2 GELU(W1 (LN x) + b1) + b2   (LN optional)
// Training then stores the sub-layer input (and the MLP's hidden pre-activation) only; the
// LayerNorm output and the GELU output are recomputed in backward. Without autograd (inference)
// they run the plain ops, bit for bit what the unfused modules compute.
#include <torch/types.h>

namespace neurobolt::detail {

struct NormParams {
  torch::Tensor weight, bias;  // undefined weight: no LayerNorm
  double eps = 1e-5;
};

torch::Tensor layer_norm_linear(const torch::Tensor& x, const NormParams& norm, const torch::Tensor& w,
                                const torch::Tensor& b);

torch::Tensor layer_norm_mlp(const torch::Tensor& x, const NormParams& norm, const torch::Tensor& w1,
                             const torch::Tensor& b1, const torch::Tensor& w2, const torch::Tensor& b2);

// LayerNorm over the last axis of a float32 CPU [B, H, N, d] view whose last axis is contiguous
// (q or k of a fused qkv projection): rows read in place, token by token, written to a
// contiguous [B, H, N, d] tensor; with autograd its own backward (keeps the input view, which
// attention keeps anyway, and each row's mean and rstd). torch::layer_norm first copies such a
// view and then spends ~6 ns per element on rows of d = 20 (4.7 % of an inference forward). Same
// arithmetic: mean, biased variance, (x - mean) / sqrt(var + eps) * weight + bias. Anything else
// goes to torch::layer_norm.
torch::Tensor head_layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps);

}  // namespace neurobolt::detail

namespace neurobolt {
struct PreNorm;
namespace detail {
NormParams norm_params(const PreNorm& pre_norm);
}
}  // namespace neurobolt
