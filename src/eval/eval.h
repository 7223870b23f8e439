// eval: scoring the test set. Pure functions over value structs (no torch, no I/O except the
// named readers/writers): AUC with DeLong's variance and CI, paired DeLong tests, ROC points,
// calibration, confusion-matrix metrics, the two votes, patient-level aggregation, and the
// predictions CSV / metrics JSON / results table files.
//
// Conventions: label 1 = HGG (the positive class), 0 = LGG; every score is P(HGG) or a score that
// grows with it. Functions throw gg::Error (kBadInput) on inconsistent input (sizes differ, a
// label that is not 0/1, a non-finite score) naming what is wrong. Statistics that are undefined
// for the data (an AUC with no positives, a sensitivity with no positives, a variance from a
// single positive) are NaN, written as null in JSON and "n/a" in tables.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace gg::eval {

namespace fs = std::filesystem;

// One test item (a slice, or a patient after aggregate_by_patient) with its true label and each
// sequence model's P(HGG).
struct SlicePrediction {
  std::string patient;
  int z = 0;                  // axial slice index in the volume (-1 for a patient-level row)
  int rank = 0;               // position in the patient's slice window (-1 for a patient-level row)
  int label = 0;              // 1 = HGG, 0 = LGG
  std::array<double, 3> p{};  // P(HGG) from the T1, T2, FLAIR models
  // Cross-validation: which repetition and fold scored the item (-1 outside CV).
  int repeat = -1, fold = -1;
};

// The five scorers evaluated. Names (scorer_name): "T1", "T2", "FLAIR", "vote (hard majority)",
// "vote (soft mean)". kVoteHard is the paper's vote.
enum class Scorer { kT1, kT2, kFlair, kVoteHard, kVoteSoft };
inline constexpr std::array<Scorer, 5> kAllScorers = {Scorer::kT1, Scorer::kT2, Scorer::kFlair,
                                                      Scorer::kVoteHard, Scorer::kVoteSoft};
const char* scorer_name(Scorer);
const char* scorer_key(Scorer);  // JSON keys: "t1", "t2", "flair", "vote_hard", "vote_soft"

enum class Level { kSlice, kPatient };
const char* level_name(Level);  // "slice", "patient"

// One ROC operating point: predicting HGG when score >= threshold. The first point is (0, 0)
// with threshold +inf; the last is (1, 1) at the lowest score.
struct RocPoint {
  double fpr, tpr, threshold;
};

// AUC with DeLong's variance and a two-sided confidence interval at `level`.
struct AucCi {
  double auc = 0, variance = 0, lo = 0, hi = 0;
  double level = 0.95;
  // How lo/hi were computed (see delong_auc).
  const char* ci_method =
      "DeLong variance, normal approximation on the AUC scale, clipped to [0,1]";
};

// Mann-Whitney AUC (ties count 1/2) with the DeLong, DeLong & Clarke-Pearson (1988) variance,
// computed with the midrank algorithm of Sun & Xu (2014), O(N log N). The CI is
// auc ± z_{(1+level)/2}·sqrt(variance), clipped to [0, 1]; a perfectly separating scorer has
// variance 0 and so the CI [1, 1] (a known property of DeLong's estimate with small samples).
// auc is NaN without both classes; variance, lo, hi are NaN with fewer than 2 of either class.
AucCi delong_auc(const std::vector<int>& labels, const std::vector<double>& scores,
                 double level = 0.95);

// Paired DeLong test of two scorers on the same items (H0: equal AUC): z = (A - B) / sd(A - B)
// using DeLong's covariance, two-sided p from the normal distribution. p is uncorrected for
// multiple comparisons. When both AUCs are equal and the difference has zero variance (e.g.
// identical scorers), z = 0 and p = 1.
struct AucComparison {
  double auc_a = 0, auc_b = 0, z = 0, p = 1;
  // Set by evaluate() to say what was compared (delong_compare leaves the defaults).
  Level level = Level::kSlice;
  Scorer a = Scorer::kT1, b = Scorer::kT1;
};
AucComparison delong_compare(const std::vector<int>& labels, const std::vector<double>& a,
                             const std::vector<double>& b);

std::vector<RocPoint> roc_curve(const std::vector<int>& labels, const std::vector<double>& scores);

// Reliability: `bins` equal-width bins of the predicted probability on [0, 1] (p = 1 falls in
// the last bin). bin_confidence = mean p in the bin, bin_accuracy = fraction of HGG in the bin
// (both NaN for an empty bin). ece = sum over bins of (count / n)·|accuracy - confidence|;
// brier = mean (p - label)^2. Throws kBadInput for p outside [0, 1] or bins < 1.
struct Calibration {
  int bins = 10;
  double ece = 0, brier = 0;
  std::vector<double> bin_confidence, bin_accuracy;
  std::vector<int> bin_count;
};
Calibration calibration(const std::vector<int>& labels, const std::vector<double>& p,
                        int bins = 10);

// Confusion-matrix metrics (positive = HGG), AUC with CI, ROC points and calibration.
// sensitivity = tp/(tp+fn) (HGG recall), specificity = tn/(tn+fp), f1 = 2tp/(2tp+fp+fn); NaN when
// the denominator is 0.
struct BinaryMetrics {
  int n = 0, positives = 0, negatives = 0;
  AucCi auc;
  double accuracy = 0, sensitivity = 0, specificity = 0, f1 = 0;
  int tp = 0, fp = 0, tn = 0, fn = 0;
  std::vector<RocPoint> roc;
  Calibration calibration;
};
// Hard labels are score >= threshold unless `hard` is given (the hard vote's labels; same size
// as labels, values 0/1). Calibration is computed on `scores`, which must lie in [0, 1].
BinaryMetrics binary_metrics(const std::vector<int>& labels, const std::vector<double>& scores,
                             double threshold = 0.5, const std::vector<int>* hard = nullptr,
                             double level = 0.95);

// Votes over the three sequence models. Hard (the paper's): each model votes HGG when its
// p >= 0.5; HGG when at least 2 of 3 vote HGG (3 voters cannot tie). Its score for the AUC is the
// fraction of HGG votes (hard_vote_score: 0, 1/3, 2/3 or 1). Soft: mean of the three P(HGG),
// HGG when >= 0.5.
int hard_vote(const std::array<double, 3>& p);
double hard_vote_score(const std::array<double, 3>& p);
double soft_vote(const std::array<double, 3>& p);

// The score and hard label of a scorer for one item.
double scorer_score(Scorer, const SlicePrediction&);
int scorer_label(Scorer, const SlicePrediction&);

// Patient level: one row per patient (sorted by patient id), p = mean of the patient's slice
// probabilities per sequence, z = rank = -1. Throws kBadInput if a patient's slices disagree on
// the label.
std::vector<SlicePrediction> aggregate_by_patient(const std::vector<SlicePrediction>& slices);

// Everything `gliomagrade evaluate` reports, for both levels and all five scorers, plus the
// paired DeLong comparisons of every pair of scorers at each level.
struct Evaluation {
  std::string protocol;  // e.g. "patient-level split (no leakage)"
  double ci_level = 0.95;
  std::map<Level, std::map<Scorer, BinaryMetrics>> metrics;
  std::vector<AucComparison> comparisons;
};
// Throws kBadInput when test_slices is empty or invalid (probabilities outside [0, 1]).
Evaluation evaluate(const std::vector<SlicePrediction>& test_slices, const std::string& protocol,
                    double level = 0.95);

// Predictions CSV, written atomically, header
//   patient,z,rank,label,p_t1,p_t2,p_flair,p_vote_soft,vote_hard
// (numbers in shortest round-trip form; the last two columns are derived, for readers). When any
// row comes from cross-validation (fold >= 0) the header starts with repeat,fold.
void write_predictions_csv(const std::vector<SlicePrediction>&, const fs::path&);
// Reads that file (the two derived columns may be absent). Throws kBadInput naming the file and
// line for a wrong header, a wrong field count, an unparsable number, a label not 0/1 or a
// probability outside [0, 1].
std::vector<SlicePrediction> read_predictions_csv(const fs::path&);

// metrics.json (nlohmann::json, pretty-printed, atomic): protocol, CI level and method, then
// per level and scorer every BinaryMetrics field, the comparisons, and the paper's figures.
std::string metrics_json(const Evaluation&);
void write_metrics_json(const Evaluation&, const fs::path&);

// The paper's results table in Markdown: rows T1, T2, FLAIR, vote (hard majority), vote (soft
// mean); columns AUC (95% CI), accuracy, sensitivity, specificity; one table at patient level and
// one at slice level, the protocol in the title. The slice-level table also carries the paper's
// reported figures (AUC T1 0.9513, T2 0.9342, FLAIR 0.9614, vote 0.9950; accuracy 97.01, 97.01,
// 98.11, 99.00 %), labelled as the paper's.
std::string table_markdown(const Evaluation&);

// Cross-validation and audit statistics --------------------------------------------------------

// Mean and sample standard deviation (n - 1) of the finite values; NaN values (an AUC of a fold
// without both grades) are left out and not counted. mean is NaN when n = 0, sd when n < 2.
struct MeanSd {
  double mean = 0, sd = 0;
  int n = 0;
};
MeanSd mean_sd(const std::vector<double>& values);

// The metrics summarised across folds or repetitions, by name: "auc", "accuracy",
// "sensitivity", "specificity", "f1".
inline constexpr std::array<const char*, 5> kSummaryMetrics = {"auc", "accuracy", "sensitivity",
                                                               "specificity", "f1"};
double metric_value(const BinaryMetrics& m, const std::string& name);  // throws for other names
using MetricSummary = std::map<Level, std::map<Scorer, std::map<std::string, MeanSd>>>;
// mean_sd of each metric of each (level, scorer) over the evaluations (e.g. one per fold).
MetricSummary summarise(const std::vector<Evaluation>& evaluations);

// A proportion with its Wilson score interval at `level` (NaN value and bounds when n = 0).
struct Proportion {
  int successes = 0, n = 0;
  double value = 0, lo = 0, hi = 0;
};
Proportion wilson_interval(int successes, int n, double level = 0.95);

// One-sided test of H0: AUC = 0.5 against AUC > 0.5 with DeLong's variance: z = (auc - 0.5) /
// sqrt(variance), p = 1 - Phi(z). A perfect scorer (variance 0) gets z = +inf, p = 0; NaN when
// the AUC or its variance is undefined.
struct ChanceTest {
  double z = 0, p = 1;
};
ChanceTest auc_above_chance(const AucCi& auc);

// The paper's reported figures (slice level, image-level random split): AUC and accuracy in %.
struct PaperFigure {
  Scorer scorer;
  double auc, accuracy_percent;
};
inline constexpr std::array<PaperFigure, 4> kPaperFigures = {{{Scorer::kT1, 0.9513, 97.01},
                                                              {Scorer::kT2, 0.9342, 97.01},
                                                              {Scorer::kFlair, 0.9614, 98.11},
                                                              {Scorer::kVoteHard, 0.9950, 99.00}}};

}  // namespace gg::eval
