#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "io/io.h"
#include "registration/registration.h"
#include "synth/synth.h"
#include "testing/testing.h"

namespace gg::registration {
namespace {

// The 8 corners of the foreground's bounding box, in physical mm: where a registration error is
// largest for a rigid motion of the brain.
std::vector<std::array<double, 3>> foreground_corners(const io::Volume& v) {
  const std::vector<uint8_t> mask = foreground_mask(v);
  std::array<int, 3> lo = v.size, hi{-1, -1, -1};
  for (int z = 0; z < v.size[2]; ++z)
    for (int y = 0; y < v.size[1]; ++y)
      for (int x = 0; x < v.size[0]; ++x)
        if (mask[size_t(x) + size_t(v.size[0]) * (size_t(y) + size_t(v.size[1]) * size_t(z))]) {
          const int p[3] = {x, y, z};
          for (int a = 0; a < 3; ++a) lo[a] = std::min(lo[a], p[a]), hi[a] = std::max(hi[a], p[a]);
        }
  std::vector<std::array<double, 3>> corners;
  for (int k = 0; k < 8; ++k) {
    std::array<double, 3> p{};
    for (int r = 0; r < 3; ++r) {
      p[r] = v.origin_mm[r];
      for (int a = 0; a < 3; ++a)
        p[r] += v.direction[r * 3 + a] * ((k >> a & 1) ? hi[a] : lo[a]) * v.spacing_mm[a];
    }
    corners.push_back(p);
  }
  return corners;
}

double distance(const std::array<double, 3>& a, const std::array<double, 3>& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                   (a[2] - b[2]) * (a[2] - b[2]));
}

TEST(RigidTransform, InverseUndoesAndAngleIsRecovered) {
  const RigidTransform t = rigid_from_axis_angle({1, 2, 3}, 10, {5, -4, 20}, {15, -3, 2});
  EXPECT_NEAR(t.angle_deg(), 10, 1e-9);
  const RigidTransform inv = t.inverse();
  for (const std::array<double, 3>& p : {std::array<double, 3>{0, 0, 0}, {100, -50, 70}})
    EXPECT_LT(distance(inv.apply(t.apply(p)), p), 1e-9);
  // A rotation about the centre keeps the centre where the translation puts it.
  const auto c = t.apply({5, -4, 20});
  EXPECT_NEAR(c[0], 20, 1e-9);
  EXPECT_NEAR(c[1], -7, 1e-9);
  EXPECT_NEAR(c[2], 22, 1e-9);
}

TEST(Dice, CountsOverlap) {
  EXPECT_DOUBLE_EQ(dice({1, 1, 0, 0}, {1, 0, 1, 0}), 0.5);
  EXPECT_DOUBLE_EQ(dice({0, 0}, {0, 0}), 1.0);
}

// The criterion: a T1 moved by about 10 degrees and 15 mm is brought back within 1 mm
// (at the corners of the brain's bounding box) and 1 degree.
TEST(RegisterRigid, RecoversAKnownMotionOfASyntheticT1) {
  synth::SynthOptions so;
  so.size = {96, 96, 64};
  so.spacing_mm = synth::default_spacing_mm(so.size);
  so.reoriented_fraction = 0;
  const synth::SyntheticPatient patient = synth::make_patient(3, io::Grade::kHGG, so);
  const io::Volume& flair = patient.flair;
  std::array<double, 3> centre{};
  for (int r = 0; r < 3; ++r)
    centre[r] = flair.origin_mm[r] + 0.5 * (flair.size[r] - 1) * flair.spacing_mm[r];
  const RigidTransform motion = rigid_from_axis_angle({0.3, 0.2, 1}, 10, centre, {12, -8, 4});
  ASSERT_NEAR(std::sqrt(12 * 12 + 8 * 8 + 4 * 4.0), 14.97, 0.01);
  // moved(q) = t1(motion(q)): the head as it lies after the patient moved by motion^-1.
  const io::Volume moved =
      resample_rigid(patient.t1, patient.t1, motion, io::Interpolation::kLinear);
  const RegistrationResult r = register_rigid(flair, moved);
  // r.transform maps FLAIR's points into `moved`; motion maps those back onto t1, which lies on
  // FLAIR: their composition is the identity where the brain is.
  double worst_mm = 0;
  for (const auto& p : foreground_corners(flair))
    worst_mm = std::max(worst_mm, distance(motion.apply(r.transform.apply(p)), p));
  EXPECT_LT(worst_mm, 1.0) << "stop: " << r.stop_condition;
  std::printf("synthetic: %.3f mm at worst, %.1f s, iterations %d/%d/%d, stop: %s\n", worst_mm,
              r.seconds, r.iterations[0], r.iterations[1], r.iterations[2],
              r.stop_condition.c_str());
  RigidTransform residual = r.transform;  // rotation of motion ∘ transform
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double s = 0;
      for (int k = 0; k < 3; ++k) s += motion.rotation[i * 3 + k] * r.transform.rotation[k * 3 + j];
      residual.rotation[i * 3 + j] = s;
    }
  EXPECT_LT(residual.angle_deg(), 1.0);
  EXPECT_NEAR(r.transform.angle_deg(), 10, 1.0);
  EXPECT_LT(r.metric_after, r.metric_before) << "Mattes MI improves (more negative)";
  EXPECT_GT(r.dice_after, r.dice_before);
  EXPECT_GT(r.dice_after, 0.9);
  EXPECT_EQ(r.iterations.size(), 3u);

  // Reproducible: the same inputs and seed give the same transform, bit for bit.
  const RegistrationResult again = register_rigid(flair, moved);
  EXPECT_EQ(again.transform.translation_mm, r.transform.translation_mm);
  EXPECT_EQ(again.transform.rotation, r.transform.rotation);
}

TEST(RegisterRigid, LeavesTheCoRegisteredBratsSampleInPlace) {
  const std::filesystem::path dir =
      testing::shared_dir() / "data/brats-sample/HGG/BraTS19_2013_10_1";
  const io::Volume flair = io::read_volume(dir / "BraTS19_2013_10_1_flair.nii.gz");
  const io::Volume t1 = io::read_volume(dir / "BraTS19_2013_10_1_t1.nii.gz");
  RegistrationOptions o;
  o.sampling_fraction = 0.05;  // 9 M voxels: 5% is ample for 6 parameters
  const RegistrationResult r = register_rigid(flair, t1, o);
  double worst_mm = 0;
  for (const auto& p : foreground_corners(flair))
    worst_mm = std::max(worst_mm, distance(r.transform.apply(p), p));
  EXPECT_LT(worst_mm, 1.0);
  EXPECT_LT(r.transform.angle_deg(), 1.0);
  EXPECT_GT(r.dice_before, 0.95);
  std::printf("BraTS T1 -> FLAIR: %.2f mm at worst, %.2f deg, %.1f s\n", worst_mm,
              r.transform.angle_deg(), r.seconds);
}

TEST(RegisterRigid, RefusesImagesThatDoNotOverlap) {
  synth::SynthOptions so;
  so.size = {48, 48, 32};
  so.spacing_mm = synth::default_spacing_mm(so.size);
  const synth::SyntheticPatient patient = synth::make_patient(0, io::Grade::kLGG, so);
  io::Volume far = patient.t1;
  far.origin_mm[2] += 1000;
  try {
    register_rigid(patient.flair, far);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("do not overlap"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gg::registration
