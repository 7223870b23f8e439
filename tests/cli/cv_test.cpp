// End-to-end: `run --folds K` (patient-level cross-validation) on a tiny synthetic cohort.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/csv.h"
#include "common/files.h"
#include "testing/golden.h"
#include "testing/testing.h"
#include "tiny_cohort.h"
#include "tiny_run.h"

namespace gg {
namespace {

using testing::run_cli;

int column(const CsvTable& t, const char* name) {
  const int c = t.column(name);
  EXPECT_GE(c, 0) << name;
  return c;
}

TEST(CrossValidation, OutOfFoldPredictionsScoreEveryPatientOnceByModelsThatNeverSawIt) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const fs::path out = tiny_cv();
  const CsvTable pred = read_csv(out / "predictions.csv");
  ASSERT_EQ(pred.rows.size(), 27u) << "9 patients x 3 slices, each once";
  std::map<std::string, std::set<int>> folds_of;
  std::map<std::string, int> rows_of;
  for (const auto& row : pred.rows) {
    EXPECT_EQ(row[size_t(column(pred, "repeat"))], "1");
    folds_of[row[size_t(column(pred, "patient"))]].insert(
        std::stoi(row[size_t(column(pred, "fold"))]));
    ++rows_of[row[size_t(column(pred, "patient"))]];
  }
  ASSERT_EQ(folds_of.size(), 9u);
  for (const auto& [patient, folds] : folds_of) {
    EXPECT_EQ(folds.size(), 1u) << patient << " scored by one fold only";
    EXPECT_EQ(rows_of[patient], 3) << patient;
  }
  // From the saved fold files: the fold that tests a patient has it in neither train nor val.
  for (int f = 1; f <= 3; ++f) {
    const CsvTable split = read_csv(out / ("cv/r1/fold" + std::to_string(f)) / "split.csv");
    std::map<std::string, std::set<std::string>> parts;
    for (const auto& row : split.rows)
      parts[row[size_t(column(split, "patient"))]].insert(row[size_t(column(split, "part"))]);
    int tested = 0;
    for (const auto& [patient, p] : parts) {
      EXPECT_EQ(p.size(), 1u) << patient << " in two parts of fold " << f;
      const bool in_test = p.count("test") > 0;
      EXPECT_EQ(in_test, *folds_of[patient].begin() == f) << patient << " fold " << f;
      tested += in_test;
      EXPECT_TRUE(fs::exists(out / ("cv/r1/fold" + std::to_string(f)) / "model/flair.pt"));
    }
    EXPECT_GE(tested, 3);
    std::set<std::string> val;
    for (const auto& [patient, p] : parts)
      if (p.count("val")) val.insert(patient);
    EXPECT_GE(val.size(), 2u) << "validation patients of both grades, disjoint from the test fold";
  }
  const CsvTable folds_csv = read_csv(out / "cv/r1/folds.csv");
  EXPECT_EQ(folds_csv.rows.size(), 9u);

  const auto metrics = nlohmann::json::parse(read_file(out / "metrics.json"));
  EXPECT_EQ(metrics["cv"]["folds"], 3);
  EXPECT_EQ(metrics["per_fold"].size(), 3u);
  EXPECT_EQ(metrics["pooled"]["levels"]["patient"]["vote_soft"]["n"], 9);
  EXPECT_EQ(metrics["across_folds"]["metrics"]["patient"]["vote_soft"]["auc"]["n"], 3);
  testing::expect_golden(out / "metrics.json", "cv_tiny_metrics.json", 1e-4);
  const std::string table = read_file(out / "table.md");
  EXPECT_NE(table.find("### Per fold"), std::string::npos) << table;
  EXPECT_NE(table.find("Mean ± SD across the 3 folds"), std::string::npos) << table;
  EXPECT_NE(read_file(out / "report.html").find("ROC per fold"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "plots/roc_folds_patient.png"));
}

TEST(CrossValidation, ResumedAfterAnInterruptionGivesTheSamePooledPredictions) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir dir;
  const fs::path out = dir / "cv";
  // Stops in fold 1's T1 model after 1 of its 2 iterations (checkpointed).
  auto r =
      run_cli("--quiet run --out " + q(out) + kCvOptions + " --checkpoint-every 1 --stop-after 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("continue with --resume"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "predictions.csv"));
  // Other options are refused, naming the option.
  r = run_cli("--quiet run --out " + q(out) +
              " --synth-lgg 4 --synth-hgg 5 --synth-size 64,64,40 --slices 3 --epochs 1 --batch 5 "
              "--freeze 3 --seed 5 --folds 2 --checkpoint-every 1 --resume");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("--folds was 3 when this run started, now 2"), std::string::npos)
      << r.output;
  r = run_cli("--quiet run --out " + q(out) + kCvOptions +
              " --checkpoint-every 1 --lr 0.001 --resume");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("--lr was"), std::string::npos) << r.output;
  r = run_cli("--quiet run --out " + q(out) + kCvOptions + " --checkpoint-every 1 --resume");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // --checkpoint-every changes no number, only when checkpoints are written.
  EXPECT_EQ(read_file(out / "predictions.csv"), read_file(tiny_cv() / "predictions.csv"));
}

TEST(CrossValidation, RepeatsReshuffleTheFoldsAndReportMeanAndSdOverRepeats) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir dir;
  const fs::path out = dir / "cv";
  const auto r = run_cli("--quiet run --out " + q(out) +
                         " --synth-lgg 4 --synth-hgg 5 --synth-size 64,64,40 --slices 2 "
                         "--epochs 1 --batch 5 --freeze 4 --seed 5 --folds 2 --repeats 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const CsvTable pred = read_csv(out / "predictions.csv");
  ASSERT_EQ(pred.rows.size(), 2u * 9 * 2) << "every slice once per repetition";
  std::map<std::pair<std::string, std::string>, std::set<std::string>> folds;  // (repeat, id)
  for (const auto& row : pred.rows)
    folds[{row[size_t(column(pred, "repeat"))], row[size_t(column(pred, "patient"))]}].insert(
        row[size_t(column(pred, "fold"))]);
  EXPECT_EQ(folds.size(), 18u);
  for (const auto& [key, f] : folds) EXPECT_EQ(f.size(), 1u) << key.first << " " << key.second;
  EXPECT_NE(read_file(out / "cv/r1/folds.csv"), read_file(out / "cv/r2/folds.csv"))
      << "repetition 2 deals the folds with another seed";
  const auto m = nlohmann::json::parse(read_file(out / "metrics.json"));
  EXPECT_EQ(m["pooled_by_repeat"].size(), 2u);
  EXPECT_EQ(m["per_fold"].size(), 4u);
  EXPECT_EQ(m["across_repeats"]["metrics"]["patient"]["vote_soft"]["auc"]["n"], 2);
  // The mean over repeats is the mean of the two pooled AUCs.
  const double a = m["pooled_by_repeat"][0]["metrics"]["patient"]["vote_soft"]["auc"];
  const double b = m["pooled_by_repeat"][1]["metrics"]["patient"]["vote_soft"]["auc"];
  EXPECT_NEAR(m["across_repeats"]["metrics"]["patient"]["vote_soft"]["auc"]["mean"].get<double>(),
              (a + b) / 2, 1e-12);
  EXPECT_NE(read_file(out / "table.md").find("across 2 repetitions"), std::string::npos);
}

TEST(CrossValidationBadInput, OneLineErrorsAndNothingWritten) {
  testing::TempDir dir;
  const fs::path out = dir / "cv";
  const std::string cohort = " --synth-lgg 4 --synth-hgg 5 --synth-size 64,64,40 --slices 3";
  struct Case {
    std::string args, message;
  } cases[] = {
      {cohort + " --folds 1", "--folds must be at least 2, got 1"},
      {cohort + " --folds 5",
       "--folds 5 is more than the 4 LGG patients (the cohort has 4 LGG, 5 HGG)"},
      {cohort + " --folds 3 --split image", "--folds makes patient-level folds"},
      {cohort + " --repeats 2", "--repeats repeats a cross-validation"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli("--quiet run --out " + q(out) + c.args);
    EXPECT_EQ(r.exit_code, 3) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_FALSE(fs::exists(out)) << "nothing written for " << c.args;
  }
  // A cohort of one grade.
  cli_testing::write_cohort(dir / "hgg_only", 0, 3);
  const auto r = run_cli("--quiet run " + q(dir / "hgg_only") + " --out " + q(out) + " --folds 2");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("the cohort has only HGG patients (3), no LGG"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(out));
  // Resuming where nothing was started.
  fs::create_directories(dir / "empty");
  const auto e = run_cli("--quiet run --out " + q(dir / "empty") + cohort + " --resume");
  EXPECT_EQ(e.exit_code, 3) << e.output;
  EXPECT_NE(e.output.find("nothing to resume here"), std::string::npos) << e.output;
}

}  // namespace
}  // namespace gg
