// CaPTk's z-scoring before DeepMedic (CBICA/CaPTk src/applications/DeepMedic.cxx, which calls
// src/applications/Preprocessing/src/depends/ZScoreNormalizer.hxx with quantiles 5/95 and
// cut-offs 3/3, no mask):
//   brain   = voxels > 0 (BinaryThreshold at 1 of integer BraTS intensities); we take the voxels
//             outside io::find_background's background, the same for BraTS, and right for a scan
//             z-scored before (background a negative constant)
//   lower   = max(min, 5th percentile, mean - 3 sd), upper = min(max, 95th percentile, mean + 3 sd)
//             (over the brain)
//   mean, sd over brain voxels within [lower, upper]
//   out     = (x - mean) / sd for EVERY voxel (background included: it becomes -mean/sd)
// CaPTk skips a channel whose whole-image mean is exactly 0 (taken as already normalised); so do
// we. Its percentiles come from an ITK histogram with about one bin per intensity unit; ours are
// exact order statistics (a difference below one intensity unit).
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "segment/internal.h"

namespace gg::segment::detail {

namespace {

struct Stats {
  double mean = 0, sd = 0, min = 0, max = 0;
  size_t n = 0;
};

double quantile(std::vector<float>& values, double p) {
  const size_t k = static_cast<size_t>(p * double(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + std::ptrdiff_t(k), values.end());
  return values[k];
}

}  // namespace

std::vector<float> zscore_like_captk(const std::vector<float>& voxels, const std::string& name,
                                     const std::vector<uint8_t>* background) {
  double whole = 0;
  for (float x : voxels) whole += x;
  if (whole == 0) return voxels;  // CaPTk: mean 0 means already normalised

  // CaPTk's brain is > 0; with a background mask it is what is not background, the same voxels for
  // BraTS and the same after a z-scoring that left the background a negative constant.
  std::vector<uint8_t> brain_mask(voxels.size());
  for (size_t i = 0; i < voxels.size(); ++i)
    brain_mask[i] = background ? !(*background)[i] : voxels[i] > 0;
  auto stats_over = [&](auto keep) {
    Stats s;
    double sum = 0, sum2 = 0;
    s.min = std::numeric_limits<double>::infinity();
    s.max = -s.min;
    for (size_t i = 0; i < voxels.size(); ++i) {
      const float x = voxels[i];
      if (!brain_mask[i] || !keep(x)) continue;
      ++s.n, sum += x, sum2 += double(x) * x;
      s.min = std::min<double>(s.min, x), s.max = std::max<double>(s.max, x);
    }
    if (s.n == 0) return s;
    s.mean = sum / double(s.n);
    s.sd = std::sqrt(std::max(0.0, sum2 / double(s.n) - s.mean * s.mean));
    return s;
  };
  const Stats brain = stats_over([](float) { return true; });
  if (brain.n < 2)
    throw_bad_input(name, "has no brain voxels (above the background) to normalise over",
                    "pass a skull-stripped BraTS-space volume");
  std::vector<float> values;
  values.reserve(brain.n);
  for (size_t i = 0; i < voxels.size(); ++i)
    if (brain_mask[i]) values.push_back(voxels[i]);
  const double lower = std::max({brain.min, quantile(values, 0.05), brain.mean - 3 * brain.sd});
  const double upper = std::min({brain.max, quantile(values, 0.95), brain.mean + 3 * brain.sd});
  const Stats norm = stats_over([&](float x) { return x >= lower && x <= upper; });
  if (norm.n < 2 || !(norm.sd > 0))
    throw_bad_input(name, "is constant over the brain; cannot z-score it");
  std::vector<float> out(voxels.size());
  const float mean = float(norm.mean), inv_sd = float(1.0 / norm.sd);
  for (size_t i = 0; i < voxels.size(); ++i) out[i] = (voxels[i] - mean) * inv_sd;
  return out;
}

}  // namespace gg::segment::detail
