// How a Grad-CAM heatmap sits on the tumour, with chance and resolution references.
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "explain/explain.h"
#include "explain/upsample.h"

namespace gg::explain {

TumourOverlap tumour_overlap(const Heatmap& heat, const std::vector<uint8_t>& tumour) {
  const size_t n = size_t(heat.size) * size_t(heat.size);
  if (heat.values.size() != n || tumour.size() != n)
    throw std::invalid_argument("tumour_overlap: heatmap and tumour mask differ in size");
  if (heat.grid < 1) throw std::invalid_argument("tumour_overlap: heatmap without a grid");
  TumourOverlap o;
  o.mass_inside = mass_inside(heat, tumour);
  size_t tumour_px = 0;
  for (uint8_t t : tumour) tumour_px += t != 0;
  o.tumour_share = double(tumour_px) / double(n);
  if (tumour_px == 0) return o;

  // The tumour-tracking map: the mask's share of each grid cell, upsampled as Grad-CAM is.
  std::vector<float> inside(n);
  for (size_t i = 0; i < n; ++i) inside[i] = tumour[i] != 0 ? 1.0f : 0.0f;
  auto mask = torch::from_blob(inside.data(), {1, 1, heat.size, heat.size}, torch::kFloat32);
  auto per_cell = torch::adaptive_avg_pool2d(mask, {heat.grid, heat.grid});
  auto tracking = upsample_map(per_cell, heat.size).contiguous();
  Heatmap reference;
  reference.size = heat.size;
  reference.values.assign(tracking.data_ptr<float>(), tracking.data_ptr<float>() + n);
  o.tracking_map_mass = mass_inside(reference, tumour);

  // The peak (first maximum in row-major order) and its distance to the nearest tumour pixel.
  size_t peak = 0;
  for (size_t i = 1; i < n; ++i)
    if (heat.values[i] > heat.values[peak]) peak = i;
  o.peak_inside = tumour[peak] != 0;
  const long py = long(peak) / heat.size, px = long(peak) % heat.size;
  double nearest2 = INFINITY;
  for (size_t i = 0; i < n; ++i) {
    if (!tumour[i]) continue;
    const double dy = double(long(i) / heat.size - py), dx = double(long(i) % heat.size - px);
    nearest2 = std::min(nearest2, dy * dy + dx * dx);
  }
  o.peak_distance_px = std::sqrt(nearest2);
  return o;
}

}  // namespace gg::explain
