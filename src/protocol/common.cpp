// What run and audit share: stage clock, cohort and store, the results directory's options.
#include <fmt/format.h>
#include <sys/resource.h>
#include <torch/version.h>

#include <cmath>

#include <map>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "common/version.h"
#include "protocol/internal.h"
#include "synth/synth.h"

namespace gg::protocol::detail {

using nlohmann::json;

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

void StageClock::start(const std::string& name) {
  name_ = name;
  t0_ = std::chrono::steady_clock::now();
  if (print_) fmt::print(stderr, "== {}\n", name);
}

void StageClock::stop() {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  times_.push_back({name_, s, peak_rss_mib()});
}

json StageClock::json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& t : times_)
    j[t.name] = {{"seconds", t.seconds}, {"peak_rss_mib_so_far", t.peak_rss_mib}};
  return j;
}

std::vector<io::Case> cohort_cases(const CohortOptions& o, const fs::path& out,
                                   bool show_progress) {
  if (!o.data.empty()) return io::discover_cohort(o.data);
  const fs::path cohort = out / "cohort";
  if (fs::exists(cohort / "HGG")) return io::discover_cohort(cohort);  // an earlier run's
  synth::SynthOptions so;
  so.lgg = o.synth.lgg, so.hgg = o.synth.hgg, so.seed = o.synth.seed;
  so.difficulty = o.synth.difficulty;
  so.size = o.synth.size;
  so.spacing_mm = 240.0 / double(o.synth.size[0]);  // keep the head's physical size
  so.threads = o.threads;
  so.show_progress = show_progress;
  synth::validate(so);
  return synth::generate_cohort(cohort, so);
}

std::vector<data::ItemKey> patient_keys(const std::vector<io::Case>& cases) {
  std::vector<data::ItemKey> keys;
  for (const auto& c : cases) keys.push_back({c.id, c.grade, 0});
  return keys;
}

std::vector<data::ItemKey> planned_patients(const CohortOptions& c) {
  if (!c.data.empty()) return patient_keys(io::discover_cohort(c.data));
  std::vector<data::ItemKey> keys;
  for (int i = 0; i < c.synth.lgg; ++i) keys.push_back({fmt::format("L{}", i), io::Grade::kLGG, 0});
  for (int i = 0; i < c.synth.hgg; ++i) keys.push_back({fmt::format("H{}", i), io::Grade::kHGG, 0});
  return keys;
}

prep::SliceStore prepare_store(const std::vector<io::Case>& cases, const CohortOptions& o,
                               const fs::path& store_dir, bool show_progress) {
  prep::PrepareOptions po;
  po.slices = o.slices;
  po.threads = o.threads;
  po.show_progress = show_progress;
  return prep::prepare_cohort(cases, store_dir, po);
}

CohortAndStore cohort_and_store(const CohortOptions& o, const fs::path& out, bool show_progress,
                                StageClock& clock) {
  CohortAndStore c;
  fs::create_directories(out);
  FileLock busy(out / ".prepare.lock", FileLock::Wait::kNo);
  std::unique_ptr<FileLock> waited;
  if (!busy.held()) {
    fmt::print(stderr, "waiting for another gliomagrade process preparing {}\n", out.string());
    waited = std::make_unique<FileLock>(out / ".prepare.lock", FileLock::Wait::kYes);
  }
  clock.start(o.data.empty() ? "synth: built-in synthetic cohort" : "cohort");
  c.cases = cohort_cases(o, out, show_progress);
  clock.stop();
  clock.start("prepare: slice store");
  c.store = prepare_store(c.cases, o, out / "store", show_progress);
  clock.stop();
  return c;
}

json cohort_options_json(const CohortOptions& o) {
  json j = {{"data", o.data.empty() ? "built-in synthetic cohort" : o.data.string()},
            {"--slices", o.slices}};
  if (o.data.empty()) {
    j["--synth-lgg"] = o.synth.lgg;
    j["--synth-hgg"] = o.synth.hgg;
    j["--difficulty"] = o.synth.difficulty;
    j["--synth-size"] = o.synth.size;
    j["synthetic seed (--seed)"] = o.synth.seed;
  }
  return j;
}

namespace {

// Training config keys and the options that set them.
const std::map<std::string, std::string>& training_option_names() {
  static const std::map<std::string, std::string> names = {
      {"variant", "--variant"},
      {"pretrained", "--weights"},
      {"learning_rate", "--lr"},
      {"head_lr_factor", "--head-lr-factor"},
      {"momentum", "--momentum"},
      {"weight_decay", "--l2"},
      {"batch_size", "--batch"},
      {"epochs", "--epochs"},
      {"validate_every", "--validate-every"},
      {"checkpoint_every", "--checkpoint-every"},
      {"flip_x", "--no-flip"},
      {"translate_px", "--translate"},
      {"balance", "--balance"},
      {"freeze_stages", "--freeze"},
      {"channels_last", "channels-last layout"},
      {"seed", "--seed"}};
  return names;
}

std::string shown(const json& v) { return v.is_null() ? "unset" : v.dump(); }

// The first option whose value differs, as "--folds was 5 when this run started, now 3".
std::string first_difference(const json& saved, const json& now) {
  std::set<std::string> keys;
  for (const auto& [k, v] : saved.items()) keys.insert(k);
  for (const auto& [k, v] : now.items()) keys.insert(k);
  for (const auto& k : keys) {
    const json a = saved.value(k, json()), b = now.value(k, json());
    if (k == "training" && a.is_object() && b.is_object()) {
      for (const auto& [name, flag] : training_option_names()) {
        if (name == "epochs") continue;  // more epochs may be asked for on resume
        const json x = a.value(name, json()), y = b.value(name, json());
        if (x != y)
          return fmt::format("{} was {} when this run started, now {}", flag, shown(x), shown(y));
      }
      continue;
    }
    if (a != b)
      return fmt::format("{} was {} when this run started, now {}", k, shown(a), shown(b));
  }
  return "";
}

json marker_json(const std::string& command, bool complete, const json& options) {
  return {{"format", "gliomagrade-results/1"},
          {"command", command},
          {"complete", complete},
          {"options", options}};
}

}  // namespace

void begin_results_dir(const fs::path& out, const std::string& marker, const std::string& command,
                       const json& options, Begin how) {
  check_output_dir(out, marker);
  const fs::path file = out / marker;
  const bool check = how == Begin::kResume || (how == Begin::kJoin && fs::exists(file));
  if (check) {
    if (!fs::exists(file))
      throw_bad_input(
          out.string(), "nothing to resume here: no " + marker,
          "run without --resume to start, or give the --out of an interrupted " + command);
    const json saved = json::parse(read_file(file), nullptr, /*allow_exceptions=*/false);
    if (!saved.is_object() || saved.value("command", "") != command)
      throw_bad_input(file.string(), "not the record of a `" + command + "` results directory",
                      "give the --out of an interrupted " + command);
    const std::string diff = first_difference(saved.value("options", json::object()), options);
    if (!diff.empty())
      throw_bad_input(file.string(), diff,
                      "resume with the options the run started with, or start afresh in a new "
                      "--out");
  }
  if (how == Begin::kJoin && check) return;  // the run's record stands as its starter wrote it
  fs::create_directories(out);
  write_file_atomic(file, marker_json(command, false, options).dump(2) + "\n");
}

std::unique_ptr<FileLock> lock_training(const fs::path& bundle, io::Sequence sequence,
                                        const std::string& label) {
  const fs::path path = train::BundlePaths{bundle}.training_lock(sequence);
  auto lock = std::make_unique<FileLock>(path, FileLock::Wait::kNo);
  if (!lock->held())
    throw_bad_input(path.string(), "the " + label + " model is being trained by another process",
                    "wait for it to finish (run --jobs, or a --task started elsewhere), or stop "
                    "it; its checkpoint is then continued with --resume");
  return lock;
}

void print_training_summary(const std::string& name, const train::TrainResult& r) {
  const std::string rate = r.images_per_second > 0
                               ? fmt::format(", {:.1f} images/s", r.images_per_second)
                               : std::string(" (trained earlier or by another process)");
  fmt::print(stderr, "  {}: best validation loss {:.4f} (accuracy {:.1f}%) at iteration {}{}\n",
             name, r.best_val_loss, 100 * r.best_val_accuracy, r.best_iteration, rate);
}

void finish_results_dir(const fs::path& out, const std::string& marker, const std::string& command,
                        const json& options, const std::string& store_key, const StageClock& clock,
                        const json& extra) {
  json provenance = {{"versions", {{"gliomagrade", kVersion}, {"libtorch", TORCH_VERSION}}},
                     {"store_key", store_key},
                     {"inputs", "per-file sha256 in store/store.json"},
                     {"stages", clock.json()},
                     {"peak_rss_mib", peak_rss_mib()}};
  for (const auto& [k, v] : extra.items()) provenance[k] = v;
  write_file_atomic(out / "config.json", options.dump(2) + "\n");
  write_file_atomic(out / "provenance.json", provenance.dump(2) + "\n");
  write_file_atomic(out / marker, marker_json(command, true, options).dump(2) + "\n");
}

nlohmann::ordered_json json_number(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
}

std::string fixed(double v, int decimals) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, decimals) : "n/a";
}

}  // namespace gg::protocol::detail
