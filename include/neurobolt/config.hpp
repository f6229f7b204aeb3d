#pragma once
// Model configuration: every hyper-parameter of a NeuroBOLT network, read from and written to
// JSON. A checkpoint stores its config, so a checkpoint alone rebuilds the exact model.
#include <cstdint>
#include <string>
#include <vector>

namespace neurobolt {

// Temporal-spatial (LaBraM-style) branch.
struct TemporalConfig {
  int64_t depth = 12;              // transformer blocks
  int64_t heads = 10;              // attention heads (head dim = embed_dim / heads)
  double mlp_ratio = 4.0;          // MLP hidden width = embed_dim * mlp_ratio
  int64_t conv_channels = 8;       // output channels of the three temporal convolutions
  int64_t conv_groups = 4;         // GroupNorm groups after each convolution
  bool qk_norm = true;             // LayerNorm on queries and keys
  bool qkv_bias = false;           // bias on the qkv projection (q and v only, as BEiT)
  double layer_scale = 0.1;        // initial value of gamma_1/gamma_2 (0 disables layer scale)
  double drop = 0.1;               // dropout after embeddings, attention projection and MLP
  double attn_drop = 0.0;          // dropout on attention weights
  double drop_path = 0.1;          // stochastic depth of the last block (linear from 0)
  int64_t max_patches = 16;        // rows of the temporal embedding
  int64_t vocabulary_rows = 129;   // rows of the spatial position embedding (class token + 128)
  // Which row of the spatial position embedding a channel uses:
  //  "labram":   row 1 + the channel's index in LaBraM's 128-name vocabulary (channels.hpp), as the
  //              reference and LaBraM's pre-trained weights do; every channel must be in it.
  //  "channels": row 1 + the channel's index in `channels` (vocabulary_rows = channels + 1): any
  //              electrode of the 10-05 system, for models trained from scratch on other caps.
  std::string positions = "labram";
};

// Multi-scale spectral branch.
struct SpectralConfig {
  int64_t base_window = 100;       // smallest FFT window in samples; scale n uses base * 2^n
  int64_t scales = 4;              // number of window lengths
  int64_t depth = 4;               // linear-attention transformer layers
  int64_t heads = 8;
  int64_t dim_head = 25;           // embed_dim must equal heads * dim_head
  int64_t ff_mult = 4;             // feed-forward hidden width = embed_dim * ff_mult
  double attn_out_drop = 0.2;      // dropout after the attention output projection
  double ff_drop = 0.0;            // dropout inside the feed-forward
  double pe_drop = 0.1;            // dropout after the channel token + sinusoidal position
  int64_t max_positions = 1000;    // rows of the sinusoidal table
};

struct ModelConfig {
  std::string name = "neurobolt";
  double sample_rate = 200.0;              // Hz, rate the model expects its input at
  int64_t window_samples = 3200;           // samples per input window (16 s at 200 Hz)
  int64_t patch_size = 200;                // samples per temporal patch (1 s)
  int64_t embed_dim = 200;
  double input_scale = 0.01;               // applied to microvolt input (the reference divides by 100)
  double init_std = 0.02;                  // truncated-normal std for embeddings and Linear weights
  double head_init_scale = 0.001;          // head weight/bias multiplier after initialisation
  std::vector<std::string> channels;       // EEG channels, in the order the model sees them
  std::vector<std::string> rois;           // one output per ROI, in this order
  TemporalConfig temporal;
  SpectralConfig spectral;

  int64_t num_channels() const { return static_cast<int64_t>(channels.size()); }
  int64_t num_rois() const { return static_cast<int64_t>(rois.size()); }
  int64_t num_patches() const { return window_samples / patch_size; }
  // Tokens per channel in the spectral branch (frames at the smallest window).
  int64_t spectral_tokens() const { return window_samples / spectral.base_window; }
  double window_seconds() const { return static_cast<double>(window_samples) / sample_rate; }

  // Throws ConfigError naming the offending key and the expected range.
  void validate() const;

  // Parses JSON text. Unknown keys and out-of-range values are ConfigErrors naming the key;
  // `source` (a file name) prefixes every message.
  static ModelConfig from_json(const std::string& json_text, const std::string& source = "<config>");
  static ModelConfig from_file(const std::string& path);
  std::string to_json(int indent = 2) const;

  bool operator==(const ModelConfig& other) const;
  bool operator!=(const ModelConfig& other) const { return !(*this == other); }
};

// FLOPs of one forward pass over one window, counting 2 per multiply-accumulate of every matrix
// product (linear layers, attention, the temporal convolutions, the spectral projections); the
// element-wise work (norms, softmax, GELU, FFT) is left out. neurobolt-base: 9.9 GFLOP.
struct ForwardFlops {
  double temporal = 0, spectral = 0, head = 0;
  // Parts: temporal = temporal_conv + temporal_blocks, spectral = spectral_front + spectral_blocks.
  double temporal_conv = 0, temporal_blocks = 0, spectral_front = 0, spectral_blocks = 0;
  double total() const { return temporal + spectral + head; }
};
ForwardFlops forward_flops(const ModelConfig& config);

// Built-in configurations: "neurobolt-base" (the paper's) and "neurobolt-tiny" (tests, demos).
// The same JSON ships in models/. Throws ConfigError for an unknown name.
ModelConfig builtin_config(const std::string& name);
std::vector<std::string> builtin_config_names();

// A config from a file path, or a built-in name when no such file exists.
ModelConfig load_config(const std::string& path_or_name);

// `base` with "key=value" assignments applied: keys are the JSON keys, nested ones dotted
// ("temporal.depth=4", "spectral.pe_drop=0", "embed_dim=100", "rois=[\"V1\",\"V2\"]"); values are
// JSON (a bare word is taken as a string). ConfigError naming the assignment for an unknown key,
// a value of the wrong type or a config that no longer validates.
ModelConfig with_overrides(const ModelConfig& base, const std::vector<std::string>& assignments);

// Default ROI names "roi0", "roi1", ... for a model with `n` outputs.
std::vector<std::string> default_roi_names(int64_t n);

}  // namespace neurobolt
