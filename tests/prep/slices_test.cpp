// Slice choice, windows and normalisation, with literal expected values.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "io/io.h"
#include "prep/prep.h"
#include "prep_fixture.h"
#include "testing/testing.h"

namespace gg::prep {
namespace {

io::Volume volume_of(std::array<int, 3> size, std::vector<float> voxels) {
  io::Volume v;
  v.size = size;
  v.voxels = std::move(voxels);
  return v;
}

TEST(TumourArea, CountsLabelsAboveZeroPerSlice) {
  const io::Volume m = testing::tumour_mask(7);
  const auto area = tumour_area_per_slice(m);
  ASSERT_EQ(area.size(), 16u);
  EXPECT_EQ(area[4], 0);
  EXPECT_EQ(area[5], 9);
  EXPECT_EQ(area[6], 9);
  EXPECT_EQ(area[7], 25);
  EXPECT_EQ(area[9], 9);
  EXPECT_EQ(area[10], 0);
  EXPECT_EQ(largest_tumour_slice(m), 7);
}

TEST(TumourArea, FirstSliceWinsTies) {
  // 2×1×4: slices 1 and 3 both have 2 tumour voxels.
  const io::Volume m = volume_of({2, 1, 4}, {0, 0, 4, 1, 0, 2, 2, 2});
  EXPECT_EQ(largest_tumour_slice(m), 1);
}

TEST(TumourArea, EmptyMaskThrows) {
  const io::Volume m = volume_of({2, 1, 2}, {0, 0, 0, 0});
  EXPECT_THROW(largest_tumour_slice(m), Error);
}

TEST(WindowStart, PaperWindowAndEdges) {
  EXPECT_EQ(window_start(77, 20, 155), 67);    // z*-10 .. z*+9
  EXPECT_EQ(window_start(3, 20, 155), 0);      // shifted inward at the bottom
  EXPECT_EQ(window_start(150, 20, 155), 135);  // ... and at the top: 135..154
  EXPECT_EQ(window_start(154, 20, 155), 135);
  EXPECT_EQ(window_start(10, 5, 155), 8);  // odd count: 8..12
  EXPECT_EQ(window_start(7, 16, 16), 0);   // the whole depth
  EXPECT_THROW(window_start(7, 17, 16), Error);
  EXPECT_THROW(window_start(7, 0, 16), Error);
}

TEST(Percentiles, LinearInterpolationOverBrainVoxelsOnly) {
  std::vector<float> values(200, 0.0f);                                  // 100 background zeros ...
  for (int i = 0; i < 100; ++i) values[size_t(100 + i)] = float(i + 1);  // ... and brain 1..100
  const io::Volume v = volume_of({10, 10, 2}, values);
  const auto [low, high] = brain_percentiles(v, 0.5, 99.5);
  EXPECT_NEAR(low, 1.495f, 1e-5);    // 1 + 0.005·99
  EXPECT_NEAR(high, 99.505f, 1e-4);  // 1 + 0.995·99
  const auto [p0, p100] = brain_percentiles(v, 0, 100);
  EXPECT_EQ(p0, 1.0f);
  EXPECT_EQ(p100, 100.0f);
}

TEST(Percentiles, NegativeBrainValuesCount) {
  const io::Volume v = volume_of({2, 2, 2}, {0, -4, -2, 0, 2, 4, 6, 0});
  const auto [low, high] = brain_percentiles(v, 0, 100);
  EXPECT_EQ(low, -4.0f);
  EXPECT_EQ(high, 6.0f);
}

TEST(Percentiles, ConstantBrainIsBadInput) {
  const io::Volume v = volume_of({2, 2, 2}, {0, 5, 5, 5, 5, 5, 5, 0});
  EXPECT_THROW(brain_percentiles(v, 0.5, 99.5), Error);
  EXPECT_THROW(brain_percentiles(volume_of({2, 1, 2}, {0, 0, 0, 0}), 0.5, 99.5), Error);
}

TEST(Normalise, ClipsScalesAndKeepsBackground) {
  const io::Volume v = volume_of({3, 2, 2}, {0, 10, 20, 30, 40, 50, 0, 0, 1000, -5, 25, 0});
  const io::Volume n = normalise_intensities(v, 0, 100);  // low -5, high 1000
  EXPECT_EQ(n.voxels[0], 0.0f);
  EXPECT_EQ(n.voxels[9], 0.0f);  // the minimum maps to 0
  EXPECT_EQ(n.voxels[8], 1.0f);
  EXPECT_NEAR(n.voxels[1], 15.0f / 1005.0f, 1e-7);
  // With percentiles strictly inside, extremes are clipped.
  const io::Volume c = normalise_intensities(v, 10, 90);
  for (float x : c.voxels) {
    EXPECT_GE(x, 0.0f);
    EXPECT_LE(x, 1.0f);
  }
  EXPECT_EQ(c.voxels[8], 1.0f);
  EXPECT_EQ(c.voxels[11], 0.0f);
  EXPECT_EQ(v.voxels[1], 10.0f);  // input untouched
}

TEST(AxialSlice, SameSizeQuantisesTo255) {
  // 2×2×2, slice 1 holds 0, 0.5, 1, 0.25 (x fastest).
  const io::Volume n = volume_of({2, 2, 2}, {0, 0, 0, 0, 0, 0.5f, 1, 0.25f});
  EXPECT_EQ(axial_slice_u8(n, 1, 2), (std::vector<uint8_t>{0, 128, 255, 64}));  // round(127.5)=128
}

TEST(TumourSliceMask, AnyLabelCountsAndHalfCoveredPixelsAreKept) {
  // 4×4×2; slice 1 holds the labels below (x fastest). Resizing to 2×2 averages 2×2 blocks:
  // 3/4, 0 / 2/4, 1/4 tumour -> kept where at least half is tumour.
  std::vector<float> voxels(16, 0.0f);
  for (float label : {4, 1, 0, 0,  //
                      2, 0, 0, 0,  //
                      2, 0, 1, 0,  //
                      0, 2, 0, 0})
    voxels.push_back(label);
  const io::Volume seg = volume_of({4, 4, 2}, voxels);
  EXPECT_EQ(tumour_slice_mask(seg, 1, 2), (std::vector<uint8_t>{1, 0, 1, 0}));
  EXPECT_EQ(tumour_slice_mask(seg, 1, 4)[0], 1);
  EXPECT_EQ(tumour_slice_mask(seg, 0, 2), std::vector<uint8_t>(4, 0));
}

TEST(AxialSlice, AreaDownsamplingAveragesBlocks) {
  // 4×4 slice of 2×2 blocks 0, 0.2, 0.6, 1.0 (rows are y, columns x): INTER_AREA to 2×2 averages
  // each block exactly.
  std::vector<float> s(16);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      s[size_t(y * 4 + x)] = (y < 2 ? (x < 2 ? 0.0f : 0.2f) : (x < 2 ? 0.6f : 1.0f));
  s[0] = 0.4f;  // top-left block: (0.4+0+0+0)/4 = 0.1
  const io::Volume n = volume_of({4, 4, 1}, s);
  EXPECT_EQ(axial_slice_u8(n, 0, 2), (std::vector<uint8_t>{26, 51, 153, 255}));
  EXPECT_THROW(axial_slice_u8(n, 1, 2), std::out_of_range);
}

// The window prepare stores and predict grades: each slice as the whole volume normalised and
// then sliced (the way predict computed it before both used slice_window_u8), byte for byte.
TEST(SliceWindow, EqualsTheNormalisedVolumesSlices) {
  const io::Volume v = testing::brain_volume(io::Sequence::kFlair, 1);
  const io::Volume n = normalise_intensities(v, 0.5, 99.5);
  const int start = 3, count = 4, size = 40;
  const auto window = slice_window_u8(v, start, count, size, 0.5, 99.5);
  ASSERT_EQ(window.size(), size_t(count) * size * size);
  for (int k = 0; k < count; ++k) {
    const auto slice = axial_slice_u8(n, start + k, size);
    EXPECT_TRUE(std::equal(slice.begin(), slice.end(), window.begin() + long(k) * size * size))
        << "slice " << k;
  }
  EXPECT_THROW(slice_window_u8(v, v.size[2] - 1, 2, size, 0.5, 99.5), std::out_of_range);
  EXPECT_THROW(slice_window_u8(volume_of({2, 1, 2}, {0, 0, 0, 0}), 0, 1, 2, 0.5, 99.5), Error);
}

TEST(AxialSlice, UpsamplingKeepsRangeAndSize) {
  const io::Volume n =
      normalise_intensities(testing::brain_volume(io::Sequence::kT1, 0), 0.5, 99.5);
  const auto s = axial_slice_u8(n, 5, 224);
  ASSERT_EQ(s.size(), 224u * 224u);
  EXPECT_EQ(s[0], 0);  // background corner
  // Bilinear upsampling stays within the slice's own range.
  float slice_max = 0;
  for (int y = 0; y < n.size[1]; ++y)
    for (int x = 0; x < n.size[0]; ++x) slice_max = std::max(slice_max, n.at(x, y, 5));
  const int top = *std::max_element(s.begin(), s.end());
  EXPECT_LE(top, int(std::lround(255 * slice_max)));
  EXPECT_GE(top, int(std::lround(255 * slice_max)) - 8);
}

// The real BraTS case: the chosen slice is the argmax of an independent count, and the window is
// the 20 slices around it.
TEST(RealCase, LargestSliceMatchesIndependentCount) {
  const fs::path seg_path = gg::testing::shared_dir() /
                            "data/brats-sample/HGG/BraTS19_2013_10_1/BraTS19_2013_10_1_seg.nii.gz";
  if (!fs::exists(seg_path)) GG_MISSING("no " << seg_path);
  const io::Volume seg = io::read_volume(seg_path);
  ASSERT_EQ(seg.size, (std::array<int, 3>{240, 240, 155}));
  // Independent count, plain loops over (x, y) for each z through Volume::at.
  int best_z = -1;
  long best_count = -1;
  for (int z = 0; z < 155; ++z) {
    long count = 0;
    for (int y = 0; y < 240; ++y)
      for (int x = 0; x < 240; ++x)
        if (seg.at(x, y, z) != 0.0f) ++count;
    if (count > best_count) best_count = count, best_z = z;
  }
  ASSERT_GT(best_count, 0);
  const int z_star = largest_tumour_slice(seg);
  EXPECT_EQ(z_star, best_z);
  EXPECT_EQ(tumour_area_per_slice(seg)[size_t(z_star)], best_count);
  const int first = window_start(z_star, 20, 155);
  ASSERT_GE(z_star - 10, 0);  // this case's tumour is away from the edges: no shift
  ASSERT_LE(z_star + 9, 154);
  EXPECT_EQ(first, z_star - 10);
  EXPECT_EQ(first + 19, z_star + 9);
}

}  // namespace
}  // namespace gg::prep
