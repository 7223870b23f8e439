// Automatic tumour localisation from FLAIR (no mask): gliomas and their oedema are hyperintense
// on FLAIR, while CSF is suppressed, so the largest bright connected region inside the brain is
// the lesion in the great majority of cases.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "infer/infer.h"
#include "io/background.h"

namespace gg::infer {

namespace {

// Sums over a 3-voxel window along one axis (zero outside), for the separable 3×3×3 box.
void box3(std::vector<float>& v, const std::array<int, 3>& n, int axis) {
  const int64_t stride = axis == 0 ? 1 : axis == 1 ? n[0] : int64_t(n[0]) * n[1];
  const int len = n[axis];
  std::vector<float> line(static_cast<size_t>(len));
  const int64_t total = int64_t(n[0]) * n[1] * n[2];
  for (int64_t start = 0; start < total; ++start) {
    // Visit each line once: from its first voxel along `axis`.
    if ((start / stride) % len != 0) continue;
    for (int i = 0; i < len; ++i) line[size_t(i)] = v[size_t(start + i * stride)];
    for (int i = 0; i < len; ++i) {
      float s = line[size_t(i)];
      if (i > 0) s += line[size_t(i - 1)];
      if (i + 1 < len) s += line[size_t(i + 1)];
      v[size_t(start + i * stride)] = s;
    }
  }
}

// Per axial slice, the area of the component `id` with its 2-D holes filled: a necrotic core is
// not hyperintense on FLAIR, but it is tumour (the mask's label 1), so the lesion's area includes
// whatever the hyperintense ring encloses.
std::vector<int64_t> filled_area_per_slice(const std::vector<int32_t>& label, int32_t id,
                                           const std::array<int, 3>& n) {
  const int nx = n[0], ny = n[1];
  std::vector<int64_t> area(size_t(n[2]), 0);
  std::vector<uint8_t> outside(size_t(nx) * size_t(ny));
  std::vector<int> stack;
  for (int z = 0; z < n[2]; ++z) {
    const int32_t* plane = label.data() + size_t(z) * size_t(nx) * size_t(ny);
    if (std::find(plane, plane + size_t(nx) * size_t(ny), id) == plane + size_t(nx) * size_t(ny))
      continue;
    // Flood the background from the slice's border (4-connected); what it cannot reach is lesion.
    std::fill(outside.begin(), outside.end(), 0);
    stack.clear();
    for (int x = 0; x < nx; ++x) stack.push_back(x), stack.push_back(x + (ny - 1) * nx);
    for (int y = 0; y < ny; ++y) stack.push_back(y * nx), stack.push_back(nx - 1 + y * nx);
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      if (outside[size_t(i)] || plane[i] == id) continue;
      outside[size_t(i)] = 1;
      const int x = i % nx, y = i / nx;
      if (x > 0) stack.push_back(i - 1);
      if (x + 1 < nx) stack.push_back(i + 1);
      if (y > 0) stack.push_back(i - nx);
      if (y + 1 < ny) stack.push_back(i + nx);
    }
    area[size_t(z)] = std::count(outside.begin(), outside.end(), uint8_t(0));
  }
  return area;
}

// Calls f(j) for each 6-connected neighbour j of voxel i in a volume of size n (x fastest).
template <typename F>
void for_each_neighbour6(int64_t i, const std::array<int, 3>& n, F&& f) {
  const int64_t sy = n[0], sz = int64_t(n[0]) * n[1];
  const int x = int(i % sy), y = int((i / sy) % n[1]), z = int(i / sz);
  if (x > 0) f(i - 1);
  if (x + 1 < n[0]) f(i + 1);
  if (y > 0) f(i - sy);
  if (y + 1 < n[1]) f(i + sy);
  if (z > 0) f(i - sz);
  if (z + 1 < n[2]) f(i + sz);
}

float quantile(std::vector<float> values, double q) {
  const size_t k = std::min(values.size() - 1, size_t(q * double(values.size() - 1)));
  std::nth_element(values.begin(), values.begin() + long(k), values.end());
  return values[k];
}

}  // namespace

TumourLocation locate_tumour(const io::Volume& flair, const fs::path& flair_path,
                             double grow_sigmas) {
  const auto& n = flair.size;
  const size_t total = size_t(flair.num_voxels());
  std::vector<float> sum(total), count(total);
  std::vector<float> brain_values;
  const io::Background background = io::find_background(flair);
  for (size_t i = 0; i < total; ++i) {
    const bool brain = !background.is_background(i);
    sum[i] = brain ? flair.voxels[i] : 0.0f;
    count[i] = brain ? 1.0f : 0.0f;
    if (brain) brain_values.push_back(flair.voxels[i]);
  }
  if (brain_values.size() < 27)
    throw_bad_input(flair_path.string(),
                    "FLAIR has (almost) no brain voxels: cannot locate the tumour",
                    "pass --slice Z or a mask (--seg)");
  for (int axis = 0; axis < 3; ++axis) box3(sum, n, axis), box3(count, n, axis);

  const float median = quantile(brain_values, 0.5);
  const float sigma = (quantile(brain_values, 0.75) - quantile(brain_values, 0.25)) / 1.349f;
  TumourLocation loc;
  loc.threshold = median + kHyperintensitySigmas * sigma;

  // Hyperintense interior voxels (all 27 neighbours in the brain), by their neighbourhood mean.
  std::vector<int32_t> label(total, 0);
  for (size_t i = 0; i < total; ++i)
    if (count[i] == 27.0f && sum[i] / 27.0f > loc.threshold) label[i] = -1;

  // 6-connected components by flood fill; keep the largest.
  std::vector<int64_t> stack;
  int64_t largest = 0, all = 0;
  int32_t best = 0;
  const int64_t sy = n[0], sz = int64_t(n[0]) * n[1];
  for (size_t seed = 0; seed < total; ++seed) {
    if (label[seed] != -1) continue;
    const int32_t id = ++loc.components;
    int64_t size = 0;
    label[seed] = id;
    stack.assign(1, int64_t(seed));
    while (!stack.empty()) {
      const int64_t i = stack.back();
      stack.pop_back();
      ++size;
      for_each_neighbour6(i, n, [&](int64_t j) {
        if (label[size_t(j)] == -1) label[size_t(j)] = id, stack.push_back(j);
      });
    }
    all += size;
    if (size > largest) largest = size, best = id;
  }
  if (largest == 0)
    throw_bad_input(flair_path.string(), "no FLAIR hyperintensity found: cannot locate the tumour",
                    "pass --slice Z (the axial slice through the tumour) or a mask (--seg)");

  loc.min_xyz = {n[0], n[1], n[2]};
  loc.max_xyz = {-1, -1, -1};
  for (size_t i = 0; i < total; ++i) {
    if (label[i] != best) continue;
    const int xyz[3] = {int(int64_t(i) % sy), int((int64_t(i) / sy) % n[1]), int(int64_t(i) / sz)};
    for (int a = 0; a < 3; ++a)
      loc.min_xyz[a] = std::min(loc.min_xyz[a], xyz[a]),
      loc.max_xyz[a] = std::max(loc.max_xyz[a], xyz[a]);
  }
  // The seed holds the lesion's brightest part, which need not be where it is widest (a lesion
  // hyperintense at one end and moderately so elsewhere: BraTS18 TCIA08_105, 13 slices off
  // before): grow it through the moderately hyperintense voxels around it (hysteresis), then take
  // the slice of largest area of the grown lesion.
  const float low = median + float(grow_sigmas) * sigma;
  std::vector<int64_t> grown;  // the voxels the growth added, undone if it leaks
  for (size_t i = 0; i < total; ++i)
    if (label[i] == best) stack.push_back(int64_t(i));
  while (!stack.empty()) {
    const int64_t i = stack.back();
    stack.pop_back();
    for_each_neighbour6(i, n, [&](int64_t j) {
      if (label[size_t(j)] != best && count[size_t(j)] == 27.0f && sum[size_t(j)] / 27.0f > low)
        label[size_t(j)] = best, stack.push_back(j), grown.push_back(j);
    });
  }
  loc.lesion_voxels = largest + int64_t(grown.size());
  loc.lesion_ml = double(loc.lesion_voxels) * flair.spacing_mm[0] * flair.spacing_mm[1] *
                  flair.spacing_mm[2] / 1000.0;
  // Larger than any glioma with its oedema: the growth ran into normal tissue. The seed's own
  // slice is taken, and the choice is flagged (confidence halved below).
  loc.lesion_leaked = loc.lesion_ml > kMaxLesionMl;
  if (loc.lesion_leaked)
    for (int64_t j : grown) label[size_t(j)] = 0;  // only label == best counts below
  const std::vector<int64_t> area = filled_area_per_slice(label, best, n);
  loc.centre_z = int(std::max_element(area.begin(), area.end()) - area.begin());
  loc.component_voxels = largest;
  loc.component_ml =
      double(largest) * flair.spacing_mm[0] * flair.spacing_mm[1] * flair.spacing_mm[2] / 1000.0;
  loc.confidence = double(largest) / double(all) * std::min(1.0, loc.component_ml / 1.0) *
                   (loc.lesion_leaked ? 0.5 : 1.0);
  return loc;
}

SkullStripCheck check_skull_stripped(const io::Volume& flair) {
  const auto& n = flair.size;
  const size_t total = size_t(flair.num_voxels());
  const io::Background background = io::find_background(flair);
  SkullStripCheck check;
  if (background.voxels == int64_t(total)) return check;
  const float dark = io::dark_threshold(flair, background);
  // Flood the background and dark voxels from the border (6-connected); what it cannot reach is
  // inside.
  std::vector<uint8_t> outside(total, 0);
  std::vector<int64_t> stack;
  const int64_t sy = n[0], sz = int64_t(n[0]) * n[1];
  auto push = [&](int64_t i) {
    if (!outside[size_t(i)] &&
        (background.is_background(size_t(i)) || flair.voxels[size_t(i)] <= dark))
      outside[size_t(i)] = 1, stack.push_back(i);
  };
  for (int z = 0; z < n[2]; ++z)
    for (int y = 0; y < n[1]; ++y)
      for (int x = 0; x < n[0]; ++x)
        if (x == 0 || y == 0 || z == 0 || x + 1 == n[0] || y + 1 == n[1] || z + 1 == n[2])
          push(x + sy * y + sz * z);
  while (!stack.empty()) {
    const int64_t i = stack.back();
    stack.pop_back();
    for_each_neighbour6(i, n, push);
  }
  const int64_t inside = int64_t(std::count(outside.begin(), outside.end(), uint8_t(0)));
  check.outline_ml =
      double(inside) * flair.spacing_mm[0] * flair.spacing_mm[1] * flair.spacing_mm[2] / 1000.0;
  check.stripped = check.outline_ml <= kMaxBrainMl;
  return check;
}

}  // namespace gg::infer
