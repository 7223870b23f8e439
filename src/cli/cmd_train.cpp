// `gliomagrade train`: fine-tune one GoogLeNet per sequence on a slice store and split.
#include <fmt/format.h>

#include "cli/command.h"
#include "cli/train_options.h"
#include "cli/world.h"
#include "common/error.h"
#include "common/files.h"
#include "protocol/protocol.h"

namespace gg::cli {
namespace {

struct TrainArgs {
  fs::path store, split, out;
  std::vector<std::string> sequences{"t1", "t2", "flair"};
  bool resume = false;
  train::TrainConfig config;
  TrainOptionStrings strings;
  WorldOptions world;
};

// What every rank of a data-parallel run must agree on (compared at the rendezvous).
std::string options_hash(const TrainArgs& a, const prep::SliceStore& store) {
  std::string s = train::config_to_json(a.config) + "\nstore " + store.key + "\nsplit " +
                  sha256_file(a.split) + "\nout " + a.out.lexically_normal().string() +
                  "\nresume " + (a.resume ? "1" : "0") + "\nsequences";
  for (const auto& q : a.sequences) s += " " + q;
  return sha256_hex(s);
}

void add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* c =
      app.add_subcommand("train", "Fine-tune one ImageNet GoogLeNet per sequence (T1, T2, FLAIR)");
  c->add_option("store", a->store, "Slice store written by `gliomagrade prepare`")
      ->required()
      ->check(CLI::ExistingDirectory);
  c->add_option("--split", a->split, "split.csv written by `gliomagrade split`")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--out", a->out,
                "Model bundle directory to write (<seq>.pt, model.json, logs/, checkpoints/)")
      ->required();
  c->add_option("--sequences", a->sequences, "Sequences to train")
      ->delimiter(',')
      ->check(CLI::IsMember({"t1", "t2", "flair"}))
      ->capture_default_str();
  c->add_flag("--resume", a->resume,
              "Continue an interrupted run in --out exactly where its last checkpoint left it");
  add_train_options(c, a->config, a->strings);
  add_world_options(c, a->world);
  c->footer(
      "Defaults follow MATLAB's GoogLeNet transfer-learning example (the paper's setup):\n"
      "SGD momentum 0.9, lr 1e-4 (new head x10), L2 1e-4, mini-batch 10, 6 epochs, shuffle every\n"
      "epoch, random X reflection and +-30 px translation. Every iteration is logged to\n"
      "<out>/logs/train_<seq>.csv; the best model by validation loss is <out>/<seq>.pt.\n"
      "Data-parallel on N processes (the mini-batch is global, the result the same):\n"
      "  torchrun --no_python --standalone --nproc_per_node=N gliomagrade train ... (or srun)\n"
      "  (Debian 12's torchrun also needs --redirects 9:0 --tee 9:0; see the README)\n"
      "Example: gliomagrade train store --split split.csv --out model --epochs 3");
  c->callback([a] {
    finish_train_options(a->config, a->strings);
    a->config.show_progress = !global_options().quiet;
    if (!a->resume) check_output_dir(a->out, "model.json");
    const prep::SliceStore store = prep::open_slice_store(a->store);
    const data::Split split = data::load_split(a->split, data::item_keys(store));
    std::vector<io::Sequence> seqs;
    for (const auto& s : a->sequences) seqs.push_back(io::parse_sequence(s));
    const auto comm = join_world(a->world, options_hash(*a, store));
    const bool writer = !comm || comm->writer();
    run_on_world(comm.get(), [&] {
      if (writer) fs::create_directories(a->out);
      const auto results =
          protocol::train_bundle(store, split, seqs, a->config, a->out, a->resume, comm.get());
      if (!writer) return;
      if (!results.empty() && !results.back().completed) {
        fmt::print("stopped after {} iterations as asked; continue with --resume\n",
                   results.back().iterations);
        return;
      }
      fmt::print("model bundle: {}\n", a->out.string());
    });
  });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(train, 40, gg::cli::add_train);
