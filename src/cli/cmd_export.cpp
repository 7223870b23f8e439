// `gliomagrade export`: a model bundle as TorchScript modules for deployment without gliomagrade.
#include <fmt/format.h>

#include "cli/command.h"
#include "cli/train_options.h"
#include "common/error.h"
#include "infer/infer.h"

namespace gg::cli {
namespace {

namespace fs = std::filesystem;

struct ExportArgs {
  fs::path bundle, out;
  std::string device = "cpu";
  bool frozen = false;
};

void add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* c = app.add_subcommand(
      "export", "Export a model bundle as TorchScript (one module per sequence + export.json)");
  c->add_option("bundle", a->bundle, "Model bundle from `train` or `run`")->required();
  c->add_option("out", a->out, "Directory to create (must be absent or empty)")->required();
  add_device_option(c, a->device);
  c->add_flag("--frozen", a->frozen,
              "torch::jit::freeze each module (weights as constants, BatchNorm folded); "
              "call optimize_for_inference after loading for oneDNN pre-packing");
  c->footer(
      "Writes OUT/t1.pt, t2.pt, flair.pt (TorchScript, load with torch::jit::load or "
      "torch.jit.load) and\n"
      "OUT/export.json (input convention, preprocessing, classes, sha256, the bundle's "
      "model.json).\n"
      "Each module: forward(x) -> P(HGG) [N]; logits(x) -> [N,2] (LGG, HGG), for x [N,3,224,224] "
      "float\n"
      "RGB in [0,1] (the grey slice replicated), in eval mode.\n"
      "Example: gliomagrade export results/model exported");
  c->callback([a] {
    const auto models = infer::export_torchscript(a->bundle, a->out, a->device, a->frozen);
    for (const auto& m : models) fmt::print("{}: {}\n", m.sequence, m.file.string());
    fmt::print("export: {}\n", (a->out / "export.json").string());
  });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(export, 80, gg::cli::add_export);
