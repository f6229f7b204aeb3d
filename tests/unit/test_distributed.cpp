// Where a distributed process finds its place (torchrun's and SLURM's variables), and the
// gradient synchronisation's fingerprints. The multi-process behaviour (same weights as one
// process, a killed rank, resuming at another world size) is tested with real processes in
// tests/cli/test_distributed.sh.
#include <catch2/catch.hpp>

#include <map>
#include <string>

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
}  // namespace

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
