#include "model/window_random.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <mutex>

namespace neurobolt::detail {
namespace {
thread_local const std::vector<at::Generator>* t_generators = nullptr;

const std::vector<at::Generator>* generators_for(const torch::Tensor& x) {
  const auto* g = t_generators;
  if (g == nullptr || !x.device().is_cpu()) return nullptr;
  TORCH_CHECK(x.dim() >= 1 && static_cast<size_t>(x.size(0)) == g->size(), "window random: a batch of ",
              x.dim() >= 1 ? x.size(0) : 0, " windows against ", g->size(), " generators");
  return g;
}
}  // namespace

std::vector<at::Generator> draw_window_generators(int64_t windows) {
  auto source = at::detail::getDefaultCPUGenerator();
  std::vector<uint64_t> seeds(static_cast<size_t>(windows));
  {
    std::lock_guard<std::mutex> lock(source.mutex());
    auto* impl = source.get<at::CPUGeneratorImpl>();
    for (auto& seed : seeds) seed = impl->random64();
  }
  std::vector<at::Generator> out;
  out.reserve(seeds.size());
  for (uint64_t seed : seeds) out.push_back(at::make_generator<at::CPUGeneratorImpl>(seed));
  return out;
}

WindowRandomScope::WindowRandomScope(const std::vector<at::Generator>* generators) : saved_(t_generators) {
  t_generators = generators;
}

WindowRandomScope::~WindowRandomScope() { t_generators = saved_; }

const std::vector<at::Generator>* window_generators() { return t_generators; }

torch::Tensor window_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0.0) return x;
  const auto* g = generators_for(x);
  if (g == nullptr || p >= 1.0) return torch::dropout(x, p, training);
  auto mask = torch::empty(x.sizes(), x.options().dtype(torch::kBool));
  for (int64_t i = 0; i < x.size(0); ++i) mask.select(0, i).bernoulli_(1.0 - p, (*g)[static_cast<size_t>(i)]);
  auto y = x * mask;  // saves the bool mask only
  return y.mul_(1.0 / (1.0 - p));
}

torch::Tensor window_bernoulli(const torch::Tensor& x, int64_t dims, double keep) {
  std::vector<int64_t> shape(static_cast<size_t>(dims), 1);
  shape[0] = x.size(0);
  auto draws = torch::empty(shape, x.options());
  if (const auto* g = generators_for(x)) {
    for (int64_t i = 0; i < x.size(0); ++i) draws.select(0, i).bernoulli_(keep, (*g)[static_cast<size_t>(i)]);
  } else {
    draws.bernoulli_(keep);
  }
  return draws;
}

}  // namespace neurobolt::detail
