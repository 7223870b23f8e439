// Wiring shared by several commands (train, evaluate, run): not a stage of its own, just the
// glue that would otherwise be copied between command files.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/data.h"
#include "eval/eval.h"
#include "prep/prep.h"
#include "train/train.h"

namespace gg::cli {

namespace fs = std::filesystem;

// The ImageNet weights of a variant: `explicit_path` if given; else $GLIOMAGRADE_WEIGHTS; else the
// usual file name in $GLIOMAGRADE_WEIGHTS_DIR, ../shared/weights beside the source tree or the
// working directory, and ~/.cache/gliomagrade (where `weights fetch` puts it). Throws kBadInput
// with the fetch command when none exists.
fs::path find_pretrained_weights(const std::string& variant, const fs::path& explicit_path);

// Trains the listed sequences into bundle_dir and writes its model.json.
std::vector<train::TrainResult> train_bundle(const prep::SliceStore& store,
                                             const data::Split& split,
                                             const std::vector<io::Sequence>& sequences,
                                             const train::TrainConfig& config,
                                             const fs::path& bundle_dir, bool resume);

// Runs a bundle's three models over one part of the split and scores them: writes
// predictions.csv, metrics.json and table.md into out_dir. Returns the evaluation.
eval::Evaluation evaluate_bundle(const fs::path& bundle_dir, const prep::SliceStore& store,
                                 const data::Split& split, data::Part part, const fs::path& out_dir,
                                 bool show_progress);

// Plots (training curves from bundle_dir/logs, ROC, confusion, reliability), Grad-CAM overlays
// of a few test patients, and report.html.
void write_report(const fs::path& bundle_dir, const eval::Evaluation& evaluation,
                  const std::string& config_json, const prep::SliceStore& store,
                  const data::Split& split, data::Part part, const fs::path& out_dir);

std::string split_protocol_name(data::SplitBy by);

}  // namespace gg::cli

namespace CLI {
class App;
}

namespace gg::cli {

// Training options shared by `train` and `run` (defaults: MATLAB's GoogLeNet transfer example).
// Strings are parsed in finish_train_options() after CLI11 has filled them.
struct TrainOptionStrings {
  std::string balance = "weighted";
  fs::path weights;
};
void add_train_options(CLI::App* command, train::TrainConfig& config, TrainOptionStrings& strings);
void finish_train_options(train::TrainConfig& config, const TrainOptionStrings& strings);

}  // namespace gg::cli
