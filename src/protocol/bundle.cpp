// One bundle: train the sequence models, score them on a part of the split, report.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "dist/dist.h"
#include "explain/explain.h"
#include "protocol/internal.h"
#include "report/report.h"

namespace gg::protocol {

namespace {

// The tumour masks of `patients` that the store was prepared from (store.json's inputs), where
// they are still on disk with the recorded sha256; others are left out (the report then scores
// fewer patients).
std::map<std::string, fs::path> store_masks(const prep::SliceStore& store,
                                            const std::set<std::string>& patients) {
  std::map<std::string, fs::path> masks;
  const fs::path manifest = store.dir / "store.json";
  if (!fs::exists(manifest)) return masks;
  const auto j = nlohmann::json::parse(read_file(manifest), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("inputs") || !j["inputs"].is_array()) return masks;
  for (const auto& input : j["inputs"]) {
    const auto seg = input.value("files", nlohmann::json::object()).value("seg", nlohmann::json());
    if (!seg.is_object() || !input.contains("id") || !input["id"].is_string() ||
        !patients.count(input["id"].get<std::string>()))
      continue;
    const fs::path path = seg.value("path", "");
    std::error_code ec;
    if (path.empty() || !fs::is_regular_file(path, ec)) continue;
    if (sha256_file(path) != seg.value("sha256", "")) continue;
    masks[input["id"].get<std::string>()] = path;
  }
  return masks;
}

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

const char* weights_file_name(const std::string& variant) {
  return variant == "torchvision" ? "googlenet-1378be20.pth" : "bvlc_googlenet.caffemodel";
}

}  // namespace

fs::path find_pretrained_weights(const std::string& variant, const fs::path& explicit_path) {
  if (!explicit_path.empty()) {
    if (!fs::exists(explicit_path))
      throw_bad_input(explicit_path.string(), "weights file not found",
                      "check the path, or fetch it: gliomagrade weights fetch " + variant);
    return explicit_path;
  }
  if (const char* e = std::getenv("GLIOMAGRADE_WEIGHTS"); e && *e) {
    if (!fs::exists(e))
      throw_bad_input(e, "GLIOMAGRADE_WEIGHTS names a file that does not exist",
                      "fix the variable or unset it");
    return e;
  }
  const std::string name = weights_file_name(variant);
  std::vector<fs::path> candidates;
  if (const char* d = std::getenv("GLIOMAGRADE_WEIGHTS_DIR"); d && *d)
    candidates.push_back(fs::path(d) / name);
  const fs::path exe = executable_dir();
  if (!exe.empty()) {
    // build/gliomagrade -> <repo>/../shared/weights
    candidates.push_back(exe.parent_path().parent_path() / "shared" / "weights" / name);
    candidates.push_back(exe.parent_path() / "shared" / "weights" / name);
  }
  candidates.push_back(fs::current_path() / ".." / "shared" / "weights" / name);
  if (const char* home = std::getenv("HOME"); home && *home)
    candidates.push_back(fs::path(home) / ".cache" / "gliomagrade" / name);
  for (const auto& c : candidates) {
    if (fs::exists(c)) return fs::weakly_canonical(c);
  }
  std::string looked;
  for (const auto& c : candidates) looked += "\n  " + c.lexically_normal().string();
  throw_bad_input(
      name, "ImageNet weights of the " + variant + " GoogLeNet not found; looked in:" + looked,
      "run `gliomagrade weights fetch " + variant +
          "`, or pass --weights FILE, or set GLIOMAGRADE_WEIGHTS");
}

std::string split_description(data::SplitBy by) {
  return by == data::SplitBy::kPatient
             ? "patient-level split (no patient in two parts)"
             : "image-level split as the paper (slices of one patient in several parts: leakage)";
}

std::vector<train::TrainResult> train_bundle(const prep::SliceStore& store,
                                             const data::Split& split,
                                             const std::vector<io::Sequence>& sequences,
                                             const train::TrainConfig& config,
                                             const fs::path& bundle_dir, bool resume,
                                             dist::Communicator* comm) {
  const bool writer = !comm || comm->writer();
  std::vector<train::TrainResult> results;
  for (io::Sequence s : sequences) {
    // An interrupted run may have stopped before this sequence started: start it afresh.
    const bool continue_it = resume && train::has_checkpoint(bundle_dir, s);
    const auto busy = writer ? detail::lock_training(bundle_dir, s, io::sequence_name(s)) : nullptr;
    results.push_back(
        train::train_sequence(store, split, s, config, bundle_dir, continue_it, comm));
    const auto& r = results.back();
    if (!r.completed) return results;
    if (!writer) continue;
    detail::print_training_summary(io::sequence_name(s), r);
    if (comm)
      fmt::print(stderr, "  {}: {} ranks, {:.1f}% of the time in the gradients' all-reduce\n",
                 io::sequence_name(s), r.world_size,
                 r.seconds > 0 ? 100 * r.communication_seconds / r.seconds : 0.0);
  }
  if (!writer) return results;
  train::BundleInfo info;
  info.variant = config.variant;
  info.input_size = store.size;
  info.slices = store.slices_per_patient;
  for (io::Sequence s : sequences) info.sequences.push_back(io::sequence_name(s));
  info.train_config_json = train::config_to_json(config);
  info.store_key = store.key;
  info.split_protocol = data::split_by_name(split.by);
  std::vector<std::string> training_patients;
  for (int64_t i : split.items_in(data::Part::kTrain))
    if (training_patients.empty() || training_patients.back() != store.items[size_t(i)].patient)
      training_patients.push_back(store.items[size_t(i)].patient);
  info.training_data_json =
      prep::data_profile_to_json(prep::profile_patients(store, training_patients));
  train::write_bundle_info(info, bundle_dir);
  return results;
}

std::vector<eval::SlicePrediction> predict_part(const fs::path& bundle_dir,
                                                const prep::SliceStore& store,
                                                const data::Split& split, data::Part part,
                                                bool show_progress, const std::string& device) {
  const train::BundleInfo info = train::read_bundle_info(bundle_dir);
  if (info.input_size != store.size)
    throw_bad_input(store.dir.string(),
                    fmt::format("slice store has {} px slices but the model expects {}", store.size,
                                info.input_size),
                    "prepare the data with --size " + std::to_string(info.input_size));
  for (const char* s : {"t1", "t2", "flair"}) {
    if (std::find(info.sequences.begin(), info.sequences.end(), s) == info.sequences.end())
      throw_bad_input((bundle_dir / "model.json").string(),
                      std::string("bundle has no ") + s + " model",
                      "train all three sequences (the vote needs T1, T2 and FLAIR)");
  }
  const auto items = split.items_in(part);
  if (items.empty())
    throw_bad_input(store.dir.string(),
                    std::string("the split's ") + data::part_name(part) + " part is empty");
  std::vector<eval::SlicePrediction> rows(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = store.items[size_t(items[i])];
    rows[i].patient = it.patient;
    rows[i].z = it.z;
    rows[i].rank = it.rank;
    rows[i].label = it.grade == io::Grade::kHGG ? 1 : 0;
  }
  for (io::Sequence s : io::kSequences) {
    const auto p = train::predict_items(train::BundlePaths{bundle_dir}.weights(s), info.variant,
                                        store, s, items, 32, show_progress, device);
    for (size_t i = 0; i < items.size(); ++i) rows[i].p[size_t(s)] = p[i];
  }
  return rows;
}

eval::Evaluation evaluate_bundle(const fs::path& bundle_dir, const prep::SliceStore& store,
                                 const data::Split& split, data::Part part, const fs::path& out_dir,
                                 bool show_progress, const std::string& device) {
  const auto rows = predict_part(bundle_dir, store, split, part, show_progress, device);
  eval::Evaluation ev = eval::evaluate(rows, split_description(split.by));
  fs::create_directories(out_dir);
  eval::write_predictions_csv(rows, out_dir / "predictions.csv");
  eval::write_metrics_json(ev, out_dir / "metrics.json");
  write_file_atomic(out_dir / "table.md", eval::table_markdown(ev));
  return ev;
}

void write_report(const fs::path& bundle_dir, const eval::Evaluation& ev,
                  const std::string& config_json, const prep::SliceStore& store,
                  const data::Split& split, data::Part part, const fs::path& out_dir) {
  std::vector<std::pair<std::string, std::vector<report::TrainingLogRow>>> logs;
  for (io::Sequence s : io::kSequences) {
    const fs::path log = train::BundlePaths{bundle_dir}.training_log(s);
    if (fs::exists(log)) logs.push_back({io::sequence_name(s), report::read_training_log(log)});
  }
  report::ReportInputs in;
  in.title = "gliomagrade: LGG vs HGG from T1, T2 and FLAIR";
  in.table_markdown = eval::table_markdown(ev);
  in.config_json = config_json;
  in.sections = report::plot_evaluation(ev, logs, out_dir / "plots");
  // Why the models decided: Grad-CAM of the last inception block for a few test patients, and
  // for every test patient whose mask is still at hand, how the heatmaps sit on the tumour.
  in.figures = explain::explain_examples(bundle_dir, store, split, part, out_dir / "gradcam", 4);
  std::set<std::string> patients, unscored;
  for (int64_t i : split.items_in(part)) patients.insert(store.items[size_t(i)].patient);
  const auto masks = store_masks(store, patients);
  for (const auto& patient : patients)
    if (!masks.count(patient)) unscored.insert(patient);
  if (!unscored.empty())
    fmt::print(stderr,
               "notice: Grad-CAM against the tumour masks: {} of the {} patients' masks are not at "
               "the paths store.json records (moved or changed since `prepare`); they are left "
               "out of gradcam/localisation.csv\n",
               unscored.size(), patients.size());
  std::vector<explain::LocalisationRow> localisation;
  try {
    localisation = explain::heatmap_localisation(bundle_dir, store, split, part, masks);
  } catch (const Error& e) {
    // The masks matched store.json's hashes: whatever the check finds wrong is our logic, not
    // the user's input (issue 13 once blamed the masks for a bug of the check itself).
    if (e.code() != ExitCode::kBadInput) throw;
    throw Error(ExitCode::kUnexpected, e.file(),
                "internal error in the Grad-CAM localisation check of the report: " + e.problem(),
                "this is a bug, not your input: please report it with the command line");
  }
  if (!localisation.empty()) {
    fs::create_directories(out_dir / "gradcam");
    write_file_atomic(out_dir / "gradcam" / "localisation.csv",
                      explain::localisation_csv(localisation));
    in.table_markdown += "\n" + explain::localisation_markdown(localisation);
  }
  report::write_report_html(in, out_dir / "report.html");
}

}  // namespace gg::protocol
