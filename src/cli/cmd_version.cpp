// `gliomagrade version`: versions of gliomagrade and the libraries it was built with, for bug
// reports and for the provenance written next to results.
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "cli/command.h"
#include "common/version.h"

namespace {

void add_version(CLI::App& app) {
  auto* c = app.add_subcommand("version", "Print versions of gliomagrade and its libraries");
  c->callback([] {
    fmt::print("gliomagrade {}\nlibtorch {}\n", gg::kVersion, TORCH_VERSION);
    // What --device can name here.
    const auto gpus = torch::cuda::device_count();
    fmt::print("devices: cpu{}\n",
               gpus > 0 ? fmt::format(", cuda ({} GPU{})", gpus, gpus == 1 ? "" : "s")
                        : " (no CUDA in this libtorch, or no GPU)");
  });
}

}  // namespace

GG_REGISTER_COMMAND(version, 100, add_version);
