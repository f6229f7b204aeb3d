#pragma once
// A c10d process group for data-parallel training (internal: LibTorch types), and the gradient
// synchronisation that averages gradients across it in buckets while the backward pass runs.
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "neurobolt/distributed.hpp"

namespace c10d {
class Work;
}  // namespace c10d

namespace neurobolt::dist {

// The c10d backends this LibTorch build offers for distributed training, e.g. "Gloo" (Debian's
// LibTorch 1.13) or "Gloo, NCCL" (a PyTorch 2.x CUDA wheel in the CUDA-wired build).
std::string backends_built();

// Throws the ConfigError that says why a distributed run cannot use CUDA devices in this build
// (no NCCL in the LibTorch, or a build that is not CUDA-wired); returns where it can.
void require_nccl();

// The CUDA device of one rank: the device asked for (`cuda`: index 0, `cuda:N`: N) offset by the
// rank's local rank, so that the ranks of one machine use one GPU each. A process that sees one
// CUDA device only (a scheduler gave each rank its own, e.g. SLURM's --gpus-per-task=1 or
// CUDA_VISIBLE_DEVICES per rank) uses it whatever its local rank, when no index was given. Any
// other index beyond the `visible` devices is a ConfigError naming the rank.
torch::Device rank_device(const torch::Device& requested, int local_rank, int64_t visible);

// Rendezvous through a TCPStore served by rank 0 at MASTER_ADDR:MASTER_PORT, then a process group
// on `device`: Gloo for the CPU, NCCL for a CUDA device (the one this rank uses; it becomes the
// current CUDA device). Collectives take tensors on any device: those elsewhere than the group's
// device go through a copy there and back. Every collective is blocking unless it says otherwise;
// a peer that is gone or silent for `timeout` makes it throw an IoError naming this rank.
class Group {
 public:
  Group(const DistributedEnvironment& env, std::chrono::milliseconds timeout,
        const torch::Device& device = torch::kCPU);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  const DistributedEnvironment& environment() const { return env_; }
  const torch::Device& device() const { return device_; }  // where collectives run
  const char* backend() const { return device_.is_cuda() ? "NCCL" : "Gloo"; }

  void allreduce_sum(torch::Tensor& t);  // in place
  // In place; `t` must be on device(). Until wait() returns, `t` belongs to the collective.
  c10::intrusive_ptr<c10d::Work> allreduce_sum_async(torch::Tensor& t);
  void wait(const c10::intrusive_ptr<c10d::Work>& work);
  void broadcast(torch::Tensor& t, int root);  // in place
  double sum(double value);                    // across ranks
  void barrier();

  // Every rank brings `values` (named by `names`); a ConfigError names the first rank and value
  // that differ from rank 0's (all ranks throw it, so none waits on the others).
  void check_same(const std::vector<std::string>& names, const std::vector<uint64_t>& values);

 private:
  [[noreturn]] void lost(const std::string& what, const std::exception& e) const;
  // Runs `collective` on `t` (staged through device() when it lives elsewhere) and waits for it.
  void blocking(const char* what, torch::Tensor& t,
                const std::function<c10::intrusive_ptr<c10d::Work>(std::vector<torch::Tensor>&)>& collective);
  DistributedEnvironment env_;
  std::chrono::milliseconds timeout_;
  torch::Device device_;
  // c10d::ProcessGroupGloo or ProcessGroupNCCL (ProcessGroups in LibTorch 1.13, Backends in 2.x),
  // held through their intrusive_ptr base so that this header needs neither Gloo's nor CUDA's.
  c10::intrusive_ptr<c10::intrusive_ptr_target> group_;
};

// Averages the gradients of `parameters` across the group, as DDP does: parameters are packed
// into buckets of about `bucket_bytes` in reverse order (the order backward reaches them); a hook
// on each parameter copies its gradient into its bucket, and a full bucket's all-reduce starts at
// once, in bucket order, while backward goes on. finish() waits for all of them and writes the
// averages into .grad (zeros for a parameter that got no gradient on this rank).
class GradientSync {
 public:
  GradientSync(Group& group, std::vector<torch::Tensor> parameters, int64_t bucket_bytes = 25 << 20);
  ~GradientSync();
  void begin();   // before backward
  void finish();  // after backward

 private:
  struct Bucket {
    torch::Tensor flat;           // float32, on the group's device
    std::vector<std::size_t> params;
    std::vector<int64_t> offsets;
    std::size_t ready = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  void on_grad(std::size_t param, const torch::Tensor& grad);
  void launch_ready();
  Group& group_;
  std::vector<torch::Tensor> parameters_;
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> bucket_of_;  // per parameter
  std::vector<bool> seen_;
  std::vector<unsigned> hooks_;  // per parameter, removed with this object
  std::size_t next_launch_ = 0;
};

// The FNV-1a of the tensors' bytes (neurobolt/hash.hpp): the start-up check of initial weights.
uint64_t fingerprint(const std::vector<torch::Tensor>& tensors);

}  // namespace neurobolt::dist
