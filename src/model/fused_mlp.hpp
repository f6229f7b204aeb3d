#pragma once
// w2 (GELU (w1 x + b1)) + b2 with a backward that recomputes the GELU instead of keeping its
// output: training then stores the hidden pre-activation only (the biggest activation of
// every transformer block, 4x the token width).
#include <torch/types.h>

namespace neurobolt::detail {

torch::Tensor fused_mlp(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                        const torch::Tensor& b2);

}  // namespace neurobolt::detail
