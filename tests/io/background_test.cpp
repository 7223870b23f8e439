// io::find_background and io::dark_threshold on the backgrounds pipelines write: 0 (BraTS), a
// negative constant (z-scored inside the brain), the minimum, 0 inside the brain's range (nnU-Net),
// and none (a raw head with noisy air).
#include "io/background.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace gg::io {
namespace {

// A 20×20×10 volume: a "brain" ball of values drawn from [lo, hi] inside a background of `outside`.
Volume ball(float outside, float lo, float hi, uint32_t seed = 1) {
  Volume v;
  v.size = {20, 20, 10};
  v.voxels.assign(20 * 20 * 10, outside);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(lo, hi);
  for (int z = 0; z < 10; ++z)
    for (int y = 0; y < 20; ++y)
      for (int x = 0; x < 20; ++x)
        if (std::hypot(x - 9.5, y - 9.5, 2.0 * (z - 4.5)) < 8)
          v.voxels[size_t(x + 20 * (y + 20 * z))] = value(rng);
  return v;
}

int64_t brain_voxels(const Volume& v, const Background& b) {
  int64_t n = 0;
  for (size_t i = 0; i < v.voxels.size(); ++i) n += !b.is_background(i);
  return n;
}

TEST(Background, ZeroNegativeConstantAndMinimumAreFoundAndGiveTheSameBrain) {
  const Volume zero = ball(0, 10, 100);
  const Background b0 = find_background(zero);
  EXPECT_TRUE(b0.from_border);
  EXPECT_EQ(b0.value, 0.0f);
  const int64_t brain = brain_voxels(zero, b0);
  ASSERT_GT(brain, 1000);
  EXPECT_EQ(b0.voxels + brain, int64_t(zero.voxels.size()));

  for (float outside : {-1.7f, 10.0f - 1e-3f, -1e4f}) {
    Volume v = zero;
    for (float& x : v.voxels) x = x == 0.0f ? outside : (x - 55.0f) / 26.0f;
    if (outside > 0) v = ball(outside, 10, 100);  // background just below the brain's minimum
    const Background b = find_background(v);
    EXPECT_TRUE(b.from_border) << outside;
    EXPECT_EQ(b.value, outside);
    EXPECT_EQ(brain_voxels(v, b), brain) << outside;
  }
}

TEST(Background, ResamplingNoiseOfAFewUlpStaysBackground) {
  Volume v = ball(-2.5f, 0, 4);
  v.voxels[0] = std::nextafter(-2.5f, 0.0f);
  v.voxels[1] = std::nextafter(std::nextafter(-2.5f, -10.0f), -10.0f);
  const Background b = find_background(v);
  EXPECT_TRUE(b.is_background(0));
  EXPECT_TRUE(b.is_background(1));
}

TEST(Background, NoisyAirHasNoBorderBackgroundAndFallsBackToZeros) {
  Volume v = ball(0, 10, 100);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> noise(0.5f, 5.0f);
  for (float& x : v.voxels)
    if (x == 0.0f) x = noise(rng);
  v.voxels[5] = 0.0f;  // one exact zero: background by the old rule
  const Background b = find_background(v);
  EXPECT_FALSE(b.from_border);
  EXPECT_EQ(b.value, 0.0f);
  EXPECT_EQ(b.voxels, 1);
  EXPECT_TRUE(b.is_background(5));
}

TEST(Background, DarkThresholdFollowsAnAffineMapOfTheIntensities) {
  const Volume raw = ball(0, 10, 100);
  const float t_raw = dark_threshold(raw, find_background(raw));
  Volume z = raw;
  for (float& x : z.voxels) x = (x - 55.0f) / 26.0f;  // the background becomes -55/26
  const float t_z = dark_threshold(z, find_background(z));
  EXPECT_NEAR(t_z, (t_raw - 55.0f) / 26.0f, 1e-5);
  EXPECT_NEAR(t_raw, 0.05f * 99.0f, 0.2f);  // 5% of the 99th percentile of U(10, 100)
}

TEST(Background, ZeroInsideTheBrainsRangeMakesNothingDark) {
  const Volume v = ball(0, -3, 3);  // z-scored, then 0 outside the brain (nnU-Net)
  const Background b = find_background(v);
  EXPECT_TRUE(b.from_border);
  EXPECT_EQ(dark_threshold(v, b), -std::numeric_limits<float>::infinity());
}

}  // namespace
}  // namespace gg::io
