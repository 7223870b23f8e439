#include "cli/world.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <thread>

#include "cli/command.h"
#include "train/train.h"

namespace gg::cli {

void add_world_options(CLI::App* c, WorldOptions& o) {
  c->add_option("--dist-timeout", o.timeout_s,
                "Data-parallel runs (torchrun/srun): seconds to wait for the other ranks at the "
                "rendezvous and in each all-reduce before naming the lost ones")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
}

std::unique_ptr<dist::Communicator> join_world(const WorldOptions& o,
                                               const std::string& options_hash) {
  const dist::WorldConfig world = dist::world_from_environment();
  if (!world.distributed()) return nullptr;
  if (global_options().threads == 0 && world.local_world_size > 1) {
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    train::set_compute_threads(std::max(1, cores / world.local_world_size));
  }
  return dist::Communicator::connect(world, options_hash,
                                     std::chrono::milliseconds(int64_t(o.timeout_s * 1000)));
}

void refuse_world(const std::string& command) {
  const dist::WorldConfig world = dist::world_from_environment();
  if (world.distributed())
    throw_bad_input("",
                    "`" + command + "` runs on one process, but this is rank " +
                        std::to_string(world.rank) + " of " + std::to_string(world.world_size),
                    "train the bundles data-parallel with `torchrun ... gliomagrade train`, "
                    "then `gliomagrade evaluate`; or start `" +
                        command + "` without torchrun/srun");
}

void run_on_world(dist::Communicator* comm, const std::function<void()>& work) {
  try {
    work();
  } catch (const Error& e) {
    if (comm) comm->report_failure(e);
    throw;
  } catch (const std::exception& e) {
    if (comm) comm->report_failure(Error(ExitCode::kUnexpected, "", e.what()));
    throw;
  }
}

}  // namespace gg::cli
