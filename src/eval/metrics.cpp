// Calibration, confusion-matrix metrics, votes, patient aggregation and the full evaluation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "common/error.h"
#include "eval/eval.h"
#include "eval/internal.h"

namespace gg::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(int num, int den) { return den > 0 ? static_cast<double>(num) / den : kNaN; }

void check_probability(double p, const std::string& where) {
  if (!(p >= 0 && p <= 1))  // also rejects NaN
    throw_bad_input("", where + ": probability " + std::to_string(p) + " is not in [0, 1]",
                    "pass P(HGG) from the model's softmax");
}

}  // namespace

const char* scorer_name(Scorer s) {
  switch (s) {
    case Scorer::kT1:
      return "T1";
    case Scorer::kT2:
      return "T2";
    case Scorer::kFlair:
      return "FLAIR";
    case Scorer::kVoteHard:
      return "vote (hard majority)";
    case Scorer::kVoteSoft:
      return "vote (soft mean)";
  }
  return "?";
}

const char* scorer_key(Scorer s) {
  switch (s) {
    case Scorer::kT1:
      return "t1";
    case Scorer::kT2:
      return "t2";
    case Scorer::kFlair:
      return "flair";
    case Scorer::kVoteHard:
      return "vote_hard";
    case Scorer::kVoteSoft:
      return "vote_soft";
  }
  return "?";
}

const char* level_name(Level l) { return l == Level::kSlice ? "slice" : "patient"; }

Calibration calibration(const std::vector<int>& labels, const std::vector<double>& p, int bins) {
  detail::check_labels_scores(labels, p, "calibration");
  if (bins < 1)
    throw_bad_input("", "calibration needs at least 1 bin, got " + std::to_string(bins));
  Calibration c;
  c.bins = bins;
  std::vector<double> sum_p(bins, 0.0);
  std::vector<int> sum_pos(bins, 0);
  c.bin_count.assign(bins, 0);
  double brier = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    check_probability(p[i], "calibration item " + std::to_string(i));
    const int b = std::min(bins - 1, static_cast<int>(p[i] * bins));
    sum_p[b] += p[i];
    sum_pos[b] += labels[i];
    ++c.bin_count[b];
    brier += (p[i] - labels[i]) * (p[i] - labels[i]);
  }
  const double n = static_cast<double>(p.size());
  c.brier = p.empty() ? kNaN : brier / n;
  c.ece = p.empty() ? kNaN : 0.0;
  for (int b = 0; b < bins; ++b) {
    const int k = c.bin_count[b];
    c.bin_confidence.push_back(k > 0 ? sum_p[b] / k : kNaN);
    c.bin_accuracy.push_back(ratio(sum_pos[b], k));
    if (k > 0) c.ece += k / n * std::fabs(c.bin_accuracy[b] - c.bin_confidence[b]);
  }
  return c;
}

BinaryMetrics binary_metrics(const std::vector<int>& labels, const std::vector<double>& scores,
                             double threshold, const std::vector<int>* hard, double level) {
  detail::check_labels_scores(labels, scores, "metrics");
  if (hard && hard->size() != labels.size())
    throw_bad_input("", "metrics: " + std::to_string(hard->size()) + " hard labels for " +
                            std::to_string(labels.size()) + " items");
  BinaryMetrics m;
  m.n = static_cast<int>(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const int predicted = hard ? (*hard)[i] : (scores[i] >= threshold ? 1 : 0);
    if (predicted != 0 && predicted != 1)
      throw_bad_input("", "metrics: hard label " + std::to_string(predicted) + " is not 0 or 1");
    if (labels[i] == 1)
      (predicted ? m.tp : m.fn)++;
    else
      (predicted ? m.fp : m.tn)++;
  }
  m.positives = m.tp + m.fn;
  m.negatives = m.tn + m.fp;
  m.accuracy = ratio(m.tp + m.tn, m.n);
  m.sensitivity = ratio(m.tp, m.tp + m.fn);
  m.specificity = ratio(m.tn, m.tn + m.fp);
  m.f1 = ratio(2 * m.tp, 2 * m.tp + m.fp + m.fn);
  m.auc = delong_auc(labels, scores, level);
  m.roc = roc_curve(labels, scores);
  m.calibration = calibration(labels, scores);
  return m;
}

int hard_vote(const std::array<double, 3>& p) {
  const int votes = (p[0] >= 0.5) + (p[1] >= 0.5) + (p[2] >= 0.5);
  return votes >= 2 ? 1 : 0;
}

double hard_vote_score(const std::array<double, 3>& p) {
  return ((p[0] >= 0.5) + (p[1] >= 0.5) + (p[2] >= 0.5)) / 3.0;
}

double soft_vote(const std::array<double, 3>& p) { return (p[0] + p[1] + p[2]) / 3.0; }

double scorer_score(Scorer s, const SlicePrediction& x) {
  switch (s) {
    case Scorer::kT1:
      return x.p[0];
    case Scorer::kT2:
      return x.p[1];
    case Scorer::kFlair:
      return x.p[2];
    case Scorer::kVoteHard:
      return hard_vote_score(x.p);
    case Scorer::kVoteSoft:
      return soft_vote(x.p);
  }
  return kNaN;
}

int scorer_label(Scorer s, const SlicePrediction& x) {
  return s == Scorer::kVoteHard ? hard_vote(x.p) : (scorer_score(s, x) >= 0.5 ? 1 : 0);
}

std::vector<SlicePrediction> aggregate_by_patient(const std::vector<SlicePrediction>& slices) {
  struct Sum {
    int label = 0, count = 0;
    std::array<double, 3> p{};
  };
  std::map<std::string, Sum> by_patient;  // sorted by id: a canonical order
  for (const SlicePrediction& s : slices) {
    auto [it, inserted] = by_patient.try_emplace(s.patient);
    Sum& sum = it->second;
    if (inserted) sum.label = s.label;
    if (sum.label != s.label)
      throw_bad_input("",
                      "patient '" + s.patient + "' has slices labelled both " +
                          std::to_string(sum.label) + " and " + std::to_string(s.label),
                      "a patient has one grade: check the predictions' labels");
    for (int k = 0; k < 3; ++k) sum.p[k] += s.p[k];
    ++sum.count;
  }
  std::vector<SlicePrediction> out;
  out.reserve(by_patient.size());
  for (const auto& [patient, sum] : by_patient) {
    SlicePrediction row{patient, -1, -1, sum.label, {}};
    for (int k = 0; k < 3; ++k) row.p[k] = sum.p[k] / sum.count;
    out.push_back(row);
  }
  return out;
}

namespace {

std::map<Scorer, BinaryMetrics> evaluate_level(const std::vector<SlicePrediction>& items,
                                               double level) {
  std::vector<int> labels;
  for (const SlicePrediction& x : items) labels.push_back(x.label);
  std::map<Scorer, BinaryMetrics> out;
  for (Scorer s : kAllScorers) {
    std::vector<double> scores;
    std::vector<int> hard;
    for (const SlicePrediction& x : items) {
      scores.push_back(scorer_score(s, x));
      hard.push_back(scorer_label(s, x));
    }
    out[s] = binary_metrics(labels, scores, 0.5, &hard, level);
  }
  return out;
}

void compare_all_pairs(const std::vector<SlicePrediction>& items, Level lvl,
                       std::vector<AucComparison>& out) {
  std::vector<int> labels;
  for (const SlicePrediction& x : items) labels.push_back(x.label);
  for (size_t i = 0; i < kAllScorers.size(); ++i) {
    for (size_t j = i + 1; j < kAllScorers.size(); ++j) {
      std::vector<double> a, b;
      for (const SlicePrediction& x : items) {
        a.push_back(scorer_score(kAllScorers[i], x));
        b.push_back(scorer_score(kAllScorers[j], x));
      }
      AucComparison c = delong_compare(labels, a, b);
      c.level = lvl;
      c.a = kAllScorers[i];
      c.b = kAllScorers[j];
      out.push_back(c);
    }
  }
}

}  // namespace

Evaluation evaluate(const std::vector<SlicePrediction>& test_slices, const std::string& protocol,
                    double level) {
  if (test_slices.empty())
    throw_bad_input("", "no test predictions to evaluate", "check the split has a test part");
  for (const SlicePrediction& s : test_slices) {
    if (s.label != 0 && s.label != 1)
      throw_bad_input("", "patient '" + s.patient + "' slice z=" + std::to_string(s.z) +
                              ": label " + std::to_string(s.label) + " is not 0 (LGG) or 1 (HGG)");
    for (int k = 0; k < 3; ++k)
      check_probability(s.p[k], "patient '" + s.patient + "' slice z=" + std::to_string(s.z));
  }
  Evaluation e;
  e.protocol = protocol;
  e.ci_level = level;
  const std::vector<SlicePrediction> patients = aggregate_by_patient(test_slices);
  e.metrics[Level::kSlice] = evaluate_level(test_slices, level);
  e.metrics[Level::kPatient] = evaluate_level(patients, level);
  compare_all_pairs(patients, Level::kPatient, e.comparisons);
  compare_all_pairs(test_slices, Level::kSlice, e.comparisons);
  return e;
}

}  // namespace gg::eval
