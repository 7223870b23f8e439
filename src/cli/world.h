// The data-parallel world of a command (dist/): joined from the launcher's variables (torchrun,
// srun, or set by hand), or none for a single process.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "dist/dist.h"

namespace CLI {
class App;
}

namespace gg::cli {

struct WorldOptions {
  double timeout_s = 300;  // rendezvous and every collective; a lost rank is reported within it
};
void add_world_options(CLI::App* command, WorldOptions& options);

// Reads the world from the environment (dist::world_from_environment) and, for several ranks,
// splits this node's cores between its ranks (unless --threads was given) and connects to the
// others with `options_hash` (a hash of everything that defines the run: ranks started with
// other options are refused). Returns nullptr for a single process. Throws kBadInput for a bad
// setup (one line, exit 3).
std::unique_ptr<dist::Communicator> join_world(const WorldOptions& options,
                                               const std::string& options_hash);

// For commands that run on one process only (run, audit): throws kBadInput, one line, when the
// launcher's variables say this process is one rank of several (each rank would otherwise run
// the whole protocol into the same directory).
void refuse_world(const std::string& command);

// Runs work(); when it throws, the other ranks are told (Communicator::report_failure) before the
// error goes on to main. comm may be null.
void run_on_world(dist::Communicator* comm, const std::function<void()>& work);

}  // namespace gg::cli
