// Background detection (io/background.h).
#include "io/background.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace gg::io {

namespace {

// Calls f(index) for every voxel on one of the volume's six faces, once each.
template <typename F>
void for_each_border_voxel(const std::array<int, 3>& n, F&& f) {
  const int64_t sy = n[0], sz = int64_t(n[0]) * n[1];
  for (int z = 0; z < n[2]; ++z)
    for (int y = 0; y < n[1]; ++y) {
      if (z == 0 || z + 1 == n[2] || y == 0 || y + 1 == n[1]) {
        for (int x = 0; x < n[0]; ++x) f(x + sy * y + sz * z);
      } else {
        f(sy * y + sz * z);
        if (n[0] > 1) f(n[0] - 1 + sy * y + sz * z);
      }
    }
}

}  // namespace

Background find_background(const Volume& v) {
  Background bg;
  std::unordered_map<float, int64_t> counts;
  int64_t border = 0;
  for_each_border_voxel(v.size, [&](int64_t i) { ++counts[v.voxels[size_t(i)]], ++border; });
  if (!counts.empty()) {
    // Ties go to the smaller value, so the choice does not depend on the map's order.
    const auto mode = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) {
      return a.second < b.second || (a.second == b.second && a.first > b.first);
    });
    if (double(mode->second) >= kMinBorderShare * double(border))
      bg.from_border = true, bg.value = mode->first;
  }
  const float tolerance =
      bg.from_border ? float(kBackgroundTolerance * std::max(1.0, std::fabs(double(bg.value)))) : 0;
  bg.mask.resize(v.voxels.size());
  for (size_t i = 0; i < v.voxels.size(); ++i) {
    bg.mask[i] = std::fabs(v.voxels[i] - bg.value) <= tolerance;
    bg.voxels += bg.mask[i];
  }
  return bg;
}

float dark_threshold(const Volume& v, const Background& background) {
  std::vector<float> inside;
  inside.reserve(v.voxels.size() / 2);
  for (size_t i = 0; i < v.voxels.size(); ++i)
    if (!background.is_background(i)) inside.push_back(v.voxels[i]);
  if (inside.empty()) return background.value;
  // A background inside the brain's range (z-scored, then 0 outside the brain, as nnU-Net
  // writes): no voxel is dark by intensity, the background alone is outside.
  const auto below =
      std::count_if(inside.begin(), inside.end(), [&](float x) { return x < background.value; });
  if (background.from_border && double(below) > kBelowBackgroundShare * double(inside.size()))
    return -std::numeric_limits<float>::infinity();
  const size_t k = size_t(0.99 * double(inside.size() - 1));
  std::nth_element(inside.begin(), inside.begin() + long(k), inside.end());
  return float(double(background.value) + kDarkFraction * (double(inside[k]) - background.value));
}

}  // namespace gg::io
