#pragma once
// Data-parallel training across processes: where a process finds its place (the variables that
// torchrun and SLURM set), and a launcher for N processes on one machine. The processes talk
// through PyTorch's own c10d (a TCPStore rendezvous, then a Gloo process group on the CPU or an
// NCCL one on CUDA devices); see
// TrainOptions::distributed and the README's "Training on several processes".
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace neurobolt {

struct DistributedEnvironment {
  int rank = 0;        // this process, 0 .. world_size - 1
  int world_size = 1;  // processes in all
  int local_rank = 0;  // this process on its machine
  std::string master_addr = "127.0.0.1";  // where rank 0 serves the rendezvous store
  int master_port = 29500;
  std::string source;  // "torchrun" (RANK/WORLD_SIZE/...) or "SLURM" (SLURM_PROCID/...)
};

// From torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), else
// SLURM's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the first host of SLURM_JOB_NODELIST,
// MASTER_PORT or 29500); nullopt when neither WORLD_SIZE nor SLURM_NTASKS is set. A malformed or
// inconsistent value is a ConfigError naming the variable. `getenv` is for tests.
std::optional<DistributedEnvironment> distributed_environment(
    const std::function<const char*(const char*)>& getenv = nullptr);

// The first host of a SLURM node list: "node[07-09,12],gpu3" -> "node07".
std::string first_slurm_host(const std::string& nodelist);

// Runs `nproc` copies of `program` with `args` on this machine, as torchrun does: each with
// RANK/LOCAL_RANK = i, WORLD_SIZE = nproc, MASTER_ADDR = 127.0.0.1, MASTER_PORT = `port` (0: a
// free one) and OMP_NUM_THREADS = cores / nproc unless set; their output lines prefixed with
// "[rank i] ". When one exits with an error the others are stopped (SIGTERM, then SIGKILL after
// `grace_s`). Returns the first non-zero exit status (128 + signal for a signal), else 0.
int launch_local(int nproc, const std::string& program, const std::vector<std::string>& args, int port = 0,
                 double grace_s = 10.0);

}  // namespace neurobolt
