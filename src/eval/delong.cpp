// AUC, DeLong variance and paired test, ROC points.
//
// DeLong, DeLong & Clarke-Pearson, "Comparing the areas under two or more correlated receiver
// operating characteristic curves: a nonparametric approach", Biometrics 44:837-845 (1988).
// Sun & Xu, "Fast implementation of DeLong's algorithm for comparing the areas under correlated
// receiver operating characteristic curves", IEEE Signal Processing Letters 21:1389-1393 (2014).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "common/error.h"
#include "eval/eval.h"
#include "eval/internal.h"

namespace gg::eval {

namespace detail {

void check_labels_scores(const std::vector<int>& labels, const std::vector<double>& scores,
                         const char* what) {
  if (labels.size() != scores.size())
    throw_bad_input("",
                    std::string(what) + ": " + std::to_string(labels.size()) + " labels but " +
                        std::to_string(scores.size()) + " scores",
                    "pass one score per labelled item");
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1)
      throw_bad_input("", std::string(what) + ": label " + std::to_string(labels[i]) + " at item " +
                              std::to_string(i) + " is not 0 (LGG) or 1 (HGG)");
    if (!std::isfinite(scores[i]))
      throw_bad_input(
          "", std::string(what) + ": score at item " + std::to_string(i) + " is not finite");
  }
}

double normal_quantile(double q) {
  // Solves Phi(x) = q by bisection on erfc: slow-ish but exact to double precision and only
  // called once per CI.
  double lo = -40, hi = 40;
  for (int i = 0; i < 200 && hi - lo > 1e-15; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < q)
      lo = mid;
    else
      hi = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace detail

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Midranks (1-based; tied values share the mean of their ranks).
std::vector<double> midranks(const std::vector<double>& x) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> rank(x.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && x[order[j]] == x[order[i]]) ++j;
    const double mid = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1 .. j
    for (size_t k = i; k < j; ++k) rank[order[k]] = mid;
    i = j;
  }
  return rank;
}

// DeLong's structural components for one scorer: V10[i] (one per positive) is the fraction of
// negatives the positive outscores (ties 1/2), V01[j] (one per negative) the fraction of
// positives that outscore the negative. AUC = mean V10 = mean V01.
struct Placements {
  std::vector<double> v10, v01;
  double auc = kNaN;
};

Placements placements(const std::vector<int>& labels, const std::vector<double>& scores) {
  std::vector<double> x, y;  // positives, negatives
  for (size_t i = 0; i < labels.size(); ++i) (labels[i] == 1 ? x : y).push_back(scores[i]);
  Placements out;
  const size_t m = x.size(), n = y.size();
  if (m == 0 || n == 0) return out;
  std::vector<double> z = x;
  z.insert(z.end(), y.begin(), y.end());
  const std::vector<double> tx = midranks(x), ty = midranks(y), tz = midranks(z);
  // Sun & Xu (2014), eq. 7-8: the rank of a positive among all items minus its rank among the
  // positives counts the negatives below it (ties 1/2).
  out.v10.resize(m);
  out.v01.resize(n);
  double sum = 0;
  for (size_t i = 0; i < m; ++i) {
    out.v10[i] = (tz[i] - tx[i]) / static_cast<double>(n);
    sum += out.v10[i];
  }
  for (size_t j = 0; j < n; ++j) out.v01[j] = 1.0 - (tz[m + j] - ty[j]) / static_cast<double>(m);
  out.auc = sum / static_cast<double>(m);
  return out;
}

// Sample covariance (divisor k - 1) of two equally long vectors.
double covariance(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t k = a.size();
  if (k < 2) return kNaN;
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / static_cast<double>(k);
  const double mb = std::accumulate(b.begin(), b.end(), 0.0) / static_cast<double>(k);
  double s = 0;
  for (size_t i = 0; i < k; ++i) s += (a[i] - ma) * (b[i] - mb);
  return s / static_cast<double>(k - 1);
}

// DeLong (1988) eq. (covariance of two AUC estimates): S10/m + S01/n.
double delong_covariance(const Placements& a, const Placements& b) {
  return covariance(a.v10, b.v10) / static_cast<double>(a.v10.size()) +
         covariance(a.v01, b.v01) / static_cast<double>(a.v01.size());
}

}  // namespace

AucCi delong_auc(const std::vector<int>& labels, const std::vector<double>& scores, double level) {
  detail::check_labels_scores(labels, scores, "AUC");
  if (!(level > 0 && level < 1))
    throw_bad_input("", "CI level " + std::to_string(level) + " is not in (0, 1)", "use e.g. 0.95");
  const Placements pl = placements(labels, scores);
  AucCi out;
  out.level = level;
  out.auc = pl.auc;
  out.variance = pl.v10.empty() ? kNaN : delong_covariance(pl, pl);
  if (std::isnan(out.variance)) {
    out.lo = out.hi = kNaN;
    return out;
  }
  const double half = detail::normal_quantile(0.5 + 0.5 * level) * std::sqrt(out.variance);
  out.lo = std::max(0.0, out.auc - half);
  out.hi = std::min(1.0, out.auc + half);
  return out;
}

AucComparison delong_compare(const std::vector<int>& labels, const std::vector<double>& a,
                             const std::vector<double>& b) {
  detail::check_labels_scores(labels, a, "AUC comparison (scorer a)");
  detail::check_labels_scores(labels, b, "AUC comparison (scorer b)");
  const Placements pa = placements(labels, a), pb = placements(labels, b);
  AucComparison out;
  out.auc_a = pa.auc;
  out.auc_b = pb.auc;
  if (pa.v10.empty()) {
    out.z = out.p = kNaN;
    return out;
  }
  const double var =
      delong_covariance(pa, pa) + delong_covariance(pb, pb) - 2 * delong_covariance(pa, pb);
  const double diff = pa.auc - pb.auc;
  if (std::isnan(var)) {
    out.z = out.p = kNaN;
  } else if (var <= 1e-300) {
    // No sampling variability in the difference: equal AUCs are no evidence of a difference; a
    // nonzero difference is certain under the model.
    out.z = diff == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), diff);
    out.p = diff == 0 ? 1 : 0;
  } else {
    out.z = diff / std::sqrt(var);
    out.p = std::erfc(std::fabs(out.z) / std::sqrt(2.0));
  }
  return out;
}

std::vector<RocPoint> roc_curve(const std::vector<int>& labels, const std::vector<double>& scores) {
  detail::check_labels_scores(labels, scores, "ROC");
  const double positives = static_cast<double>(std::count(labels.begin(), labels.end(), 1));
  const double negatives = static_cast<double>(labels.size()) - positives;
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t i, size_t j) { return scores[i] > scores[j]; });
  std::vector<RocPoint> roc{{0, 0, std::numeric_limits<double>::infinity()}};
  double tp = 0, fp = 0;
  for (size_t i = 0; i < order.size();) {
    const double threshold = scores[order[i]];
    for (; i < order.size() && scores[order[i]] == threshold; ++i)
      (labels[order[i]] == 1 ? tp : fp) += 1;
    roc.push_back(
        {negatives > 0 ? fp / negatives : kNaN, positives > 0 ? tp / positives : kNaN, threshold});
  }
  return roc;
}

}  // namespace gg::eval
