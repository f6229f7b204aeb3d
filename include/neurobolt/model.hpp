#pragma once
// The NeuroBOLT network in LibTorch: a temporal-spatial (LaBraM-style) transformer branch and a
// multi-scale spectral branch whose features are summed, passed through GELU and mapped to one
// output per ROI.
//
// Submodule names mirror the reference implementation (soupeeli/NeuroBOLT), so `named_parameters()`
// and `named_buffers()` produce exactly the reference's state-dict keys.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "neurobolt/config.hpp"

namespace neurobolt {

// Optional observer of named intermediate tensors during a forward pass (parity tests,
// feature extraction, debugging). Names: "ts_patch_embed", "ts_tokens_in", "ts_blockNN_out",
// "ts_feature", "mss_tokens_in", "mss_tokens_out", "mss_feature", "head_in", "output".
using ForwardTap = std::function<void(std::string_view name, const torch::Tensor& value)>;

// --- temporal-spatial branch pieces ---------------------------------------------------------

// Three 1-D convolutions over each 1-s patch with GroupNorm and GELU, turning [B, C, A, T]
// samples into [B, C*A, embed_dim] tokens ("patch_embed" in the reference).
class TemporalConvImpl : public torch::nn::Module {
 public:
  explicit TemporalConvImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& patches);  // [B, C, A, T] -> [B, C*A, embed_dim]

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
TORCH_MODULE(TemporalConv);

// The LayerNorm applied before a sub-layer (pre-norm), passed in so that the sub-layer can fuse
// it (see src/model/fused_layers.hpp); an undefined weight means none.
struct PreNorm {
  torch::Tensor weight, bias;
  double eps = 1e-5;
  static PreNorm of(const torch::nn::LayerNorm& norm);
};

// Multi-head self-attention with optional q/k LayerNorm ("attn").
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, const TemporalConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const PreNorm& pre_norm = {});  // [B, N, dim]

  int64_t heads, head_dim;
  double scale;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::nn::LayerNorm q_norm{nullptr}, k_norm{nullptr};
  torch::Tensor q_bias, v_bias;  // only with qkv_bias
  torch::nn::Dropout attn_drop{nullptr}, proj_drop{nullptr};
  // Use the fused CPU kernel (float32, no attention dropout) instead of composite ops.
  bool use_fused_kernel = true;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden, double drop);
  torch::Tensor forward(const torch::Tensor& x, const PreNorm& pre_norm = {});
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(Mlp);

// Pre-norm transformer block with layer scale and stochastic depth.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t dim, const TemporalConfig& config, double drop_path);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
  torch::Tensor gamma_1, gamma_2;  // undefined when layer_scale == 0
  double drop_path;
};
TORCH_MODULE(Block);

// --- multi-scale spectral branch -------------------------------------------------------------

// Global linear self-attention (softmax over features for q, over the sequence for k).
class LinearSelfAttentionImpl : public torch::nn::Module {
 public:
  LinearSelfAttentionImpl(int64_t dim, const SpectralConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const PreNorm& pre_norm = {});  // [B, N, dim]
  int64_t heads, dim_head;
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, to_out{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(LinearSelfAttention);

class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, const SpectralConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const PreNorm& pre_norm = {});
  torch::nn::Linear w1{nullptr}, w2{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(FeedForward);

// The spectral branch ("mss_module"): |FFT| of non-overlapping rectangular frames at several
// window lengths per channel, embedded to a common token grid, plus channel token and
// sinusoidal position, through a linear-attention transformer, mean-pooled.
class SpectralBranchImpl : public torch::nn::Module {
 public:
  explicit SpectralBranchImpl(const ModelConfig& config);
  // x: [B, C, S] (already input-scaled) -> [B, embed_dim].
  torch::Tensor forward(const torch::Tensor& x, const ForwardTap& tap = {});

  // |rfft| of the frames of window base_window * 2^scale: [B, C, frames, bins].
  torch::Tensor magnitudes(const torch::Tensor& x, int64_t scale) const;
  // The Linear over frequency bins: [B, C, frames, bins] -> [B, C, frames, D].
  torch::Tensor frequency_embedding(const torch::Tensor& magnitudes, int64_t scale);
  // The Linear over frames: [B, C, frames, D] -> [B, C, tokens, D].
  torch::Tensor frame_embedding(const torch::Tensor& frequency_embedded, int64_t scale);
  // Transformer input tokens [B, C*tokens, D] (channel-major), dropout included in training.
  torch::Tensor tokens(const torch::Tensor& x);

  // Module::to(dtype) would also convert the int64 `index` buffer; it must stay an index.
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  using torch::nn::Module::to;

  int64_t base_window, scales, num_tokens, embed_dim;
  std::vector<torch::nn::Linear> frequency_linears, frame_linears;
  std::vector<LinearSelfAttention> attention_layers;
  std::vector<FeedForward> feedforward_layers;
  std::vector<torch::nn::LayerNorm> attention_norms, feedforward_norms;
  torch::nn::Embedding channel_tokens{nullptr};
  torch::Tensor index;                // int64 [C], the channel-token row of each input channel
  torch::Tensor positional_encoding;  // [1, max_positions, D] sinusoidal table ("positional_encoding.pe")
  torch::nn::Dropout pe_dropout{nullptr};
};
TORCH_MODULE(SpectralBranch);

// --- the whole model -------------------------------------------------------------------------

struct BranchFeatures {
  torch::Tensor temporal;  // [B, embed_dim]
  torch::Tensor spectral;  // [B, embed_dim]
};

class NeuroBOLTImpl : public torch::nn::Module {
 public:
  // Builds the network and initialises it as the reference does (see reset_parameters).
  explicit NeuroBOLTImpl(ModelConfig config);

  // eeg_uv: [B, C, S] in microvolts, channels in config().channels order. Returns [B, num_rois].
  // On the CPU with N > 1 threads, without autograd and in eval mode (and without a tap), the
  // batch runs as N parts, one per thread, each single-threaded: the same values per window.
  // In training mode on the CPU every window's dropout and stochastic-depth masks come from its
  // own generator, seeded from the default generator (one draw per window per forward).
  torch::Tensor forward(const torch::Tensor& eeg_uv, const ForwardTap& tap = {});
  // Same with the input's own channel names: channels are picked and reordered to the model's
  // order (extra channels are ignored). ConfigError names any model channel that is missing.
  torch::Tensor forward(const torch::Tensor& eeg_uv, const std::vector<std::string>& channel_names,
                        const ForwardTap& tap = {});

  // Both branch features for microvolt input in config order.
  BranchFeatures features(const torch::Tensor& eeg_uv, const ForwardTap& tap = {});
  // Temporal branch on input-scaled [B, C, S] samples.
  torch::Tensor temporal_features(const torch::Tensor& x, const ForwardTap& tap = {});

  // Reference initialisation (truncated normal for embeddings and every Linear, zero biases,
  // unit norms, block output rescaling, head scaled by head_init_scale), from torch's global
  // generator: call torch::manual_seed first for reproducible weights.
  void reset_parameters();

  // The rows of `eeg_uv` to take, in model order, for input channels `channel_names`.
  std::vector<int64_t> channel_selection(const std::vector<std::string>& channel_names) const;

  const ModelConfig& config() const { return config_; }

  // Registered exactly as the reference names them.
  torch::Tensor cls_token, pos_embed, time_embed;
  TemporalConv patch_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  std::vector<Block> block_list;
  torch::nn::LayerNorm fc_norm{nullptr};
  torch::nn::Linear head{nullptr};
  SpectralBranch mss_module{nullptr};
  torch::nn::Dropout pos_drop{nullptr};
  torch::Tensor position_rows;  // int64 [C]: pos_embed row of each channel (not persistent)

 private:
  torch::Tensor check_input(const torch::Tensor& eeg_uv) const;
  ModelConfig config_;
};
TORCH_MODULE(NeuroBOLT);

// One training step's forward and backward with the mean squared error: gradients of
// mse_loss(model(input), target) accumulated into the parameters' .grad; returns the loss
// (detached). On the CPU with several threads the batch runs in parts, one per thread, each
// single-threaded, forward and backward (a window's dropout and stochastic-depth masks come from
// its own generator, so the parts draw what the whole batch would; gradients equal the whole
// batch's up to summation order). Elsewhere, or with gradient hooks that must see one backward
// (`whole` = true), forward and backward run once on the whole batch.
torch::Tensor mse_forward_backward(NeuroBOLT& model, const torch::Tensor& input, const torch::Tensor& target,
                                   bool whole = false);

// Parameter counts per branch (trainable floating-point parameters).
struct ParameterCounts {
  int64_t temporal = 0;
  int64_t spectral = 0;
  int64_t head = 0;
  int64_t total() const { return temporal + spectral + head; }
};
ParameterCounts count_parameters(const NeuroBOLTImpl& model);

// The model's state dict in reference order and naming: parameters and persistent buffers.
std::vector<std::pair<std::string, torch::Tensor>> state_dict(const NeuroBOLTImpl& model);

}  // namespace neurobolt
