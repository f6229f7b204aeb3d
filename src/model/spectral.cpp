// Multi-scale spectral branch ("mss_module") and its linear-attention transformer.
#include <torch/torch.h>

#include <cmath>

#include "cuda/dispatch.hpp"
#include "model/fused_layers.hpp"
#include "model/window_random.hpp"
#include "neurobolt/model.hpp"

namespace neurobolt {

namespace {
constexpr double kPreNormEps = 1e-5;  // nn.LayerNorm default, as in linear_attention_transformer

// Holds submodules only to reproduce the reference's state-dict key nesting.
std::shared_ptr<torch::nn::Module> make_holder() { return std::make_shared<torch::nn::Module>(); }

// Sinusoidal table pe[p, 2j] = sin(p * w_j), pe[p, 2j+1] = cos(p * w_j),
// w_j = exp(-2j ln(10000) / dim), in float32 as the reference computes it.
torch::Tensor sinusoidal_table(int64_t max_len, int64_t dim) {
  auto pe = torch::zeros({max_len, dim});
  auto position = torch::arange(0, max_len).unsqueeze(1).to(torch::kFloat);
  auto div_term = torch::exp(torch::arange(0, dim, 2).to(torch::kFloat) * (-std::log(10000.0) / static_cast<double>(dim)));
  using torch::indexing::Slice;
  pe.index_put_({Slice(), Slice(0, torch::indexing::None, 2)}, torch::sin(position * div_term));
  pe.index_put_({Slice(), Slice(1, torch::indexing::None, 2)}, torch::cos(position * div_term).narrow(1, 0, dim / 2));
  return pe.unsqueeze(0);
}
}  // namespace

LinearSelfAttentionImpl::LinearSelfAttentionImpl(int64_t dim, const SpectralConfig& config)
    : heads(config.heads), dim_head(config.dim_head) {
  const int64_t inner = heads * dim_head;
  to_q = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(dim, inner).bias(false)));
  to_k = register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(dim, inner).bias(false)));
  to_v = register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(dim, inner).bias(false)));
  to_out = register_module("to_out", torch::nn::Linear(inner, dim));
  dropout = register_module("dropout", torch::nn::Dropout(config.attn_out_drop));
}

torch::Tensor LinearSelfAttentionImpl::forward(const torch::Tensor& x, const PreNorm& pre_norm) {
  const int64_t batch = x.size(0), tokens = x.size(1), inner = heads * dim_head;
  // q, k and v from one projection with the three weights stacked.
  auto qkv = detail::layer_norm_linear(x, detail::norm_params(pre_norm),
                                       torch::cat({to_q->weight, to_k->weight, to_v->weight}), torch::Tensor());
  auto split = [&](int64_t part) {
    return qkv.narrow(-1, part * inner, inner).view({batch, tokens, heads, dim_head}).transpose(1, 2);
  };
  auto q = split(0).softmax(-1) * (1.0 / std::sqrt(static_cast<double>(dim_head)));
  auto k = split(1).softmax(-2);
  auto v = split(2);
  auto context = torch::matmul(k.transpose(-2, -1), v);  // [B, H, dh, dh]
  auto out = torch::matmul(q, context).transpose(1, 2).reshape({batch, tokens, heads * dim_head});
  return detail::window_dropout(dropout, to_out(out));
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, const SpectralConfig& config) {
  w1 = register_module("w1", torch::nn::Linear(dim, dim * config.ff_mult));
  dropout = register_module("dropout", torch::nn::Dropout(config.ff_drop));
  w2 = register_module("w2", torch::nn::Linear(dim * config.ff_mult, dim));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x, const PreNorm& pre_norm) {
  if (is_training() && dropout->options.p() > 0.0) {
    auto y = pre_norm.weight.defined()
                 ? torch::layer_norm(x, {x.size(-1)}, pre_norm.weight, pre_norm.bias, pre_norm.eps)
                 : x;
    return w2(detail::window_dropout(dropout, torch::gelu(w1(y))));
  }
  return detail::layer_norm_mlp(x, detail::norm_params(pre_norm), w1->weight, w1->bias, w2->weight, w2->bias);
}

SpectralBranchImpl::SpectralBranchImpl(const ModelConfig& config)
    : base_window(config.spectral.base_window),
      scales(config.spectral.scales),
      num_tokens(config.spectral_tokens()),
      embed_dim(config.embed_dim) {
  const auto& s = config.spectral;
  index = register_buffer("index", torch::arange(config.num_channels(), torch::kLong));

  auto patch_embedding = register_module("patch_embedding", torch::nn::ModuleList());
  auto ts_embedding = register_module("ts_embedding", torch::nn::ModuleList());
  for (int64_t n = 0; n < scales; ++n) {
    const int64_t window = base_window << n;
    auto holder = make_holder();
    frequency_linears.push_back(holder->register_module("projection", torch::nn::Linear(window / 2 + 1, embed_dim)));
    patch_embedding->push_back(holder);
  }
  for (int64_t n = 0; n < scales; ++n) {
    const int64_t frames = config.window_samples / (base_window << n);
    auto holder = make_holder();
    frame_linears.push_back(holder->register_module("projection", torch::nn::Linear(frames, num_tokens)));
    ts_embedding->push_back(holder);
  }

  // transformer.layers.layers.<i>.0.{fn,norm} (attention), .<i>.1.{fn.fn,norm} (feed-forward)
  auto transformer = register_module("transformer", make_holder());
  auto sequence = transformer->register_module("layers", make_holder());
  auto layers = sequence->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < s.depth; ++i) {
    auto pair = torch::nn::ModuleList();
    auto attention_holder = make_holder();
    attention_layers.push_back(attention_holder->register_module("fn", LinearSelfAttention(embed_dim, s)));
    attention_norms.push_back(attention_holder->register_module(
        "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim}).eps(kPreNormEps))));
    auto ff_holder = make_holder();
    auto chunk = ff_holder->register_module("fn", make_holder());
    feedforward_layers.push_back(chunk->register_module("fn", FeedForward(embed_dim, s)));
    feedforward_norms.push_back(ff_holder->register_module(
        "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim}).eps(kPreNormEps))));
    pair->push_back(attention_holder);
    pair->push_back(ff_holder);
    layers->push_back(pair);
  }

  auto pe_holder = register_module("positional_encoding", make_holder());
  positional_encoding = pe_holder->register_buffer("pe", sinusoidal_table(s.max_positions, embed_dim));
  pe_dropout = pe_holder->register_module("dropout", torch::nn::Dropout(s.pe_drop));
  channel_tokens = register_module("channel_tokens", torch::nn::Embedding(config.num_channels(), embed_dim));
}

void SpectralBranchImpl::to(torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(dtype, non_blocking);
  index.set_data(index.to(torch::kLong));
}

void SpectralBranchImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(device, dtype, non_blocking);
  index.set_data(index.to(torch::kLong));
}

torch::Tensor SpectralBranchImpl::magnitudes(const torch::Tensor& x, int64_t scale) const {
  return detail::multiscale_magnitudes(x, {base_window << scale}).front();
}

torch::Tensor SpectralBranchImpl::frequency_embedding(const torch::Tensor& mags, int64_t scale) {
  return frequency_linears[scale](mags);
}

torch::Tensor SpectralBranchImpl::frame_embedding(const torch::Tensor& embedded, int64_t scale) {
  // Linear over the frame axis for every feature: [B, C, frames, D] -> [B, C, tokens, D].
  return frame_linears[scale](embedded.transpose(-2, -1)).transpose(-2, -1);
}

torch::Tensor SpectralBranchImpl::tokens(const torch::Tensor& x) {
  // Every scale's magnitudes at once (one fused launch on CUDA).
  std::vector<int64_t> windows;
  for (int64_t n = 0; n < scales; ++n) windows.push_back(base_window << n);
  const auto mags = detail::multiscale_magnitudes(x, windows);
  torch::Tensor sum;
  for (int64_t n = 0; n < scales; ++n) {
    auto e = frame_embedding(frequency_embedding(mags[n], n), n);
    sum = n == 0 ? e : sum + e;
  }
  // [B, C, P, D] + channel token [C, 1, D] + position [P, D]
  auto channel = channel_tokens(index).unsqueeze(1);
  auto out = (sum + channel) + positional_encoding.narrow(1, 0, num_tokens);
  out = detail::window_dropout(pe_dropout, out);
  return out.reshape({x.size(0), x.size(1) * num_tokens, embed_dim});
}

torch::Tensor SpectralBranchImpl::forward(const torch::Tensor& x, const ForwardTap& tap) {
  auto h = tokens(x);
  if (tap) tap("mss_tokens_in", h);
  for (size_t i = 0; i < attention_layers.size(); ++i) {
    h = h + attention_layers[i](h, PreNorm::of(attention_norms[i]));
    h = h + feedforward_layers[i](h, PreNorm::of(feedforward_norms[i]));
  }
  if (tap) tap("mss_tokens_out", h);
  return h.mean(1);
}

}  // namespace neurobolt
