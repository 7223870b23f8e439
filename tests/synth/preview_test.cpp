// The preview contact sheet decodes as a PNG of the documented layout.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "common/error.h"
#include "synth/synth.h"
#include "testing/testing.h"

namespace gg::synth {
namespace {

TEST(Preview, WritesADecodablePngWithOneRowPerPatient) {
  SynthOptions o;
  o.size = {48, 48, 32};
  o.spacing_mm = default_spacing_mm(o.size);
  const std::vector<SyntheticPatient> patients{make_patient(0, io::Grade::kLGG, o),
                                               make_patient(0, io::Grade::kHGG, o)};
  testing::TempDir tmp;
  write_preview(patients, tmp / "sheet.png");
  const cv::Mat png = cv::imread((tmp / "sheet.png").string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(png.empty());
  EXPECT_EQ(png.cols, 4 * 200);
  EXPECT_EQ(png.rows, 26 + 2 * 200 + 40);
  EXPECT_GT(cv::mean(png)[1], 5.0);  // not a blank sheet
}

TEST(Preview, RefusesAnEmptyList) {
  testing::TempDir tmp;
  EXPECT_THROW(write_preview({}, tmp / "sheet.png"), Error);
  EXPECT_FALSE(fs::exists(tmp / "sheet.png"));
}

}  // namespace
}  // namespace gg::synth
