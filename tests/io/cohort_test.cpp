// discover_cohort (three layouts), CSV reading, checks and names.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/files.h"
#include "io/io.h"
#include "testing/testing.h"

namespace gg::io {
namespace {

using gg::testing::TempDir;

void touch(const fs::path& p) { write_file_atomic(p, "x"); }

void make_patient(const fs::path& dir, const std::string& id, bool with_seg = true) {
  for (const char* s : {"t1", "t1ce", "t2", "flair"}) touch(dir / id / (id + "_" + s + ".nii.gz"));
  if (with_seg) touch(dir / id / (id + "_seg.nii.gz"));
}

using testing::expect_bad_input;

TEST(DiscoverCohort, Brats2019Layout) {
  TempDir dir;
  make_patient(dir / "HGG", "B_2");
  make_patient(dir / "HGG", "A_1");
  make_patient(dir / "LGG", "C_3", /*with_seg=*/false);
  const auto cases = discover_cohort(dir.path());
  ASSERT_EQ(cases.size(), 3u);
  EXPECT_EQ(cases[0].id, "A_1");
  EXPECT_EQ(cases[0].grade, Grade::kHGG);
  EXPECT_EQ(cases[0].t1, dir / "HGG/A_1/A_1_t1.nii.gz");  // not t1ce
  EXPECT_EQ(cases[0].sequence_path(Sequence::kFlair), dir / "HGG/A_1/A_1_flair.nii.gz");
  EXPECT_EQ(cases[0].seg, dir / "HGG/A_1/A_1_seg.nii.gz");
  EXPECT_EQ(cases[2].id, "C_3");
  EXPECT_EQ(cases[2].grade, Grade::kLGG);
  EXPECT_TRUE(cases[2].seg.empty());
}

TEST(DiscoverCohort, RealSampleFolder) {
  const fs::path root = gg::testing::shared_dir() / "data/brats-sample";
  if (!fs::exists(root)) GG_MISSING("missing " << root);
  const auto cases = discover_cohort(root);
  ASSERT_EQ(cases.size(), 1u);
  EXPECT_EQ(cases[0].id, "BraTS19_2013_10_1");
  EXPECT_EQ(cases[0].grade, Grade::kHGG);
  EXPECT_EQ(cases[0].t2.filename(), "BraTS19_2013_10_1_t2.nii.gz");
}

TEST(DiscoverCohort, Brats2020Layout) {
  TempDir dir;
  make_patient(dir.path(), "BraTS20_Training_001");
  make_patient(dir.path(), "BraTS20_Training_002");
  write_file_atomic(dir / "name_mapping.csv",
                    "Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,TCGA_TCIA_subject_ID,"
                    "BraTS_2019_subject_ID,BraTS_2020_subject_ID\r\n"
                    "LGG,Brats17_x,NA,TCGA-1,BraTS19_y,BraTS20_Training_002\r\n"
                    "HGG,Brats17_z,NA,TCGA-2,BraTS19_w,BraTS20_Training_001\r\n");
  const auto cases = discover_cohort(dir.path());
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(cases[0].id, "BraTS20_Training_001");
  EXPECT_EQ(cases[0].grade, Grade::kHGG);
  EXPECT_EQ(cases[1].grade, Grade::kLGG);
  EXPECT_EQ(cases[1].seg, dir / "BraTS20_Training_002/BraTS20_Training_002_seg.nii.gz");
}

TEST(DiscoverCohort, Brats2020OddlyNamedMask) {
  TempDir dir;
  make_patient(dir.path(), "BraTS20_Training_355", /*with_seg=*/false);
  touch(dir / "BraTS20_Training_355/W39_1998.09.19_Segm.nii");
  make_patient(dir.path(), "BraTS20_Training_001");
  write_file_atomic(
      dir / "name_mapping.csv",
      "Grade,BraTS_2020_subject_ID\nHGG,BraTS20_Training_355\nLGG,BraTS20_Training_001\n");
  const auto cases = discover_cohort(dir.path());
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(cases[1].seg.filename(), "W39_1998.09.19_Segm.nii");
}

TEST(DiscoverCohort, ManifestWithRelativeAndEmptyFields) {
  TempDir dir;
  for (const char* f : {"p1/t1.nii", "p1/t2.nii", "p1/fl.nii", "p1/m.nii", "p2/a.nii.gz"})
    touch(dir / f);
  write_file_atomic(dir / "cohort.csv",
                    "id,grade,t1,t2,flair,seg\n"
                    "p2,,p2/a.nii.gz,p2/a.nii.gz,p2/a.nii.gz,\n"
                    "\n"
                    "p1,hgg,p1/t1.nii,p1/t2.nii,\"p1/fl.nii\",p1/m.nii\n");
  const auto cases = discover_cohort(dir / "cohort.csv");
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(cases[0].id, "p1");
  EXPECT_EQ(cases[0].grade, Grade::kHGG);
  EXPECT_EQ(cases[0].flair, dir / "p1/fl.nii");
  EXPECT_EQ(cases[0].seg, dir / "p1/m.nii");
  EXPECT_EQ(cases[1].grade, Grade::kUnknown);
  EXPECT_TRUE(cases[1].seg.empty());
}

// ---- bad input ----

TEST(DiscoverCohortBadInput, MissingSequenceNamesTheFile) {
  TempDir dir;
  make_patient(dir / "LGG", "P1");
  fs::remove(dir / "LGG/P1/P1_t2.nii.gz");
  expect_bad_input([&] { discover_cohort(dir.path()); }, "LGG/P1/P1_t2.nii.gz", "missing t2");
}

TEST(DiscoverCohortBadInput, MissingSequenceInManifest) {
  TempDir dir;
  touch(dir / "a.nii");
  write_file_atomic(dir / "m.csv", "id,grade,t1,t2,flair,seg\nP,LGG,a.nii,a.nii,gone.nii,\n");
  expect_bad_input([&] { discover_cohort(dir / "m.csv"); }, "gone.nii", "missing flair");
}

TEST(DiscoverCohortBadInput, DuplicatePatientIds) {
  TempDir dir;
  make_patient(dir / "HGG", "P1");
  make_patient(dir / "LGG", "P1");
  expect_bad_input([&] { discover_cohort(dir.path()); }, dir.path().string(),
                   "duplicate patient id 'P1'");
}

TEST(DiscoverCohortBadInput, DuplicateIdsInManifest) {
  TempDir dir;
  touch(dir / "a.nii");
  write_file_atomic(
      dir / "m.csv",
      "id,grade,t1,t2,flair,seg\nP,LGG,a.nii,a.nii,a.nii,\nP,HGG,a.nii,a.nii,a.nii,\n");
  expect_bad_input([&] { discover_cohort(dir / "m.csv"); }, "m.csv", "duplicate patient id");
}

TEST(DiscoverCohortBadInput, UnrecognisedLayout) {
  TempDir dir;
  touch(dir / "readme.txt");
  expect_bad_input([&] { discover_cohort(dir.path()); }, dir.path().string(),
                   "not a recognised cohort layout");
  expect_bad_input([&] { discover_cohort(dir / "absent"); }, "absent", "not found");
}

TEST(DiscoverCohortBadInput, MalformedManifestRows) {
  TempDir dir;
  touch(dir / "a.nii");
  write_file_atomic(dir / "bad_grade.csv", "id,grade,t1,t2,flair,seg\nP,GBM,a.nii,a.nii,a.nii,\n");
  expect_bad_input([&] { discover_cohort(dir / "bad_grade.csv"); }, "bad_grade.csv",
                   "line 2: unknown grade 'GBM'");
  write_file_atomic(dir / "short.csv", "id,grade,t1,t2,flair,seg\nP,LGG,a.nii\n");
  expect_bad_input([&] { discover_cohort(dir / "short.csv"); }, "short.csv", "line 2 has 3 fields");
  write_file_atomic(dir / "nocol.csv", "id,grade,t1,t2\nP,LGG,a.nii,a.nii\n");
  expect_bad_input([&] { discover_cohort(dir / "nocol.csv"); }, "nocol.csv", "no 'flair' column");
}

// ---- value checks ----

Volume small(float fill) {
  Volume v;
  v.size = {3, 3, 3};
  v.voxels.assign(27, fill);
  return v;
}

TEST(SameGrid, ToleranceIsOneThousandthMillimetre) {
  Volume a = small(0), b = small(0);
  EXPECT_TRUE(same_grid(a, b));
  b.origin_mm[0] = 0.0009;
  EXPECT_TRUE(same_grid(a, b));
  b.origin_mm[0] = 0.002;
  EXPECT_FALSE(same_grid(a, b));
  b = small(0);
  b.spacing_mm[2] = 1.01;
  EXPECT_FALSE(same_grid(a, b));
  b = small(0);
  b.size = {3, 3, 4};
  EXPECT_FALSE(same_grid(a, b));
  b = small(0);
  b.direction[0] = -1;
  EXPECT_FALSE(same_grid(a, b));
}

TEST(CheckIntensities, NanInfAndConstant) {
  Volume v = small(0);
  v.voxels[5] = 3;
  EXPECT_NO_THROW(check_intensities(v, "v.nii"));
  v.voxels[7] = std::numeric_limits<float>::quiet_NaN();
  expect_bad_input([&] { check_intensities(v, "v.nii"); }, "v.nii", "1 voxels are NaN or infinite");
  v.voxels[7] = std::numeric_limits<float>::infinity();
  expect_bad_input([&] { check_intensities(v, "v.nii"); }, "v.nii", "NaN or infinite");
  expect_bad_input([&] { check_intensities(small(12), "c.nii"); }, "c.nii", "constant");
}

TEST(CheckMask, LabelsAndEmpty) {
  Volume m = small(0);
  m.voxels[1] = 1, m.voxels[2] = 2, m.voxels[3] = 4;
  EXPECT_NO_THROW(check_mask(m, "m.nii"));
  expect_bad_input([&] { check_mask(small(0), "m.nii"); }, "m.nii", "mask is empty");
  m.voxels[4] = 7;  // (3 is BraTS 2015's non-enhancing core: io/mask.h)
  expect_bad_input([&] { check_mask(m, "m.nii"); }, "m.nii", "labels outside {0,1,2,4}: 7");
}

TEST(Names, GradeAndSequence) {
  EXPECT_EQ(parse_grade(" hgg "), Grade::kHGG);
  EXPECT_EQ(parse_grade("LGG"), Grade::kLGG);
  EXPECT_EQ(parse_grade(""), Grade::kUnknown);
  EXPECT_THROW(parse_grade("GBM"), Error);
  EXPECT_STREQ(grade_name(Grade::kLGG), "LGG");
  EXPECT_STREQ(grade_name(Grade::kUnknown), "");
  EXPECT_EQ(parse_sequence("FLAIR"), Sequence::kFlair);
  EXPECT_EQ(parse_sequence("T1"), Sequence::kT1);
  EXPECT_THROW(parse_sequence("t1ce"), Error);
  EXPECT_STREQ(sequence_name(Sequence::kT2), "t2");
}

}  // namespace
}  // namespace gg::io
