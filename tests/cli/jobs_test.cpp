// End-to-end: the run's independent trainings trained at once (run --jobs) or started one by one
// as separate processes (run --task, as a Slurm array does) and gathered by run --resume.
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>

#include "common/csv.h"
#include "common/files.h"
#include "testing/testing.h"
#include "tiny_run.h"

namespace gg {
namespace {

using testing::run_cli;

const std::string& kTinyOptions = kTinyRunOptions;

TEST(RunJobs, TwoJobsGiveTheOneProcessResultsWithALogPerTraining) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir dir;
  const fs::path out = dir / "j2";
  // --threads 2 whatever the machine: each job gets 1.
  auto r = run_cli("--quiet --threads 2 run --out " + q(out) + kTinyOptions + " --jobs 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 trainings, 2 at a time with 1 thread each"), std::string::npos)
      << r.output;
  for (const char* line : {"started task 1/3: T1", "done task 2/3: T2", "done task 3/3: FLAIR"})
    EXPECT_NE(r.output.find(line), std::string::npos) << line << "\n" << r.output;
  // The parent reuses the children's trainings: no training rate of its own to report (it
  // printed "0.0 images/s" for each before).
  EXPECT_EQ(r.output.find("0.0 images/s"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("t1: best validation loss"), std::string::npos) << r.output;
  // One after the other in one process, with both threads.
  const auto one =
      run_cli("--quiet --threads 2 run --out " + q(dir / "j1") + kTinyOptions + " --jobs 1");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(one.output.find("at a time"), std::string::npos) << one.output;
  EXPECT_FALSE(fs::exists(dir / "j1/logs/tasks"));
  expect_same_predictions(out / "predictions.csv", dir / "j1/predictions.csv");
  for (int t = 1; t <= 3; ++t) {
    const std::string log = read_file(out / "logs/tasks" / ("task_" + std::to_string(t) + ".log"));
    EXPECT_NE(log.find("train task " + std::to_string(t)), std::string::npos) << log;
  }
  const auto provenance = nlohmann::json::parse(read_file(out / "provenance.json"));
  const auto& pool = provenance.at("parallel_trainings");
  EXPECT_EQ(pool.at("jobs"), 2);
  EXPECT_EQ(pool.at("threads_per_job"), 1);
  ASSERT_EQ(pool.at("tasks").size(), 3u);
  EXPECT_EQ(pool.at("tasks")[2].at("training"), "FLAIR");
  EXPECT_GT(pool.at("tasks")[2].at("seconds").get<double>(), 0);
  const auto run_json = nlohmann::json::parse(read_file(out / "run.json"));
  EXPECT_TRUE(run_json.at("complete").get<bool>());
  EXPECT_FALSE(run_json.at("options").contains("--jobs")) << "not part of what defines a run";

  // Over an earlier run's trainings without --resume: refused, nothing retrained.
  r = run_cli("--quiet run --out " + q(out) + kTinyOptions + " --jobs 2");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("holds the T1 training of an earlier run"), std::string::npos)
      << r.output;
  // With --resume: every training is found finished; the same predictions.
  r = run_cli("--quiet run --out " + q(out) + kTinyOptions + " --jobs 2 --resume");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_predictions(out / "predictions.csv", dir / "j1/predictions.csv");
}

// Issue 18: the children were started with the user's command line rebuilt as text, and an
// attached -j2 reached them, where --task refused it: exit 3 after preparing. They now get the
// run's options as a typed order file, whatever form the options took on the command line.
TEST(RunJobs, ChildrenGetTypedOrdersNotTheCommandLine) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir dir;
  const fs::path out = dir / "run";
  const auto r = run_cli("--quiet --threads=2 run --out=" + q(out) + kTinyOptions +
                         " -j2 --stop-after=1 --lr=2e-4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 trainings, 2 at a time with 1 thread each"), std::string::npos)
      << r.output;
  for (int t = 1; t <= 3; ++t) {
    const fs::path order = out / "logs/tasks" / ("task_" + std::to_string(t) + ".json");
    ASSERT_TRUE(fs::exists(order)) << order;
    const auto j = nlohmann::json::parse(read_file(order));
    EXPECT_EQ(j.at("task"), t);
    EXPECT_EQ(j.at("stop_after_iterations"), 1);
    EXPECT_DOUBLE_EQ(j.at("training").at("learning_rate").get<double>(), 2e-4);
    EXPECT_EQ(j.at("cohort").at("slices"), 4);
    EXPECT_TRUE(fs::exists(out / "model/checkpoints" /
                           (t == 1   ? "t1"
                            : t == 2 ? "t2"
                                     : "flair")))
        << "task " << t << " trained nothing";
  }
  // A stale or edited order is refused, naming the file and the key.
  const fs::path order = out / "logs/tasks/task_1.json";
  auto j = nlohmann::json::parse(read_file(order));
  j["training"]["learning_rat"] = 1;
  write_file_atomic(dir / "bad.json", j.dump());
  auto bad = run_cli("--quiet run-task " + q(dir / "bad.json"));
  EXPECT_EQ(bad.exit_code, 3) << bad.output;
  EXPECT_NE(bad.output.find("unknown training option 'learning_rat'"), std::string::npos)
      << bad.output;
  j = nlohmann::json::parse(read_file(order));
  j.erase("folds");
  write_file_atomic(dir / "bad.json", j.dump());
  bad = run_cli("--quiet run-task " + q(dir / "bad.json"));
  EXPECT_EQ(bad.exit_code, 3) << bad.output;
  EXPECT_NE(bad.output.find("lacks 'folds'"), std::string::npos) << bad.output;
  // Not a command users see.
  EXPECT_EQ(testing::run_cli_stdout("--help").output.find("run-task"), std::string::npos);
}

TEST(RunJobs, AFailedTrainingStopsTheRunAndNamesItsLog) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir dir;
  const fs::path out = dir / "run";
  // Started by one task that stopped early; then T2's model is held by "another process" (this
  // one), so its task fails with a one-line error when --jobs 2 continues the run.
  auto r = run_cli("--quiet run --out " + q(out) + kTinyOptions + " --task 1 --stop-after 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  FileLock busy(out / "model/checkpoints/t2.lock", FileLock::Wait::kNo);
  ASSERT_TRUE(busy.held());
  r = run_cli("--quiet run --out " + q(out) + kTinyOptions + " --jobs 2 --resume");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("training task 2 (T2) failed (exit code 3): "), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("being trained by another process"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find((out / "logs/tasks/task_2.log").string()), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "predictions.csv"));
  EXPECT_FALSE(nlohmann::json::parse(read_file(out / "run.json")).at("complete").get<bool>());
}

TEST(RunTasks, TrainingsStartedSeparatelyAreGatheredByResume) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir dir;
  const fs::path out = dir / "cv";
  auto listed = testing::run_cli_stdout("run --out " + q(out) + kCvOptions + " --tasks");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("# 9 trainings"), std::string::npos) << listed.output;
  EXPECT_NE(
      listed.output.find("5\trepetition 1, fold 2, T2\t" + (out / "cv/r1/fold2/model").string()),
      std::string::npos)
      << listed.output;
  EXPECT_FALSE(fs::exists(out)) << "--tasks writes nothing";

  // Tasks 1 and 2 start at once into a new directory: one prepares the cohort and the store,
  // the other waits for it; then the rest one by one, as array jobs would.
  auto task = [&](int n) {
    return run_cli("--quiet run --out " + q(out) + kCvOptions + " --task " + std::to_string(n));
  };
  auto first = std::async(std::launch::async, task, 1);
  auto second = std::async(std::launch::async, task, 2);
  for (auto* f : {&first, &second}) {
    const auto r = f->get();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("the run's other trainings and its scoring are done by `run --resume`"),
              std::string::npos)
        << r.output;
  }
  for (int n = 3; n <= 9; ++n) ASSERT_EQ(task(n).exit_code, 0) << n;
  EXPECT_FALSE(fs::exists(out / "predictions.csv")) << "a task scores nothing";
  EXPECT_TRUE(fs::exists(out / "cv/r1/fold3/model/checkpoints/flair"));

  const fs::path weights = out / "cv/r1/fold2/model/t2.pt";
  const std::string trained = read_file(weights);
  const auto gathered = run_cli("--quiet run --out " + q(out) + kCvOptions + " --resume");
  ASSERT_EQ(gathered.exit_code, 0) << gathered.output;
  EXPECT_EQ(read_file(weights), trained) << "a finished training is reused, not trained again";
  expect_same_predictions(out / "predictions.csv", tiny_cv() / "predictions.csv");
}

TEST(RunTasks, BadTaskOptionsAreOneLineErrorsAndWriteNothing) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir dir;
  const fs::path out = dir / "cv";
  auto r = run_cli("--quiet run --out " + q(out) + kCvOptions + " --task 10");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("--task 10: this run has 9 trainings, numbered 1 to 9"),
            std::string::npos)
      << r.output;
  r = run_cli("--quiet run --out " + q(out) + kCvOptions + " --task 1 --jobs 2");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("--task trains one model in this process"), std::string::npos)
      << r.output;
  r = run_cli("--quiet run --out " + q(out) + kCvOptions + " --jobs -1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(fs::exists(out));

  // A task of a run started with other options is refused, naming the option.
  ASSERT_EQ(
      run_cli("--quiet run --out " + q(out) + kCvOptions + " --task 1 --stop-after 1").exit_code,
      0);
  r = run_cli("--quiet run --out " + q(out) + kCvOptions + " --task 2 --lr 0.001");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("--lr was"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "cv/r1/fold1/model/checkpoints/t2"));

  // The same task twice at once: the second is refused while the first holds its model.
  FileLock busy(out / "cv/r1/fold1/model/checkpoints/t1.lock", FileLock::Wait::kNo);
  ASSERT_TRUE(busy.held());
  r = run_cli("--quiet run --out " + q(out) + kCvOptions + " --task 1");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("the repetition 1, fold 1, T1 model is being trained by another process"),
            std::string::npos)
      << r.output;
  // ... and so is a gathering run --resume.
  r = run_cli("--quiet run --out " + q(out) + kCvOptions + " --resume");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("being trained by another process"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace gg
