#pragma once
// Initialisers matching the reference (timm's trunc_normal_, PyTorch defaults).
#include <torch/types.h>

namespace neurobolt::detail {

// Normal(mean, std) truncated to the absolute interval [a, b], in place, no autograd
// (inverse-CDF method, as timm.models.layers.trunc_normal_).
void trunc_normal_(torch::Tensor tensor, double mean, double std, double a, double b);

}  // namespace neurobolt::detail
