// Votes, calibration, confusion-matrix metrics, patient aggregation and evaluate() on crafted
// inputs with hand-computed answers.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "eval/eval.h"

namespace gg::eval {
namespace {

TEST(HardVote, MajorityOfThreeLabels) {
  EXPECT_EQ(hard_vote({0.6, 0.4, 0.7}), 1);  // 2 of 3 HGG
  EXPECT_EQ(hard_vote({0.6, 0.4, 0.3}), 0);  // 1 of 3
  EXPECT_EQ(hard_vote({0.9, 0.8, 0.7}), 1);  // 3 of 3
  EXPECT_EQ(hard_vote({0.1, 0.2, 0.3}), 0);  // 0 of 3
  EXPECT_NEAR(hard_vote_score({0.6, 0.4, 0.7}), 2.0 / 3.0, 1e-15);
  EXPECT_EQ(hard_vote_score({0.1, 0.2, 0.3}), 0.0);
  EXPECT_EQ(hard_vote_score({0.9, 0.8, 0.7}), 1.0);
}

TEST(HardVote, ExactlyOneHalfVotesHgg) {
  EXPECT_EQ(hard_vote({0.5, 0.5, 0.0}), 1);
  EXPECT_EQ(hard_vote({0.49999999, 0.5, 0.1}), 0);
}

TEST(Votes, HardAndSoftCanDisagree) {
  // Two barely-HGG votes against a confident LGG: hard says HGG, soft mean 0.34 says LGG.
  EXPECT_EQ(hard_vote({0.51, 0.51, 0.0}), 1);
  EXPECT_NEAR(soft_vote({0.51, 0.51, 0.0}), 0.34, 1e-15);
  EXPECT_EQ(scorer_label(Scorer::kVoteSoft, {"p", 0, 0, 1, {0.51, 0.51, 0.0}}), 0);
  // Two mild LGG votes against a confident HGG: hard says LGG, soft mean 0.6333 says HGG.
  EXPECT_EQ(hard_vote({0.45, 0.45, 1.0}), 0);
  EXPECT_EQ(scorer_label(Scorer::kVoteSoft, {"p", 0, 0, 1, {0.45, 0.45, 1.0}}), 1);
  // Soft vote exactly 0.5 is HGG.
  EXPECT_EQ(scorer_label(Scorer::kVoteSoft, {"p", 0, 0, 1, {0.5, 0.25, 0.75}}), 1);
}

TEST(ScorerNames, AreThePapersNames) {
  EXPECT_STREQ(scorer_name(Scorer::kT1), "T1");
  EXPECT_STREQ(scorer_name(Scorer::kFlair), "FLAIR");
  EXPECT_STREQ(scorer_name(Scorer::kVoteHard), "vote (hard majority)");
  EXPECT_STREQ(scorer_name(Scorer::kVoteSoft), "vote (soft mean)");
}

TEST(Calibration, CraftedBins) {
  // p (label): 0.95 (1) -> bin 9; 0.15 (0) -> bin 1; 0.55 (1), 0.5 (1) -> bin 5.
  // bin 1: conf 0.15, acc 0; bin 5: conf 0.525, acc 1; bin 9: conf 0.95, acc 1.
  // ECE = 1/4*0.15 + 2/4*0.475 + 1/4*0.05 = 0.2875
  // Brier = (0.05^2 + 0.15^2 + 0.45^2 + 0.5^2)/4 = 0.4775/4 = 0.119375
  const Calibration c = calibration({1, 0, 1, 1}, {0.95, 0.15, 0.55, 0.5});
  EXPECT_EQ(c.bins, 10);
  EXPECT_NEAR(c.ece, 0.2875, 1e-15);
  EXPECT_NEAR(c.brier, 0.119375, 1e-15);
  EXPECT_EQ(c.bin_count, (std::vector<int>{0, 1, 0, 0, 0, 2, 0, 0, 0, 1}));
  EXPECT_NEAR(c.bin_confidence[5], 0.525, 1e-15);
  EXPECT_EQ(c.bin_accuracy[5], 1.0);
  EXPECT_EQ(c.bin_accuracy[1], 0.0);
  EXPECT_TRUE(std::isnan(c.bin_confidence[0]));  // empty bin
}

TEST(Calibration, OneFallsInTheLastBinAndPerfectIsZero) {
  const Calibration c = calibration({1, 0}, {1.0, 0.0}, 4);
  EXPECT_EQ(c.bin_count, (std::vector<int>{1, 0, 0, 1}));
  EXPECT_EQ(c.ece, 0.0);
  EXPECT_EQ(c.brier, 0.0);
  EXPECT_THROW(calibration({1}, {1.2}), gg::Error);
  EXPECT_THROW(calibration({1}, {0.2}, 0), gg::Error);
}

TEST(BinaryMetrics, ConfusionFromThreshold) {
  // labels 1,1,1,0,0; scores 0.9,0.4,0.7,0.6,0.1 at 0.5: tp 2 (0.9, 0.7), fn 1 (0.4), fp 1 (0.6),
  // tn 1 (0.1). accuracy 3/5, sensitivity 2/3, specificity 1/2, F1 = 4/(4+1+1) = 2/3.
  const BinaryMetrics m = binary_metrics({1, 1, 1, 0, 0}, {0.9, 0.4, 0.7, 0.6, 0.1});
  EXPECT_EQ(m.n, 5);
  EXPECT_EQ(m.positives, 3);
  EXPECT_EQ(m.negatives, 2);
  EXPECT_EQ(m.tp, 2);
  EXPECT_EQ(m.fn, 1);
  EXPECT_EQ(m.fp, 1);
  EXPECT_EQ(m.tn, 1);
  EXPECT_NEAR(m.accuracy, 0.6, 1e-15);
  EXPECT_NEAR(m.sensitivity, 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(m.specificity, 0.5, 1e-15);
  EXPECT_NEAR(m.f1, 2.0 / 3.0, 1e-15);
  // AUC: positive 0.9 beats both, 0.7 beats both, 0.4 beats 0.1 only -> 5/6.
  EXPECT_NEAR(m.auc.auc, 5.0 / 6.0, 1e-15);
  EXPECT_EQ(m.roc.size(), 6u);
  EXPECT_EQ(m.calibration.bins, 10);
}

TEST(BinaryMetrics, GivenHardLabelsOverrideTheThreshold) {
  const std::vector<int> hard = {1, 1, 1, 1, 0};
  const BinaryMetrics m = binary_metrics({1, 1, 1, 0, 0}, {0.9, 0.4, 0.7, 0.6, 0.1}, 0.5, &hard);
  EXPECT_EQ(m.tp, 3);
  EXPECT_EQ(m.fn, 0);
  EXPECT_EQ(m.fp, 1);
  EXPECT_EQ(m.tn, 1);
  EXPECT_TRUE(std::isnan(binary_metrics({1, 1}, {0.9, 0.2}).specificity));  // no LGG
}

TEST(AggregateByPatient, MeanPerSequenceSortedById) {
  const std::vector<SlicePrediction> slices = {
      {"B", 10, 0, 0, {0.2, 0.4, 0.6}}, {"A", 50, 0, 1, {0.9, 0.5, 0.7}},
      {"B", 11, 1, 0, {0.4, 0.0, 0.2}}, {"A", 51, 1, 1, {0.7, 0.7, 0.9}},
      {"A", 52, 2, 1, {0.8, 0.3, 0.8}},
  };
  const std::vector<SlicePrediction> patients = aggregate_by_patient(slices);
  ASSERT_EQ(patients.size(), 2u);
  EXPECT_EQ(patients[0].patient, "A");
  EXPECT_EQ(patients[0].label, 1);
  EXPECT_EQ(patients[0].z, -1);
  EXPECT_NEAR(patients[0].p[0], 0.8, 1e-15);
  EXPECT_NEAR(patients[0].p[1], 0.5, 1e-15);
  EXPECT_NEAR(patients[0].p[2], 0.8, 1e-15);
  EXPECT_EQ(patients[1].patient, "B");
  EXPECT_NEAR(patients[1].p[0], 0.3, 1e-15);
  EXPECT_NEAR(patients[1].p[1], 0.2, 1e-15);
  EXPECT_NEAR(patients[1].p[2], 0.4, 1e-15);
}

TEST(AggregateByPatient, ConflictingLabelsThrow) {
  try {
    aggregate_by_patient({{"P7", 1, 0, 1, {}}, {"P7", 2, 1, 0, {}}});
    FAIL() << "expected gg::Error";
  } catch (const gg::Error& e) {
    EXPECT_NE(e.problem().find("P7"), std::string::npos);
  }
}

std::vector<SlicePrediction> small_test_set() {
  // 4 patients x 2 slices: two HGG, two LGG. FLAIR is perfect, T1 weak, T2 wrong on one LGG.
  return {
      {"H1", 0, 0, 1, {0.7, 0.8, 0.9}}, {"H1", 1, 1, 1, {0.4, 0.7, 0.8}},
      {"H2", 0, 0, 1, {0.6, 0.6, 0.7}}, {"H2", 1, 1, 1, {0.3, 0.9, 0.6}},
      {"L1", 0, 0, 0, {0.6, 0.7, 0.2}}, {"L1", 1, 1, 0, {0.5, 0.8, 0.1}},
      {"L2", 0, 0, 0, {0.2, 0.1, 0.3}}, {"L2", 1, 1, 0, {0.1, 0.2, 0.4}},
  };
}

TEST(Evaluate, BothLevelsAllScorersAllPairs) {
  const Evaluation e = evaluate(small_test_set(), "patient-level split (no leakage)");
  EXPECT_EQ(e.protocol, "patient-level split (no leakage)");
  ASSERT_EQ(e.metrics.size(), 2u);
  const auto& slice = e.metrics.at(Level::kSlice);
  const auto& patient = e.metrics.at(Level::kPatient);
  EXPECT_EQ(slice.size(), 5u);
  EXPECT_EQ(slice.at(Scorer::kT1).n, 8);
  EXPECT_EQ(patient.at(Scorer::kT1).n, 4);
  EXPECT_EQ(slice.at(Scorer::kFlair).auc.auc, 1.0);
  EXPECT_EQ(slice.at(Scorer::kFlair).accuracy, 1.0);
  // Hard vote per slice: H1 {1,1,1},{0,1,1} HGG; H2 {1,1,1},{0,1,1} HGG; L1 {1,1,0},{1,1,0} HGG
  // (wrong); L2 all LGG -> 6 of 8 correct.
  EXPECT_EQ(slice.at(Scorer::kVoteHard).accuracy, 0.75);
  EXPECT_EQ(slice.at(Scorer::kVoteHard).fp, 2);
  // Patient T1 means: H1 0.55, H2 0.45, L1 0.55, L2 0.15 -> AUC: H1 beats L2, ties L1 (1/2);
  // H2 beats L2, loses to L1 -> (1 + 0.5 + 1 + 0) / 4 = 0.625.
  EXPECT_NEAR(patient.at(Scorer::kT1).auc.auc, 0.625, 1e-15);
  EXPECT_EQ(e.comparisons.size(), 20u);  // 10 pairs x 2 levels
  EXPECT_EQ(e.comparisons[0].level, Level::kPatient);
  EXPECT_EQ(e.comparisons[0].a, Scorer::kT1);
  EXPECT_EQ(e.comparisons[0].b, Scorer::kT2);
}

TEST(Evaluate, RejectsEmptyAndInvalid) {
  EXPECT_THROW(evaluate({}, "x"), gg::Error);
  EXPECT_THROW(evaluate({{"A", 0, 0, 1, {0.5, 1.5, 0.5}}}, "x"), gg::Error);
  EXPECT_THROW(evaluate({{"A", 0, 0, 2, {0.5, 0.5, 0.5}}}, "x"), gg::Error);
}

}  // namespace
}  // namespace gg::eval
