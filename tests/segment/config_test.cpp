// modelConfig.txt parsing (CaPTk's real file and small literal ones), CaPTk's z-score and
// DeepMedic's tiling arithmetic, with literal expected values.
#include "segment/deepmedic.h"
#include "segment/internal.h"
#include "testing/testing.h"

namespace gg::segment {
namespace {

using gg::testing::expect_bad_input;

TEST(DeepMedicConfig, CaptkModel) {
  const fs::path path = gg::testing::shared_dir() / "weights/deepmedic-brats-captk/modelConfig.txt";
  ASSERT_TRUE(fs::exists(path)) << "fixture missing: " << path;
  const DeepMedicConfig c = read_deepmedic_config(path);
  EXPECT_EQ(c.num_classes, 5);
  EXPECT_EQ(c.num_channels, 4);
  EXPECT_EQ(c.normal.fms, (std::vector<int>{10, 12, 14, 16, 18, 20, 22, 25}));
  EXPECT_EQ(c.normal.residual_layers, (std::vector<int>{3, 5, 7}));
  ASSERT_EQ(c.subsampled.size(), 2u);
  EXPECT_EQ(c.subsample_factors[0], (std::array<int, 3>{3, 3, 3}));
  EXPECT_EQ(c.subsample_factors[1], (std::array<int, 3>{5, 5, 5}));
  EXPECT_EQ(c.subsampled[1].residual_layers, (std::vector<int>{3, 5, 7}));  // mirrors normal
  EXPECT_EQ(c.fc.fms, (std::vector<int>{60, 80, 5}));
  EXPECT_EQ(c.fc.kernels[0], (std::array<int, 3>{3, 3, 3}));
  EXPECT_EQ(c.fc.kernels[2], (std::array<int, 3>{1, 1, 1}));
  EXPECT_EQ(c.fc.residual_layers, (std::vector<int>{1}));
  EXPECT_EQ(c.fc.dropout, (std::vector<double>{0.0, 0.3, 0.3}));
  EXPECT_EQ(c.segment_inference, (std::array<int, 3>{45, 45, 45}));
  EXPECT_EQ(c.receptive_field(), (std::array<int, 3>{17, 17, 17}));
  EXPECT_EQ(c.activation, "prelu");
  EXPECT_EQ(c.bn_rolling_batches, 60);
}

const char* kMinimal =
    "numberOfOutputClasses = 3  # with background\n"
    "numberOfInputChannels = 2\n"
    "numberFMsPerLayerNormal = [4,\n  5]   # spans lines\n"
    "kernelDimPerLayerNormal = [[3,3,3], [3,3,3]]\n"
    "useSubsampledPathway = True\n"
    "segmentsDimTrain = [9, 9, 9]\n"
    "# numberFMsPerLayerFC = [99]\n";

TEST(DeepMedicConfig, DefaultsOfDeepMedic074) {
  const DeepMedicConfig c = parse_deepmedic_config(kMinimal, "m.cfg");
  EXPECT_EQ(c.normal.fms, (std::vector<int>{4, 5}));
  ASSERT_EQ(c.subsampled.size(), 1u);
  EXPECT_EQ(c.subsample_factors[0], (std::array<int, 3>{3, 3, 3}));
  EXPECT_EQ(c.subsampled[0].fms, (std::vector<int>{4, 5}));
  EXPECT_EQ(c.fc.fms, (std::vector<int>{3}));  // the commented-out FC key is not read
  EXPECT_EQ(c.fc.dropout, (std::vector<double>{0.5}));
  EXPECT_EQ(c.segment_inference, (std::array<int, 3>{9, 9, 9}));
}

TEST(DeepMedicConfig, ErrorsNameTheKey) {
  expect_bad_input([] { parse_deepmedic_config("numberOfInputChannels = 2\n", "m.cfg"); }, "m.cfg",
                   "required key 'numberOfOutputClasses' is absent");
  expect_bad_input(
      [] {
        parse_deepmedic_config(std::string(kMinimal) + "subsampleFactor = [3, [5,5,5]]\n", "m.cfg");
      },
      "m.cfg", "key 'subsampleFactor' mixes numbers and lists");
  expect_bad_input(
      [] {
        parse_deepmedic_config(std::string(kMinimal) + "lowerRankLayersNormal = [2]\n", "m.cfg");
      },
      "m.cfg", "key 'lowerRankLayersNormal' asks for low-rank layers");
  expect_bad_input(
      [] {
        parse_deepmedic_config(std::string(kMinimal) + "layersWithResidualConnNormal = [1]\n",
                               "m.cfg");
      },
      "m.cfg", "key 'layersWithResidualConnNormal' lists layer 1");
  expect_bad_input(
      [] {
        parse_deepmedic_config(std::string(kMinimal) + "numberOfInputChannels = [2\n", "m.cfg");
      },
      "m.cfg", "key 'numberOfInputChannels' has an unclosed list");
}

TEST(DeepMedicTiling, SegmentStartsEndAtTheEdge) {
  EXPECT_EQ(detail::segment_starts(256, 61, 45), (std::vector<int>{0, 45, 90, 135, 180, 195}));
  EXPECT_EQ(detail::segment_starts(171, 45, 29), (std::vector<int>{0, 29, 58, 87, 116, 126}));
  EXPECT_EQ(detail::segment_starts(45, 45, 29), (std::vector<int>{0}));
}

TEST(DeepMedicTiling, SubsampledSamplesKeepDeepMedicsShiftBeforeTheImage) {
  // f = 3, rf 17, 29 classified: 26 samples from start + 1 - 17, every 3rd voxel.
  const auto inside = detail::subsampled_indices(40, 29, 17, 3, 26, 256);
  EXPECT_EQ(inside[0], 24);
  EXPECT_EQ(inside[25], 24 + 75);
  // start 0: the first sample would be at -16; DeepMedic puts voxel 0 at index 16 / 3 = 5.
  const auto before = detail::subsampled_indices(0, 29, 17, 3, 26, 256);
  EXPECT_EQ(before[4], -1);
  EXPECT_EQ(before[5], 0);
  EXPECT_EQ(before[6], 3);
}

TEST(CaptkZscore, StatisticsWithinPercentilesOfTheBrain) {
  // 0 background; brain 1..100: 5th/95th percentiles 5 and 95 (order statistics 4 and 94 of
  // 0..99), within 3 sd; statistics over 5..95: mean 50, sd sqrt((91^2 - 1) / 12).
  std::vector<float> v(50, 0.f);
  for (int i = 1; i <= 100; ++i) v.push_back(float(i));
  const auto z = detail::zscore_like_captk(v, "x.nii.gz");
  const double sd = std::sqrt((91.0 * 91.0 - 1) / 12);
  EXPECT_NEAR(z[0], -50 / sd, 1e-5);       // background too
  EXPECT_NEAR(z[50 + 49], 0.0, 1e-5);      // the value 50
  EXPECT_NEAR(z[50 + 99], 50 / sd, 1e-5);  // 100: not clipped
  expect_bad_input(
      [] {
        detail::zscore_like_captk({0.f, -1.f, 0.f, 1.f - 2.f}, "x.nii.gz");
      },
      "x.nii.gz", "no brain voxels");
}

}  // namespace
}  // namespace gg::segment
