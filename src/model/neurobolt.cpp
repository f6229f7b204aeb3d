// The NeuroBOLT model: both branches, the head, input handling and initialisation.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <ATen/Parallel.h>
#include <omp.h>
#include <torch/torch.h>

#include <cmath>
#include <unordered_map>

#include "cuda/dispatch.hpp"
#include "model/init.hpp"
#include "model/window_random.hpp"
#include "runtime/blas_threads.hpp"
#include "neurobolt/channels.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/model.hpp"
#include "neurobolt/montage.hpp"

namespace neurobolt {

NeuroBOLTImpl::NeuroBOLTImpl(ModelConfig config) : config_(std::move(config)) {
  config_.validate();
  const auto& t = config_.temporal;
  const int64_t dim = config_.embed_dim;

  cls_token = register_parameter("cls_token", torch::zeros({1, 1, dim}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, t.vocabulary_rows, dim}));
  time_embed = register_parameter("time_embed", torch::zeros({1, t.max_patches, dim}));
  patch_embed = register_module("patch_embed", TemporalConv(config_));
  pos_drop = register_module("pos_drop", torch::nn::Dropout(t.drop));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < t.depth; ++i) {
    // Stochastic depth grows linearly from 0 (first block) to drop_path (last block).
    const double rate = t.depth > 1 ? t.drop_path * static_cast<double>(i) / static_cast<double>(t.depth - 1) : 0.0;
    block_list.push_back(Block(dim, t, rate));
    blocks->push_back(block_list.back());
  }
  fc_norm = register_module("fc_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  head = register_module("head", torch::nn::Linear(dim, config_.num_rois()));
  mss_module = register_module("mss_module", SpectralBranch(config_));

  std::vector<int64_t> rows{0};
  for (int64_t i = 0; i < config_.num_channels(); ++i) {
    rows.push_back(t.positions == "labram" ? *position_index(config_.channels[i]) + 1 : i + 1);
  }
  position_rows = torch::tensor(rows, torch::kLong);

  reset_parameters();
}

void NeuroBOLTImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double std = config_.init_std;
  detail::trunc_normal_(pos_embed, 0.0, std, -2.0, 2.0);
  detail::trunc_normal_(time_embed, 0.0, std, -2.0, 2.0);
  detail::trunc_normal_(cls_token, 0.0, std, -2.0, 2.0);
  // Conv2d, GroupNorm and Embedding keep PyTorch's default initialisation.
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) conv->reset_parameters();
    if (auto* norm = module->as<torch::nn::GroupNorm>()) norm->reset_parameters();
    if (auto* embedding = module->as<torch::nn::Embedding>()) embedding->reset_parameters();
    if (auto* linear = module->as<torch::nn::Linear>()) {
      detail::trunc_normal_(linear->weight, 0.0, std, -2.0, 2.0);
      if (linear->bias.defined()) linear->bias.zero_();
    }
    if (auto* norm = module->as<torch::nn::LayerNorm>()) {
      norm->weight.fill_(1.0);
      norm->bias.zero_();
    }
  }
  for (size_t i = 0; i < block_list.size(); ++i) {
    const double rescale = std::sqrt(2.0 * static_cast<double>(i + 1));
    block_list[i]->attn->proj->weight.div_(rescale);
    block_list[i]->mlp->fc2->weight.div_(rescale);
    if (block_list[i]->gamma_1.defined()) {
      block_list[i]->gamma_1.fill_(config_.temporal.layer_scale);
      block_list[i]->gamma_2.fill_(config_.temporal.layer_scale);
    }
    if (block_list[i]->attn->q_bias.defined()) {
      block_list[i]->attn->q_bias.zero_();
      block_list[i]->attn->v_bias.zero_();
    }
  }
  head->weight.mul_(config_.head_init_scale);
  head->bias.mul_(config_.head_init_scale);
}

torch::Tensor NeuroBOLTImpl::check_input(const torch::Tensor& eeg_uv) const {
  if (!eeg_uv.defined() || eeg_uv.dim() != 3) {
    throw ConfigError(fmt::format("model input: expected a [batch, channels, samples] tensor, found {} dimensions",
                                  eeg_uv.defined() ? eeg_uv.dim() : 0));
  }
  if (eeg_uv.size(1) != config_.num_channels() || eeg_uv.size(2) != config_.window_samples) {
    throw ConfigError(fmt::format(
        "model input: expected [batch, {} channels, {} samples] ({} s at {} Hz), found [{}, {}, {}]",
        config_.num_channels(), config_.window_samples, config_.window_seconds(), config_.sample_rate, eeg_uv.size(0),
        eeg_uv.size(1), eeg_uv.size(2)));
  }
  if (!eeg_uv.is_floating_point()) {
    throw ConfigError(fmt::format("model input: expected floating-point samples, found {}", std::string(eeg_uv.dtype().name())));
  }
  return eeg_uv.to(pos_embed.device(), pos_embed.scalar_type());
}

torch::Tensor NeuroBOLTImpl::temporal_features(const torch::Tensor& x, const ForwardTap& tap) {
  const int64_t batch = x.size(0), channels = x.size(1);
  const int64_t patches = config_.num_patches();
  auto h = patch_embed(x.reshape({batch, channels, patches, config_.patch_size}));
  if (tap) tap("ts_patch_embed", h);

  h = torch::cat({cls_token.expand({batch, -1, -1}), h}, 1);
  // Spatial embedding: class token gets row 0, every patch of channel c the channel's row.
  auto pos = pos_embed.index_select(1, position_rows.to(pos_embed.device()));  // [1, C+1, D]
  auto pos_tokens = pos.narrow(1, 1, channels).unsqueeze(2).expand({1, channels, patches, -1}).reshape({1, channels * patches, -1});
  h = h + torch::cat({pos.narrow(1, 0, 1), pos_tokens}, 1);
  // Temporal embedding: patch a of every channel gets row a; the class token gets none.
  auto time_tokens = time_embed.narrow(1, 0, patches).unsqueeze(1).expand({1, channels, patches, -1}).reshape({1, channels * patches, -1});
  h = torch::cat({h.narrow(1, 0, 1), h.narrow(1, 1, channels * patches) + time_tokens}, 1);
  if (tap) tap("ts_tokens_in", h);

  h = detail::window_dropout(pos_drop, h);
  for (size_t i = 0; i < block_list.size(); ++i) {
    h = block_list[i](h);
    if (tap) tap(fmt::format("ts_block{:02d}_out", i), h);
  }
  // Mean over patch tokens (class token excluded), then LayerNorm.
  auto feature = fc_norm(h.narrow(1, 1, channels * patches).mean(1));
  if (tap) tap("ts_feature", feature);
  return feature;
}

namespace {

// Whether a CPU batch may run in parts (or its branches at once): not off the CPU, not inside a
// parallel region already, not under a BLAS whose threads cannot be held at one
// (blas_allows_parts), only for a [B, channels, samples] batch.
bool parts_possible(const torch::Tensor& input, bool on_cpu) {
  return on_cpu && !at::in_parallel_region() && detail::blas_allows_parts() && input.defined() && input.dim() == 3;
}

// How many parts a batch runs in: one per thread, at most one per window; 1 runs it whole.
int64_t part_count(const torch::Tensor& input, bool on_cpu) {
  return parts_possible(input, on_cpu) ? std::min<int64_t>(at::get_num_threads(), input.size(0)) : 1;
}

// Runs run_part(p) for p in [0, parts), one part per thread of one OpenMP region, each part
// single-threaded: the BLAS held at one thread, every nested at::parallel_for serial, and OpenMP
// regions that a library opens inside asked for the one thread they will get (omp_set_num_threads
// belongs to the region's implicit task, so the caller's thread count is untouched after it), so
// that none plans its work for more. The convolutions of the front end leave oneDNN inside a
// region (temporal.cpp, convolve).
template <typename RunPart>
void run_in_parts(int64_t parts, const RunPart& run_part) {
  const detail::SingleThreadedBlas blas;
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    for (int64_t p = begin; p < end; ++p) run_part(p);
  });
}

// Inference on the CPU with several threads runs one part of the batch per thread, each part
// single-threaded, instead of every operation split across the threads: LibTorch's intra-op
// threading and OpenBLAS's pool scale poorly on this model's small shapes (on 2 cores, batch 16:
// 9.2 against 8.8 windows/s with every at::parallel_for running in parallel). Only without
// autograd (no graph spans threads) and in eval mode (dropout draws per window, but training
// batches are split by mse_forward_backward); the result is the same per window either way.
int64_t inference_parts(const torch::Tensor& eeg_uv, const torch::Device& device, bool training) {
  if (training || torch::GradMode::is_enabled()) return 1;
  return part_count(eeg_uv, device.is_cpu());
}

// A single window on exactly two CPU threads: the two branches run at once, one per thread,
// each single-threaded, instead of each operation split across both threads (batch 1 on 2
// cores: the transformer blocks reached 57 GFLOP/s split, against ~80 for one thread alone).
// Inference only (no autograd, eval mode), like the batch parts. With more threads the split
// path keeps them all busy (two branches could not); from two windows on, batch parts do.
bool branches_at_once(const torch::Tensor& x, const torch::Device& device, bool training) {
  if (training || torch::GradMode::is_enabled() || at::get_num_threads() != 2) return false;
  return parts_possible(x, device.is_cpu()) && x.size(0) == 1;
}

}  // namespace

BranchFeatures NeuroBOLTImpl::features(const torch::Tensor& eeg_uv, const ForwardTap& tap) {
  auto x = check_input(eeg_uv) * config_.input_scale;
  BranchFeatures out;
  if (!tap && branches_at_once(x, pos_embed.device(), is_training())) {
    run_in_parts(2, [&](int64_t branch) {
      const torch::NoGradGuard no_grad;  // grad mode is per thread
      if (branch == 0) {
        out.temporal = temporal_features(x, tap);
      } else {
        out.spectral = mss_module(x, tap);
      }
    });
    return out;
  }
  out.temporal = temporal_features(x, tap);
  out.spectral = mss_module(x, tap);
  if (tap) tap("mss_feature", out.spectral);
  return out;
}

torch::Tensor NeuroBOLTImpl::forward(const torch::Tensor& eeg_uv, const ForwardTap& tap) {
  auto whole = [this, &tap](const torch::Tensor& input) {
    // bf16 autocast on CUDA when the runtime asks for it (--precision bf16); float32 out.
    const detail::AutocastScope autocast(input);
    auto f = features(input, tap);
    auto head_in = torch::gelu(f.spectral + f.temporal);
    if (tap) tap("head_in", head_in);
    auto out = head(head_in);
    if (autocast.active()) out = out.to(torch::kFloat);
    if (tap) tap("output", out);
    return out;
  };
  const int64_t parts = tap ? 1 : inference_parts(eeg_uv, pos_embed.device(), is_training());
  if (parts <= 1) {
    // Training on the CPU: every window's masks from its own generator (window_random.hpp),
    // unless the caller (mse_forward_backward's parts) has given this thread's windows theirs.
    if (!is_training() || !pos_embed.device().is_cpu() || detail::window_generators() != nullptr) return whole(eeg_uv);
    const auto generators = detail::draw_window_generators(check_input(eeg_uv).size(0));
    const detail::WindowRandomScope scope(&generators);
    return whole(eeg_uv);
  }

  const auto chunks = check_input(eeg_uv).tensor_split(parts);
  std::vector<torch::Tensor> outputs(chunks.size());
  run_in_parts(parts, [&](int64_t i) {
    const torch::NoGradGuard no_grad;  // grad mode is per thread
    outputs[static_cast<size_t>(i)] = whole(chunks[static_cast<size_t>(i)]);
  });
  return torch::cat(outputs);
}

torch::Tensor mse_forward_backward(NeuroBOLT& model, const torch::Tensor& input, const torch::Tensor& target,
                                   bool whole) {
  const bool cpu = model->pos_embed.device().is_cpu() && input.device().is_cpu();
  const int64_t parts = whole || !torch::GradMode::is_enabled() ? 1 : part_count(input, cpu);
  if (parts <= 1) {
    auto loss = torch::mse_loss(model->forward(input), target);
    loss.backward();
    return loss.detach();
  }
  TORCH_CHECK(target.dim() >= 1 && target.size(0) == input.size(0), "mse_forward_backward: ", input.size(0),
              " input windows against ", target.dim() >= 1 ? target.size(0) : 0, " targets");
  const int64_t batch = input.size(0);
  // Drawn here, for the whole batch, in the order a whole forward draws them.
  const auto generators = model->is_training() ? detail::draw_window_generators(batch) : std::vector<at::Generator>{};
  const auto inputs = input.tensor_split(parts), targets = target.tensor_split(parts);
  std::vector<std::vector<at::Generator>> part_generators(static_cast<size_t>(parts));
  for (int64_t p = 0, first = 0; p < parts; first += inputs[static_cast<size_t>(p)].size(0), ++p) {
    if (generators.empty()) continue;
    part_generators[static_cast<size_t>(p)].assign(generators.begin() + first,
                                                    generators.begin() + first + inputs[static_cast<size_t>(p)].size(0));
  }
  std::vector<torch::Tensor> losses(static_cast<size_t>(parts));
  // Each part's backward runs on the thread that calls it (the autograd engine drives CPU work on
  // the caller), serially inside the region; gradients accumulate under AccumulateGrad's lock.
  run_in_parts(parts, [&](int64_t p) {
    const auto i = static_cast<size_t>(p);
    const detail::WindowRandomScope scope(generators.empty() ? nullptr : &part_generators[i]);
    const double share = static_cast<double>(inputs[i].size(0)) / static_cast<double>(batch);
    auto loss = torch::mse_loss(model->forward(inputs[i]), targets[i]) * share;
    loss.backward();
    losses[i] = loss.detach();
  });
  return torch::stack(losses).sum();
}

std::vector<int64_t> NeuroBOLTImpl::channel_selection(const std::vector<std::string>& channel_names) const {
  std::unordered_map<std::string, int64_t> where;
  for (size_t i = 0; i < channel_names.size(); ++i) {
    if (!where.emplace(channel_key(channel_names[i]), static_cast<int64_t>(i)).second) {
      throw ConfigError(fmt::format("input channels: '{}' appears twice", channel_names[i]));
    }
  }
  std::vector<int64_t> rows;
  std::vector<std::string> missing;
  for (const auto& ch : config_.channels) {
    auto it = where.find(channel_key(ch));
    if (it == where.end()) {
      missing.push_back(ch);
    } else {
      rows.push_back(it->second);
    }
  }
  if (!missing.empty()) {
    throw ConfigError(fmt::format("input channels: model '{}' needs channel{} {} which the input lacks (input has: {})",
                                  config_.name, missing.size() > 1 ? "s" : "", fmt::join(missing, ", "),
                                  fmt::join(channel_names, ", ")));
  }
  return rows;
}

torch::Tensor NeuroBOLTImpl::forward(const torch::Tensor& eeg_uv, const std::vector<std::string>& channel_names,
                                     const ForwardTap& tap) {
  if (!eeg_uv.defined() || eeg_uv.dim() != 3 || eeg_uv.size(1) != static_cast<int64_t>(channel_names.size())) {
    throw ConfigError(fmt::format("model input: {} channel names given for a tensor of shape {}", channel_names.size(),
                                  eeg_uv.defined() ? fmt::format("[{}]", fmt::join(eeg_uv.sizes(), ", ")) : "undefined"));
  }
  auto rows = channel_selection(channel_names);
  bool identity = rows.size() == channel_names.size();
  for (size_t i = 0; identity && i < rows.size(); ++i) identity = rows[i] == static_cast<int64_t>(i);
  if (identity) return forward(eeg_uv, tap);
  return forward(eeg_uv.index_select(1, torch::tensor(rows, torch::kLong).to(eeg_uv.device())), tap);
}

namespace {
void collect_state(const torch::nn::Module& module, const std::string& prefix,
                   std::vector<std::pair<std::string, torch::Tensor>>& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.key(), b.value());
  for (const auto& child : module.named_children()) collect_state(*child.value(), prefix + child.key() + ".", out);
}
}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> state_dict(const NeuroBOLTImpl& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  collect_state(model, "", out);
  return out;
}

ParameterCounts count_parameters(const NeuroBOLTImpl& model) {
  ParameterCounts counts;
  for (const auto& p : model.named_parameters()) {
    const auto& name = p.key();
    const int64_t n = p.value().numel();
    if (name.rfind("mss_module.", 0) == 0) {
      counts.spectral += n;
    } else if (name.rfind("head.", 0) == 0) {
      counts.head += n;
    } else {
      counts.temporal += n;
    }
  }
  return counts;
}

}  // namespace neurobolt
