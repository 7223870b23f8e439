// Slice selection and intensity normalisation (the per-volume arithmetic of prepare).
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/error.h"
#include "io/background.h"
#include "prep/prep.h"
#include "prep/slices_internal.h"

namespace gg::prep {

std::vector<int64_t> tumour_area_per_slice(const io::Volume& seg) {
  std::vector<int64_t> area(size_t(std::max(0, seg.size[2])), 0);
  const size_t plane = size_t(seg.size[0]) * size_t(seg.size[1]);
  for (size_t z = 0; z < area.size(); ++z) {
    const float* p = seg.voxels.data() + z * plane;
    int64_t n = 0;
    for (size_t i = 0; i < plane; ++i) n += p[i] > 0.0f;
    area[z] = n;
  }
  return area;
}

int largest_tumour_slice(const io::Volume& seg) {
  const auto area = tumour_area_per_slice(seg);
  const auto best = std::max_element(area.begin(), area.end());  // first maximum on ties
  if (best == area.end() || *best == 0)
    throw_bad_input("", "mask is empty (no voxel with a tumour label)",
                    "give the patient's tumour segmentation");
  return static_cast<int>(best - area.begin());
}

int window_start(int centre, int count, int depth) {
  if (count < 1 || count > depth)
    throw_bad_input("",
                    "cannot take " + std::to_string(count) + " slices from a volume of " +
                        std::to_string(depth) + " axial slices",
                    "use --slices between 1 and " + std::to_string(depth));
  return std::clamp(centre - count / 2, 0, depth - count);
}

std::pair<float, float> brain_percentiles(const io::Volume& v, double low_percentile,
                                          double high_percentile) {
  return brain_percentiles(v, io::find_background(v), low_percentile, high_percentile);
}

std::pair<float, float> brain_percentiles(const io::Volume& v, const io::Background& background,
                                          double low_percentile, double high_percentile) {
  std::vector<float> brain;
  brain.reserve(v.voxels.size() / 4);
  for (size_t i = 0; i < v.voxels.size(); ++i)
    if (!background.is_background(i)) brain.push_back(v.voxels[i]);
  if (brain.empty())
    throw_bad_input("",
                    fmt::format("volume has no brain voxels (every voxel is background, {:g})",
                                background.value),
                    "check this is the right file");
  // Linear interpolation between order statistics (numpy's default percentile).
  auto percentile = [&brain](double p) {
    const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * double(brain.size() - 1);
    const size_t k = static_cast<size_t>(pos);
    std::nth_element(brain.begin(), brain.begin() + long(k), brain.end());
    const float lower = brain[k];
    if (k + 1 >= brain.size()) return lower;
    const float upper = *std::min_element(brain.begin() + long(k) + 1, brain.end());
    return static_cast<float>(lower + (pos - double(k)) * (double(upper) - double(lower)));
  };
  const float high = percentile(high_percentile);
  const float low = percentile(low_percentile);
  if (!(high > low))
    throw_bad_input("",
                    "brain intensities are constant between the " + std::to_string(low_percentile) +
                        " and " + std::to_string(high_percentile) + " percentiles",
                    "check this is an MR volume of the patient");
  return {low, high};
}

namespace internal {

float normalise_voxel(float x, float low, float high) {
  return std::clamp((x - low) / (high - low), 0.0f, 1.0f);
}

std::vector<uint8_t> slice_u8(const io::Volume& v, const io::Background* background, int z,
                              int size, float low, float high) {
  const int nx = v.size[0], ny = v.size[1];
  if (z < 0 || z >= v.size[2] || size < 1)
    throw std::out_of_range("slice z=" + std::to_string(z) + " outside 0.." +
                            std::to_string(v.size[2] - 1));
  cv::Mat plane(ny, nx, CV_32F);
  const size_t first = size_t(z) * size_t(nx) * size_t(ny);
  for (int y = 0; y < ny; ++y) {
    float* row = plane.ptr<float>(y);
    for (int x = 0; x < nx; ++x) {
      const size_t i = first + size_t(y) * size_t(nx) + size_t(x);
      row[x] = background && background->is_background(i) ? 0.0f
                                                          : normalise_voxel(v.voxels[i], low, high);
    }
  }
  cv::Mat resized;
  if (nx == size && ny == size)
    resized = plane;
  else
    cv::resize(plane, resized, cv::Size(size, size), 0, 0, cv::INTER_AREA);
  cv::Mat bytes;
  resized.convertTo(bytes, CV_8U, 255.0);  // saturate_cast: rounds to nearest, clamps to 0..255
  std::vector<uint8_t> out(size_t(size) * size_t(size));
  for (int y = 0; y < size; ++y)
    std::copy(bytes.ptr<uint8_t>(y), bytes.ptr<uint8_t>(y) + size, out.begin() + long(y) * size);
  return out;
}

}  // namespace internal

io::Volume normalise_intensities(const io::Volume& v, double low_percentile,
                                 double high_percentile) {
  const io::Background background = io::find_background(v);
  const auto [low, high] = brain_percentiles(v, background, low_percentile, high_percentile);
  io::Volume out = v;
  for (size_t i = 0; i < out.voxels.size(); ++i)
    out.voxels[i] =
        background.is_background(i) ? 0.0f : internal::normalise_voxel(out.voxels[i], low, high);
  return out;
}

std::vector<uint8_t> axial_slice_u8(const io::Volume& normalised, int z, int size) {
  // Already in [0,1]: the identity mapping (low 0, high 1) keeps the values as they are.
  return internal::slice_u8(normalised, nullptr, z, size, 0.0f, 1.0f);
}

std::vector<uint8_t> slice_window_u8(const io::Volume& v, int z_start, int count, int size,
                                     double low_percentile, double high_percentile) {
  // Only the kept slices are normalised: the whole volume is needed for its percentiles alone.
  const io::Background background = io::find_background(v);
  const auto [low, high] = brain_percentiles(v, background, low_percentile, high_percentile);
  const size_t slice_bytes = size_t(size) * size_t(size);
  std::vector<uint8_t> window(slice_bytes * size_t(std::max(0, count)));
  for (int k = 0; k < count; ++k) {
    const auto slice = internal::slice_u8(v, &background, z_start + k, size, low, high);
    std::copy(slice.begin(), slice.end(), window.begin() + long(slice_bytes) * k);
  }
  return window;
}

std::vector<uint8_t> tumour_slice_mask(io::Volume seg, int z, int size) {
  for (float& v : seg.voxels) v = v > 0 ? 1.0f : 0.0f;
  std::vector<uint8_t> mask = axial_slice_u8(seg, z, size);
  for (uint8_t& v : mask) v = v >= 128 ? 1 : 0;
  return mask;
}

}  // namespace gg::prep
