// Where a process of a distributed run finds its place: torchrun's or SLURM's variables.
#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <string>

#include "neurobolt/distributed.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

int integer_variable(const char* name, const char* text, int low, int high) {
  std::string s = text != nullptr ? text : "";
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size() || value < low || value > high) {
    throw ConfigError(fmt::format("environment variable {}: expected a whole number from {} to {}, found '{}'", name,
                                  low, high, s));
  }
  return static_cast<int>(value);
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Hosts are separated by commas outside brackets; a bracket holds ranges of suffixes.
  std::string host;
  std::size_t i = 0;
  while (i < nodelist.size() && nodelist[i] != ',' && nodelist[i] != '[') host += nodelist[i++];
  if (i < nodelist.size() && nodelist[i] == '[') {
    ++i;
    std::string first;
    while (i < nodelist.size() && (std::isdigit(static_cast<unsigned char>(nodelist[i])) != 0)) first += nodelist[i++];
    if (first.empty() || nodelist.find(']', i) == std::string::npos) {
      throw ConfigError(fmt::format("environment variable SLURM_JOB_NODELIST: cannot read '{}'", nodelist));
    }
    host += first;
  }
  if (host.empty()) throw ConfigError(fmt::format("environment variable SLURM_JOB_NODELIST: no host in '{}'", nodelist));
  return host;
}

std::optional<DistributedEnvironment> distributed_environment(const std::function<const char*(const char*)>& getenv) {
  const auto get = [&getenv](const char* name) -> const char* { return getenv ? getenv(name) : std::getenv(name); };
  constexpr int kMaxWorld = 1 << 20;
  DistributedEnvironment env;
  if (get("WORLD_SIZE") != nullptr) {
    env.source = "torchrun";
    env.world_size = integer_variable("WORLD_SIZE", get("WORLD_SIZE"), 1, kMaxWorld);
    env.rank = integer_variable("RANK", get("RANK"), 0, env.world_size - 1);
    env.local_rank = get("LOCAL_RANK") ? integer_variable("LOCAL_RANK", get("LOCAL_RANK"), 0, kMaxWorld) : env.rank;
    if (get("MASTER_ADDR") != nullptr) env.master_addr = get("MASTER_ADDR");
  } else if (get("SLURM_NTASKS") != nullptr) {
    env.source = "SLURM";
    env.world_size = integer_variable("SLURM_NTASKS", get("SLURM_NTASKS"), 1, kMaxWorld);
    env.rank = integer_variable("SLURM_PROCID", get("SLURM_PROCID"), 0, env.world_size - 1);
    env.local_rank = get("SLURM_LOCALID") ? integer_variable("SLURM_LOCALID", get("SLURM_LOCALID"), 0, kMaxWorld) : 0;
    if (get("MASTER_ADDR") != nullptr) {
      env.master_addr = get("MASTER_ADDR");
    } else if (get("SLURM_JOB_NODELIST") != nullptr) {
      env.master_addr = first_slurm_host(get("SLURM_JOB_NODELIST"));
    } else {
      throw ConfigError("environment: SLURM_NTASKS is set but neither MASTER_ADDR nor SLURM_JOB_NODELIST names the "
                        "host of rank 0");
    }
  } else {
    return std::nullopt;
  }
  if (env.master_addr.empty()) throw ConfigError("environment variable MASTER_ADDR: empty");
  if (get("MASTER_PORT") != nullptr) env.master_port = integer_variable("MASTER_PORT", get("MASTER_PORT"), 1, 65535);
  return env;
}

}  // namespace neurobolt
