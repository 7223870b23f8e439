// dist's collectives on torch tensors, for train/trainer.cpp (internal: torch, but no c10d).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "dist/dist.h"

namespace gg::dist {

// Gradient buckets: c10d's DistributedDataParallel default (25 MB), so GoogLeNet's 7 M parameters
// (28 MB) travel in 2 all-reduces that are all in flight before the first is awaited.
inline constexpr int64_t kBucketBytes = 25 * 1024 * 1024;

// Sums `tensors` over all ranks, in place. Any device, dtype and layout: they are flattened into
// buckets of one dtype and device and copied back. CPU buckets go through Gloo; CUDA buckets
// through NCCL where libtorch has it (untested here), else through Gloo on a host copy. `what`
// names the step in errors ("gradients of iteration 12"). Throws gg::Error (see
// Communicator::Impl::fail): kRuntime naming a lost rank, or the error another rank reported.
void all_reduce_sum(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                    const std::string& what);

// Copies rank 0's `tensors` into every other rank's (in place; same shapes everywhere).
void broadcast_from_rank0(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                          const std::string& what);

// The rows [begin, end) of `count` items that `rank` of `world` handles: contiguous shards whose
// sizes differ by at most one, in rank order (shard r starts at floor(r * count / world)).
struct Shard {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
inline Shard shard_of(int64_t count, int rank, int world) {
  return {count * rank / world, count * (rank + 1) / world};
}

}  // namespace gg::dist
