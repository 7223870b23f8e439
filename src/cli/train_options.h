// Options shared by `train`, `run` and `audit`. Training options (defaults: MATLAB's GoogLeNet
// transfer example). Strings are parsed in finish_train_options() after CLI11 has filled them.
#pragma once

#include <filesystem>
#include <string>

#include <vector>

#include "protocol/protocol.h"
#include "train/train.h"

namespace CLI {
class App;
}

namespace gg::cli {

namespace fs = std::filesystem;

struct TrainOptionStrings {
  std::string balance = "weighted";
  fs::path weights;
};
void add_train_options(CLI::App* command, train::TrainConfig& config, TrainOptionStrings& strings);
// --device cpu|cuda|cuda:N|auto (train, evaluate, run, audit, predict, export).
void add_device_option(CLI::App* command, std::string& device);
// Parses the strings and finds the ImageNet weights (protocol::find_pretrained_weights).
void finish_train_options(train::TrainConfig& config, const TrainOptionStrings& strings);

// The cohort options of `run` and `audit`: DATA, --slices and the synthetic cohort's knobs.
void add_cohort_options(CLI::App* command, protocol::CohortOptions& options,
                        std::vector<int>& synth_size);
// After parsing: the synthetic cohort's size and seed (the training seed), prepare's threads.
void finish_cohort_options(protocol::CohortOptions& options, const std::vector<int>& synth_size,
                           uint64_t seed);

}  // namespace gg::cli
