// Automatic tumour localisation against the masks of the real BraTS sample and of synthetic cases.
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/error.h"
#include "infer/infer.h"
#include "prep/prep.h"
#include "synth/synth.h"
#include "testing/testing.h"

namespace gg::infer {
namespace {

// BraTS19_2013_10_1's whole-tumour area is nearly flat over z 55..76 (2,300-2,458 voxels), so the
// mask's own argmax (z 63) is a weak target: we ask for a slice within 5 (the 20-slice windows then
// share at least 15 slices) whose mask area is at least 90% of the largest. Measured: z 68, 96.5%.
TEST(LocateTumour, RealBratsSampleNearTheMasksLargestSlice) {
  const fs::path dir = testing::shared_dir() / "data/brats-sample/HGG/BraTS19_2013_10_1";
  if (!fs::exists(dir)) GG_MISSING("no " << dir);
  const io::Volume flair = io::read_volume(dir / "BraTS19_2013_10_1_flair.nii.gz");
  const io::Volume seg = io::read_volume(dir / "BraTS19_2013_10_1_seg.nii.gz");
  const int truth = prep::largest_tumour_slice(seg);
  const auto area = prep::tumour_area_per_slice(seg);
  const TumourLocation loc = locate_tumour(flair, dir / "flair.nii.gz");
  EXPECT_LE(std::abs(loc.centre_z - truth), 5) << "auto " << loc.centre_z << " mask " << truth;
  EXPECT_GE(double(area[size_t(loc.centre_z)]), 0.9 * double(area[size_t(truth)])) << loc.centre_z;
  EXPECT_GT(loc.confidence, 0.5);
  EXPECT_GT(loc.component_ml, 5.0);
}

// Both grades, several phenotypes: the chosen slice is within 3 slices of the mask's largest.
TEST(LocateTumour, SyntheticCasesWithinThreeSlicesOfTheMask) {
  synth::SynthOptions so;
  so.size = {96, 96, 62};
  so.spacing_mm = synth::default_spacing_mm(so.size);
  so.seed = 5;
  for (io::Grade grade : {io::Grade::kLGG, io::Grade::kHGG}) {
    for (int i = 0; i < 4; ++i) {
      const synth::SyntheticPatient p = synth::make_patient(i, grade, so);
      const int truth = prep::largest_tumour_slice(p.seg);
      const TumourLocation loc = locate_tumour(p.flair, p.id + "_flair.nii.gz");
      EXPECT_LE(std::abs(loc.centre_z - truth), 3) << p.id << ": auto " << loc.centre_z << " mask "
                                                   << truth << " confidence " << loc.confidence;
      EXPECT_GT(loc.confidence, 0.0) << p.id;
    }
  }
}

TEST(LocateTumour, EmptyVolumeIsAnErrorNamingTheFile) {
  io::Volume v;
  v.size = {8, 8, 8};
  v.voxels.assign(512, 0.0f);
  try {
    locate_tumour(v, "empty_flair.nii");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), "empty_flair.nii");
  }
}

// The real BraTS sample is skull-stripped; synthetic heads with and without --skull are told apart.
TEST(SkullStripCheck, BratsSampleIsStrippedSyntheticHeadsAreNot) {
  const fs::path dir = testing::shared_dir() / "data/brats-sample/HGG/BraTS19_2013_10_1";
  if (fs::exists(dir)) {
    const SkullStripCheck brats =
        check_skull_stripped(io::read_volume(dir / "BraTS19_2013_10_1_flair.nii.gz"));
    EXPECT_TRUE(brats.stripped) << brats.outline_ml;
    EXPECT_GT(brats.outline_ml, 1000);  // a whole brain
  }
  synth::SynthOptions so;
  so.size = {64, 64, 40};
  so.spacing_mm = synth::default_spacing_mm(so.size);
  for (io::Grade grade : {io::Grade::kLGG, io::Grade::kHGG})
    for (int index = 0; index < 3; ++index) {
      so.skull = false;
      const SkullStripCheck brain =
          check_skull_stripped(synth::make_patient(index, grade, so).flair);
      so.skull = true;
      const SkullStripCheck head =
          check_skull_stripped(synth::make_patient(index, grade, so).flair);
      EXPECT_TRUE(brain.stripped) << brain.outline_ml;
      EXPECT_FALSE(head.stripped) << head.outline_ml;
      EXPECT_GT(head.outline_ml, brain.outline_ml + 500);
    }
}

TEST(IdFromPath, StripsExtensionAndSequenceSuffix) {
  EXPECT_EQ(id_from_path("/x/BraTS19_2013_10_1_flair.nii.gz"), "BraTS19_2013_10_1");
  EXPECT_EQ(id_from_path("scan.nii"), "scan");
  EXPECT_EQ(id_from_path("a/P7-flair.mha"), "P7");
}

}  // namespace
}  // namespace gg::infer
