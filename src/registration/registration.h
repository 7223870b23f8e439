// registration: rigid co-registration of one MR sequence onto another of the same session, with
// ITK's v4 framework (Mattes mutual information, versor rigid transform, multi-resolution). ITK
// stays inside registration/*.cpp; this header is ITK-free.
//
// BraTS volumes are co-registered and resampled to one 1 mm grid; a study from the scanner holds
// series acquired minutes apart, with other fields of view and angulations, and the patient may
// have moved between them. Resampling in physical space (io::resample_to_grid) trusts the
// headers; registration also corrects the motion.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/io.h"

namespace gg::registration {

// p_moving = R (p_fixed - centre) + centre + translation, in LPS mm (ITK's convention: the
// transform maps the fixed image's physical points into the moving image).
struct RigidTransform {
  std::array<double, 9> rotation{1, 0, 0, 0, 1, 0, 0, 0, 1};  // row-major
  std::array<double, 3> centre_mm{0, 0, 0};
  std::array<double, 3> translation_mm{0, 0, 0};

  std::array<double, 3> apply(const std::array<double, 3>& p) const;
  double angle_deg() const;  // the rotation's angle about its axis
  RigidTransform inverse() const;
};

// A rotation of `angle_deg` about `axis` (need not be unit length) about `centre_mm`, then a
// translation: for building test motions and describing transforms.
RigidTransform rigid_from_axis_angle(const std::array<double, 3>& axis, double angle_deg,
                                     const std::array<double, 3>& centre_mm,
                                     const std::array<double, 3>& translation_mm);

struct RegistrationOptions {
  int histogram_bins = 32;         // Mattes MI joint histogram
  double sampling_fraction = 0.2;  // of the fixed image's voxels, drawn at random per level
  uint64_t seed = 1;               // of that sampling: the same inputs give the same transform
  int iterations_per_level = 200;
  // Shrink factors of the multi-resolution pyramid, coarse to fine; each is capped so that the
  // coarsest level keeps at least 16 voxels along every axis.
  std::vector<int> shrink_factors{4, 2, 1};
  std::vector<double> smoothing_sigmas_mm{4, 2, 0};
};

struct RegistrationResult {
  RigidTransform transform;  // fixed -> moving, as above
  // Mattes MI on the finest level (ITK's sign: more negative is better) before and after.
  double metric_before = 0, metric_after = 0;
  std::vector<int> iterations;  // per level
  std::string stop_condition;   // the optimiser's, at the finest level
  // Dice overlap of the two head/brain masks (foreground_mask below) on the fixed grid, before
  // (physical space only) and after registration.
  double dice_before = 0, dice_after = 0;
  double seconds = 0;
};

// Registers `moving` onto `fixed` (both as read; they may be on different grids), starting from
// their physical alignment (the headers of one session share a frame of reference). Throws
// kBadInput (no file: the caller knows which) when either has no foreground or the images do not
// overlap.
RegistrationResult register_rigid(const io::Volume& fixed, const io::Volume& moving,
                                  const RegistrationOptions& options = {});

// `moving` resampled onto `grid`'s voxels through `transform` (out(p) = moving(T(p))); moving's
// background value (io::find_background) outside the moving image.
io::Volume resample_rigid(const io::Volume& moving, const io::Volume& grid,
                          const RigidTransform& transform, io::Interpolation interpolation);

// The head (or, skull-stripped, the brain): voxels outside the background (io::find_background)
// and above io::dark_threshold (5% of the 99th percentile above the background value, the same
// voxels after z-scoring). Returns 0/1 per voxel.
std::vector<uint8_t> foreground_mask(const io::Volume& v);
// Dice coefficient of two 0/1 masks of the same size (1 when both are empty).
double dice(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b);

}  // namespace gg::registration
