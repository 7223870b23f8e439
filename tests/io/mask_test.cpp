// io::read_mask_labels: masks as users have them, each read into BraTS labels with a notice.
#include "io/mask.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "testing/testing.h"

namespace gg::io {
namespace {

Volume mask_of(std::vector<float> values) {
  Volume v;
  v.size = {int(values.size()), 1, 1};
  v.voxels = std::move(values);
  return v;
}

TEST(MaskLabels, BratsLabelsAreTakenAsTheyAreWithoutNotice) {
  Volume m = mask_of({0, 1, 2, 4, 0});
  EXPECT_EQ(read_mask_labels(m, "m.nii"), "");
  EXPECT_EQ(m.voxels, (std::vector<float>{0, 1, 2, 4, 0}));
}

TEST(MaskLabels, BinaryMasksAreWholeTumour) {
  Volume one = mask_of({0, 1, 1, 0});
  EXPECT_NE(read_mask_labels(one, "wt.nii").find("binary mask (0/1)"), std::string::npos);
  EXPECT_EQ(one.voxels, (std::vector<float>{0, 1, 1, 0}));
  Volume byte = mask_of({0, 255, 255, 0});
  const std::string notice = read_mask_labels(byte, "wt.png.nii");
  EXPECT_NE(notice.find("0/255"), std::string::npos) << notice;
  EXPECT_NE(notice.find("wt.png.nii"), std::string::npos) << notice;
  EXPECT_EQ(byte.voxels, (std::vector<float>{0, 1, 1, 0}));
}

TEST(MaskLabels, Brats2015LabelThreeBecomesTumourCore) {
  Volume m = mask_of({0, 1, 2, 3, 4});
  EXPECT_NE(read_mask_labels(m, "m.nii").find("3 (non-enhancing core) taken as 1"),
            std::string::npos);
  EXPECT_EQ(m.voxels, (std::vector<float>{0, 1, 2, 1, 4}));
}

TEST(MaskLabels, FloatMasksAreThresholdedAtOneHalf) {
  Volume m = mask_of({0, 0.2f, 0.5f, 0.9f, 1});
  EXPECT_NE(read_mask_labels(m, "p.nii").find("float mask"), std::string::npos);
  EXPECT_EQ(m.voxels, (std::vector<float>{0, 0, 1, 1, 1}));
}

TEST(MaskLabels, AnythingElseIsRefusedNamingTheValues) {
  using testing::expect_bad_input;
  expect_bad_input(
      [] {
        Volume m = mask_of({0, 1, 7});
        read_mask_labels(m, "a.nii");
      },
      "a.nii", "labels outside {0,1,2,4}: 7");
  expect_bad_input(
      [] {
        Volume m = mask_of({0, -1, 1});
        read_mask_labels(m, "b.nii");
      },
      "b.nii", "no labels: -1");
  expect_bad_input(
      [] {
        Volume m = mask_of({0, 1.5f, 1});
        read_mask_labels(m, "c.nii");
      },
      "c.nii", "no labels: 1.5");
  expect_bad_input(
      [] {
        Volume m = mask_of({0, std::numeric_limits<float>::quiet_NaN(), 1});
        read_mask_labels(m, "d.nii");
      },
      "d.nii", "no labels");
  expect_bad_input(
      [] {
        Volume m = mask_of({0, 0.2f, 0.1f});
        read_mask_labels(m, "e.nii");
      },
      "e.nii", "mask is empty");
  expect_bad_input(
      [] {
        Volume m = mask_of({0, 0, 0});
        read_mask_labels(m, "f.nii");
      },
      "f.nii", "mask is empty");
}

}  // namespace
}  // namespace gg::io
