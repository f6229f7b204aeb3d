#pragma once
// Fused softmax attention for the CPU, forward and backward, on float32 [BH, N, d] row-major
// arrays: out = softmax(scale * q k^T) v, without materialising the N x N attention matrix for
// more than a few query rows at a time. The backward pass recomputes attention weights from the
// saved log-sum-exp (as FlashAttention does), so training keeps O(N d) memory per head.
#include <cstdint>

namespace neurobolt::detail {

struct AttentionShape {
  int64_t heads_total;  // batch * heads
  int64_t tokens;       // N
  int64_t head_dim;     // d
  float scale;
};

// Processes heads [begin, end). lse: [BH, N] log-sum-exp of each scaled score row.
void attention_forward_cpu(const AttentionShape& shape, const float* q, const float* k, const float* v, float* out,
                           float* lse, int64_t begin, int64_t end);

// Gradients for heads [begin, end) given the forward's out and lse and the output gradient.
void attention_backward_cpu(const AttentionShape& shape, const float* q, const float* k, const float* v,
                            const float* out, const float* lse, const float* grad_out, float* grad_q, float* grad_k,
                            float* grad_v, int64_t begin, int64_t end);

}  // namespace neurobolt::detail
