#pragma once
// Fused softmax attention for the CPU, forward and backward, on float32 [B, H, N, d] arrays
// given by strides (the last axis contiguous): out = softmax(scale * q k^T) v, without
// materialising the N x N attention matrix for more than a few query rows at a time. The
// backward pass recomputes attention weights from the saved log-sum-exp (as FlashAttention
// does), so training keeps O(N d) memory per head. Strides let q, k, v be read straight out of
// a fused qkv projection and the output be written in token-major [B, N, H, d] order.
#include <cstdint>

namespace neurobolt::detail {

struct AttentionShape {
  int64_t batch, heads;
  int64_t tokens;    // N
  int64_t head_dim;  // d
  float scale;
};

// A [B, H, N, d] float array: element (b, h, n, t) is at data[b*batch + h*head + n*token + t].
template <typename T>
struct HeadArray {
  T* data;
  int64_t batch, head, token;
  T* row(int64_t b, int64_t h) const { return data + b * batch + h * head; }
};
using ConstHeads = HeadArray<const float>;
using Heads = HeadArray<float>;

// Processes the (batch, head) pairs with flat index b*H + h in [begin, end).
// lse: [B*H, N] log-sum-exp of each scaled score row (written).
void attention_forward_cpu(const AttentionShape& shape, ConstHeads q, ConstHeads k, ConstHeads v, Heads out, float* lse,
                           int64_t begin, int64_t end);

// Gradients for the same pairs given the forward's out and lse and the output gradient.
void attention_backward_cpu(const AttentionShape& shape, ConstHeads q, ConstHeads k, ConstHeads v, ConstHeads out,
                            const float* lse, ConstHeads grad_out, Heads grad_q, Heads grad_k, Heads grad_v,
                            int64_t begin, int64_t end);

}  // namespace neurobolt::detail
