// TrainConfig <-> JSON and the bundle's model.json. Parsing is strict: an unknown key is an
// error, so a typo in a config never silently falls back to a default.
#include <torch/version.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/version.h"
#include "model/model.h"
#include "train/train.h"

namespace gg::train {

std::string check_device(const std::string& spec) { return model::resolve_device(spec).str(); }

using nlohmann::json;

const char* balance_name(Balance b) {
  switch (b) {
    case Balance::kNone:
      return "none";
    case Balance::kWeightedLoss:
      return "weighted";
    case Balance::kOversample:
      return "oversample";
  }
  return "?";
}

Balance parse_balance(const std::string& s) {
  if (s == "none") return Balance::kNone;
  if (s == "weighted") return Balance::kWeightedLoss;
  if (s == "oversample") return Balance::kOversample;
  throw_bad_input("", "unknown balance mode '" + s + "'", "use none, weighted or oversample");
}

std::string config_to_json(const TrainConfig& c) {
  const json j = {{"variant", c.variant},
                  {"pretrained", c.pretrained.string()},
                  {"learning_rate", c.learning_rate},
                  {"head_lr_factor", c.head_lr_factor},
                  {"momentum", c.momentum},
                  {"weight_decay", c.weight_decay},
                  {"batch_size", c.batch_size},
                  {"epochs", c.epochs},
                  {"validate_every", c.validate_every},
                  {"checkpoint_every", c.checkpoint_every},
                  {"flip_x", c.flip_x},
                  {"translate_px", c.translate_px},
                  {"balance", balance_name(c.balance)},
                  {"freeze_stages", c.freeze_stages},
                  {"channels_last", c.channels_last},
                  {"seed", c.seed}};
  return j.dump(2);
}

TrainConfig config_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw_bad_input(source, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw_bad_input(source, "training config must be a JSON object");
  TrainConfig c;
  try {
    for (const auto& [key, v] : j.items()) {
      if (key == "variant")
        c.variant = v.get<std::string>();
      else if (key == "pretrained")
        c.pretrained = v.get<std::string>();
      else if (key == "learning_rate")
        c.learning_rate = v.get<double>();
      else if (key == "head_lr_factor")
        c.head_lr_factor = v.get<double>();
      else if (key == "momentum")
        c.momentum = v.get<double>();
      else if (key == "weight_decay")
        c.weight_decay = v.get<double>();
      else if (key == "batch_size")
        c.batch_size = v.get<int>();
      else if (key == "epochs")
        c.epochs = v.get<int>();
      else if (key == "validate_every")
        c.validate_every = v.get<int>();
      else if (key == "checkpoint_every")
        c.checkpoint_every = v.get<int>();
      else if (key == "flip_x")
        c.flip_x = v.get<bool>();
      else if (key == "translate_px")
        c.translate_px = v.get<int>();
      else if (key == "balance")
        c.balance = parse_balance(v.get<std::string>());
      else if (key == "freeze_stages")
        c.freeze_stages = v.get<int>();
      else if (key == "channels_last")
        c.channels_last = v.get<bool>();
      else if (key == "seed")
        c.seed = v.get<uint64_t>();
      else
        throw_bad_input(source, "unknown training option '" + key + "'", "remove or correct it");
    }
  } catch (const json::exception& e) {
    throw_bad_input(source, std::string("wrong type in training config: ") + e.what());
  }
  return c;
}

void write_bundle_info(const BundleInfo& b, const fs::path& dir) {
  json j = {{"format", b.format},
            {"variant", b.variant},
            {"classes", {"LGG", "HGG"}},
            {"input",
             {{"size", b.input_size},
              {"slices", b.slices},
              {"low_percentile", b.low_percentile},
              {"high_percentile", b.high_percentile}}},
            {"sequences", b.sequences},
            {"store_key", b.store_key},
            {"split_protocol", b.split_protocol},
            {"versions",
             {{"gliomagrade", b.gliomagrade_version.empty() ? kVersion : b.gliomagrade_version},
              {"libtorch", b.torch_version.empty() ? TORCH_VERSION : b.torch_version}}}};
  j["training"] = b.train_config_json.empty() ? json::object() : json::parse(b.train_config_json);
  if (!b.training_data_json.empty()) j["training_data"] = json::parse(b.training_data_json);
  j["weights"] = json::object();
  const BundlePaths paths{dir};
  for (const auto& s : b.sequences) j["weights"][s] = paths.weights_name(s);
  write_file_atomic(paths.info(), j.dump(2) + "\n");
}

BundleInfo read_bundle_info(const fs::path& dir) {
  const fs::path file = BundlePaths{dir}.info();
  if (!fs::exists(file))
    throw_bad_input(dir.string(), "not a model bundle (no model.json)",
                    "pass the directory written by `gliomagrade train` or `run` (<results>/model)");
  json j;
  try {
    j = json::parse(read_file(file));
  } catch (const json::exception& e) {
    throw_bad_input(file.string(), std::string("not valid JSON: ") + e.what());
  }
  BundleInfo b;
  try {
    b.format = j.at("format").get<std::string>();
    if (b.format != kBundleFormat)
      throw_bad_input(file.string(), "bundle format '" + b.format + "' is not " + kBundleFormat,
                      "retrain with this version of gliomagrade, or use the version that wrote it");
    b.variant = j.at("variant").get<std::string>();
    const auto& in = j.at("input");
    b.input_size = in.at("size").get<int>();
    b.slices = in.at("slices").get<int>();
    b.low_percentile = in.at("low_percentile").get<double>();
    b.high_percentile = in.at("high_percentile").get<double>();
    b.sequences = j.at("sequences").get<std::vector<std::string>>();
    b.store_key = j.value("store_key", "");
    b.split_protocol = j.value("split_protocol", "");
    if (j.contains("training_data")) b.training_data_json = j["training_data"].dump();
    b.train_config_json = j.at("training").dump(2);
    b.gliomagrade_version = j.at("versions").value("gliomagrade", "");
    b.torch_version = j.at("versions").value("libtorch", "");
  } catch (const json::exception& e) {
    throw_bad_input(file.string(), std::string("malformed model.json: ") + e.what());
  }
  for (const auto& s : b.sequences) {
    io::parse_sequence(s);
    if (!fs::exists(BundlePaths{dir}.weights(s)))
      throw_bad_input(BundlePaths{dir}.weights(s).string(),
                      "weights file listed in model.json is missing",
                      "copy the whole bundle directory");
  }
  return b;
}

}  // namespace gg::train
