// Temporal-spatial branch: TemporalConv patch embedding and pre-norm transformer blocks.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <vector>

#include "cuda/dispatch.hpp"
#include "model/fused_attention.hpp"
#include "model/fused_layers.hpp"
#include "model/window_random.hpp"
#include "neurobolt/model.hpp"

namespace neurobolt {

namespace {
constexpr double kTemporalNormEps = 1e-6;  // LayerNorms of the temporal branch
constexpr double kGroupNormEps = 1e-5;

torch::nn::LayerNorm make_layer_norm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps).elementwise_affine(true));
}

// Residual branch scaling: layer scale gamma (if any) and stochastic depth, which drops whole
// samples of the branch and rescales the survivors by 1/keep. Both are folded into one
// [B, 1, D] factor so that autograd keeps only the branch output, not scaled copies of it.
torch::Tensor scale_branch(const torch::Tensor& branch, const torch::Tensor& gamma, double drop_path, bool training) {
  const bool dropping = training && drop_path > 0.0;
  if (!dropping) return gamma.defined() ? gamma * branch : branch;
  const double keep = 1.0 - drop_path;
  auto factor = detail::window_bernoulli(branch, 3, keep).div_(keep);
  if (gamma.defined()) factor = factor * gamma;
  return branch * factor;
}
// Identity whose backward makes the incoming gradient contiguous. The token rearrangement after
// the temporal convolutions hands the last GELU a permuted (channels-last) gradient, and
// LibTorch 1.13's float32 CPU GELU backward returns zeros or garbage for that layout (float64 is
// right; found by comparing float32 with float64 gradients, tested in test_model.cpp).
struct ContiguousGrad : torch::autograd::Function<ContiguousGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& x) { return x.view_as(x); }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*,
                                               torch::autograd::tensor_list grad) {
    return {grad[0].contiguous()};
  }
};

torch::Tensor contiguous_grad(const torch::Tensor& x) {
  return torch::GradMode::is_enabled() && x.requires_grad() ? ContiguousGrad::apply(x) : x;
}

// The front end's convolutions pad to keep the centre: (kernel - 1) / 2 per side.
std::vector<int64_t> centred_padding(torch::ExpandingArray<2> kernel) {
  return {((*kernel)[0] - 1) / 2, ((*kernel)[1] - 1) / 2};
}

// A convolution of the front end. Inside an OpenMP parallel region (the batch parts of
// neurobolt.cpp, or a caller's own region) on the CPU it runs LibTorch's own im2col + GEMM
// convolution, which is what at::convolution picks with oneDNN off: a oneDNN convolution
// primitive runs with the thread count it was made for, and its weight-gradient kernel, called
// from one thread of a region, waited in a barrier for threads that never came (a deadlock).
// Only the convolutions are routed: oneDNN's GELU (no barrier) stays, 3x faster than the
// TensorIterator GELU's Sleef erf that switching oneDNN off process-wide gave (12 % of a step).
torch::Tensor convolve(torch::nn::Conv2d& conv, const torch::Tensor& x) {
  if (!at::in_parallel_region() || !x.device().is_cpu()) return conv(x);
  const auto& options = conv->options;
  const auto kernel = *options.kernel_size();
  return at::thnn_conv2d(x, conv->weight, kernel, conv->bias, *options.stride(), centred_padding(kernel));
}
}  // namespace

PreNorm PreNorm::of(const torch::nn::LayerNorm& norm) {
  return PreNorm{norm->weight, norm->bias, norm->options.eps()};
}

namespace detail {
NormParams norm_params(const PreNorm& p) { return NormParams{p.weight, p.bias, p.eps}; }
}  // namespace detail

TemporalConvImpl::TemporalConvImpl(const ModelConfig& config) {
  const int64_t c = config.temporal.conv_channels;
  const int64_t groups = config.temporal.conv_groups;
  // No groups, no dilation, zero padding of centred_padding(kernel): convolve() relies on it.
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, c, {1, 15}).stride({1, 8}).padding({0, 7})));
  norm1 = register_module("norm1", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, c).eps(kGroupNormEps)));
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, {1, 3}).padding({0, 1})));
  norm2 = register_module("norm2", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, c).eps(kGroupNormEps)));
  conv3 = register_module("conv3", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, {1, 3}).padding({0, 1})));
  norm3 = register_module("norm3", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, c).eps(kGroupNormEps)));
}

torch::Tensor TemporalConvImpl::forward(const torch::Tensor& patches) {
  const int64_t batch = patches.size(0);
  // One image row per (channel, patch), channel-major; GroupNorm statistics span all rows.
  auto x = patches.reshape({batch, 1, patches.size(1) * patches.size(2), patches.size(3)});
  x = torch::gelu(norm1(convolve(conv1, x)));
  x = torch::gelu(norm2(convolve(conv2, x)));
  x = contiguous_grad(torch::gelu(norm3(convolve(conv3, x))));
  // [B, conv_channels, rows, steps] -> [B, rows, steps * conv_channels] (time-major features).
  return x.permute({0, 2, 3, 1}).reshape({batch, x.size(2), x.size(3) * x.size(1)});
}

AttentionImpl::AttentionImpl(int64_t dim, const TemporalConfig& config)
    : heads(config.heads), head_dim(dim / config.heads), scale(1.0 / std::sqrt(static_cast<double>(dim / config.heads))) {
  if (config.qkv_bias) {
    q_bias = register_parameter("q_bias", torch::zeros({dim}));
    v_bias = register_parameter("v_bias", torch::zeros({dim}));
  }
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(false)));
  if (config.qk_norm) {
    q_norm = register_module("q_norm", make_layer_norm(head_dim, kTemporalNormEps));
    k_norm = register_module("k_norm", make_layer_norm(head_dim, kTemporalNormEps));
  }
  attn_drop = register_module("attn_drop", torch::nn::Dropout(config.attn_drop));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
  proj_drop = register_module("proj_drop", torch::nn::Dropout(config.drop));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const PreNorm& pre_norm) {
  const int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2);
  torch::Tensor bias;
  if (q_bias.defined()) bias = torch::cat({q_bias, torch::zeros_like(v_bias), v_bias});
  // Feature index of the qkv output is s*dim + h*head_dim + d for s in {q, k, v}.
  auto qkv_out = detail::layer_norm_linear(x, detail::norm_params(pre_norm), qkv->weight, bias)
                     .view({batch, tokens, 3, heads, head_dim})
                     .permute({2, 0, 3, 1, 4});  // [3, B, H, N, hd]
  auto q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];
  if (q_norm) {
    q = detail::head_layer_norm(q, q_norm->weight, q_norm->bias, q_norm->options.eps());
    k = detail::head_layer_norm(k, k_norm->weight, k_norm->bias, k_norm->options.eps());
  }
  torch::Tensor weighted;
  const bool attn_dropout_active = is_training() && attn_drop->options.p() > 0.0;
  if (use_fused_kernel && !attn_dropout_active && detail::fused_attention_supported(q)) {
    weighted = detail::fused_attention(q, k, v, scale);
  } else if (auto on_device = detail::device_attention(q, k, v, scale, attn_dropout_active ? attn_drop->options.p() : 0.0)) {
    weighted = *on_device;
  } else {
    auto attn = torch::matmul(q * scale, k.transpose(-2, -1)).softmax(-1);
    weighted = torch::matmul(detail::window_dropout(attn_drop, attn), v);
  }
  auto out = weighted.transpose(1, 2).reshape({batch, tokens, dim});
  return detail::window_dropout(proj_drop, proj(out));
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden, double p) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
  drop = register_module("drop", torch::nn::Dropout(p));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x, const PreNorm& pre_norm) {
  return detail::window_dropout(drop, detail::layer_norm_mlp(x, detail::norm_params(pre_norm), fc1->weight, fc1->bias, fc2->weight, fc2->bias));
}

BlockImpl::BlockImpl(int64_t dim, const TemporalConfig& config, double drop_path_rate) : drop_path(drop_path_rate) {
  if (config.layer_scale > 0) {
    gamma_1 = register_parameter("gamma_1", torch::full({dim}, config.layer_scale));
    gamma_2 = register_parameter("gamma_2", torch::full({dim}, config.layer_scale));
  }
  norm1 = register_module("norm1", make_layer_norm(dim, kTemporalNormEps));
  attn = register_module("attn", Attention(dim, config));
  norm2 = register_module("norm2", make_layer_norm(dim, kTemporalNormEps));
  mlp = register_module("mlp", Mlp(dim, static_cast<int64_t>(dim * config.mlp_ratio), config.drop));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& input) {
  auto x = input + scale_branch(attn(input, PreNorm::of(norm1)), gamma_1, drop_path, is_training());
  return x + scale_branch(mlp(x, PreNorm::of(norm2)), gamma_2, drop_path, is_training());
}

}  // namespace neurobolt
