// Resampling one volume onto another's grid in physical space (for `predict` with sequences of
// one session stored on different grids). ITK stays inside io/.
#include <itkIdentityTransform.h>
#include <itkImage.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkNearestNeighborInterpolateImageFunction.h>
#include <itkResampleImageFilter.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "io/background.h"
#include "io/io.h"

namespace gg::io {

namespace {

using FloatImage = itk::Image<float, 3>;

// Wraps a Volume as an ITK image (copies the voxels: ITK images own their buffer).
FloatImage::Pointer to_image(const Volume& v, bool with_voxels) {
  auto image = FloatImage::New();
  FloatImage::SizeType size;
  FloatImage::SpacingType spacing;
  FloatImage::PointType origin;
  FloatImage::DirectionType direction;
  for (unsigned i = 0; i < 3; ++i) {
    size[i] = static_cast<itk::SizeValueType>(v.size[i]);
    spacing[i] = v.spacing_mm[i];
    origin[i] = v.origin_mm[i];
    for (unsigned c = 0; c < 3; ++c) direction(i, c) = v.direction[i * 3 + c];
  }
  image->SetRegions(FloatImage::RegionType(size));
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  image->Allocate();
  if (with_voxels) std::copy(v.voxels.begin(), v.voxels.end(), image->GetBufferPointer());
  return image;
}

// Physical bounding box of a volume: its 8 corners (voxel centres ± half a voxel) mapped through
// origin + direction · (index · spacing).
struct Box {
  std::array<double, 3> lo{}, hi{};
};

Box physical_box(const Volume& v) {
  Box b;
  b.lo.fill(1e300);
  b.hi.fill(-1e300);
  for (int corner = 0; corner < 8; ++corner) {
    std::array<double, 3> index_mm{};
    for (int a = 0; a < 3; ++a) {
      const double idx = (corner >> a & 1) ? v.size[a] - 0.5 : -0.5;
      index_mm[a] = idx * v.spacing_mm[a];
    }
    for (int r = 0; r < 3; ++r) {
      double p = v.origin_mm[r];
      for (int c = 0; c < 3; ++c) p += v.direction[r * 3 + c] * index_mm[c];
      b.lo[r] = std::min(b.lo[r], p);
      b.hi[r] = std::max(b.hi[r], p);
    }
  }
  return b;
}

std::string triple(const std::array<double, 3>& t) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%gx%gx%g", t[0], t[1], t[2]);
  return buf;
}

}  // namespace

bool extents_overlap(const Volume& a, const Volume& b) {
  const Box x = physical_box(a), y = physical_box(b);
  for (int r = 0; r < 3; ++r)
    if (std::min(x.hi[r], y.hi[r]) <= std::max(x.lo[r], y.lo[r])) return false;
  return true;
}

std::string describe_grid_difference(const Volume& a, const Volume& b) {
  std::string d;
  auto add = [&d](const std::string& part) { d += (d.empty() ? "" : ", ") + part; };
  if (a.size != b.size)
    add("size " + std::to_string(a.size[0]) + "x" + std::to_string(a.size[1]) + "x" +
        std::to_string(a.size[2]) + " vs " + std::to_string(b.size[0]) + "x" +
        std::to_string(b.size[1]) + "x" + std::to_string(b.size[2]));
  auto differs = [](const auto& p, const auto& q) {
    for (size_t i = 0; i < p.size(); ++i)
      if (std::abs(p[i] - q[i]) > 1e-3) return true;
    return false;
  };
  if (differs(a.spacing_mm, b.spacing_mm))
    add("spacing " + triple(a.spacing_mm) + " vs " + triple(b.spacing_mm) + " mm");
  if (differs(a.origin_mm, b.origin_mm))
    add("origin " + triple(a.origin_mm) + " vs " + triple(b.origin_mm) + " mm");
  if (differs(a.direction, b.direction)) add("direction differs");
  return d.empty() ? "same grid" : d;
}

Volume resample_to_grid(const Volume& moving, const Volume& reference, Interpolation interpolation,
                        const fs::path& moving_path, const fs::path& reference_path) {
  if (!extents_overlap(moving, reference))
    throw_bad_input(
        moving_path.string(),
        "does not overlap " + reference_path.string() + " in physical space (" +
            describe_grid_difference(moving, reference) + ")",
        "give sequences of one imaging session (their headers must place them on the same head)");
  using Resampler = itk::ResampleImageFilter<FloatImage, FloatImage>;
  auto resampler = Resampler::New();
  resampler->SetInput(to_image(moving, true));
  resampler->SetOutputParametersFromImage(to_image(reference, false));
  resampler->SetTransform(itk::IdentityTransform<double, 3>::New());
  // Outside the moving image is its background (0 in BraTS, negative after z-scoring).
  resampler->SetDefaultPixelValue(find_background(moving).value);
  if (interpolation == Interpolation::kNearest)
    resampler->SetInterpolator(
        itk::NearestNeighborInterpolateImageFunction<FloatImage, double>::New());
  else
    resampler->SetInterpolator(itk::LinearInterpolateImageFunction<FloatImage, double>::New());
  try {
    resampler->Update();
  } catch (const itk::ExceptionObject& e) {
    throw_runtime(moving_path.string(), std::string("resampling failed: ") + e.GetDescription());
  }
  Volume out;
  out.size = reference.size;
  out.spacing_mm = reference.spacing_mm;
  out.origin_mm = reference.origin_mm;
  out.direction = reference.direction;
  const float* buffer = resampler->GetOutput()->GetBufferPointer();
  out.voxels.assign(buffer, buffer + reference.num_voxels());
  return out;
}

}  // namespace gg::io
