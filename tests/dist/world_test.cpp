// The launcher's variables -> WorldConfig, and the sharding of a batch.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "dist/collectives.h"
#include "dist/dist.h"

namespace gg::dist {
namespace {

using Vars = std::map<std::string, std::string>;

WorldConfig world(const Vars& vars) {
  return world_from_environment([&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string bad_input(const Vars& vars) {
  try {
    world(vars);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(format_error(e).find('\n'), std::string::npos);
    return e.problem();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(World, NoVariablesIsOneProcess) {
  const WorldConfig w = world({});
  EXPECT_FALSE(w.distributed());
  EXPECT_EQ(w.rank, 0);
  EXPECT_EQ(w.world_size, 1);
  EXPECT_EQ(w.launcher, "");
}

TEST(World, TorchrunVariables) {
  const WorldConfig w = world({{"RANK", "3"},
                               {"WORLD_SIZE", "4"},
                               {"LOCAL_RANK", "1"},
                               {"LOCAL_WORLD_SIZE", "2"},
                               {"MASTER_ADDR", "node7"},
                               {"MASTER_PORT", "29500"},
                               {"TORCHELASTIC_RUN_ID", "none"}});
  EXPECT_TRUE(w.distributed());
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.world_size, 4);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.local_world_size, 2);
  EXPECT_EQ(w.master_addr, "node7");
  EXPECT_EQ(w.master_port, 29500);
  EXPECT_EQ(w.launcher, "torchrun");
  EXPECT_FALSE(w.agent_store);
}

TEST(World, TorchrunStaticRendezvousJoinsTheAgentStore) {
  const WorldConfig w = world({{"RANK", "0"},
                               {"WORLD_SIZE", "2"},
                               {"MASTER_ADDR", "127.0.0.1"},
                               {"MASTER_PORT", "29500"},
                               {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                               {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_TRUE(w.agent_store);
  EXPECT_EQ(w.store_prefix, "/worker/attempt_2");
}

TEST(World, SlurmVariables) {
  const WorldConfig w = world({{"SLURM_PROCID", "5"},
                               {"SLURM_NTASKS", "8"},
                               {"SLURM_LOCALID", "1"},
                               {"SLURM_NTASKS_PER_NODE", "2(x4)"},
                               {"MASTER_ADDR", "n01"},
                               {"MASTER_PORT", "29400"}});
  EXPECT_EQ(w.launcher, "slurm");
  EXPECT_EQ(w.rank, 5);
  EXPECT_EQ(w.world_size, 8);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.local_world_size, 2);
  EXPECT_EQ(w.master_addr, "n01");
}

TEST(World, BadSetupsAreOneLineErrors) {
  EXPECT_NE(bad_input({{"WORLD_SIZE", "2"}}).find("WORLD_SIZE is set but RANK is not"),
            std::string::npos);
  EXPECT_NE(bad_input({{"RANK", "0"}}).find("RANK is set but WORLD_SIZE is not"),
            std::string::npos);
  EXPECT_NE(bad_input({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK=2 is not below"),
            std::string::npos);
  EXPECT_NE(bad_input({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK=x"), std::string::npos);
  EXPECT_NE(bad_input({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).find("MASTER_ADDR and MASTER_PORT"),
            std::string::npos);
  EXPECT_NE(bad_input({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}).find("MASTER_ADDR"),
            std::string::npos);
  EXPECT_NE(
      bad_input(
          {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
          .find("not a TCP port"),
      std::string::npos);
}

TEST(World, OneRankIsOneProcess) {
  EXPECT_FALSE(world({{"RANK", "0"}, {"WORLD_SIZE", "1"}}).distributed());
}

TEST(Shard, ContiguousAndBalanced) {
  // 10 rows over 3 ranks: 3, 3, 4, covering 0..10 in order.
  EXPECT_EQ(shard_of(10, 0, 3).begin, 0);
  EXPECT_EQ(shard_of(10, 0, 3).end, 3);
  EXPECT_EQ(shard_of(10, 1, 3).end, 6);
  EXPECT_EQ(shard_of(10, 2, 3).begin, 6);
  EXPECT_EQ(shard_of(10, 2, 3).end, 10);
  // More ranks than rows: some shards are empty, none overlaps.
  EXPECT_EQ(shard_of(2, 0, 4).size(), 0);
  EXPECT_EQ(shard_of(2, 1, 4).size(), 1);
  EXPECT_EQ(shard_of(2, 3, 4).size(), 1);
}

}  // namespace
}  // namespace gg::dist
