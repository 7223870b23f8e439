// `gliomagrade evaluate`: score a model bundle on the test part of a split, per sequence and for
// the vote, per slice and per patient, and write metrics, table, plots and report.
#include <fmt/format.h>

#include "cli/command.h"
#include "cli/train_options.h"
#include "common/error.h"
#include "common/files.h"
#include "protocol/protocol.h"

namespace gg::cli {
namespace {

struct EvaluateArgs {
  fs::path model, store, split, out;
  std::string part = "test";
  std::string device = "cpu";
};

void add_evaluate(CLI::App& app) {
  auto a = std::make_shared<EvaluateArgs>();
  auto* c = app.add_subcommand(
      "evaluate", "Score a trained bundle: AUC with DeLong CI, accuracy, votes, calibration");
  c->add_option("--model", a->model, "Model bundle from `train` or `run`")
      ->required()
      ->check(CLI::ExistingDirectory);
  c->add_option("--store", a->store, "Slice store")->required()->check(CLI::ExistingDirectory);
  c->add_option("--split", a->split, "split.csv")->required()->check(CLI::ExistingFile);
  c->add_option("--part", a->part, "Which part to score")
      ->check(CLI::IsMember({"test", "val", "train"}))
      ->capture_default_str();
  c->add_option("--out", a->out,
                "Directory for predictions.csv, metrics.json, table.md, plots/, report.html")
      ->required();
  add_device_option(c, a->device);
  c->footer(
      "Votes: 'hard majority' of the three models' labels (the paper's vote) and 'soft mean' of\n"
      "their P(HGG). Patient level: mean of a patient's slice probabilities.\n"
      "AUC CIs: DeLong et al., Biometrics 44:837 (1988), fast algorithm of Sun & Xu (2014).");
  c->callback([a] {
    train::check_device(a->device);
    check_output_dir(a->out, "metrics.json");
    const prep::SliceStore store = prep::open_slice_store(a->store);
    const data::Split split = data::load_split(a->split, data::item_keys(store));
    const data::Part part = a->part == "test"  ? data::Part::kTest
                            : a->part == "val" ? data::Part::kVal
                                               : data::Part::kTrain;
    StagingDir stage(a->out, true);
    const eval::Evaluation ev = protocol::evaluate_bundle(
        a->model, store, split, part, stage.path(), !global_options().quiet, a->device);
    protocol::write_report(a->model, ev, train::read_bundle_info(a->model).train_config_json, store,
                           split, part, stage.path());
    stage.commit();
    fmt::print("{}\nresults: {}\n", eval::table_markdown(ev), a->out.string());
  });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(evaluate, 50, gg::cli::add_evaluate);
