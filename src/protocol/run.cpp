// `run`: the whole protocol on one split, or as patient-level K-fold cross-validation.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "dist/dist.h"
#include "protocol/internal.h"
#include "report/report.h"

namespace gg::protocol {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

std::string mean_sd_cell(const eval::MeanSd& m, int decimals, bool percent) {
  const double k = percent ? 100 : 1;
  if (!std::isfinite(m.mean)) return "n/a";
  return detail::fixed(k * m.mean, decimals) + " ± " + detail::fixed(k * m.sd, decimals) +
         (percent ? " %" : "");
}

// Checks the options before anything is written.
void check_options(const RunOptions& o, const std::vector<data::ItemKey>& patients) {
  if (o.folds < 0 || o.folds == 1)
    throw_bad_input("", "--folds must be at least 2, got " + std::to_string(o.folds),
                    "use e.g. --folds 5, or leave it out for one 70/15/15 split");
  if (o.folds > 0 && o.split_by == data::SplitBy::kImage)
    throw_bad_input("",
                    "--folds makes patient-level folds; it cannot be combined with --split image",
                    "drop --split image (cross-validation is by patient), or drop --folds");
  if (o.repeats < 1) throw_bad_input("", "--repeats must be at least 1");
  if (o.repeats > 1 && o.folds == 0)
    throw_bad_input("", "--repeats repeats a cross-validation", "add --folds K");
  if (o.jobs < 0)
    throw_bad_input("", "--jobs must be 0 (auto) or more, got " + std::to_string(o.jobs));
  const int tasks = int(training_tasks(o, "").size());
  if (o.task < 0 || o.task > tasks)
    throw_bad_input(
        "",
        fmt::format("--task {}: this run has {} trainings, numbered 1 to {}", o.task, tasks, tasks),
        "list them with --tasks");
  if (o.task > 0 && o.jobs > 1)
    throw_bad_input("", "--task trains one model in this process; it cannot take --jobs",
                    "drop --jobs, or drop --task to train every model --jobs at a time");
  if (o.jobs > 1 && o.task_executable.empty())
    throw_runtime("", "run --jobs: no executable to start the training processes with");
  if (o.jobs > 1 && o.comm)
    throw_bad_input("",
                    "--jobs starts its own processes; it cannot run as one rank of a "
                    "data-parallel world",
                    "drop --jobs under torchrun/srun (every training is then data-parallel), or "
                    "start `run --jobs` without a launcher");
  // The cohort's own errors (one grade, an unknown grade, K too large for the rarer grade).
  if (o.folds > 0)
    data::make_kfold(patients, o.folds, o.split_seed);
  else {
    data::SplitOptions sp;
    sp.by = data::SplitBy::kPatient;
    data::make_split(patients, sp);
  }
}

int cores_of(const RunOptions& o) {
  return o.total_threads > 0 ? o.total_threads
                             : int(std::max(1u, std::thread::hardware_concurrency()));
}

// --jobs 0 (auto): every training at once when they are at most two per core (no core idles
// while the last ones finish), else one per core; one with --task or a launcher.
int jobs_of(const RunOptions& o) {
  if (o.jobs > 0) return o.jobs;
  if (o.task > 0 || o.comm || o.task_executable.empty()) return 1;
  const int trainings = int(training_tasks(o, "").size()), cores = cores_of(o);
  return trainings <= 2 * cores ? trainings : cores;
}

data::Split single_split(const RunOptions& o, const std::vector<data::ItemKey>& keys) {
  data::SplitOptions sp;
  sp.by = o.split_by;
  sp.seed = o.split_seed;
  return data::make_split(keys, sp);
}

// The run's store: prepared by rank 0 (or the only process) into out/store; the other ranks of a
// data-parallel world wait for it and open it read-only.
prep::SliceStore shared_store(const RunOptions& o, const fs::path& out, detail::StageClock& clock) {
  if (!o.comm) return detail::cohort_and_store(o.cohort, out, o.show_progress, clock).store;
  std::optional<prep::SliceStore> store;
  if (o.comm->writer()) {
    try {
      store = detail::cohort_and_store(o.cohort, out, o.show_progress, clock).store;
    } catch (const Error& e) {
      o.comm->report_failure(e);  // the others stop at the barrier with rank 0's error
      throw;
    }
  }
  o.comm->barrier("the slice store, which rank 0 prepares");
  if (!store) store = prep::open_slice_store(out / "store");
  return *store;
}

// Data-parallel: every rank trains every bundle the run needs (all of them with comm), so that
// rank 0 then finds them finished. False when stopped early as asked (stop_after_iterations).
bool train_every_bundle(const RunOptions& o, const fs::path& out, const prep::SliceStore& store) {
  const auto keys = data::item_keys(store);
  const std::vector<io::Sequence> all{io::Sequence::kT1, io::Sequence::kT2, io::Sequence::kFlair};
  auto train = [&](const data::Split& split, const fs::path& bundle) {
    if (o.comm->writer()) fs::create_directories(bundle);
    const auto results = train_bundle(store, split, all, o.train, bundle, o.resume, o.comm);
    return results.empty() || results.back().completed;
  };
  if (o.folds == 0) return train(single_split(o, keys), out / "model");
  for (int r = 0; r < o.repeats; ++r) {
    const auto folds = detail::cv_folds(keys, o.folds, r, o.split_seed);
    for (int f = 0; f < o.folds; ++f) {
      const fs::path dir = detail::cv_fold_dir(out, r, f);
      if (o.resume && fs::exists(dir / "predictions.csv")) continue;  // scored before
      if (o.comm->writer())
        fmt::print(stderr, "-- data-parallel training: repetition {}/{}, fold {}/{}\n", r + 1,
                   o.repeats, f + 1, o.folds);
      if (!train(folds[size_t(f)], dir / "model")) return false;
    }
  }
  return true;
}

// --task N: one training of the run, into the directory that others may share. Nothing is
// scored: `run --resume` gathers the finished trainings and does that.
RunSummary train_one_task(const RunOptions& o, const fs::path& out, const json& options) {
  const bool writer = !o.comm || o.comm->writer();
  if (writer) detail::begin_results_dir(out, "run.json", "run", options, detail::Begin::kJoin);
  detail::StageClock clock(writer);
  const prep::SliceStore store = shared_store(o, out, clock);
  const auto keys = data::item_keys(store);
  const TrainingTask task = training_tasks(o, out)[size_t(o.task - 1)];
  data::Split split;
  if (task.fold == 0) {
    split = single_split(o, keys);
    if (writer) data::save_split(split, keys, out / "split.csv");
  } else {
    split = detail::cv_folds(keys, o.folds, task.repeat - 1, o.split_seed)[size_t(task.fold - 1)];
    if (writer) data::save_split(split, keys, task.bundle.parent_path() / "split.csv");
  }
  clock.start(fmt::format("train task {}: {}", task.number, task_label(task)));
  const auto busy =
      writer ? detail::lock_training(task.bundle, task.sequence, task_label(task)) : nullptr;
  const auto r = train::train_sequence(store, split, task.sequence, o.train, task.bundle,
                                       train::has_checkpoint(task.bundle, task.sequence), o.comm);
  clock.stop();
  if (r.completed && writer) detail::print_training_summary(task_label(task), r);
  RunSummary summary;
  summary.task = task.number;
  summary.completed = r.completed;
  summary.stages = clock.times();
  return summary;
}

json run_options_json(const RunOptions& o);

}  // namespace

std::string run_options_hash(const RunOptions& o, const fs::path& out) {
  return sha256_hex(run_options_json(o).dump() + "\nout " + out.lexically_normal().string() +
                    "\nresume " + (o.resume ? "1" : "0") + "\ntask " + std::to_string(o.task));
}

namespace {

json run_options_json(const RunOptions& o) {
  json j = detail::cohort_options_json(o.cohort);
  j["--split"] = data::split_by_name(o.split_by);
  j["--split-seed"] = o.split_seed;
  j["--folds"] = o.folds;
  j["--repeats"] = o.repeats;
  j["training"] = json::parse(train::config_to_json(o.train));
  return j;
}

std::vector<std::pair<std::string, std::vector<report::TrainingLogRow>>> training_logs(
    const fs::path& bundle, const std::string& prefix) {
  std::vector<std::pair<std::string, std::vector<report::TrainingLogRow>>> logs;
  for (io::Sequence s : io::kSequences) {
    const fs::path log = train::BundlePaths{bundle}.training_log(s);
    if (fs::exists(log))
      logs.push_back({prefix + io::sequence_name(s), report::read_training_log(log)});
  }
  return logs;
}

ordered_json headline_json(const eval::Evaluation& e) {
  ordered_json j = ordered_json::object();
  for (const auto& [level, by_scorer] : e.metrics) {
    ordered_json l = ordered_json::object();
    for (const auto& [scorer, m] : by_scorer)
      l[eval::scorer_key(scorer)] = {{"n", m.n},
                                     {"auc", detail::json_number(m.auc.auc)},
                                     {"auc_ci_lo", detail::json_number(m.auc.lo)},
                                     {"auc_ci_hi", detail::json_number(m.auc.hi)},
                                     {"accuracy", detail::json_number(m.accuracy)},
                                     {"sensitivity_hgg", detail::json_number(m.sensitivity)},
                                     {"specificity_lgg", detail::json_number(m.specificity)},
                                     {"f1", detail::json_number(m.f1)},
                                     {"ece", detail::json_number(m.calibration.ece)},
                                     {"brier", detail::json_number(m.calibration.brier)}};
    j[eval::level_name(level)] = l;
  }
  return j;
}

ordered_json summary_json(const eval::MetricSummary& s) {
  ordered_json j = ordered_json::object();
  for (const auto& [level, by_scorer] : s) {
    ordered_json l = ordered_json::object();
    for (const auto& [scorer, metrics] : by_scorer) {
      ordered_json m = ordered_json::object();
      for (const auto& [name, v] : metrics)
        m[name] = {
            {"mean", detail::json_number(v.mean)}, {"sd", detail::json_number(v.sd)}, {"n", v.n}};
      l[eval::scorer_key(scorer)] = m;
    }
    j[eval::level_name(level)] = l;
  }
  return j;
}

std::string cv_metrics_json(const detail::CvOutcome& cv, int folds, int repeats, uint64_t seed) {
  ordered_json per_fold = ordered_json::array();
  std::vector<eval::Evaluation> all_folds;
  for (size_t r = 0; r < cv.per_fold.size(); ++r)
    for (size_t f = 0; f < cv.per_fold[r].size(); ++f) {
      per_fold.push_back(
          {{"repeat", r + 1}, {"fold", f + 1}, {"metrics", headline_json(cv.per_fold[r][f])}});
      all_folds.push_back(cv.per_fold[r][f]);
    }
  ordered_json pooled_by_repeat = ordered_json::array();
  for (size_t r = 0; r < cv.pooled.size(); ++r)
    pooled_by_repeat.push_back({{"repeat", r + 1}, {"metrics", headline_json(cv.pooled[r])}});
  ordered_json j = {
      {"protocol", detail::cv_protocol_name(folds, repeats)},
      {"cv",
       {{"folds", folds},
        {"repeats", repeats},
        {"seeds", "repetition r deals the folds with --split-seed + r - 1"},
        {"first_seed", seed}}},
      {"pooled", ordered_json::parse(eval::metrics_json(cv.pooled.front()))},
      {"pooled_by_repeat", pooled_by_repeat},
      {"per_fold", per_fold},
      {"across_folds",
       {{"what", "mean and sample SD of each fold's metrics, over every fold of every repetition"},
        {"metrics", summary_json(eval::summarise(all_folds))}}}};
  if (repeats > 1)
    j["across_repeats"] = {
        {"what", "mean and sample SD of the pooled metrics over the repetitions"},
        {"metrics", summary_json(eval::summarise(cv.pooled))}};
  return j.dump(2) + "\n";
}

std::string cv_table_markdown(const detail::CvOutcome& cv, int folds, int repeats) {
  std::string md = eval::table_markdown(cv.pooled.front());
  if (repeats > 1)
    md += "\nThe tables above pool repetition 1; the mean ± SD over the repetitions follows.\n";
  // Per fold, at patient level (the headline) and slice level.
  md +=
      "\n### Per fold (patient level; slice-level AUC in the last column)\n\n"
      "| Repetition | Fold | Test patients (HGG/LGG) | T1 AUC | T2 AUC | FLAIR AUC | "
      "Soft vote AUC | Soft vote accuracy | Hard vote accuracy | Soft vote AUC, slices |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n";
  std::vector<eval::Evaluation> all_folds;
  for (size_t r = 0; r < cv.per_fold.size(); ++r)
    for (size_t f = 0; f < cv.per_fold[r].size(); ++f) {
      const auto& e = cv.per_fold[r][f];
      all_folds.push_back(e);
      const auto& p = e.metrics.at(eval::Level::kPatient);
      const auto& s = e.metrics.at(eval::Level::kSlice);
      const auto& soft = p.at(eval::Scorer::kVoteSoft);
      md += fmt::format(
          "| {} | {} | {} ({}/{}) | {} | {} | {} | {} | {:.1f} % | {:.1f} % | {} |\n", r + 1, f + 1,
          soft.n, soft.positives, soft.negatives, detail::fixed(p.at(eval::Scorer::kT1).auc.auc, 3),
          detail::fixed(p.at(eval::Scorer::kT2).auc.auc, 3),
          detail::fixed(p.at(eval::Scorer::kFlair).auc.auc, 3), detail::fixed(soft.auc.auc, 3),
          100 * soft.accuracy, 100 * p.at(eval::Scorer::kVoteHard).accuracy,
          detail::fixed(s.at(eval::Scorer::kVoteSoft).auc.auc, 3));
    }
  auto summary_table = [&](const eval::MetricSummary& sum, const std::string& heading) {
    for (eval::Level level : {eval::Level::kPatient, eval::Level::kSlice}) {
      md += fmt::format("\n### {} ({} level)\n\n", heading, eval::level_name(level));
      md +=
          "| Model | AUC | Accuracy | Sensitivity (HGG) | Specificity (LGG) | F1 |\n"
          "|---|---|---|---|---|---|\n";
      for (const auto& [scorer, m] : sum.at(level))
        md += fmt::format(
            "| {} | {} | {} | {} | {} | {} |\n", eval::scorer_name(scorer),
            mean_sd_cell(m.at("auc"), 3, false), mean_sd_cell(m.at("accuracy"), 1, true),
            mean_sd_cell(m.at("sensitivity"), 1, true), mean_sd_cell(m.at("specificity"), 1, true),
            mean_sd_cell(m.at("f1"), 3, false));
    }
  };
  summary_table(eval::summarise(all_folds),
                fmt::format("Mean ± SD across the {} folds{}", all_folds.size(),
                            repeats > 1 ? " of all repetitions" : ""));
  if (repeats > 1)
    summary_table(eval::summarise(cv.pooled),
                  fmt::format("Mean ± SD of the pooled figures across {} repetitions", repeats));
  md += fmt::format(
      "\nEach of the {} folds trained its own T1, T2 and FLAIR models on the other folds' patients "
      "(validation on patients drawn from those folds) and scored only its own test patients; the "
      "pooled tables score every patient once. SDs are sample SDs; folds with few patients give "
      "noisy per-fold figures, which is what the SD shows.\n",
      folds);
  return md;
}

void write_cv_report(const detail::CvOutcome& cv, int folds, int repeats,
                     const std::string& config_json, const std::string& table_md,
                     const fs::path& out) {
  std::vector<std::pair<std::string, std::vector<report::TrainingLogRow>>> logs;
  for (size_t f = 0; f < cv.bundles.front().size(); ++f)
    for (auto& l : training_logs(cv.bundles.front()[f], fmt::format("fold {} ", f + 1)))
      logs.push_back(std::move(l));
  report::ReportInputs in;
  in.title = fmt::format("gliomagrade: LGG vs HGG, {}-fold cross-validation", folds);
  in.table_markdown = table_md;
  in.config_json = config_json;
  in.notes =
      "Out-of-fold predictions: each patient is scored by the models of the one fold that "
      "held it out, which never saw any of its slices.";
  in.sections = report::plot_evaluation(cv.pooled.front(), logs, out / "plots");
  // The pooled ROC with each fold's curve (soft vote); inserted first, so patient level leads.
  for (eval::Level level : {eval::Level::kSlice, eval::Level::kPatient}) {
    std::vector<std::pair<std::string, eval::BinaryMetrics>> curves;
    curves.push_back({"pooled", cv.pooled.front().metrics.at(level).at(eval::Scorer::kVoteSoft)});
    for (size_t f = 0; f < cv.per_fold.front().size(); ++f)
      curves.push_back({fmt::format("fold {}", f + 1),
                        cv.per_fold.front()[f].metrics.at(level).at(eval::Scorer::kVoteSoft)});
    const std::string name = eval::level_name(level);
    const fs::path stem = out / "plots" / ("roc_folds_" + name);
    report::plot_roc(curves,
                     fmt::format("Soft vote ROC, {} level: pooled and per fold{}", name,
                                 repeats > 1 ? " (repetition 1)" : ""),
                     stem);
    in.sections.insert(in.sections.begin(),
                       report::FigureSection{"Cross-validation: ROC per fold (" + name + " level)",
                                             {{"pooled out-of-fold ROC and each fold's",
                                               fs::path(stem.string() + ".png")}}});
  }
  report::write_report_html(in, out / "report.html");
}

}  // namespace

RunSummary run(const RunOptions& o, const fs::path& out) {
  check_options(o, detail::planned_patients(o.cohort));
  const json options = run_options_json(o);
  if (o.task > 0) return train_one_task(o, out, options);
  const bool writer = !o.comm || o.comm->writer();
  if (writer) detail::begin_results_dir(out, "run.json", "run", options, o.resume);
  detail::StageClock clock(writer);
  RunSummary summary;

  const prep::SliceStore store = shared_store(o, out, clock);
  const auto keys = data::item_keys(store);

  // Data-parallel: the trainings first, on every rank; rank 0 then scores as below.
  if (o.comm) {
    clock.start(fmt::format("train: data-parallel on {} ranks", o.comm->size()));
    const bool completed = train_every_bundle(o, out, store);
    clock.stop();
    if (!completed || !writer) {
      summary.completed = completed;
      summary.stages = clock.times();
      return summary;
    }
  }

  // --jobs: every training first, in child processes; the steps below then find them finished.
  const int jobs = jobs_of(o);
  const bool pooled = jobs > 1;
  json pool_json;
  if (pooled) {
    const auto all = training_tasks(o, out);
    std::vector<TrainingTask> todo;
    for (const auto& t : all) {
      if (o.resume && t.fold > 0 && fs::exists(t.bundle.parent_path() / "predictions.csv"))
        continue;  // a fold scored before the interruption
      if (!o.resume && train::has_checkpoint(t.bundle, t.sequence))
        throw_bad_input(out.string(), "holds the " + task_label(t) + " training of an earlier run",
                        "add --resume to continue it, or choose a new --out");
      todo.push_back(t);
    }
    const int threads = std::max(1, cores_of(o) / jobs);
    clock.start(fmt::format("train: {} models, {} at a time", todo.size(), jobs));
    const auto seconds = detail::train_in_processes(todo, int(all.size()), jobs, threads, o, out,
                                                    out / "logs" / "tasks");
    clock.stop();
    // Not part of what defines the run (results do not depend on it): provenance only.
    pool_json = {{"jobs", jobs}, {"threads_per_job", threads}, {"tasks", json::array()}};
    for (size_t i = 0; i < todo.size(); ++i)
      pool_json["tasks"].push_back(
          {{"task", todo[i].number}, {"training", task_label(todo[i])}, {"seconds", seconds[i]}});
    if (o.train.stop_after_iterations > 0) {  // the trainings stopped as asked
      summary.stages = clock.times();
      return summary;
    }
  }
  const bool continue_trainings = o.resume || pooled || o.comm;

  eval::Evaluation headline;
  nlohmann::json training = nlohmann::json::object();
  if (o.folds == 0) {
    clock.start("split");
    const data::Split split = single_split(o, keys);
    data::save_split(split, keys, out / "split.csv");
    for (auto part : {data::Part::kTrain, data::Part::kVal, data::Part::kTest})
      fmt::print(stderr, "  {}: {} slices\n", data::part_name(part), split.items_in(part).size());
    clock.stop();

    clock.start("train: T1, T2, FLAIR");
    const auto results =
        train_bundle(store, split, {io::Sequence::kT1, io::Sequence::kT2, io::Sequence::kFlair},
                     o.train, out / "model", continue_trainings);
    clock.stop();
    if (!results.empty() && !results.back().completed) {
      summary.stages = clock.times();
      return summary;
    }
    for (const auto& r : results) {
      auto& t = training[io::sequence_name(r.sequence)];
      t = {{"best_val_loss", r.best_val_loss},
           {"best_val_accuracy", r.best_val_accuracy},
           {"best_iteration", r.best_iteration},
           {"iterations", r.iterations}};
      // With --jobs or ranks these are from the reuse, not the training: leave them out.
      if (!pooled && !o.comm)
        t.update({{"images_per_second", r.images_per_second}, {"seconds", r.seconds}});
    }

    clock.start("evaluate: test set");
    headline = evaluate_bundle(out / "model", store, split, data::Part::kTest, out, o.show_progress,
                               o.train.device);
    clock.stop();
    clock.start("report");
    write_report(out / "model", headline, options.dump(2), store, split, data::Part::kTest, out);
    clock.stop();
    summary.table_markdown = eval::table_markdown(headline);
  } else {
    clock.start(fmt::format("cross-validation: {} folds x {} repetition(s) x 3 sequences", o.folds,
                            o.repeats));
    const detail::CvOutcome cv =
        detail::cross_validate(store, o.folds, o.repeats, o.split_seed, o.train, out, o.resume,
                               continue_trainings, o.show_progress, "");
    clock.stop();
    if (!cv.completed) {
      summary.stages = clock.times();
      return summary;
    }
    for (size_t r = 0; r < cv.seconds.size(); ++r)
      for (size_t f = 0; f < cv.seconds[r].size(); ++f)
        training["folds"].push_back(
            {{"repeat", r + 1}, {"fold", f + 1}, {"seconds", cv.seconds[r][f]}});
    clock.start("evaluate and report: pooled out-of-fold predictions");
    eval::write_predictions_csv(cv.rows, out / "predictions.csv");
    write_file_atomic(out / "metrics.json", cv_metrics_json(cv, o.folds, o.repeats, o.split_seed));
    summary.table_markdown = cv_table_markdown(cv, o.folds, o.repeats);
    write_file_atomic(out / "table.md", summary.table_markdown);
    write_cv_report(cv, o.folds, o.repeats, options.dump(2), summary.table_markdown, out);
    clock.stop();
  }

  json extra = {{"training", training}};
  if (pooled) extra["parallel_trainings"] = pool_json;
  detail::finish_results_dir(out, "run.json", "run", options, store.key, clock, extra);
  summary.completed = true;
  summary.stages = clock.times();
  return summary;
}

}  // namespace gg::protocol
