#include "dist/group.hpp"

#include <fmt/format.h>

// c10d's Gloo process group needs Gloo's headers (Debian: libgloo-dev). A LibTorch without them
// still builds; distributed training then says why it cannot start.
#if __has_include(<gloo/config.h>)
#define NEUROBOLT_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/GlooDeviceFactory.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#define NEUROBOLT_HAVE_GLOO 0
#include <torch/csrc/distributed/c10d/Work.hpp>
#endif

#include <cstdlib>

#include "neurobolt/error.hpp"
#include "neurobolt/hash.hpp"

namespace neurobolt::dist {

uint64_t fingerprint(const std::vector<torch::Tensor>& tensors) {
  uint64_t h = kFnv1aOffset;
  for (const auto& t : tensors) {
    const auto c = t.detach().to(torch::kCPU).contiguous();
    h = fnv1a(c.data_ptr(), static_cast<std::size_t>(c.numel()) * c.element_size(), h);
  }
  return h;
}

Group::Group(const DistributedEnvironment& env, std::chrono::milliseconds timeout) : env_(env), timeout_(timeout) {
#if !NEUROBOLT_HAVE_GLOO
  throw ConfigError("distributed training: this build has no Gloo headers (install libgloo-dev and rebuild)");
#else
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = static_cast<std::size_t>(env.world_size);
    options.waitWorkers = true;
    options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
    // The transport: GLOO_SOCKET_IFNAME as in PyTorch; loopback for a run on one machine; else
    // the interface this host's name resolves to.
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
      gloo->devices.push_back(c10d::GlooDeviceFactory::makeDeviceForInterface(ifname));
    } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
      gloo->devices.push_back(c10d::GlooDeviceFactory::makeDeviceForHostname("127.0.0.1"));
    } else {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, gloo);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    lost(fmt::format("rendezvous at {}:{} ({} ranks)", env.master_addr, env.master_port, env.world_size), e);
  }
#endif
}

Group::~Group() = default;

#if NEUROBOLT_HAVE_GLOO
c10d::ProcessGroupGloo& Group::gloo() const { return *static_cast<c10d::ProcessGroupGloo*>(group_.get()); }
#endif

void Group::lost(const std::string& what, const std::exception& e) const {
  std::string message = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) message = c10->what_without_backtrace();
  if (const auto newline = message.find('\n'); newline != std::string::npos) message.resize(newline);
  throw IoError(fmt::format("distributed rank {} of {}: {} failed: another rank exited or did not answer within {} s "
                            "({})",
                            env_.rank, env_.world_size, what, timeout_.count() / 1000, message));
}

#if NEUROBOLT_HAVE_GLOO
void Group::allreduce_sum(torch::Tensor& t) { wait(allreduce_sum_async(t)); }

c10::intrusive_ptr<c10d::Work> Group::allreduce_sum_async(torch::Tensor& t) {
  try {
    std::vector<torch::Tensor> tensors{t};
    return gloo().allreduce(tensors);
  } catch (const std::exception& e) {
    lost("all-reduce", e);
  }
}

void Group::wait(const c10::intrusive_ptr<c10d::Work>& work) {
  try {
    if (!work->wait(timeout_)) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    lost("all-reduce", e);
  }
}

void Group::broadcast(torch::Tensor& t, int root) {
  try {
    std::vector<torch::Tensor> tensors{t};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    auto work = gloo().broadcast(tensors, options);
    if (!work->wait(timeout_)) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    lost("broadcast", e);
  }
}

#else
void Group::allreduce_sum(torch::Tensor&) { throw ConfigError("distributed training: no Gloo in this build"); }
c10::intrusive_ptr<c10d::Work> Group::allreduce_sum_async(torch::Tensor&) {
  throw ConfigError("distributed training: no Gloo in this build");
}
void Group::wait(const c10::intrusive_ptr<c10d::Work>&) {}
void Group::broadcast(torch::Tensor&, int) { throw ConfigError("distributed training: no Gloo in this build"); }
#endif

double Group::sum(double value) {
  auto t = torch::tensor({value}, torch::kDouble);
  allreduce_sum(t);
  return t.item<double>();
}

#if NEUROBOLT_HAVE_GLOO
void Group::barrier() {
  try {
    auto work = gloo().barrier();
    if (!work->wait(timeout_)) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    lost("barrier", e);
  }
}

#else
void Group::barrier() {}
#endif

void Group::check_same(const std::vector<std::string>& names, const std::vector<uint64_t>& values) {
  // Every rank's values in its own row, summed: the table of all ranks on every rank.
  const auto n = static_cast<int64_t>(values.size());
  auto table = torch::zeros({size(), n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) table[rank()][i] = static_cast<int64_t>(values[static_cast<std::size_t>(i)]);
  allreduce_sum(table);
  const auto* all = table.data_ptr<int64_t>();
  for (int r = 1; r < size(); ++r)
    for (int64_t i = 0; i < n; ++i)
      if (all[r * n + i] != all[i]) {
        throw ConfigError(fmt::format("distributed: rank {} has another {} than rank 0 ({:016x} vs {:016x}): every "
                                      "rank must start from the same command, data and weights",
                                      r, names[static_cast<std::size_t>(i)], static_cast<uint64_t>(all[r * n + i]),
                                      static_cast<uint64_t>(all[i])));
      }
}

GradientSync::GradientSync(Group& group, std::vector<torch::Tensor> parameters, int64_t bucket_bytes)
    : group_(group), parameters_(std::move(parameters)) {
  bucket_of_.assign(parameters_.size(), 0);
  seen_.assign(parameters_.size(), false);
  // Reverse order: the last layers' gradients come first in backward.
  Bucket current;
  int64_t bytes = 0;
  auto close = [&] {
    if (current.params.empty()) return;
    current.flat = torch::zeros({current.offsets.back()}, torch::kFloat);
    current.offsets.pop_back();
    buckets_.push_back(std::move(current));
    current = Bucket{};
    bytes = 0;
  };
  for (std::size_t k = parameters_.size(); k-- > 0;) {
    if (current.offsets.empty()) current.offsets.push_back(0);
    bucket_of_[k] = buckets_.size();
    current.params.push_back(k);
    current.offsets.push_back(current.offsets.back() + parameters_[k].numel());
    bytes += parameters_[k].numel() * 4;
    if (bytes >= bucket_bytes) close();
  }
  close();
  for (std::size_t k = 0; k < parameters_.size(); ++k) {
    hooks_.push_back(parameters_[k].register_hook([this, k](const torch::Tensor& grad) { on_grad(k, grad); }));
  }
}

GradientSync::~GradientSync() {
  for (std::size_t k = 0; k < parameters_.size(); ++k) parameters_[k].remove_hook(hooks_[k]);
}

void GradientSync::begin() {
  for (auto& b : buckets_) {
    b.ready = 0;
    b.work.reset();
    b.flat.zero_();
  }
  std::fill(seen_.begin(), seen_.end(), false);
  next_launch_ = 0;
}

void GradientSync::on_grad(std::size_t param, const torch::Tensor& grad) {
  auto& b = buckets_[bucket_of_[param]];
  const auto slot = static_cast<std::size_t>(
      std::find(b.params.begin(), b.params.end(), param) - b.params.begin());
  b.flat.narrow(0, b.offsets[slot], parameters_[param].numel())
      .copy_(grad.detach().reshape({-1}).to(torch::kCPU, torch::kFloat));
  if (!seen_[param]) {
    seen_[param] = true;
    ++b.ready;
  }
  launch_ready();
}

void GradientSync::launch_ready() {
  // Buckets start in index order on every rank, so that the collectives match up.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
    buckets_[next_launch_].work = group_.allreduce_sum_async(buckets_[next_launch_].flat);
    ++next_launch_;
  }
}

void GradientSync::finish() {
  for (; next_launch_ < buckets_.size(); ++next_launch_) {
    buckets_[next_launch_].work = group_.allreduce_sum_async(buckets_[next_launch_].flat);
  }
  const double scale = 1.0 / group_.size();
  torch::NoGradGuard no_grad;
  for (auto& b : buckets_) {
    group_.wait(b.work);
    b.flat.mul_(scale);
    for (std::size_t slot = 0; slot < b.params.size(); ++slot) {
      auto& p = parameters_[b.params[slot]];
      auto average = b.flat.narrow(0, b.offsets[slot], p.numel()).view(p.sizes()).to(p.device(), p.scalar_type());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(average);
      } else {
        p.mutable_grad() = average.clone();
      }
    }
  }
}

}  // namespace neurobolt::dist
