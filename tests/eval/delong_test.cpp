// AUC, DeLong variance / CI / paired test and ROC points against hand-computed cases and a
// brute-force O(m·n) implementation of DeLong (1988) written straight from the paper.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/error.h"
#include "eval/eval.h"

namespace gg::eval {
namespace {

// Hand case A: 3 HGG (label 1) with scores X = {0.9, 0.6, 0.4}, 3 LGG with Y = {0.6, 0.3, 0.1};
// one tie (0.6 vs 0.6). psi(x, y) = 1 if x > y, 1/2 if equal, 0 otherwise.
//   V10 (per positive, mean over negatives): 0.9 -> 3/3 = 1; 0.6 -> (1/2+1+1)/3 = 5/6; 0.4 -> 2/3
//   V01 (per negative, mean over positives): 0.6 -> (1+1/2+0)/3 = 1/2; 0.3 -> 1; 0.1 -> 1
//   AUC = mean V10 = (1 + 5/6 + 2/3)/3 = 5/6 (= mean V01 = 5/6).
//   S10 = [(1/6)^2 + 0 + (1/6)^2] / 2 = 1/36;  S01 = [(1/3)^2 + (1/6)^2 + (1/6)^2] / 2 = 1/12
//   Var = S10/3 + S01/3 = (1/36 + 3/36)/3 = 1/27 = 0.037037...
//   95% CI: 5/6 -+ 1.959963984540054 * sqrt(1/27) = 0.4561380886412762 .. 1.2105 -> clipped to 1.
const std::vector<int> kLabels = {1, 1, 1, 0, 0, 0};
const std::vector<double> kScoresA = {0.9, 0.6, 0.4, 0.6, 0.3, 0.1};
// Hand case B, same items: X = {0.8, 0.3, 0.7}, Y = {0.2, 0.5, 0.6}.
//   V10 = {1, 1/3, 1}, V01 = {1, 2/3, 2/3}, AUC = 7/9.
//   S10_bb = [(2/9)^2 + (4/9)^2 + (2/9)^2]/2 = 4/27;  S01_bb = [(2/9)^2 + 2(1/9)^2]/2 = 1/27
//   Cross terms with A: S10_ab = [(1/6)(2/9) + 0 + (-1/6)(2/9)]/2 = 0
//                       S01_ab = [(-1/3)(2/9) + 2(1/6)(-1/9)]/2 = -1/18
//   Var(A - B) = (1/36 + 4/27 - 0)/3 + (1/12 + 1/27 + 1/9)/3 = (19/108 + 25/108)/3 = 11/81
//   z = (5/6 - 7/9) / sqrt(11/81) = 1/(2 sqrt 11) = 0.15075567228888181; p = 0.8801684549067255
const std::vector<double> kScoresB = {0.8, 0.3, 0.7, 0.2, 0.5, 0.6};

TEST(DelongAuc, HandComputedCaseWithTie) {
  const AucCi a = delong_auc(kLabels, kScoresA);
  EXPECT_NEAR(a.auc, 5.0 / 6.0, 1e-15);
  EXPECT_NEAR(a.variance, 1.0 / 27.0, 1e-15);
  EXPECT_NEAR(a.lo, 0.4561380886412762, 1e-12);
  EXPECT_EQ(a.hi, 1.0);  // clipped
  EXPECT_EQ(a.level, 0.95);
}

TEST(DelongAuc, PublishedExample) {
  // The example in the `pauc` Python package's notebook (roc_auc_ci_score, DeLong): it prints
  // "AUC: 0.708, 95% CI: (0.378, 1.000)". By hand: V10 = {3/6, 5/6, 5.5/6, 5/6, 4/6, 3/6},
  // AUC = 25.5/36 = 0.70833; S10 = 0.0326389, S01 = 0.1381944, variance = (S10 + S01)/6.
  const AucCi a = delong_auc({0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1},
                             {0.1, 0.35, 0.24, 0.8, 0.2, 0.85, 0.13, 0.85, 0.74, 0.58, 0.71, 0.25});
  EXPECT_NEAR(a.auc, 0.708, 5e-4);
  EXPECT_NEAR(a.lo, 0.378, 5e-4);
  EXPECT_EQ(a.hi, 1.0);
  EXPECT_NEAR(a.variance, 0.02847222222222222, 1e-15);
}

TEST(DelongAuc, LevelChangesTheQuantile) {
  // 90%: z = 1.6448536269514715; 5/6 - 1.6448536269514715 * sqrt(1/27) = 0.51678...
  const AucCi a = delong_auc(kLabels, kScoresA, 0.90);
  EXPECT_NEAR(a.lo, 5.0 / 6.0 - 1.6448536269514715 * std::sqrt(1.0 / 27.0), 1e-12);
}

TEST(DelongAuc, OrderOfItemsDoesNotMatter) {
  const AucCi a = delong_auc({0, 1, 0, 1, 0, 1}, {0.6, 0.9, 0.3, 0.6, 0.1, 0.4});
  EXPECT_NEAR(a.auc, 5.0 / 6.0, 1e-15);
  EXPECT_NEAR(a.variance, 1.0 / 27.0, 1e-15);
}

TEST(DelongAuc, PerfectSeparationHasZeroVariance) {
  const AucCi a = delong_auc({1, 1, 0, 0}, {0.9, 0.8, 0.2, 0.1});
  EXPECT_EQ(a.auc, 1.0);
  EXPECT_EQ(a.variance, 0.0);
  EXPECT_EQ(a.lo, 1.0);
  EXPECT_EQ(a.hi, 1.0);
}

TEST(DelongAuc, AllTiedIsOneHalf) {
  // Every pair ties: every V10 = V01 = 1/2, so the variance is 0.
  const AucCi a = delong_auc({1, 0, 1, 0}, {0.5, 0.5, 0.5, 0.5});
  EXPECT_EQ(a.auc, 0.5);
  EXPECT_EQ(a.variance, 0.0);
}

TEST(DelongAuc, UndefinedWithoutBothClassesOrWithOneOfAClass) {
  const AucCi none = delong_auc({1, 1, 1}, {0.1, 0.2, 0.3});
  EXPECT_TRUE(std::isnan(none.auc));
  EXPECT_TRUE(std::isnan(none.lo));
  // One negative: AUC defined (2 of 3 positives above it -> 2/3), variance needs >= 2 per class.
  const AucCi one = delong_auc({1, 1, 1, 0}, {0.1, 0.6, 0.7, 0.5});
  EXPECT_NEAR(one.auc, 2.0 / 3.0, 1e-15);
  EXPECT_TRUE(std::isnan(one.variance));
  EXPECT_TRUE(std::isnan(one.hi));
}

TEST(DelongAuc, RejectsBadInput) {
  EXPECT_THROW(delong_auc({1, 0}, {0.5}), gg::Error);
  EXPECT_THROW(delong_auc({1, 2}, {0.5, 0.4}), gg::Error);
  EXPECT_THROW(delong_auc({1, 0}, {0.5, std::nan("")}), gg::Error);
  EXPECT_THROW(delong_auc({1, 0}, {0.5, 0.4}, 1.0), gg::Error);
}

TEST(DelongCompare, HandComputedPair) {
  const AucComparison c = delong_compare(kLabels, kScoresA, kScoresB);
  EXPECT_NEAR(c.auc_a, 5.0 / 6.0, 1e-15);
  EXPECT_NEAR(c.auc_b, 7.0 / 9.0, 1e-15);
  EXPECT_NEAR(c.z, 0.15075567228888181, 1e-12);
  EXPECT_NEAR(c.p, 0.8801684549067255, 1e-12);
  // Swapping the scorers flips z, keeps p.
  const AucComparison d = delong_compare(kLabels, kScoresB, kScoresA);
  EXPECT_NEAR(d.z, -0.15075567228888181, 1e-12);
  EXPECT_NEAR(d.p, c.p, 1e-15);
}

TEST(DelongCompare, IdenticalScorersAreNotDifferent) {
  const AucComparison c = delong_compare(kLabels, kScoresA, kScoresA);
  EXPECT_EQ(c.z, 0.0);
  EXPECT_EQ(c.p, 1.0);
}

// Brute force, straight from DeLong et al. (1988): psi over all positive/negative pairs.
struct BruteForce {
  double auc_a, auc_b, var_a, var_b, cov;
};
BruteForce brute_force(const std::vector<int>& labels, const std::vector<double>& a,
                       const std::vector<double>& b) {
  std::vector<size_t> pos, neg;
  for (size_t i = 0; i < labels.size(); ++i) (labels[i] ? pos : neg).push_back(i);
  const double m = pos.size(), n = neg.size();
  auto psi = [](double x, double y) { return x > y ? 1.0 : x == y ? 0.5 : 0.0; };
  std::vector<double> v10a(pos.size()), v10b(pos.size()), v01a(neg.size()), v01b(neg.size());
  for (size_t i = 0; i < pos.size(); ++i)
    for (size_t j = 0; j < neg.size(); ++j) {
      v10a[i] += psi(a[pos[i]], a[neg[j]]) / n;
      v10b[i] += psi(b[pos[i]], b[neg[j]]) / n;
      v01a[j] += psi(a[pos[i]], a[neg[j]]) / m;
      v01b[j] += psi(b[pos[i]], b[neg[j]]) / m;
    }
  BruteForce r{};
  for (double v : v10a) r.auc_a += v / m;
  for (double v : v10b) r.auc_b += v / m;
  auto s = [](const std::vector<double>& x, double mx, const std::vector<double>& y, double my) {
    double t = 0;
    for (size_t k = 0; k < x.size(); ++k) t += (x[k] - mx) * (y[k] - my);
    return t / (x.size() - 1);
  };
  r.var_a = s(v10a, r.auc_a, v10a, r.auc_a) / m + s(v01a, r.auc_a, v01a, r.auc_a) / n;
  r.var_b = s(v10b, r.auc_b, v10b, r.auc_b) / m + s(v01b, r.auc_b, v01b, r.auc_b) / n;
  r.cov = s(v10a, r.auc_a, v10b, r.auc_b) / m + s(v01a, r.auc_a, v01b, r.auc_b) / n;
  return r;
}

TEST(DelongAuc, MatchesBruteForceOnRandomDataWithTies) {
  std::mt19937_64 rng(20240607);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 30 + trial * 7;
    std::vector<int> labels(n);
    std::vector<double> a(n), b(n);
    std::bernoulli_distribution hgg(0.7);
    std::normal_distribution<double> noise(0, 1);
    for (int i = 0; i < n; ++i) {
      labels[i] = i < 2 ? i : hgg(rng);  // both classes present
      // Rounded to 1 decimal so that ties are frequent; b correlates with a.
      const double signal = labels[i] + noise(rng);
      a[i] = std::round(signal * 10) / 10;
      b[i] = std::round((0.6 * signal + 0.8 * noise(rng)) * 10) / 10;
    }
    const BruteForce bf = brute_force(labels, a, b);
    const AucCi fa = delong_auc(labels, a);
    EXPECT_NEAR(fa.auc, bf.auc_a, 1e-12) << "trial " << trial;
    EXPECT_NEAR(fa.variance, bf.var_a, 1e-12) << "trial " << trial;
    const AucComparison c = delong_compare(labels, a, b);
    const double z = (bf.auc_a - bf.auc_b) / std::sqrt(bf.var_a + bf.var_b - 2 * bf.cov);
    EXPECT_NEAR(c.z, z, 1e-9) << "trial " << trial;
  }
}

TEST(RocCurve, StepsThroughDistinctThresholds) {
  // Scores (label): 0.9(1) 0.6(1) 0.6(0) 0.4(1) 0.3(0) 0.1(0). Thresholds descending:
  // inf (0,0); 0.9 (0, 1/3); 0.6 (1/3, 2/3) -- the tie moves both at once; 0.4 (1/3, 1);
  // 0.3 (2/3, 1); 0.1 (1, 1).
  const std::vector<RocPoint> roc = roc_curve(kLabels, kScoresA);
  ASSERT_EQ(roc.size(), 6u);
  EXPECT_TRUE(std::isinf(roc[0].threshold));
  const double expected[6][3] = {{0, 0, 0},        {0, 1. / 3, 0.9}, {1. / 3, 2. / 3, 0.6},
                                 {1. / 3, 1, 0.4}, {2. / 3, 1, 0.3}, {1, 1, 0.1}};
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(roc[i].fpr, expected[i][0], 1e-15) << i;
    EXPECT_NEAR(roc[i].tpr, expected[i][1], 1e-15) << i;
    if (i > 0) {
      EXPECT_EQ(roc[i].threshold, expected[i][2]) << i;
    }
  }
  // Trapezoid area under these points equals the Mann-Whitney AUC (ties give the diagonal step).
  double area = 0;
  for (size_t i = 1; i < roc.size(); ++i)
    area += (roc[i].fpr - roc[i - 1].fpr) * (roc[i].tpr + roc[i - 1].tpr) / 2;
  EXPECT_NEAR(area, 5.0 / 6.0, 1e-15);
}

}  // namespace
}  // namespace gg::eval
