// neurobolt launch: N local processes of one distributed `train`, as torchrun starts them.
#include <fmt/format.h>

#include <cstdlib>

#include "common.hpp"
#include "neurobolt/distributed.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::cli {

void register_launch(CLI::App& app) {
  struct Options {
    int nproc = 2;
    int port = 0;
    std::vector<std::string> args;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("launch", "Run N processes of a distributed 'train' on this machine (as torchrun)");
  cmd->footer(
      "Example: neurobolt launch --nproc 2 -- train data.h5 -o run --config neurobolt-tiny --batch 16\n"
      "Each process gets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT and OMP_NUM_THREADS = "
      "cores / N; its output lines are prefixed with [rank i]. When one process fails the others are stopped, and "
      "launch exits with its status. On several machines use torchrun-style variables or SLURM "
      "(tools/slurm-train.sh).");
  cmd->add_option("--nproc", o->nproc, "Processes (ranks) on this machine")->capture_default_str()->check(between(1, 1024));
  cmd->add_option("--port", o->port, "Rendezvous TCP port on 127.0.0.1 (0: a free one)")
      ->capture_default_str()
      ->check(between(0, 65535));
  cmd->add_option("COMMAND", o->args, "After --: the neurobolt command to run, e.g. -- train DATA -o RUN ...")
      ->required();
  cmd->callback([o] {
    if (o->args.empty() || o->args.front() != "train") {
      throw UsageError(fmt::format("launch: runs 'train' (the command that trains in parallel), found '{}'",
                                   o->args.empty() ? std::string() : o->args.front()));
    }
    const int status = launch_local(o->nproc, "/proc/self/exe", o->args, o->port);
    // The failed rank's own status (its one-line error is above, prefixed with its rank).
    if (status != 0) std::exit(status);
  });
}

}  // namespace neurobolt::cli
