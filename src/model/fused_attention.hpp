#pragma once
// softmax(scale * q k^T) v for [B, H, N, d] tensors: a fused CPU kernel with its own backward
// (no N x N matrix kept for autograd), and the plain composite form it is tested against.
#include <torch/types.h>

namespace neurobolt::detail {

// True when the fused kernel handles these inputs (CPU, float32).
bool fused_attention_supported(const torch::Tensor& q);

// Inputs may be strided views (e.g. of one qkv projection); the result is a [B, H, N, d] view of
// a token-major [B, N, H, d] tensor, so transpose(1, 2) of it is contiguous.
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale);

// The same computation from standard ops (any device and dtype; materialises N x N weights).
torch::Tensor composite_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale);

}  // namespace neurobolt::detail
