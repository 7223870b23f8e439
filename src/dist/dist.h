// dist: data-parallel training on PyTorch's distributed engine, c10d: a TCPStore rendezvous and a
// Gloo process group (NCCL's for CUDA tensors in a CUDA LibTorch), started by torchrun or Slurm.
// Torch-free header; c10d lives in dist/*.cpp only (its headers are heavy), the collectives
// trainer.cpp uses in dist/collectives.h.
//
// One process per rank. Rank 0 writes every file; the others only compute. A failure on any rank
// stops every rank with one error line; a lost rank makes the others exit naming it, within the
// c10d timeout (never a hang).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/error.h"

namespace gg::dist {

// Where this process sits in the world, from the launcher's variables.
struct WorldConfig {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;  // on this node
  std::string master_addr;                   // host of the rendezvous store
  int master_port = 0;
  std::string launcher;      // "torchrun", "slurm", "environment" or "" (single process)
  bool agent_store = false;  // torchrun's static rendezvous: its agent hosts the store
  std::string store_prefix;  // key prefix in the agent's store ("/worker/attempt_<n>")
  bool distributed() const { return world_size > 1; }
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun, or set
// by hand), else SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE with MASTER_ADDR
// and MASTER_PORT exported by the job script. None of them: a single process (world_size 1).
// Throws gg::Error kBadInput, one line naming the variable, for WORLD_SIZE without RANK (or the
// reverse), a value that is not an integer, RANK outside [0, WORLD_SIZE), or a world of several
// ranks without MASTER_ADDR/MASTER_PORT.
using Getenv = std::function<const char*(const char*)>;
WorldConfig world_from_environment(const Getenv& getenv);
WorldConfig world_from_environment();  // the process environment

// A connected world: this rank's handle on the store and the process group. Move-only; the
// destructor leaves the group (closing its connections). Not thread-safe: one thread drives it.
class Communicator {
 public:
  // Rendezvous of `world.world_size` ranks: rank 0 hosts a c10d TCPStore on MASTER_PORT (or all
  // join torchrun's agent store), every rank checks in with `config_hash` (a hash of the options
  // that define the run), then a Gloo process group connects the ranks. `timeout` bounds the
  // rendezvous and every later collective. Throws gg::Error kBadInput (one line) when the master
  // port is busy or unreachable, a rank does not join within the timeout, two processes claim one
  // rank, or the ranks were started with different options (the hashes differ).
  static std::unique_ptr<Communicator> connect(const WorldConfig& world,
                                               const std::string& config_hash,
                                               std::chrono::milliseconds timeout);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int size() const;
  int local_rank() const;  // on this node: the GPU a rank uses with --device cuda
  bool writer() const { return rank() == 0; }  // rank 0 alone writes files and shows progress

  // Waits for every rank. Throws as the collectives do (see fail()).
  void barrier(const std::string& what);

  // After an error on this rank: leaves it in the store for the others (they stop with "rank R
  // failed: <problem>" and the same exit code), leaves the group so that their collectives fail
  // at once, and (rank 0, whose process holds the store) waits a few seconds for them to read it.
  // Never throws. Does nothing for errors that came from the distributed layer itself.
  void report_failure(const Error& error) noexcept;

  // For dist/*.cpp: the c10d state.
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit Communicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gg::dist
