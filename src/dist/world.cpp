// The launcher's variables -> WorldConfig. torchrun sets RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT for each worker it starts; Slurm's srun sets
// SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID, and the job script exports MASTER_ADDR/PORT.
#include <cstdlib>
#include <string>

#include "dist/dist.h"

namespace gg::dist {

namespace {

const char* const kFix =
    "start the ranks with torchrun (torchrun --no_python --nproc_per_node=N gliomagrade train "
    "...) or srun, or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT for every process";

bool present(const Getenv& getenv, const char* name) {
  const char* v = getenv(name);
  return v && *v;
}

int integer(const Getenv& getenv, const char* name, int fallback) {
  const char* v = getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 0 || n > 65535 * 16)
    throw_bad_input("", std::string(name) + "=" + v + " is not a non-negative integer", kFix);
  return int(n);
}

// SLURM_NTASKS_PER_NODE may read "2" or "2(x3)"; the leading count is what this node runs.
int leading_count(const char* v, int fallback) {
  if (!v || !*v) return fallback;
  const int n = std::atoi(v);
  return n > 0 ? n : fallback;
}

}  // namespace

WorldConfig world_from_environment(const Getenv& getenv) {
  WorldConfig w;
  const bool has_rank = present(getenv, "RANK"), has_size = present(getenv, "WORLD_SIZE");
  if (has_rank != has_size)
    throw_bad_input(
        "", has_size ? "WORLD_SIZE is set but RANK is not" : "RANK is set but WORLD_SIZE is not",
        kFix);
  if (has_rank) {
    w.rank = integer(getenv, "RANK", 0);
    w.world_size = integer(getenv, "WORLD_SIZE", 1);
    w.local_rank = integer(getenv, "LOCAL_RANK", w.rank);
    w.local_world_size = integer(getenv, "LOCAL_WORLD_SIZE", w.world_size);
    w.launcher = present(getenv, "TORCHELASTIC_RUN_ID") ? "torchrun" : "environment";
  } else if (present(getenv, "SLURM_PROCID") && present(getenv, "SLURM_NTASKS")) {
    w.rank = integer(getenv, "SLURM_PROCID", 0);
    w.world_size = integer(getenv, "SLURM_NTASKS", 1);
    w.local_rank = integer(getenv, "SLURM_LOCALID", 0);
    w.local_world_size = leading_count(getenv("SLURM_NTASKS_PER_NODE"), 1);
    w.launcher = "slurm";
  } else {
    return w;  // single process
  }
  const std::string names = w.launcher == "slurm" ? "SLURM_PROCID" : "RANK";
  if (w.world_size < 1)
    throw_bad_input("",
                    (w.launcher == "slurm" ? "SLURM_NTASKS" : "WORLD_SIZE") +
                        std::string(" must be at least 1"),
                    kFix);
  if (w.rank >= w.world_size)
    throw_bad_input("",
                    names + "=" + std::to_string(w.rank) + " is not below the world size " +
                        std::to_string(w.world_size) + " (ranks are 0.." +
                        std::to_string(w.world_size - 1) + ")",
                    kFix);
  if (w.local_world_size < 1) w.local_world_size = 1;
  if (!w.distributed()) return w;
  if (!present(getenv, "MASTER_ADDR") || !present(getenv, "MASTER_PORT"))
    throw_bad_input("",
                    "a world of " + std::to_string(w.world_size) +
                        " ranks needs MASTER_ADDR and MASTER_PORT (the rendezvous store of rank 0)",
                    w.launcher == "slurm"
                        ? "export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | "
                          "head -n 1) and MASTER_PORT=29500 in the job script"
                        : kFix);
  w.master_addr = getenv("MASTER_ADDR");
  w.master_port = integer(getenv, "MASTER_PORT", 0);
  if (w.master_port < 1 || w.master_port > 65535)
    throw_bad_input("", "MASTER_PORT=" + std::to_string(w.master_port) + " is not a TCP port",
                    "pick a free port in 1024..65535");
  // torchrun's default (static) rendezvous hosts the store in its agent and tells workers to join
  // it under a per-restart prefix; with --standalone or --rdzv_backend=c10d rank 0 hosts it.
  const char* agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
  w.agent_store = agent && std::string(agent) == "True";
  if (w.agent_store) {
    const char* attempt = getenv("TORCHELASTIC_RESTART_COUNT");
    w.store_prefix = std::string("/worker/attempt_") + (attempt && *attempt ? attempt : "0");
  }
  return w;
}

WorldConfig world_from_environment() {
  return world_from_environment([](const char* name) { return std::getenv(name); });
}

}  // namespace gg::dist
