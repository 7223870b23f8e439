// `gliomagrade run`: the whole protocol end to end — prepare, split, train T1/T2/FLAIR, evaluate,
// report — into one results directory with its config, versions and input hashes.
// With no DATA it makes the built-in synthetic cohort first (the README's main command).
#include <fmt/format.h>
#include <sys/resource.h>
#include <torch/version.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/pipeline.h"
#include "common/error.h"
#include "common/files.h"
#include "common/version.h"
#include "synth/synth.h"

namespace gg::cli {
namespace {

struct RunArgs {
  fs::path data, out = "results";
  std::string split = "patient";
  uint64_t split_seed = 1;
  int slices = 20;
  bool resume = false;
  // The built-in synthetic cohort, sized so the whole run fits in ~15 minutes on 2 cores.
  int synth_lgg = 10, synth_hgg = 30;
  double synth_difficulty = 0.5;
  std::vector<int> synth_size{240, 240, 155};
  train::TrainConfig config;
  TrainOptionStrings strings;
};

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

class StageTimer {
 public:
  void start(const std::string& name) {
    name_ = name;
    t0_ = std::chrono::steady_clock::now();
    fmt::print(stderr, "== {}\n", name);
  }
  void stop() {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    timings_[name_] = {{"seconds", s}, {"peak_rss_mib_so_far", peak_rss_mib()}};
  }
  const nlohmann::json& timings() const { return timings_; }

 private:
  std::string name_;
  std::chrono::steady_clock::time_point t0_;
  nlohmann::json timings_ = nlohmann::json::object();
};

void run_protocol(RunArgs& a) {
  finish_train_options(a.config, a.strings);
  a.config.show_progress = !global_options().quiet;
  check_output_dir(a.out, "run.json");
  fs::create_directories(a.out);
  const bool quiet = global_options().quiet;
  StageTimer timer;
  nlohmann::json config = {{"data", a.data.empty() ? "built-in synthetic cohort" : a.data.string()},
                           {"split", a.split},
                           {"split_seed", a.split_seed},
                           {"slices", a.slices},
                           {"training", nlohmann::json::parse(train::config_to_json(a.config))}};

  std::vector<io::Case> cases;
  if (a.data.empty()) {
    timer.start("synth: built-in synthetic cohort");
    synth::SynthOptions so;
    so.lgg = a.synth_lgg, so.hgg = a.synth_hgg, so.seed = a.config.seed,
    so.difficulty = a.synth_difficulty;
    so.show_progress = !quiet;
    so.size = {a.synth_size[0], a.synth_size[1], a.synth_size[2]};
    so.spacing_mm = 240.0 / double(a.synth_size[0]);  // keep the head's physical size
    const fs::path cohort = a.out / "cohort";
    if (fs::exists(cohort / "HGG")) {
      cases = io::discover_cohort(cohort);  // made by an earlier run of this command
    } else {
      cases = synth::generate_cohort(cohort, so);
    }
    config["synthetic"] = {
        {"lgg", so.lgg}, {"hgg", so.hgg}, {"seed", so.seed}, {"difficulty", so.difficulty}};
    timer.stop();
  } else {
    cases = io::discover_cohort(a.data);
  }

  timer.start("prepare: slice store");
  prep::PrepareOptions po;
  po.slices = a.slices;
  po.threads = global_options().threads;
  po.show_progress = !quiet;
  const prep::SliceStore store = prep::prepare_cohort(cases, a.out / "store", po);
  timer.stop();

  timer.start("split");
  data::SplitOptions sp;
  sp.by = a.split == "image" ? data::SplitBy::kImage : data::SplitBy::kPatient;
  sp.seed = a.split_seed;
  const auto keys = data::item_keys(store);
  const data::Split split = data::make_split(keys, sp);
  data::save_split(split, keys, a.out / "split.csv");
  for (auto part : {data::Part::kTrain, data::Part::kVal, data::Part::kTest})
    fmt::print(stderr, "  {}: {} slices\n", data::part_name(part), split.items_in(part).size());
  timer.stop();

  timer.start("train: T1, T2, FLAIR");
  const auto results =
      train_bundle(store, split, {io::Sequence::kT1, io::Sequence::kT2, io::Sequence::kFlair},
                   a.config, a.out / "model", a.resume);
  nlohmann::json training = nlohmann::json::object();
  for (const auto& r : results)
    training[io::sequence_name(r.sequence)] = {
        {"best_val_loss", r.best_val_loss},         {"best_val_accuracy", r.best_val_accuracy},
        {"best_iteration", r.best_iteration},       {"iterations", r.iterations},
        {"images_per_second", r.images_per_second}, {"seconds", r.seconds}};
  timer.stop();

  timer.start("evaluate: test set");
  const eval::Evaluation ev =
      evaluate_bundle(a.out / "model", store, split, data::Part::kTest, a.out, !quiet);
  timer.stop();

  timer.start("report");
  write_report(a.out / "model", ev, config.dump(2), store, split, data::Part::kTest, a.out);
  timer.stop();

  const nlohmann::json provenance = {
      {"versions", {{"gliomagrade", kVersion}, {"libtorch", TORCH_VERSION}}},
      {"store_key", store.key},
      {"inputs", "per-file sha256 in store/store.json"},
      {"stages", timer.timings()},
      {"training", training},
      {"peak_rss_mib", peak_rss_mib()}};
  write_file_atomic(a.out / "config.json", config.dump(2) + "\n");
  write_file_atomic(a.out / "provenance.json", provenance.dump(2) + "\n");
  write_file_atomic(a.out / "run.json", nlohmann::json{{"complete", true}}.dump() + "\n");
  fmt::print("\n{}\n", eval::table_markdown(ev));
  fmt::print("results: {} (report.html, metrics.json, predictions.csv, model/)\n", a.out.string());
  if (a.data.empty())
    fmt::print("note: synthetic cohort: these numbers test the pipeline, not the science.\n");
}

void add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  a->config.epochs = 3;  // demo scale: see footer
  a->config.freeze_stages = 2;
  auto* c = app.add_subcommand(
      "run", "The whole protocol: prepare, split, train T1/T2/FLAIR, evaluate, report");
  c->add_option(
      "data", a->data,
      "BraTS 2018/2019/2020 folder or manifest CSV (default: the built-in synthetic cohort)");
  c->add_option("--out", a->out, "Results directory")->capture_default_str();
  c->add_option("--split", a->split,
                "patient: no patient in two parts (default, honest); image: the paper's per-image "
                "split (leaks)")
      ->check(CLI::IsMember({"patient", "image"}))
      ->capture_default_str();
  c->add_option("--split-seed", a->split_seed, "Seed of the split")->capture_default_str();
  c->add_option("--slices", a->slices, "Slices per patient around the largest tumour slice")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--synth-lgg", a->synth_lgg, "Synthetic cohort: LGG patients")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--synth-hgg", a->synth_hgg, "Synthetic cohort: HGG patients")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--difficulty", a->synth_difficulty,
                "Synthetic cohort: overlap of the grades' phenotypes (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--synth-size", a->synth_size,
                "Synthetic cohort: volume size X,Y,Z (tests use small volumes)")
      ->delimiter(',')
      ->expected(3)
      ->check(CLI::PositiveNumber)
      ->group("");
  c->add_flag("--resume", a->resume, "Continue interrupted training in --out");
  add_train_options(c, a->config, a->strings);
  c->footer(
      "run defaults to 3 epochs with the stem and inception-3 frozen (--freeze 2) so the built-in\n"
      "demo finishes in minutes on 2 cores; the paper's MATLAB settings are --epochs 6 --freeze "
      "0.\n"
      "Examples:\n"
      "  gliomagrade run --out results                      synthetic demo\n"
      "  gliomagrade run /data/MICCAI_BraTS_2019_Data_Training --out brats19 --epochs 6 --freeze "
      "0\n"
      "  gliomagrade run DATA --split image --out paper     the paper's per-image protocol");
  c->callback([a] { run_protocol(*a); });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(run, 60, gg::cli::add_run);
