#pragma once
// A c10d process group for data-parallel training (internal: LibTorch types), and the gradient
// synchronisation that averages gradients across it in buckets while the backward pass runs.
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "neurobolt/distributed.hpp"

namespace c10d {
class ProcessGroupGloo;  // a ProcessGroup in LibTorch 1.13, a Backend in 2.x: held as itself
class Work;
}  // namespace c10d

namespace neurobolt::dist {

// Rendezvous through a TCPStore served by rank 0 at MASTER_ADDR:MASTER_PORT, then a Gloo process
// group (CPU tensors). Every collective is blocking unless it says otherwise; a peer that is gone
// or silent for `timeout` makes it throw an IoError naming this rank (never a hang).
class Group {
 public:
  Group(const DistributedEnvironment& env, std::chrono::milliseconds timeout);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  const DistributedEnvironment& environment() const { return env_; }

  void allreduce_sum(torch::Tensor& t);                          // in place, CPU
  c10::intrusive_ptr<c10d::Work> allreduce_sum_async(torch::Tensor& t);
  void wait(const c10::intrusive_ptr<c10d::Work>& work);
  void broadcast(torch::Tensor& t, int root);                    // in place, CPU
  double sum(double value);                                      // across ranks
  void barrier();

  // Every rank brings `values` (named by `names`); a ConfigError names the first rank and value
  // that differ from rank 0's (all ranks throw it, so none waits on the others).
  void check_same(const std::vector<std::string>& names, const std::vector<uint64_t>& values);

 private:
  [[noreturn]] void lost(const std::string& what, const std::exception& e) const;
  DistributedEnvironment env_;
  std::chrono::milliseconds timeout_;
  // The Gloo group (c10d::ProcessGroupGloo: a ProcessGroup in LibTorch 1.13, a Backend in 2.x),
  // held through its intrusive_ptr base so that a build without Gloo's headers compiles.
  c10::intrusive_ptr<c10::intrusive_ptr_target> group_;
  c10d::ProcessGroupGloo& gloo() const;
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
    torch::Tensor flat;           // float32, CPU
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
