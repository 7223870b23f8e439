// train: fine-tunes one GoogLeNet per MR sequence from the slice store, and runs trained models
// over store items. The public header is torch-free; torch lives in train/*.cpp.
//
// Defaults follow MATLAB's GoogLeNet transfer-learning example, which the paper used: SGD with
// momentum 0.9, learning rate 1e-4 with the new head's ×10, L2 1e-4, mini-batch 10, 6 epochs,
// shuffle every epoch, random X reflection and ±30 px translation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/data.h"
#include "io/io.h"
#include "prep/prep.h"

namespace gg::dist {
class Communicator;  // dist/dist.h
}

namespace gg::train {

namespace fs = std::filesystem;

enum class Balance {
  kNone,          // plain cross-entropy: the majority grade dominates
  kWeightedLoss,  // class weights n / (2 n_c) in the loss (default)
  kOversample,    // each epoch draws the minority grade with replacement up to the majority count
};
const char* balance_name(Balance b);
Balance parse_balance(const std::string& s);  // "none", "weighted", "oversample"

struct TrainConfig {
  std::string variant = "bvlc";  // "bvlc" (the paper's MATLAB/Caffe GoogLeNet) or "torchvision"
  fs::path pretrained;           // ImageNet weights file of that variant (required)
  double learning_rate = 1e-4;
  double head_lr_factor = 10;  // the new 2-way fc learns this much faster (MATLAB's example)
  double momentum = 0.9;
  double weight_decay = 1e-4;  // L2
  int batch_size = 10;
  int epochs = 6;
  int validate_every = 0;    // iterations between validations; 0: four times per epoch
  int checkpoint_every = 0;  // iterations between checkpoints; 0: at epoch ends only
  bool flip_x = true;        // random left-right reflection
  int translate_px = 30;     // random translation in [-t, t] px along x and y
  Balance balance = Balance::kWeightedLoss;
  int freeze_stages = 0;          // 0 none; 1 stem; 2 +inception 3; 3 +inception 4; 4 +inception 5
  bool channels_last = true;      // NHWC tensors: faster oneDNN convolutions on CPU
  uint64_t seed = 1;              // fixes head init, shuffles, augmentation and dropout
  int stop_after_iterations = 0;  // > 0: stop there as if interrupted (tests of --resume)
  bool show_progress = true;
  // Not part of the model's definition (not serialised: a run may resume on another device).
  std::string device = "cpu";  // --device: cpu, cuda, cuda:N, auto (model::resolve_device)
};

// Checks a --device name (model::resolve_device) and returns what it resolves to ("cpu",
// "cuda:0"). Throws gg::Error kBadInput, one line, for CUDA on a libtorch without it.
std::string check_device(const std::string& spec);

// Sets the threads of torch's CPU kernels (0: all cores). Call once before any tensor work.
// libtorch 1.13 defaults to 1 thread on some machines, and with one thread its 1x1 convolutions
// at mini-batch < 16 leave oneDNN for a BLAS path that is up to 30x slower.
void set_compute_threads(int threads);

// Typed (de)serialisation of the config; parse rejects unknown keys and wrong types.
std::string config_to_json(const TrainConfig& config);
TrainConfig config_from_json(const std::string& json_text, const std::string& source_name);

struct TrainResult {
  io::Sequence sequence = io::Sequence::kT1;
  fs::path best_weights;   // <out>/<seq>.pt: lowest validation loss
  fs::path log_csv;        // <out>/logs/train_<seq>.csv
  bool completed = false;  // false when stopped by stop_after_iterations
  int iterations = 0;      // iterations done, over all sessions of this run
  int best_iteration = 0;
  double best_val_loss = 0, best_val_accuracy = 0;
  double images_per_second = 0;  // training throughput of this session
  double seconds = 0;
  int world_size = 1;                // ranks that trained it (data-parallel)
  double communication_seconds = 0;  // of `seconds`: waiting for the gradients' all-reduce
};

// Trains the model of one sequence on the split's train part, validating on its val part.
// Writes into out_dir: logs/train_<seq>.csv (every iteration), checkpoints/<seq>/ (weights,
// optimiser state, position; atomic), <seq>.pt (best by validation loss). With resume, continues
// from the checkpoint exactly: the same seed gives the same final weights as an uninterrupted run,
// since every random draw is a function of (seed, epoch, iteration) alone.
// With `comm` (data-parallel, dist/dist.h), every rank of the world calls this with the same
// arguments; the mini-batch is global and split across ranks, and the result is the
// single-process one up to float rounding. Rank 0 alone writes; all ranks read out_dir's
// checkpoint on resume (a shared file system), whatever world size wrote it.
// Throws gg::Error: kBadInput for an empty train/val part, one grade only, a missing weights file,
// a checkpoint of another config; kRuntime for a non-finite loss or a lost rank.
TrainResult train_sequence(const prep::SliceStore& store, const data::Split& split,
                           io::Sequence sequence, const TrainConfig& config,
                           const fs::path& out_dir, bool resume,
                           dist::Communicator* comm = nullptr);

// True when out_dir holds a checkpoint of `sequence` that train_sequence(..., resume = true)
// continues from (the checkpoint of a finished training too).
bool has_checkpoint(const fs::path& out_dir, io::Sequence sequence);

// P(HGG) of the given store items with a trained weights file (batched, no gradient).
std::vector<double> predict_items(const fs::path& weights, const std::string& variant,
                                  const prep::SliceStore& store, io::Sequence sequence,
                                  const std::vector<int64_t>& items, int batch_size = 32,
                                  bool show_progress = false, const std::string& device = "cpu");

// A trained model bundle: a directory with <seq>.pt per sequence and model.json describing it.
inline constexpr const char* kBundleFormat = "gliomagrade-bundle/1";

// Where a bundle keeps each of its files: the one definition of the layout, for the trainer,
// the run, the report, predict and export alike.
struct BundlePaths {
  fs::path dir;
  fs::path info() const { return dir / "model.json"; }
  std::string weights_name(const std::string& sequence_name) const { return sequence_name + ".pt"; }
  fs::path weights(const std::string& sequence_name) const {
    return dir / weights_name(sequence_name);  // best by validation loss
  }
  fs::path weights(io::Sequence s) const { return weights(io::sequence_name(s)); }
  fs::path training_log(io::Sequence s) const {  // every iteration, CSV
    return dir / "logs" / ("train_" + std::string(io::sequence_name(s)) + ".csv");
  }
  fs::path checkpoint_dir(io::Sequence s) const {
    return dir / "checkpoints" / io::sequence_name(s);
  }
  fs::path training_lock(io::Sequence s) const {  // held while a process trains it
    return dir / "checkpoints" / (std::string(io::sequence_name(s)) + ".lock");
  }
};
struct BundleInfo {
  std::string format = kBundleFormat;
  std::string variant = "bvlc";
  int input_size = 224;
  int slices = 20;
  double low_percentile = 0.5, high_percentile = 99.5;
  std::vector<std::string> sequences;  // those with a weights file
  std::string train_config_json;       // config_to_json of the training run
  std::string store_key;               // which slice store it was trained on
  std::string split_protocol;          // "patient" or "image"
  // prep::data_profile_to_json of the training patients (model.json "training_data"); empty for
  // bundles written before it was recorded.
  std::string training_data_json;
  std::string gliomagrade_version, torch_version;
};
void write_bundle_info(const BundleInfo& info, const fs::path& dir);  // model.json, atomic
// Reads and validates model.json and that each listed weights file exists. Throws kBadInput
// naming the file for another format version, a missing file or malformed JSON.
BundleInfo read_bundle_info(const fs::path& dir);

}  // namespace gg::train
