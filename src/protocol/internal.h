// Pieces shared by protocol/*.cpp (run, cross-validation, audit); not part of the public API.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/files.h"
#include "protocol/protocol.h"

namespace gg::protocol::detail {

double peak_rss_mib();

// JSON number or null (JSON has no NaN); "n/a" for a non-finite value in text.
nlohmann::ordered_json json_number(double v);
std::string fixed(double v, int decimals);

// Wall time and peak memory per stage, printed as "== stage" when it starts.
class StageClock {
 public:
  explicit StageClock(bool print = true) : print_(print) {}  // false: ranks other than 0
  void start(const std::string& name);
  void stop();
  const std::vector<StageTime>& times() const { return times_; }
  nlohmann::json json() const;

 private:
  std::string name_;
  std::chrono::steady_clock::time_point t0_;
  bool print_ = true;
  std::vector<StageTime> times_;
};

// The cohort's cases: the built-in synthetic cohort written to out/cohort (or reused from an
// earlier run there), else discovered under options.data. Cheap: no volume is read.
std::vector<io::Case> cohort_cases(const CohortOptions& options, const fs::path& out,
                                   bool show_progress);
// One key per patient (rank 0), to check a split can be made before anything is written.
std::vector<data::ItemKey> patient_keys(const std::vector<io::Case>& cases);
// cohort_cases then prepare_store into out/store, each a stage of `clock`; under out/.prepare.lock,
// so that processes sharing `out` (run --jobs, --task) prepare it once and wait for each other.
struct CohortAndStore {
  std::vector<io::Case> cases;
  prep::SliceStore store;
};
CohortAndStore cohort_and_store(const CohortOptions& options, const fs::path& out,
                                bool show_progress, StageClock& clock);
// The patients a run will see, known before anything is written: the synthetic cohort's counts
// (placeholder ids) or the discovered cases.
std::vector<data::ItemKey> planned_patients(const CohortOptions& options);
prep::SliceStore prepare_store(const std::vector<io::Case>& cases, const CohortOptions& options,
                               const fs::path& store_dir, bool show_progress);

// The options that define a results directory, keyed by their command-line names ("--folds"),
// with the training config under "training".
nlohmann::json cohort_options_json(const CohortOptions& options);
// Writes <out>/<marker> {"command", "complete": false, "options"} before the work starts; with
// resume, first checks that the marker exists and that its options equal `options`, naming the
// first option that differs (training "epochs" may grow on resume, as train --resume allows).
// kJoin (a process that trains one task of a run others may be running): the marker's options
// are checked when it exists, and it is written only when it does not.
enum class Begin { kStart, kResume, kJoin };
void begin_results_dir(const fs::path& out, const std::string& marker, const std::string& command,
                       const nlohmann::json& options, Begin how);
inline void begin_results_dir(const fs::path& out, const std::string& marker,
                              const std::string& command, const nlohmann::json& options,
                              bool resume) {
  begin_results_dir(out, marker, command, options, resume ? Begin::kResume : Begin::kStart);
}

// Held while one process trains `sequence` into `bundle` (checkpoints/<seq>.lock): a second
// process that would train the same model throws kBadInput, one line, instead of interleaving
// checkpoints. Only the writing rank of a data-parallel world takes it.
std::unique_ptr<FileLock> lock_training(const fs::path& bundle, io::Sequence sequence,
                                        const std::string& label);
// "  <name>: best validation loss ... at iteration N, R images/s" on stderr; a training finished
// before (--resume, --jobs' children) has no rate of this process's own and says so instead.
void print_training_summary(const std::string& name, const train::TrainResult& r);
// Writes config.json (the options), provenance.json (versions, store key, per-stage times and
// memory, plus `extra`'s fields) and marks the results directory complete.
void finish_results_dir(const fs::path& out, const std::string& marker, const std::string& command,
                        const nlohmann::json& options, const std::string& store_key,
                        const StageClock& clock, const nlohmann::json& extra);

// Patient-level K-fold cross-validation of one store: per repetition r and fold f the models are
// trained in dir/cv/r<r+1>/fold<f+1>/model on the fold's split (saved beside it) and score the
// fold's test patients; a fold whose predictions.csv exists is reused on resume. With
// continue_trainings (resume, or after run --jobs trained them), trainings with a checkpoint
// continue from it (finished ones are reused).
struct CvOutcome {
  bool completed = false;
  std::vector<std::vector<data::Split>> splits;         // [repeat][fold]
  std::vector<eval::SlicePrediction> rows;              // every repetition's out-of-fold rows
  std::vector<eval::Evaluation> pooled;                 // per repetition
  std::vector<std::vector<eval::Evaluation>> per_fold;  // [repeat][fold]
  std::vector<std::vector<fs::path>> bundles;           // [repeat][fold]
  std::vector<std::vector<double>> seconds;             // [repeat][fold]: wall time in this process
};
CvOutcome cross_validate(const prep::SliceStore& store, int folds, int repeats, uint64_t seed,
                         const train::TrainConfig& config, const fs::path& dir, bool resume,
                         bool continue_trainings, bool show_progress, const std::string& label);
// The folds of repetition r (0-based) as cross_validate deals them.
std::vector<data::Split> cv_folds(const std::vector<data::ItemKey>& keys, int folds, int r,
                                  uint64_t seed);
fs::path cv_fold_dir(const fs::path& dir, int r, int f);  // dir/cv/r<r+1>/fold<f+1>

// Trains `tasks` of the run (options, out) in child processes of options.task_executable, `jobs`
// at a time with `threads` compute threads each: each gets its TaskOrder in log_dir/task_<N>.json
// and writes its output to log_dir/task_<N>.log; a line per start and end with an estimate of
// the time left.
// The first failure stops the others (SIGTERM: they keep their last checkpoint) and is rethrown
// with the child's exit code (kBadInput for 3), its last line and its log. Returns each task's
// wall time in seconds, in the order of `tasks`.
std::vector<double> train_in_processes(const std::vector<TrainingTask>& tasks, int total_tasks,
                                       int jobs, int threads, const RunOptions& options,
                                       const fs::path& out, const fs::path& log_dir);
std::string cv_protocol_name(int folds, int repeats);

}  // namespace gg::protocol::detail
