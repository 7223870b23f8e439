// protocol: the end-to-end protocol that `run`, cross-validation and the leakage audit share —
// cohort (or the built-in synthetic one) -> slice store -> split(s) -> train T1/T2/FLAIR ->
// score -> metrics, tables, plots, report — as library code on value structs. The commands in
// cli/ only parse options into these structs. Torch-free header.
//
// Results directories are resumable: each writes run.json (or audit.json's options) first with
// the options that define it; `resume` continues an interrupted run exactly (finished trainings
// are reused, an interrupted one continues from its checkpoint, the rest start) and refuses
// other options, naming the first that differs.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/data.h"
#include "eval/eval.h"
#include "io/io.h"
#include "prep/prep.h"
#include "train/train.h"

namespace gg::protocol {

namespace fs = std::filesystem;

// The ImageNet weights of a variant: `explicit_path` if given; else $GLIOMAGRADE_WEIGHTS; else the
// usual file name in $GLIOMAGRADE_WEIGHTS_DIR, ../shared/weights beside the source tree or the
// working directory, and ~/.cache/gliomagrade (where `weights fetch` puts it). Throws kBadInput
// with the fetch command when none exists.
fs::path find_pretrained_weights(const std::string& variant, const fs::path& explicit_path);

// "patient-level split (no patient in two parts)" / "image-level split as the paper (...)".
std::string split_description(data::SplitBy by);

// One bundle ------------------------------------------------------------------------------------

// Trains the listed sequences into bundle_dir and writes its model.json. With resume, a sequence
// with a checkpoint continues from it (a finished one is reused as it is) and one without starts
// afresh. Stops at the first sequence that did not complete (config.stop_after_iterations).
// With `comm`, every rank calls it (data-parallel, train::train_sequence); rank 0 alone writes.
std::vector<train::TrainResult> train_bundle(const prep::SliceStore& store,
                                             const data::Split& split,
                                             const std::vector<io::Sequence>& sequences,
                                             const train::TrainConfig& config,
                                             const fs::path& bundle_dir, bool resume,
                                             dist::Communicator* comm = nullptr);

// The bundle's three models over the items of one part: one row per item, label from the store.
// `device`: as --device (train::check_device).
std::vector<eval::SlicePrediction> predict_part(const fs::path& bundle_dir,
                                                const prep::SliceStore& store,
                                                const data::Split& split, data::Part part,
                                                bool show_progress,
                                                const std::string& device = "cpu");

// predict_part, scored: writes predictions.csv, metrics.json and table.md into out_dir.
eval::Evaluation evaluate_bundle(const fs::path& bundle_dir, const prep::SliceStore& store,
                                 const data::Split& split, data::Part part, const fs::path& out_dir,
                                 bool show_progress, const std::string& device = "cpu");

// Plots (training curves from bundle_dir/logs, ROC, confusion, reliability), Grad-CAM overlays
// of a few patients of `part` and the heatmaps scored against every one's mask, and report.html.
// The masks come from store.json, checked against their sha256, so an inconsistency found in the
// Grad-CAM check is a bug of ours, not the user's input: it is raised as kUnexpected (exit 1).
void write_report(const fs::path& bundle_dir, const eval::Evaluation& evaluation,
                  const std::string& config_json, const prep::SliceStore& store,
                  const data::Split& split, data::Part part, const fs::path& out_dir);

// The whole protocol ---------------------------------------------------------------------------

// The built-in synthetic cohort (gliomagrade synth), sized so `run` fits in minutes on 2 cores.
struct SynthCohort {
  int lgg = 10, hgg = 30;
  double difficulty = 0.5;
  std::array<int, 3> size{240, 240, 155};
  uint64_t seed = 1;
};

struct CohortOptions {
  fs::path data;  // BraTS folder or manifest; empty: the built-in synthetic cohort
  SynthCohort synth;
  int slices = 20;
  int threads = 0;  // prepare's worker threads (0: all cores)
};

struct StageTime {
  std::string name;
  double seconds = 0, peak_rss_mib = 0;  // peak resident memory of the process so far
};

struct RunOptions {
  CohortOptions cohort;
  data::SplitBy split_by = data::SplitBy::kPatient;
  uint64_t split_seed = 1;
  int folds = 0;    // 0: one 70/15/15 split; >= 2: patient-level stratified K-fold CV
  int repeats = 1;  // CV only: repetitions with fold assignments seeded split_seed + r
  train::TrainConfig train;
  bool resume = false;
  bool show_progress = true;
  // Independent trainings (training_tasks) at once, each in a child process of
  // task_executable with total_threads / jobs compute threads. 1: one after the other, in-process.
  // 0 (auto): all at once when they are at most 2 per core, else one per core; 1 with task or
  // comm. Measured on 2 cores (the demo's 3 trainings, mini-batch 10): 2 jobs of 1 thread
  // trained 2.2x faster than 1 job of 2 threads, 3 jobs 3.0x (bench/jobs_bench.sh).
  int jobs = 0;
  int total_threads = 0;  // 0: all cores
  // The gliomagrade executable whose hidden `run-task FILE` command trains one task of a run
  // handed over as a TaskOrder file (run --jobs starts it). Empty: jobs > 1 is refused.
  fs::path task_executable;
  // > 0: train only this task (1-based, training_tasks order) into `out` and return. Several
  // processes may do so at once (a Slurm array); `run --resume` then gathers them.
  int task = 0;
  // Data-parallel (torchrun, srun): every rank calls run() with the same options. Rank 0
  // prepares the store and alone writes; every training is data-parallel (train_bundle with
  // comm); then rank 0 alone scores and reports while the others return. Not with jobs > 1.
  dist::Communicator* comm = nullptr;
};

// One training of a run handed to a child process (run --jobs) as a file, not as a command
// line: the run's options, typed, with `task` set, and the results directory. `comm`, `jobs`,
// `total_threads` and `task_executable` are not carried (the child runs alone, in-process).
struct TaskOrder {
  RunOptions options;
  fs::path out;
};
std::string task_order_to_json(const TaskOrder& order);
// Throws gg::Error (kBadInput) naming `source` for malformed JSON, an unknown key, a missing key
// or a wrong type: the parent and the child are one executable, so any of these is a stale or
// hand-edited file.
TaskOrder task_order_from_json(const std::string& text, const std::string& source);

// What every rank of a data-parallel run must agree on: a hash of the options that define the
// run (run.json's), the output directory, --resume and --task (compared at the rendezvous).
std::string run_options_hash(const RunOptions& options, const fs::path& out);

// One independent training of a run: one sequence's model of one split (or of one fold of one
// repetition). Numbered 1.. in the order repetition, fold, sequence (T1, T2, FLAIR).
struct TrainingTask {
  int number = 0;
  int repeat = 0, fold = 0;  // 1-based; 0 on a single split
  io::Sequence sequence = io::Sequence::kT1;
  fs::path bundle;  // the model bundle directory it trains into
};
std::vector<TrainingTask> training_tasks(const RunOptions& options, const fs::path& out);
// "T1" on a single split, "repetition 1, fold 2, T1" in CV.
std::string task_label(const TrainingTask& task);

struct RunSummary {
  bool completed = false;  // false when training stopped early (stop_after_iterations)
  std::string table_markdown;
  std::vector<StageTime> stages;
  int task = 0;  // the task trained, when RunOptions::task was set (nothing was scored then)
};

// `gliomagrade run`. Single split: out/{cohort/, store/, split.csv, model/, predictions.csv,
// metrics.json, table.md, plots/, gradcam/, report.html}. With folds: out/cv/r<R>/fold<F>/
// {split.csv, model/, predictions.csv}, out/folds.csv and the pooled out-of-fold outputs
// (predictions.csv with repeat and fold columns, metrics.json with pooled, per-fold and
// mean ± SD figures, table.md, plots/, report.html). Both write config.json, provenance.json
// and run.json. Throws kBadInput for the option errors named in cli/cmd_run.cpp's help.
// With jobs > 1 the trainings run in child processes (their output in out/logs/tasks/); the
// first that fails stops the others at their last checkpoint and is rethrown, naming its log.
RunSummary run(const RunOptions& options, const fs::path& out);

struct AuditOptions {
  CohortOptions cohort;
  uint64_t split_seed = 1;  // the splits, and the per-patient label shuffle
  int folds = 0;            // 0: (b) and (d) on one patient split; >= 2: K-fold CV
  train::TrainConfig train;
  bool resume = false;
  bool show_progress = true;
  std::string demo_note;  // printed and written when the built-in demo settings are in force
};

struct AuditSummary {
  bool completed = false;
  std::string markdown;  // audit.md
  std::vector<StageTime> stages;
};

// `gliomagrade audit`: on one cohort and seed, (a) the paper's image-level split, (b) the
// patient-level split (or CV), (c) and (d) the same with every patient's grade replaced by a
// random one (a permutation of the patients' grades: class balance kept, all slices of a patient
// share it). out/{a_image,b_patient,c_image_shuffled,d_patient_shuffled}/ hold each protocol's
// models and predictions; out/audit.md, out/audit.json and out/audit.png compare them.
AuditSummary audit(const AuditOptions& options, const fs::path& out);

}  // namespace gg::protocol
