// The model beyond reference parity: fused kernels against the composite ops they replace
// (values and gradients), training-mode behaviour, initialisation, device/dtype handling.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>

#include "model/fused_attention.hpp"
#include "model/fused_layers.hpp"
#include "model/window_random.hpp"
#include "neurobolt/model.hpp"
#include "neurobolt/runtime.hpp"

using namespace neurobolt;

namespace {
double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>();
}

struct Grads {
  std::vector<torch::Tensor> values;
};

// Runs f on fresh leaf copies of inputs, backpropagates `seed_grad`, returns output + input grads.
template <typename F>
std::pair<torch::Tensor, std::vector<torch::Tensor>> run_with_grad(F f, const std::vector<torch::Tensor>& inputs,
                                                                   const torch::Tensor& seed_grad) {
  std::vector<torch::Tensor> leaves;
  for (const auto& t : inputs) leaves.push_back(t.detach().clone().requires_grad_(true));
  auto out = f(leaves);
  out.backward(seed_grad);
  std::vector<torch::Tensor> grads;
  for (auto& l : leaves) grads.push_back(l.grad());
  return {out.detach(), grads};
}
}  // namespace

TEST_CASE("fused attention equals softmax(q k^T s) v, forward and backward", "[model][attention]") {
  torch::manual_seed(1);
  // Token counts that are and are not multiples of the kernel's 4-row / 16-column blocks.
  for (int64_t n : {1, 5, 16, 33, 417}) {
    for (int64_t d : {7, 20, 25}) {
      INFO("N = " << n << ", d = " << d);
      auto q = torch::randn({2, 3, n, d}), k = torch::randn({2, 3, n, d}), v = torch::randn({2, 3, n, d});
      const double scale = 1.0 / std::sqrt(static_cast<double>(d));
      auto seed = torch::randn({2, 3, n, d});
      auto fused = run_with_grad([&](auto& in) { return neurobolt::detail::fused_attention(in[0], in[1], in[2], scale); },
                                 {q, k, v}, seed);
      auto plain = run_with_grad([&](auto& in) { return neurobolt::detail::composite_attention(in[0], in[1], in[2], scale); },
                                 {q, k, v}, seed);
      CHECK(max_abs(fused.first, plain.first) < 2e-6);
      for (int i = 0; i < 3; ++i) CHECK(max_abs(fused.second[i], plain.second[i]) < 1e-5);
    }
  }
}

TEST_CASE("the heads' LayerNorm reads q and k in place and equals torch::layer_norm", "[model][attention]") {
  torch::manual_seed(3);
  for (int64_t d : {20, 7, 1}) {
    INFO("d = " << d);
    // q of a fused qkv projection: [B, N, 3, H, d] viewed as [B, H, N, d].
    auto qkv = (torch::randn({2, 9, 3, 4, d}) * 3.0 + 1.5).permute({2, 0, 3, 1, 4});
    auto q = qkv[0];
    REQUIRE_FALSE(q.is_contiguous());
    auto weight = torch::randn({d}), bias = torch::randn({d});
    torch::Tensor ours, theirs;
    {
      torch::NoGradGuard no_grad;
      ours = neurobolt::detail::head_layer_norm(q, weight, bias, 1e-6);
      theirs = torch::layer_norm(q, {d}, weight, bias, 1e-6);
    }
    REQUIRE(ours.sizes() == theirs.sizes());
    CHECK(ours.is_contiguous());
    if (d == 1) {
      // Exactly the bias (x - mean is 0). torch's x * (rstd w) + (b - mean rstd w) form is off by
      // |x| rstd |w| ulps there (rstd = 1000 at eps 1e-6): 6.5e-5, not a comparison to make.
      CHECK(max_abs(ours, bias.view({1, 1, 1, 1}).expand_as(ours)) == 0);
    } else {
      CHECK(max_abs(ours, theirs) < 2e-5);
    }
  }
  // With autograd: its own backward, against torch::layer_norm's on the same strided view.
  auto qkv = torch::randn({2, 9, 3, 4, 20}).permute({2, 0, 3, 1, 4});
  auto weight = torch::randn({20}), bias = torch::randn({20}), seed = torch::randn({2, 4, 9, 20});
  auto grads = [&](bool ours) {
    auto x = qkv.clone().requires_grad_();
    auto w = weight.clone().requires_grad_(), b = bias.clone().requires_grad_();
    auto y = ours ? neurobolt::detail::head_layer_norm(x[1], w, b, 1e-6) : torch::layer_norm(x[1], {20}, w, b, 1e-6);
    (y * seed).sum().backward();
    return std::vector<torch::Tensor>{y.detach(), x.grad(), w.grad(), b.grad()};
  };
  const auto ours = grads(true), theirs = grads(false);
  CHECK(max_abs(ours[0], theirs[0]) < 2e-5);
  CHECK(max_abs(ours[1], theirs[1]) < 1e-4);
  CHECK(ours[1][0].abs().max().item<double>() == 0);  // nothing flows to q and v
  CHECK(max_abs(ours[2], theirs[2]) < 1e-4);
  CHECK(max_abs(ours[3], theirs[3]) < 1e-4);
}

TEST_CASE("fused attention reads strided views and returns a token-major result", "[model][attention]") {
  torch::manual_seed(2);
  auto qkv = torch::randn({2, 9, 3, 4, 20}).permute({2, 0, 3, 1, 4});  // [3, B, H, N, d] views
  auto out = neurobolt::detail::fused_attention(qkv[0], qkv[1], qkv[2], 0.2);
  CHECK(max_abs(out, neurobolt::detail::composite_attention(qkv[0], qkv[1], qkv[2], 0.2)) < 2e-6);
  CHECK(out.transpose(1, 2).is_contiguous());
  CHECK_FALSE(neurobolt::detail::fused_attention_supported(qkv[0].to(torch::kDouble)));
}

TEST_CASE("fused pre-norm sub-layers match LayerNorm + Linear (+ GELU + Linear) with gradients", "[model]") {
  torch::manual_seed(3);
  auto x = torch::randn({3, 11, 16});
  auto ln_w = torch::randn({16}), ln_b = torch::randn({16});
  auto w1 = torch::randn({24, 16}) * 0.2, b1 = torch::randn({24}), w2 = torch::randn({16, 24}) * 0.2, b2 = torch::randn({16});
  auto seed = torch::randn({3, 11, 16});
  auto fused = run_with_grad(
      [](auto& in) {
        return neurobolt::detail::layer_norm_mlp(in[0], neurobolt::detail::NormParams{in[1], in[2], 1e-6}, in[3], in[4], in[5], in[6]);
      },
      {x, ln_w, ln_b, w1, b1, w2, b2}, seed);
  auto plain = run_with_grad(
      [](auto& in) {
        auto y = torch::layer_norm(in[0], {16}, in[1], in[2], 1e-6);
        return torch::linear(torch::gelu(torch::linear(y, in[3], in[4])), in[5], in[6]);
      },
      {x, ln_w, ln_b, w1, b1, w2, b2}, seed);
  CHECK(max_abs(fused.first, plain.first) < 1e-5);
  for (size_t i = 0; i < fused.second.size(); ++i) {
    INFO("input " << i);
    CHECK(max_abs(fused.second[i], plain.second[i]) < 1e-4);
  }

  auto seed24 = torch::randn({3, 11, 24});
  auto fused_lin = run_with_grad(
      [](auto& in) { return neurobolt::detail::layer_norm_linear(in[0], neurobolt::detail::NormParams{in[1], in[2], 1e-5}, in[3], in[4]); },
      {x, ln_w, ln_b, w1, b1}, seed24);
  auto plain_lin = run_with_grad(
      [](auto& in) { return torch::linear(torch::layer_norm(in[0], {16}, in[1], in[2], 1e-5), in[3], in[4]); },
      {x, ln_w, ln_b, w1, b1}, seed24);
  for (size_t i = 0; i < fused_lin.second.size(); ++i) CHECK(max_abs(fused_lin.second[i], plain_lin.second[i]) < 1e-4);
}

TEST_CASE("a training step through the whole model gives the same gradients fused and unfused", "[model]") {
  torch::manual_seed(4);
  NeuroBOLT model(builtin_config("neurobolt-tiny"));
  auto x = torch::randn({2, 8, 3200}) * 30.0;
  auto target = torch::randn({2, 1});
  // eval() switches dropout off so both runs compute the same function; autograd stays on.
  model->eval();
  auto grads = [&](bool fused) {
    for (auto& block : model->block_list) block->attn->use_fused_kernel = fused;
    model->zero_grad();
    torch::mse_loss(model->forward(x), target).backward();
    std::vector<torch::Tensor> g;
    for (const auto& p : model->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  auto a = grads(true), b = grads(false);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(1e-6, b[i].abs().max().item<double>());
    CHECK(max_abs(a[i], b[i]) / scale < 1e-3);
  }
}

TEST_CASE("training mode is stochastic, eval mode is deterministic and batch-independent", "[model]") {
  torch::manual_seed(5);
  NeuroBOLT model(builtin_config("neurobolt-tiny"));
  auto x = torch::randn({3, 8, 3200}) * 30.0;
  model->train();
  auto t1 = model->forward(x), t2 = model->forward(x);
  CHECK(max_abs(t1, t2) > 0);  // dropout and stochastic depth are active
  model->eval();
  torch::NoGradGuard no_grad;
  auto e1 = model->forward(x);
  CHECK(max_abs(e1, model->forward(x)) == 0);
  // No batch statistics anywhere: a window's output does not depend on its batch neighbours.
  CHECK(max_abs(e1.narrow(0, 1, 1), model->forward(x.narrow(0, 1, 1))) < 1e-5);
}

TEST_CASE("inference on several threads runs the batch in parts (one window: its branches at once) and gives what one part gives", "[model]") {
  torch::manual_seed(6);
  NeuroBOLT model(builtin_config("neurobolt-tiny"));
  model->eval();
  auto x = torch::randn({5, 8, 3200}) * 30.0;
  const int threads_before = torch::get_num_threads();
  const int blas_before = current_runtime().blas_threads;
  torch::set_num_threads(2);
  // With autograd on, the whole batch runs as one (no split); without, in two parts (3 + 2).
  const auto whole = model->forward(x).detach();
  torch::Tensor parts, one_window;
  {
    torch::NoGradGuard no_grad;
    parts = model->forward(x);
    // One window on two threads: its two branches run at once, one per thread.
    one_window = model->forward(x.narrow(0, 4, 1));
  }
  torch::set_num_threads(threads_before);
  REQUIRE(parts.sizes() == whole.sizes());
  const double scale = whole.abs().max().item<double>();
  CHECK(max_abs(parts, whole) / scale < 1e-5);
  REQUIRE(one_window.sizes() == whole.narrow(0, 4, 1).sizes());
  CHECK(max_abs(one_window, whole.narrow(0, 4, 1)) / scale < 1e-5);
  // OpenBLAS's thread count, set to one during the parts, is restored.
  CHECK(current_runtime().blas_threads == blas_before);
}

TEST_CASE("a training step in parts draws every window's masks as the whole batch does and gives its gradients",
          "[model]") {
  auto config = builtin_config("neurobolt-tiny");
  config.temporal.drop = 0.2;
  config.temporal.drop_path = 0.3;
  config.spectral.attn_out_drop = 0.2;
  config.spectral.pe_drop = 0.1;
  config.spectral.ff_drop = 0.1;
  auto x = torch::randn({5, 8, 3200}) * 30.0;
  auto y = torch::randn({5, config.num_rois()});
  auto step = [&](int threads, bool whole, uint64_t seed) {
    torch::manual_seed(8);
    NeuroBOLT model(config);
    model->train();
    const int before = torch::get_num_threads();
    torch::set_num_threads(threads);
    torch::manual_seed(seed);
    auto loss = mse_forward_backward(model, x, y, whole);
    torch::set_num_threads(before);
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    // What the step left of the default generator (one draw per window either way).
    const auto next = torch::rand({4});
    return std::make_tuple(loss.item<double>(), grads, next);
  };
  const auto [whole_loss, whole_grads, whole_next] = step(1, true, 42);
  const auto [parts_loss, parts_grads, parts_next] = step(2, false, 42);  // parts of 3 and 2 windows
  const auto [other_loss, other_grads, other_next] = step(1, true, 43);
  // The masks matter (another seed, another loss), and the parts drew the whole batch's masks.
  CHECK(std::abs(other_loss - whole_loss) > 1e-6 * std::abs(whole_loss));
  CHECK(std::abs(parts_loss - whole_loss) <= 1e-5 * std::abs(whole_loss));
  CHECK(max_abs(parts_next, whole_next) == 0);
  REQUIRE(parts_grads.size() == whole_grads.size());
  // Each gradient against its own largest entry; gradients that are zero in exact arithmetic
  // (a convolution bias before GroupNorm, the key LayerNorm's bias under softmax: ~1e-10 of the
  // largest gradient here) against 1e-3 of the model's largest instead of their rounding noise.
  double largest = 0;
  for (const auto& g : whole_grads) largest = std::max(largest, g.abs().max().item<double>());
  REQUIRE(largest > 0);
  double worst = 0;
  for (size_t i = 0; i < whole_grads.size(); ++i) {
    const double scale = std::max(whole_grads[i].abs().max().item<double>(), 1e-3 * largest);
    worst = std::max(worst, max_abs(parts_grads[i], whole_grads[i]) / scale);
  }
  CHECK(worst < 1e-4);
  // Dropout per window keeps the expected share of units and rescales the rest.
  {
    const auto generators = neurobolt::detail::draw_window_generators(4);
    const neurobolt::detail::WindowRandomScope scope(&generators);
    auto ones = torch::ones({4, 1000, 50});
    auto dropped = neurobolt::detail::window_dropout(ones, 0.25, true);
    const double kept = (dropped > 0).to(torch::kDouble).mean().item<double>();
    CHECK(std::abs(kept - 0.75) < 0.01);
    CHECK(std::abs(dropped.max().item<double>() - 1.0 / 0.75) < 1e-6);
    // Each window, and both halves of each 64-bit draw (even and odd positions), keep 75 %; the
    // windows' masks differ, and the next call draws new ones (the generators advance).
    const auto keep = (dropped > 0).reshape({4, -1}).to(torch::kDouble);
    for (int64_t w = 0; w < 4; ++w) {
      INFO("window " << w);
      CHECK(std::abs(keep[w].slice(0, 0, -1, 2).mean().item<double>() - 0.75) < 0.015);
      CHECK(std::abs(keep[w].slice(0, 1, keep.size(1), 2).mean().item<double>() - 0.75) < 0.015);
    }
    CHECK(max_abs(keep[0], keep[1]) > 0);
    auto again = (neurobolt::detail::window_dropout(ones, 0.25, true) > 0).reshape({4, -1}).to(torch::kDouble);
    CHECK(std::abs((again == keep).to(torch::kDouble).mean().item<double>() - (0.75 * 0.75 + 0.25 * 0.25)) < 0.01);
    auto factor = neurobolt::detail::window_bernoulli(ones, 3, 0.5);
    CHECK(factor.sizes() == torch::IntArrayRef({4, 1, 1}));
  }
}

TEST_CASE("initialisation follows the reference recipe", "[model]") {
  torch::manual_seed(6);
  auto config = builtin_config("neurobolt-base");
  NeuroBOLT model(config);
  auto w = model->block_list[0]->mlp->fc1->weight;
  CHECK(std::abs(w.std().item<double>() - 0.02) < 0.002);  // truncated normal, std .02
  CHECK(w.abs().max().item<double>() <= 2.0);
  CHECK(model->block_list[0]->mlp->fc1->bias.abs().max().item<double>() == 0.0);
  // Output projections of block i are divided by sqrt(2 (i + 1)).
  const double s0 = model->block_list[0]->attn->proj->weight.std().item<double>();
  const double s11 = model->block_list[11]->attn->proj->weight.std().item<double>();
  CHECK(s0 / s11 == Approx(std::sqrt(12.0)).epsilon(0.05));
  CHECK(model->block_list[3]->gamma_1.min().item<double>() == Approx(0.1));
  // Head: truncated normal (std .02) times init_scale 0.001.
  CHECK(std::abs(model->head->weight.std().item<double>() - 0.02 * 0.001) < 0.01 * 0.001);
  CHECK(model->fc_norm->weight.min().item<double>() == 1.0);
  CHECK(model->mss_module->attention_norms[0]->options.eps() == 1e-5);
  CHECK(model->block_list[0]->norm1->options.eps() == 1e-6);
  // Same seed, same weights.
  torch::manual_seed(6);
  NeuroBOLT again(config);
  CHECK(torch::equal(again->pos_embed, model->pos_embed));
}

TEST_CASE("parameter counts per branch match the reference", "[model]") {
  auto counts = count_parameters(*NeuroBOLT(builtin_config("neurobolt-base")));
  CHECK(counts.temporal == 5819936);
  CHECK(counts.spectral == 2086848);
  CHECK(counts.head == 201);
  CHECK(counts.total() == 7906985);
  auto keys = state_dict(*NeuroBOLT(builtin_config("neurobolt-base")));
  CHECK(keys.size() == 294);
  CHECK(keys.front().first == "cls_token");
  CHECK(keys.back().first == "mss_module.channel_tokens.weight");
}

TEST_CASE("the model converts to float64 and keeps its channel-token index integral", "[model]") {
  NeuroBOLT model(builtin_config("neurobolt-tiny"));
  model->to(torch::kDouble);
  CHECK(model->mss_module->index.scalar_type() == torch::kLong);
  CHECK(model->pos_embed.scalar_type() == torch::kDouble);
  model->eval();
  torch::NoGradGuard no_grad;
  CHECK(model->forward(torch::randn({1, 8, 3200}, torch::kDouble)).scalar_type() == torch::kDouble);
}

TEST_CASE("bad model input is a clear error", "[model]") {
  NeuroBOLT model(builtin_config("neurobolt-tiny"));
  model->eval();
  torch::NoGradGuard no_grad;
  CHECK_THROWS_WITH(model->forward(torch::randn({1, 8, 3000})),
                    Catch::Contains("3200 samples") && Catch::Contains("[1, 8, 3000]"));
  CHECK_THROWS_WITH(model->forward(torch::randn({8, 3200})), Catch::Contains("[batch, channels, samples]"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 8, 3200}, torch::kLong)), Catch::Contains("floating-point"));
  CHECK_THROWS_WITH(model->forward(torch::randn({1, 2, 3200}), std::vector<std::string>{"FP1", "FP1"}),
                    Catch::Contains("twice"));
}

TEST_CASE("input channels match by name as prepare matches them: any case, old 10-20 names", "[model]") {
  NeuroBOLT model(builtin_config("neurobolt-tiny"));  // FP1 FP2 C3 C4 T7 T8 O1 O2
  model->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 8, 3200});
  const auto expected = model->forward(x);
  // T3/T4 are the old names of T7/T8 (one alias table for every path); order and case differ,
  // and one extra channel is ignored.
  const std::vector<int64_t> order = {7, 6, 5, 4, 3, 2, 1, 0};
  const auto reordered = torch::cat({x.index_select(1, torch::tensor(order)), torch::randn({2, 1, 3200})}, 1);
  const auto got = model->forward(reordered, std::vector<std::string>{"o2", "O1", "T4", "t3", "C4", "c3", "Fp2", "FP1", "Cz"});
  CHECK(max_abs(got, expected) == 0.0);
  CHECK_THROWS_WITH(model->forward(torch::randn({1, 2, 3200}), std::vector<std::string>{"T3", "T7"}),
                    Catch::Contains("twice"));
}

TEST_CASE("temporal convolution gradients in float32 agree with float64", "[model]") {
  // Guards the workaround for LibTorch 1.13's float32 GELU backward on channels-last gradients
  // (it returned zeros/garbage for the token rearrangement after the last convolution).
  torch::manual_seed(7);
  NeuroBOLT model(builtin_config("neurobolt-tiny"));
  auto x = torch::randn({2, 8, 16, 200}) * 0.3;
  auto seed = torch::randn({2, 128, 50});
  std::vector<torch::Tensor> grads;
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    model->to(dtype);
    model->zero_grad();
    (model->patch_embed(x.to(dtype)) * seed.to(dtype)).sum().backward();
    grads.push_back(model->patch_embed->conv1->weight.grad().to(torch::kDouble));
  }
  const double scale = grads[1].abs().max().item<double>();
  CHECK(scale > 0);
  CHECK(max_abs(grads[0], grads[1]) / scale < 1e-4);
}
