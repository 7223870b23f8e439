// Statistics across folds, repetitions and protocols: mean ± SD, Wilson intervals, AUC against
// chance.
#include <cmath>
#include <limits>

#include "common/error.h"
#include "eval/eval.h"
#include "eval/internal.h"

namespace gg::eval {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

MeanSd mean_sd(const std::vector<double>& values) {
  MeanSd out;
  double sum = 0;
  for (double v : values)
    if (std::isfinite(v)) sum += v, ++out.n;
  out.mean = out.n > 0 ? sum / out.n : kNaN;
  if (out.n < 2) {
    out.sd = kNaN;
    return out;
  }
  double ss = 0;
  for (double v : values)
    if (std::isfinite(v)) ss += (v - out.mean) * (v - out.mean);
  out.sd = std::sqrt(ss / (out.n - 1));
  return out;
}

double metric_value(const BinaryMetrics& m, const std::string& name) {
  if (name == "auc") return m.auc.auc;
  if (name == "accuracy") return m.accuracy;
  if (name == "sensitivity") return m.sensitivity;
  if (name == "specificity") return m.specificity;
  if (name == "f1") return m.f1;
  throw_bad_input("", "unknown metric '" + name + "'",
                  "use auc, accuracy, sensitivity, specificity or f1");
}

MetricSummary summarise(const std::vector<Evaluation>& evaluations) {
  MetricSummary out;
  if (evaluations.empty()) return out;
  for (const auto& [level, by_scorer] : evaluations.front().metrics)
    for (const auto& entry : by_scorer) {
      const Scorer scorer = entry.first;
      for (const char* name : kSummaryMetrics) {
        std::vector<double> values;
        for (const Evaluation& e : evaluations) {
          const auto l = e.metrics.find(level);
          if (l == e.metrics.end()) continue;
          const auto m = l->second.find(scorer);
          if (m != l->second.end()) values.push_back(metric_value(m->second, name));
        }
        out[level][scorer][name] = mean_sd(values);
      }
    }
  return out;
}

Proportion wilson_interval(int successes, int n, double level) {
  Proportion p;
  p.successes = successes, p.n = n;
  if (n <= 0) {
    p.value = p.lo = p.hi = kNaN;
    return p;
  }
  const double z = detail::normal_quantile(0.5 + 0.5 * level);
  const double phat = double(successes) / n, z2n = z * z / n;
  const double centre = (phat + z2n / 2) / (1 + z2n);
  const double half = z * std::sqrt(phat * (1 - phat) / n + z2n / (4.0 * n)) / (1 + z2n);
  p.value = phat;
  p.lo = std::max(0.0, centre - half);
  p.hi = std::min(1.0, centre + half);
  return p;
}

ChanceTest auc_above_chance(const AucCi& a) {
  ChanceTest t;
  if (!std::isfinite(a.auc) || !std::isfinite(a.variance)) return {kNaN, kNaN};
  if (a.variance <= 0) {
    if (a.auc > 0.5) return {std::numeric_limits<double>::infinity(), 0.0};
    if (a.auc < 0.5) return {-std::numeric_limits<double>::infinity(), 1.0};
    return {0.0, 0.5};
  }
  t.z = (a.auc - 0.5) / std::sqrt(a.variance);
  t.p = 0.5 * std::erfc(t.z / std::sqrt(2.0));
  return t;
}

}  // namespace gg::eval
