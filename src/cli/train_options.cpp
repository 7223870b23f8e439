#include "cli/train_options.h"

#include <CLI/CLI.hpp>

#include "cli/command.h"
#include "protocol/protocol.h"

namespace gg::cli {

void add_train_options(CLI::App* c, train::TrainConfig& t, TrainOptionStrings& s) {
  c->add_option("--variant", t.variant,
                "GoogLeNet variant: bvlc (the paper's MATLAB/Caffe model) or torchvision")
      ->check(CLI::IsMember({"bvlc", "torchvision"}))
      ->capture_default_str();
  c->add_option("--weights", s.weights,
                "ImageNet weights file (default: found in ../shared/weights, $GLIOMAGRADE_WEIGHTS "
                "or ~/.cache/gliomagrade)");
  c->add_option("--epochs", t.epochs, "Training epochs per sequence")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--batch", t.batch_size, "Mini-batch size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--lr", t.learning_rate, "Learning rate of the pretrained layers")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--head-lr-factor", t.head_lr_factor, "Learning-rate factor of the new 2-way head")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--momentum", t.momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  c->add_option("--l2", t.weight_decay, "L2 regularisation (weight decay)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--validate-every", t.validate_every,
                "Iterations between validations (0: four per epoch)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--checkpoint-every", t.checkpoint_every,
                "Iterations between checkpoints (0: each epoch end)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--translate", t.translate_px,
                "Random translation range in px (augmentation; 0: off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_flag("!--no-flip", t.flip_x, "No random left-right reflection");
  c->add_option("--balance", s.balance,
                "Class imbalance: weighted (loss weights), oversample, or none")
      ->check(CLI::IsMember({"weighted", "oversample", "none"}))
      ->capture_default_str();
  c->add_option("--freeze", t.freeze_stages,
                "Freeze the first N stages (1 stem, 2 +inception3, 3 +inception4, 4 +inception5)")
      ->check(CLI::Range(0, 4))
      ->capture_default_str();
  c->add_option("--seed", t.seed, "Seed of head init, shuffling, augmentation and dropout")
      ->capture_default_str();
  c->add_option("--stop-after", t.stop_after_iterations,
                "Stop after N iterations as if interrupted (for testing --resume)")
      ->group("");  // hidden
  add_device_option(c, t.device);
}

void add_device_option(CLI::App* c, std::string& device) {
  c->add_option("--device", device,
                "Where tensors live: cpu, cuda (GPU 0, or GPU LOCAL_RANK under torchrun), cuda:N, "
                "or auto (a GPU if this build has CUDA and sees one)")
      ->capture_default_str();
}

void finish_train_options(train::TrainConfig& t, const TrainOptionStrings& s) {
  train::check_device(t.device);  // CUDA on a CPU-only libtorch: one line, before any work
  t.balance = train::parse_balance(s.balance);
  t.pretrained = protocol::find_pretrained_weights(t.variant, s.weights);
}

void add_cohort_options(CLI::App* c, protocol::CohortOptions& o, std::vector<int>& synth_size) {
  c->add_option(
      "data", o.data,
      "BraTS 2018/2019/2020 folder or manifest CSV (default: the built-in synthetic cohort)");
  c->add_option("--slices", o.slices, "Slices per patient around the largest tumour slice")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--synth-lgg", o.synth.lgg, "Synthetic cohort: LGG patients")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--synth-hgg", o.synth.hgg, "Synthetic cohort: HGG patients")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--difficulty", o.synth.difficulty,
                "Synthetic cohort: overlap of the grades' phenotypes (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--synth-size", synth_size,
                "Synthetic cohort: volume size X,Y,Z (tests use small volumes)")
      ->delimiter(',')
      ->expected(3)
      ->check(CLI::PositiveNumber)
      ->group("");
}

void finish_cohort_options(protocol::CohortOptions& o, const std::vector<int>& synth_size,
                           uint64_t seed) {
  o.synth.size = {synth_size[0], synth_size[1], synth_size[2]};
  o.synth.seed = seed;
  o.threads = global_options().threads;
}

}  // namespace gg::cli
