#include "model/fused_layers.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>

namespace neurobolt::detail {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

torch::Tensor plain_forward(const torch::Tensor& x, const NormParams& norm, const torch::Tensor& w1,
                            const torch::Tensor& b1, const torch::Tensor& w2, const torch::Tensor& b2) {
  auto y = norm.weight.defined() ? torch::layer_norm(x, {x.size(-1)}, norm.weight, norm.bias, norm.eps) : x;
  auto h = torch::linear(y, w1, b1);
  return w2.defined() ? torch::linear(torch::gelu(h), w2, b2) : h;
}

// Absent optional inputs travel as empty tensors: LibTorch 1.13's Function::apply records the
// device of every tensor argument and cannot take undefined ones.
torch::Tensor or_empty(const torch::Tensor& t, const torch::Tensor& like) {
  return t.defined() ? t : torch::empty({0}, like.options());
}
bool present(const torch::Tensor& t) { return t.defined() && t.numel() > 0; }
torch::Tensor if_present(const torch::Tensor& t) { return present(t) ? t : torch::Tensor(); }

// Inputs: x, norm weight, norm bias, eps, w1, b1, w2, b2 (norm, b1 and w2/b2 may be empty).
struct NormMlp : torch::autograd::Function<NormMlp> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& norm_weight_in,
                               const torch::Tensor& norm_bias_in, double eps, const torch::Tensor& w1,
                               const torch::Tensor& b1_in, const torch::Tensor& w2_in, const torch::Tensor& b2_in) {
    const auto norm_weight = if_present(norm_weight_in), norm_bias = if_present(norm_bias_in);
    const auto b1 = if_present(b1_in), w2 = if_present(w2_in), b2 = if_present(b2_in);
    const int64_t width = x.size(-1);
    torch::Tensor y = x, mean, rstd;
    if (norm_weight.defined()) std::tie(y, mean, rstd) = at::native_layer_norm(x, {width}, norm_weight, norm_bias, eps);
    auto hidden = torch::linear(y, w1, b1);
    torch::Tensor out = w2.defined() ? torch::linear(torch::gelu(hidden), w2, b2) : hidden;
    ctx->save_for_backward({x, mean, rstd, norm_weight, norm_bias, w1, w2, w2.defined() ? hidden : torch::Tensor()});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["has_b1"] = b1.defined();
    ctx->saved_data["has_b2"] = b2.defined();
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &mean = saved[1], &rstd = saved[2], &norm_weight = saved[3], &norm_bias = saved[4],
               &w1 = saved[5], &w2 = saved[6], &hidden = saved[7];
    const double eps = ctx->saved_data["eps"].toDouble();
    const int64_t width = x.size(-1);
    auto grad = grad_outputs[0].reshape({-1, grad_outputs[0].size(-1)});

    torch::Tensor grad_w2, grad_b2, grad_hidden;
    if (w2.defined()) {
      auto hidden_2d = hidden.reshape({-1, hidden.size(-1)});
      grad_w2 = grad.t().mm(torch::gelu(hidden_2d));
      if (ctx->saved_data["has_b2"].toBool()) grad_b2 = grad.sum(0);
      grad_hidden = torch::gelu_backward(grad.mm(w2), hidden_2d);
    } else {
      grad_hidden = grad;
    }
    const bool normed = norm_weight.defined();
    auto y = normed ? std::get<0>(at::native_layer_norm(x, {width}, norm_weight, norm_bias, eps)) : x;
    auto grad_w1 = grad_hidden.t().mm(y.reshape({-1, width}));
    torch::Tensor grad_b1 = ctx->saved_data["has_b1"].toBool() ? grad_hidden.sum(0) : torch::Tensor();
    auto grad_y = grad_hidden.mm(w1).reshape(x.sizes());
    torch::Tensor grad_x = grad_y, grad_norm_weight, grad_norm_bias;
    if (normed) {
      std::tie(grad_x, grad_norm_weight, grad_norm_bias) = at::native_layer_norm_backward(
          grad_y, x, {width}, mean, rstd, norm_weight, norm_bias, {true, true, true});
    }
    return {grad_x, grad_norm_weight, grad_norm_bias, torch::Tensor(), grad_w1, grad_b1, grad_w2, grad_b2};
  }
};

torch::Tensor dispatch(const torch::Tensor& x, const NormParams& norm, const torch::Tensor& w1, const torch::Tensor& b1,
                       const torch::Tensor& w2, const torch::Tensor& b2) {
  if (!torch::GradMode::is_enabled()) return plain_forward(x, norm, w1, b1, w2, b2);
  return NormMlp::apply(x, or_empty(norm.weight, x), or_empty(norm.bias, x), norm.eps, w1, or_empty(b1, x),
                        or_empty(w2, x), or_empty(b2, x));
}

}  // namespace

namespace {

bool head_norm_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat && x.dim() == 4 && x.stride(3) == 1 &&
         x.size(3) > 0 && weight.defined() && bias.defined() && weight.is_contiguous() && bias.is_contiguous() &&
         weight.scalar_type() == torch::kFloat && bias.scalar_type() == torch::kFloat &&
         weight.numel() == x.size(3) && bias.numel() == x.size(3);
}

// Rows of x (a [B, H, N, d] view with unit last stride), token-major with the heads innermost:
// the heads of a token lie side by side in a qkv projection, so each token's rows are read in
// one sweep (head-major order strides through ~1 MB per window). f(row, flat row index b*H*N +
// h*N + i) for every row.
template <typename F>
void for_each_head_row(const torch::Tensor& x, const F& f) {
  const int64_t heads = x.size(1), tokens = x.size(2);
  const int64_t sb = x.stride(0), sh = x.stride(1), sn = x.stride(2);
  const float* src = x.data_ptr<float>();
  at::parallel_for(0, x.size(0) * tokens, 16, [&](int64_t begin, int64_t end) {
    for (int64_t bi = begin; bi < end; ++bi) {
      const int64_t b = bi / tokens, i = bi % tokens;
      for (int64_t h = 0; h < heads; ++h) f(src + b * sb + h * sh + i * sn, (b * heads + h) * tokens + i);
    }
  });
}

// Mean and 1 / sqrt(biased variance + eps) of d floats, in float with four partial sums.
std::pair<float, float> row_moments(const float* row, int64_t d, float eps) {
  float s4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  int64_t t = 0;
  for (; t + 4 <= d; t += 4) {
    for (int l = 0; l < 4; ++l) s4[l] += row[t + l];
  }
  for (; t < d; ++t) s4[0] += row[t];
  const float mean = ((s4[0] + s4[1]) + (s4[2] + s4[3])) / static_cast<float>(d);
  float q4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (t = 0; t + 4 <= d; t += 4) {
    for (int l = 0; l < 4; ++l) q4[l] += (row[t + l] - mean) * (row[t + l] - mean);
  }
  for (; t < d; ++t) q4[0] += (row[t] - mean) * (row[t] - mean);
  const float variance = ((q4[0] + q4[1]) + (q4[2] + q4[3])) / static_cast<float>(d);
  return {mean, 1.0f / std::sqrt(variance + eps)};
}

// out (contiguous [B, H, N, d]) = LayerNorm of x's rows; each row's mean and rstd to `mean_out`
// and `rstd_out` ([B*H*N], may be null).
void head_norm_forward(const torch::Tensor& x, const float* gain, const float* shift, float eps, float* out,
                       float* mean_out, float* rstd_out) {
  const int64_t d = x.size(3);
  for_each_head_row(x, [&](const float* row, int64_t r) {
    const auto [mean, rstd] = row_moments(row, d, eps);
    float* o = out + r * d;
    for (int64_t t = 0; t < d; ++t) o[t] = (row[t] - mean) * rstd * gain[t] + shift[t];
    if (mean_out != nullptr) {
      mean_out[r] = mean;
      rstd_out[r] = rstd;
    }
  });
}

// Inputs: x, weight, bias, eps. Saves x (a view of the qkv projection that attention keeps
// anyway) and per-row mean and rstd; recomputes the normalised rows in backward.
struct HeadLayerNorm : torch::autograd::Function<HeadLayerNorm> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, double eps) {
    auto out = torch::empty(x.sizes(), x.options());
    auto mean = torch::empty({x.size(0) * x.size(1) * x.size(2)}, x.options());
    auto rstd = torch::empty_like(mean);
    head_norm_forward(x, weight.data_ptr<float>(), bias.data_ptr<float>(), static_cast<float>(eps),
                      out.data_ptr<float>(), mean.data_ptr<float>(), rstd.data_ptr<float>());
    ctx->save_for_backward({x, weight, mean, rstd});
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &mean = saved[2], &rstd = saved[3];
    const auto grad = grad_outputs[0].contiguous();
    const int64_t d = x.size(3);
    auto grad_x = torch::empty(x.sizes(), x.options());
    auto normed = torch::empty(x.sizes(), x.options());  // x-hat, for the weight gradient
    const float* g = grad.data_ptr<float>();
    const float* gain = weight.data_ptr<float>();
    const float* means = mean.data_ptr<float>();
    const float* rstds = rstd.data_ptr<float>();
    float* dx = grad_x.data_ptr<float>();
    float* xhat = normed.data_ptr<float>();
    // dx = rstd (gw - mean(gw) - xhat mean(gw xhat)) with gw = dy * weight.
    for_each_head_row(x, [&](const float* row, int64_t r) {
      const float* dy = g + r * d;
      float* h = xhat + r * d;
      float sum_gw = 0.0f, sum_gw_h = 0.0f;
      for (int64_t t = 0; t < d; ++t) {
        h[t] = (row[t] - means[r]) * rstds[r];
        const float gw = dy[t] * gain[t];
        sum_gw += gw;
        sum_gw_h += gw * h[t];
      }
      const float a = sum_gw / static_cast<float>(d), c = sum_gw_h / static_cast<float>(d);
      float* o = dx + r * d;
      for (int64_t t = 0; t < d; ++t) o[t] = rstds[r] * (dy[t] * gain[t] - a - h[t] * c);
    });
    const std::vector<int64_t> rows{0, 1, 2};
    auto grad_weight = (grad * normed).sum(rows);
    auto grad_bias = grad.sum(rows);
    return {grad_x, grad_weight, grad_bias, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor head_layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps) {
  if (!head_norm_applies(x, weight, bias)) return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
  if (torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad())) {
    return HeadLayerNorm::apply(x, weight, bias, eps);
  }
  auto out = torch::empty(x.sizes(), x.options());
  head_norm_forward(x, weight.data_ptr<float>(), bias.data_ptr<float>(), static_cast<float>(eps),
                    out.data_ptr<float>(), nullptr, nullptr);
  return out;
}

torch::Tensor layer_norm_linear(const torch::Tensor& x, const NormParams& norm, const torch::Tensor& w,
                                const torch::Tensor& b) {
  return dispatch(x, norm, w, b, torch::Tensor(), torch::Tensor());
}

torch::Tensor layer_norm_mlp(const torch::Tensor& x, const NormParams& norm, const torch::Tensor& w1,
                             const torch::Tensor& b1, const torch::Tensor& w2, const torch::Tensor& b2) {
  return dispatch(x, norm, w1, b1, w2, b2);
}

}  // namespace neurobolt::detail
