#include "dist/group.hpp"

#include <fmt/format.h>
#include <torch/version.h>

// c10d's Gloo process group needs Gloo's headers (Debian: libgloo-dev; a PyTorch wheel ships none,
// so the CUDA-wired build compiles against the system's). A build without them still builds;
// distributed training on the CPU then says why it cannot start. Only ProcessGroupGloo.hpp: the
// wheel lacks GlooDeviceFactory.hpp, and Debian's (1.13) declares functions the wheel's library
// does not export.
#if __has_include(<gloo/config.h>)
#define NEUROBOLT_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#else
#define NEUROBOLT_HAVE_GLOO 0
#endif
// NCCL: USE_C10D_NCCL comes with the torch target of a LibTorch built with it (a PyTorch CUDA
// wheel; Debian's libtorch-dev ships ProcessGroupNCCL.hpp but not the library code behind it), and
// needs the CUDA-wired build for c10::cuda. The wheel's nccl.h is first on the include path (see
// src/CMakeLists.txt): ProcessGroupNCCL::Options holds NCCL's config struct by value.
#if defined(USE_C10D_NCCL) && defined(NEUROBOLT_WITH_CUDA)
#define NEUROBOLT_HAVE_NCCL 1
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#define NEUROBOLT_HAVE_NCCL 0
#endif
#if NEUROBOLT_HAVE_GLOO || NEUROBOLT_HAVE_NCCL
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#include <torch/csrc/distributed/c10d/Work.hpp>
#endif

#include <cstdlib>
#include <exception>

#include "neurobolt/error.hpp"
#include "neurobolt/hash.hpp"

namespace neurobolt::dist {
namespace {

#if NEUROBOLT_HAVE_GLOO || NEUROBOLT_HAVE_NCCL
// What both process groups derive from, and what the collectives are called on.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif
#endif

}  // namespace

uint64_t fingerprint(const std::vector<torch::Tensor>& tensors) {
  uint64_t h = kFnv1aOffset;
  for (const auto& t : tensors) {
    const auto c = t.detach().to(torch::kCPU).contiguous();
    h = fnv1a(c.data_ptr(), static_cast<std::size_t>(c.numel()) * c.element_size(), h);
  }
  return h;
}

std::string backends_built() {
  std::string names = NEUROBOLT_HAVE_GLOO ? "Gloo" : "";
  if (NEUROBOLT_HAVE_NCCL) names += names.empty() ? "NCCL" : ", NCCL";
  return names.empty() ? "none" : names;
}

void require_nccl() {
#if !NEUROBOLT_HAVE_NCCL
#ifdef USE_C10D_NCCL
  const char* why = "this build is not CUDA-wired (configure with -DNEUROBOLT_WITH_CUDA=ON)";
#else
  const std::string why = fmt::format("this build: LibTorch {} without NCCL, {} on the CPU only", TORCH_VERSION,
                                      backends_built());
#endif
  throw ConfigError(fmt::format("distributed training on CUDA needs a LibTorch with NCCL ({}); train on one GPU, or "
                                "distributed on --device cpu",
                                why));
#endif
}

torch::Device rank_device(const torch::Device& requested, int local_rank, int64_t visible) {
  const int64_t first = requested.has_index() ? requested.index() : 0;
  int64_t index = first + local_rank;
  if (visible == 1 && !requested.has_index()) index = 0;
  if (index >= visible) {
    throw ConfigError(fmt::format("distributed: local rank {} needs cuda:{} (--device {} plus the local rank), but this "
                                  "process sees {} CUDA device(s): start at most {} ranks per machine, or give each "
                                  "rank its own GPU (CUDA_VISIBLE_DEVICES)",
                                  local_rank, index, requested.str(), visible, std::max<int64_t>(0, visible - first)));
  }
  return {torch::kCUDA, static_cast<c10::DeviceIndex>(index)};
}

Group::Group(const DistributedEnvironment& env, std::chrono::milliseconds timeout, const torch::Device& device)
    : env_(env), timeout_(timeout), device_(device) {
  if (device.is_cuda()) require_nccl();
#if !NEUROBOLT_HAVE_GLOO
  if (!device.is_cuda()) {
    throw ConfigError("distributed training: this build has no Gloo headers (install libgloo-dev and rebuild)");
  }
#endif
#if NEUROBOLT_HAVE_GLOO || NEUROBOLT_HAVE_NCCL
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = static_cast<std::size_t>(env.world_size);
    options.waitWorkers = true;
    options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
#if NEUROBOLT_HAVE_NCCL
    if (device.is_cuda()) {
      // NCCL's communicators and the caching allocator follow the current device.
      if (!device_.has_index()) device_ = torch::Device(torch::kCUDA, c10::cuda::current_device());
      c10::cuda::set_device(device_.index());
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = timeout;
      group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, nccl);
      return;
    }
#endif
#if NEUROBOLT_HAVE_GLOO
    auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
    // The transport: GLOO_SOCKET_IFNAME as in PyTorch; loopback for a run on one machine; else
    // the interface this host's name resolves to.
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, gloo);
#endif
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    lost(fmt::format("rendezvous at {}:{} ({} ranks)", env.master_addr, env.master_port, env.world_size), e);
  }
#endif
}

Group::~Group() {
#if NEUROBOLT_HAVE_NCCL
  // NCCL's communicators end cleanly on a normal exit; while an error unwinds (a peer may be gone)
  // they are aborted rather than waited for.
  if (device_.is_cuda() && group_) {
    auto& nccl = *static_cast<c10d::ProcessGroupNCCL*>(group_.get());
    try {
      if (std::uncaught_exceptions() > 0) {
        nccl.abort();
      } else {
        nccl.shutdown();
      }
    } catch (const std::exception&) {
      // nothing more to do for a group that is going away
    }
  }
#endif
}

void Group::lost(const std::string& what, const std::exception& e) const {
  std::string message = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) message = c10->what_without_backtrace();
  if (const auto newline = message.find('\n'); newline != std::string::npos) message.resize(newline);
  throw IoError(fmt::format("distributed rank {} of {}: {} failed: another rank exited or did not answer within {} s "
                            "({})",
                            env_.rank, env_.world_size, what, timeout_.count() / 1000, message));
}

#if NEUROBOLT_HAVE_GLOO || NEUROBOLT_HAVE_NCCL
c10::intrusive_ptr<c10d::Work> Group::allreduce_sum_async(torch::Tensor& t) {
  try {
    std::vector<torch::Tensor> tensors{t};
    return static_cast<Collectives*>(group_.get())->allreduce(tensors);
  } catch (const std::exception& e) {
    lost("all-reduce", e);
  }
}

void Group::wait(const c10::intrusive_ptr<c10d::Work>& work) {
  // With a timeout, NCCL's wait blocks this thread too (without one it only orders the current
  // stream after the collective): a lost peer is then this IoError, not a hang.
  try {
    if (!work->wait(timeout_)) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    lost("all-reduce", e);
  }
}

void Group::blocking(const char* what, torch::Tensor& t,
                     const std::function<c10::intrusive_ptr<c10d::Work>(std::vector<torch::Tensor>&)>& collective) {
  const bool staged = t.device() != device_;
  std::vector<torch::Tensor> tensors{staged ? t.to(device_) : t};
  try {
    if (!collective(tensors)->wait(timeout_)) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    lost(what, e);
  }
  if (staged) t.copy_(tensors[0]);
}

void Group::allreduce_sum(torch::Tensor& t) {
  blocking("all-reduce", t, [this](std::vector<torch::Tensor>& tensors) {
    return static_cast<Collectives*>(group_.get())->allreduce(tensors);
  });
}

void Group::broadcast(torch::Tensor& t, int root) {
  blocking("broadcast", t, [this, root](std::vector<torch::Tensor>& tensors) {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    return static_cast<Collectives*>(group_.get())->broadcast(tensors, options);
  });
}

#else
void Group::allreduce_sum(torch::Tensor&) { throw ConfigError("distributed training: no Gloo in this build"); }
c10::intrusive_ptr<c10d::Work> Group::allreduce_sum_async(torch::Tensor&) {
  throw ConfigError("distributed training: no Gloo in this build");
}
void Group::wait(const c10::intrusive_ptr<c10d::Work>&) {}
void Group::blocking(const char*, torch::Tensor&,
                     const std::function<c10::intrusive_ptr<c10d::Work>(std::vector<torch::Tensor>&)>&) {}
void Group::broadcast(torch::Tensor&, int) { throw ConfigError("distributed training: no Gloo in this build"); }
#endif

double Group::sum(double value) {
  auto t = torch::tensor({value}, torch::kDouble);
  allreduce_sum(t);
  return t.item<double>();
}

// An all-reduce of one number: the same on every backend (NCCL's own barrier guesses a device).
void Group::barrier() {
  auto t = torch::zeros({1}, torch::kFloat);
  allreduce_sum(t);
}

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
    current.flat = torch::zeros({current.offsets.back()}, torch::dtype(torch::kFloat).device(group_.device()));
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
      .copy_(grad.detach().reshape({-1}));
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
