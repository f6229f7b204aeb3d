// Where a distributed process finds its place (torchrun's and SLURM's variables, its GPU), and a
// one-rank process group on each device: Gloo on the CPU, NCCL on a GPU (tagged [cuda], skipped
// with a warning without a GPU or without NCCL in the build). The multi-process behaviour (same
// weights as one process, a killed rank, resuming at another world size) is tested with real
// processes in tests/cli/test_distributed.sh.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>

#include "dist/group.hpp"
#include "neurobolt/distributed.hpp"
#include "neurobolt/error.hpp"

using namespace neurobolt;

namespace {
std::function<const char*(const char*)> env_of(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

// A TCP port on loopback that the system says is free now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

// One rank on `device`: its collectives leave the values as they are (a sum over one rank), on
// the device and staged from the CPU, and the gradient hooks fill .grad through the buckets.
void one_rank_group(const torch::Device& device) {
  DistributedEnvironment env;
  env.master_port = free_port();
  env.source = "test";
  dist::Group group(env, std::chrono::seconds(30), device);
  CHECK(group.device() == device);
  CHECK(std::string(group.backend()) == (device.is_cuda() ? "NCCL" : "Gloo"));

  auto on_device = torch::arange(6, torch::dtype(torch::kFloat).device(device));
  group.allreduce_sum(on_device);
  CHECK(on_device.device() == device);
  CHECK(torch::equal(on_device.cpu(), torch::arange(6, torch::kFloat)));
  auto on_cpu = torch::arange(4, torch::kLong);
  group.allreduce_sum(on_cpu);
  CHECK(on_cpu.device().is_cpu());
  CHECK(torch::equal(on_cpu, torch::arange(4, torch::kLong)));
  CHECK(group.sum(2.5) == 2.5);
  group.barrier();
  CHECK_NOTHROW(group.check_same({"answer"}, {42}));

  // Two buckets of one parameter each (bucket bytes 1): hooks launch them during backward.
  auto a = torch::tensor({1.0f, -2.0f, 3.0f}, torch::dtype(torch::kFloat).device(device)).requires_grad_();
  auto b = torch::tensor({0.5f}, torch::dtype(torch::kFloat).device(device)).requires_grad_();
  dist::GradientSync sync(group, {a, b}, 1);
  for (int step = 0; step < 2; ++step) {
    a.mutable_grad() = torch::Tensor();
    b.mutable_grad() = torch::Tensor();
    sync.begin();
    ((a * a).sum() + 3 * b.sum()).backward();
    sync.finish();
    CHECK(a.grad().device() == device);
    CHECK(torch::allclose(a.grad().cpu(), torch::tensor({2.0f, -4.0f, 6.0f})));
    CHECK(torch::allclose(b.grad().cpu(), torch::tensor({3.0f})));
  }
}
}  // namespace

TEST_CASE("rank_device: one GPU per rank, from the index asked for", "[dist]") {
  const torch::Device cuda(torch::kCUDA), cuda2("cuda:2");
  CHECK(dist::rank_device(cuda, 0, 4) == torch::Device("cuda:0"));
  CHECK(dist::rank_device(cuda, 3, 4) == torch::Device("cuda:3"));
  CHECK(dist::rank_device(cuda2, 1, 4) == torch::Device("cuda:3"));
  // A scheduler that gives each rank its own GPU: one visible device, whatever the local rank.
  CHECK(dist::rank_device(cuda, 5, 1) == torch::Device("cuda:0"));
  CHECK_THROWS_WITH(dist::rank_device(cuda, 4, 4),
                    Catch::Contains("local rank 4 needs cuda:4") && Catch::Contains("sees 4 CUDA device(s)"));
  CHECK_THROWS_WITH(dist::rank_device(cuda2, 2, 4), Catch::Contains("start at most 2 ranks per machine"));
  CHECK_THROWS_AS(dist::rank_device(torch::Device("cuda:1"), 0, 1), ConfigError);
  CHECK_THROWS_AS(dist::rank_device(cuda, 0, 0), ConfigError);
}

TEST_CASE("the backends of this build; CUDA ranks without NCCL are refused in one line", "[dist]") {
  const std::string backends = dist::backends_built();
  INFO("backends: " << backends);
  if (backends.find("NCCL") != std::string::npos) {
    CHECK_NOTHROW(dist::require_nccl());
  } else {
    CHECK_THROWS_WITH(dist::require_nccl(), Catch::Contains("distributed training on CUDA needs a LibTorch with NCCL"));
    DistributedEnvironment env;
    CHECK_THROWS_AS(dist::Group(env, std::chrono::seconds(1), torch::Device(torch::kCUDA)), ConfigError);
  }
}

TEST_CASE("a one-rank Gloo group on the CPU", "[dist]") {
  if (dist::backends_built().find("Gloo") == std::string::npos) {
    WARN("skipped: this build has no Gloo");
    return;
  }
  one_rank_group(torch::kCPU);
}

TEST_CASE("a one-rank NCCL group on a GPU: all-reduce and gradient buckets on CUDA tensors", "[cuda][dist]") {
  if (dist::backends_built().find("NCCL") == std::string::npos || !torch::cuda::is_available()) {
    WARN("skipped: " << (torch::cuda::is_available() ? "this build has no NCCL" : "no CUDA device"));
    return;
  }
  one_rank_group(torch::Device(torch::kCUDA, 0));
}

TEST_CASE("distributed_environment reads torchrun's variables", "[dist]") {
  CHECK_FALSE(distributed_environment(env_of({})).has_value());
  const auto env = distributed_environment(
      env_of({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "1234"}}));
  REQUIRE(env.has_value());
  CHECK(env->rank == 3);
  CHECK(env->world_size == 8);
  CHECK(env->local_rank == 1);
  CHECK(env->master_addr == "node7");
  CHECK(env->master_port == 1234);
  CHECK(env->source == "torchrun");
  CHECK_THROWS_WITH(distributed_environment(env_of({{"RANK", "8"}, {"WORLD_SIZE", "8"}})),
                    "environment variable RANK: expected a whole number from 0 to 7, found '8'");
  CHECK_THROWS_WITH(distributed_environment(env_of({{"WORLD_SIZE", "2"}})), Catch::Contains("RANK"));
  CHECK_THROWS_WITH(distributed_environment(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2x"}})), Catch::Contains("WORLD_SIZE"));
  CHECK_THROWS_AS(distributed_environment(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}})),
                  ConfigError);
}

TEST_CASE("distributed_environment reads SLURM's variables and its node list", "[dist]") {
  const auto env = distributed_environment(env_of(
      {{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"SLURM_JOB_NODELIST", "gpu[07-09,12],cpu1"}}));
  REQUIRE(env.has_value());
  CHECK(env->rank == 5);
  CHECK(env->world_size == 8);
  CHECK(env->local_rank == 1);
  CHECK(env->master_addr == "gpu07");
  CHECK(env->master_port == 29500);
  CHECK(env->source == "SLURM");
  CHECK(first_slurm_host("node3") == "node3");
  CHECK(first_slurm_host("a,b") == "a");
  CHECK(first_slurm_host("n[001-004]") == "n001");
  CHECK_THROWS_AS(first_slurm_host("n[x]"), ConfigError);
  // torchrun's variables win over SLURM's (torchrun inside an allocation).
  const auto both = distributed_environment(env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_NTASKS", "1"}}));
  REQUIRE(both.has_value());
  CHECK(both->source == "torchrun");
  CHECK_THROWS_WITH(distributed_environment(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}})),
                    Catch::Contains("SLURM_JOB_NODELIST"));
}
