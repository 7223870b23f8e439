// Resampling into the FLAIR grid (io::resample_to_grid, added for predict).
#include <gtest/gtest.h>

#include "common/error.h"
#include "io/io.h"

namespace gg::io {
namespace {

// A linear ramp value = x_mm + 2 y_mm + 3 z_mm on a grid (physical coordinates, identity
// direction).
Volume ramp(std::array<int, 3> size, double spacing, std::array<double, 3> origin) {
  Volume v;
  v.size = size;
  v.spacing_mm = {spacing, spacing, spacing};
  v.origin_mm = origin;
  v.voxels.resize(size_t(v.num_voxels()));
  for (int z = 0; z < size[2]; ++z)
    for (int y = 0; y < size[1]; ++y)
      for (int x = 0; x < size[0]; ++x)
        v.at(x, y, z) = float(origin[0] + x * spacing + 2 * (origin[1] + y * spacing) +
                              3 * (origin[2] + z * spacing));
  return v;
}

TEST(Resample, LinearReproducesARampOnAnotherGrid) {
  const Volume moving = ramp({20, 20, 20}, 2.0, {0, 0, 0});     // covers -1..39 mm
  const Volume reference = ramp({30, 30, 30}, 1.0, {5, 5, 5});  // inside it
  ASSERT_FALSE(same_grid(moving, reference));
  const Volume r =
      resample_to_grid(moving, reference, Interpolation::kLinear, "t1.nii", "flair.nii");
  EXPECT_EQ(r.size, reference.size);
  EXPECT_EQ(r.origin_mm, reference.origin_mm);
  for (int k : {0, 7, 29}) EXPECT_NEAR(r.at(k, k, k), reference.at(k, k, k), 1e-3) << k;
}

TEST(Resample, NearestKeepsLabelsAndOutsideIsBackground) {
  Volume labels;
  labels.size = {10, 10, 10};
  labels.spacing_mm = {2, 2, 2};
  labels.voxels.assign(1000, 0.0f);
  for (int z = 2; z < 6; ++z)
    for (int y = 2; y < 6; ++y)
      for (int x = 2; x < 6; ++x) labels.at(x, y, z) = 4;
  labels.at(3, 3, 3) = 1;
  Volume reference = labels;
  reference.size = {30, 30, 30};
  reference.spacing_mm = {1, 1, 1};
  reference.origin_mm = {-5, -5, -5};
  const Volume r =
      resample_to_grid(labels, reference, Interpolation::kNearest, "seg.nii", "flair.nii");
  for (float v : r.voxels) EXPECT_TRUE(v == 0 || v == 1 || v == 4) << v;
  EXPECT_EQ(r.at(0, 0, 0), 0.0f);     // -5 mm: outside the mask's extent
  EXPECT_EQ(r.at(11, 11, 11), 1.0f);  // 6 mm = label voxel (3,3,3)
  EXPECT_EQ(r.at(15, 9, 9), 4.0f);    // (10, 4, 4) mm = label voxel (5, 2, 2)
}

TEST(Resample, NonOverlappingExtentsAreAnErrorNamingBothFiles) {
  const Volume a = ramp({10, 10, 10}, 1.0, {0, 0, 0});
  const Volume b = ramp({10, 10, 10}, 1.0, {500, 0, 0});
  EXPECT_FALSE(extents_overlap(a, b));
  EXPECT_TRUE(extents_overlap(a, ramp({10, 10, 10}, 1.0, {9, 9, 9})));  // one voxel's corner region
  try {
    resample_to_grid(b, a, Interpolation::kLinear, "t2.nii.gz", "flair.nii.gz");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), "t2.nii.gz");
    EXPECT_NE(e.problem().find("flair.nii.gz"), std::string::npos) << e.problem();
  }
}

TEST(Resample, DescribesGridDifferences) {
  const Volume a = ramp({10, 10, 10}, 1.0, {0, 0, 0});
  EXPECT_EQ(describe_grid_difference(a, a), "same grid");
  EXPECT_EQ(describe_grid_difference(a, ramp({12, 10, 10}, 2.0, {0, 0, 0})),
            "size 10x10x10 vs 12x10x10, spacing 1x1x1 vs 2x2x2 mm");
}

}  // namespace
}  // namespace gg::io
