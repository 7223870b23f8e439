// Statistics across folds and protocols: mean ± SD, Wilson intervals, AUC against chance, and
// the predictions CSV of cross-validation.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/eval.h"
#include "testing/testing.h"

namespace gg::eval {
namespace {

TEST(MeanSd, AgainstHandComputedValues) {
  // 0.8, 0.9, 1.0: mean 0.9, sample SD sqrt(((-0.1)^2 + 0 + 0.1^2) / 2) = 0.1.
  const MeanSd m = mean_sd({0.8, 0.9, 1.0});
  EXPECT_NEAR(m.mean, 0.9, 1e-12);
  EXPECT_NEAR(m.sd, 0.1, 1e-12);
  EXPECT_EQ(m.n, 3);
  // NaN (a fold without both grades has no AUC) is left out, not counted as 0.
  const MeanSd with_nan = mean_sd({0.5, NAN, 0.7});
  EXPECT_NEAR(with_nan.mean, 0.6, 1e-12);
  EXPECT_NEAR(with_nan.sd, std::sqrt(0.02), 1e-12);
  EXPECT_EQ(with_nan.n, 2);
  EXPECT_TRUE(std::isnan(mean_sd({0.4}).sd));
  EXPECT_EQ(mean_sd({0.4}).mean, 0.4);
  EXPECT_TRUE(std::isnan(mean_sd({}).mean));
}

// Crafted evaluations: fold metrics set by hand, summarised over folds and then over repeats.
Evaluation crafted(double auc, double accuracy, double sensitivity) {
  Evaluation e;
  for (Level level : {Level::kSlice, Level::kPatient})
    for (Scorer s : kAllScorers) {
      BinaryMetrics m;
      m.auc.auc = auc + (level == Level::kSlice ? 0.01 : 0);
      m.accuracy = accuracy, m.sensitivity = sensitivity, m.specificity = 1 - sensitivity;
      m.f1 = 0.5;
      e.metrics[level][s] = m;
    }
  return e;
}

TEST(Summarise, MeanAndSdOfEachMetricOverFoldsAndRepeats) {
  const std::vector<Evaluation> folds = {crafted(0.70, 0.60, 0.9), crafted(0.80, 0.70, 0.8),
                                         crafted(0.90, 0.95, 0.7), crafted(0.60, 0.75, 0.6)};
  const MetricSummary s = summarise(folds);
  const auto& soft = s.at(Level::kPatient).at(Scorer::kVoteSoft);
  // AUC 0.7, 0.8, 0.9, 0.6: mean 0.75, SD sqrt((0.0025+0.0025+0.0225+0.0225)/3) = 0.129099...
  EXPECT_NEAR(soft.at("auc").mean, 0.75, 1e-12);
  EXPECT_NEAR(soft.at("auc").sd, std::sqrt(0.05 / 3), 1e-12);
  // Accuracy 0.60, 0.70, 0.95, 0.75: mean 0.75, SD sqrt((0.0225+0.0025+0.04+0)/3).
  EXPECT_NEAR(soft.at("accuracy").mean, 0.75, 1e-12);
  EXPECT_NEAR(soft.at("accuracy").sd, std::sqrt(0.065 / 3), 1e-12);
  EXPECT_NEAR(soft.at("specificity").mean, 1 - 0.75, 1e-12);
  EXPECT_NEAR(soft.at("f1").sd, 0.0, 1e-12);
  EXPECT_NEAR(s.at(Level::kSlice).at(Scorer::kT1).at("auc").mean, 0.76, 1e-12);
  EXPECT_EQ(soft.at("auc").n, 4);
  // Over two repeats' pooled figures (0.75 and 0.85): mean 0.8, SD sqrt(0.005) = 0.0707...
  const MetricSummary r = summarise({crafted(0.75, 0.7, 0.8), crafted(0.85, 0.8, 0.8)});
  EXPECT_NEAR(r.at(Level::kPatient).at(Scorer::kT2).at("auc").mean, 0.80, 1e-12);
  EXPECT_NEAR(r.at(Level::kPatient).at(Scorer::kT2).at("auc").sd, std::sqrt(0.005), 1e-12);
  EXPECT_TRUE(summarise({}).empty());
}

TEST(Wilson, MatchesTheFormula) {
  // 8 of 10 at 95%: the textbook interval 0.4902-0.9433.
  const Proportion p = wilson_interval(8, 10);
  EXPECT_NEAR(p.value, 0.8, 1e-12);
  EXPECT_NEAR(p.lo, 0.4902, 1e-4);
  EXPECT_NEAR(p.hi, 0.9433, 1e-4);
  const Proportion all = wilson_interval(5, 5);
  EXPECT_EQ(all.hi, 1.0);
  EXPECT_NEAR(all.lo, 0.5655, 1e-4);
  EXPECT_TRUE(std::isnan(wilson_interval(0, 0).value));
}

TEST(AucAboveChance, OneSidedDelongZ) {
  AucCi a;
  a.auc = 0.7, a.variance = 0.01;  // z = 0.2 / 0.1 = 2, p = 1 - Phi(2) = 0.02275
  const ChanceTest t = auc_above_chance(a);
  EXPECT_NEAR(t.z, 2.0, 1e-12);
  EXPECT_NEAR(t.p, 0.0227501, 1e-6);
  a.auc = 0.5;
  EXPECT_NEAR(auc_above_chance(a).p, 0.5, 1e-12);
  a.auc = 1.0, a.variance = 0;  // perfect separation
  EXPECT_EQ(auc_above_chance(a).p, 0.0);
  a.auc = NAN;
  EXPECT_TRUE(std::isnan(auc_above_chance(a).p));
}

TEST(PredictionsCsv, CrossValidationRowsKeepRepeatAndFold) {
  testing::TempDir dir;
  std::vector<SlicePrediction> rows(2);
  rows[0] = {"P1", 70, 0, 1, {0.9, 0.8, 0.7}, 1, 2};
  rows[1] = {"P2", 71, 1, 0, {0.1, 0.2, 0.3}, 2, 3};
  write_predictions_csv(rows, dir / "p.csv");
  const auto back = read_predictions_csv(dir / "p.csv");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].repeat, 1);
  EXPECT_EQ(back[0].fold, 2);
  EXPECT_EQ(back[1].fold, 3);
  EXPECT_EQ(back[1].p[2], 0.3);
  // Outside CV the file keeps its old header, and reads back with fold -1.
  rows[0].fold = rows[1].fold = -1;
  write_predictions_csv(rows, dir / "q.csv");
  EXPECT_EQ(read_predictions_csv(dir / "q.csv")[0].fold, -1);
}

}  // namespace
}  // namespace gg::eval
