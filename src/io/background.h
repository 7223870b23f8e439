// What lies outside the head: the constant region connected to the volume's border.
//
// BraTS writes skull-stripped scans with a background of 0; pipelines that z-score inside the brain
// (DeepMedic, nnU-Net style) leave a negative constant there; min-max normalisation leaves the
// minimum. Every step that needs "brain" (intensity percentiles, the tumour localisation, the head
// outline of the skull check, the head overlap of registration_poor, CaPTk's z-scoring before
// segmentation) takes it from here instead of assuming the value 0, so that a z-scored copy of a
// scan is read as the scan itself.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "io/io.h"

namespace gg::io {

// The background value is the most frequent value among the volume's border voxels (its six faces)
// when at least kMinBorderShare of them hold it; the background is every voxel within
// kBackgroundTolerance·max(1, |value|) of it (resampling a constant moves it by a few ulp), the
// region at the border and the holes of that value that skull-stripping leaves inside (BraTS's
// zeros inside the brain were never brain either). Without such a value (a raw head with noisy
// air, a tiny crop) the background is the voxels equal to 0, the rule every step used before.
inline constexpr double kMinBorderShare = 0.5;
inline constexpr double kBackgroundTolerance = 1e-5;

struct Background {
  bool from_border = false;   // the value was found at the border (else 0 by default)
  float value = 0;            // the background value
  std::vector<uint8_t> mask;  // per voxel, 1 = background
  int64_t voxels = 0;         // how many voxels are background
  bool is_background(size_t i) const { return mask[i] != 0; }
};
Background find_background(const Volume& v);

// The dark threshold shared by the head outline (skull check) and the head overlap
// (registration_poor): background + 5% of (99th percentile of the non-background voxels -
// background), i.e. 5% of the 99th percentile for a background of 0 (the rule before), and the
// same voxels after any increasing affine map of the intensities (z-scoring). When more than
// kBelowBackgroundShare of the other voxels lie below a border background (z-scored, then 0
// outside the brain, as nnU-Net writes), nothing is dark: -infinity.
inline constexpr double kDarkFraction = 0.05, kBelowBackgroundShare = 0.01;
float dark_threshold(const Volume& v, const Background& background);

}  // namespace gg::io
