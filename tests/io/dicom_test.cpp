// DICOM series directories: written with write_dicom_series (ITK/GDCM), read back by read_volume
// with the same geometry; several series, missing slices, tilt and empty directories are errors.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/files.h"
#include "io/io.h"
#include "testing/testing.h"

namespace gg::io {
namespace {

using gg::testing::expect_bad_input;
using gg::testing::TempDir;

// 9×7×6 voxels of 0.9×0.8×2.5 mm (x and y differ, so a swap shows) at a non-zero origin; voxel
// values code their index, and some are fractional or negative to exercise int16 rounding.
Volume pattern(int nz = 6) {
  Volume v;
  v.size = {9, 7, nz};
  v.spacing_mm = {0.9, 0.8, 2.5};
  v.origin_mm = {-12.5, 30.25, -40.0};
  v.voxels.resize(size_t(v.num_voxels()));
  for (int z = 0; z < v.size[2]; ++z)
    for (int y = 0; y < v.size[1]; ++y)
      for (int x = 0; x < v.size[0]; ++x)
        v.at(x, y, z) = float(100 * z + 10 * y + x) - 150.0f + (x % 3) * 0.3f;
  return v;
}

void expect_same_geometry(const Volume& got, const Volume& want) {
  EXPECT_EQ(got.size, want.size);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(got.spacing_mm[i], want.spacing_mm[i], 1e-3) << i;
    EXPECT_NEAR(got.origin_mm[i], want.origin_mm[i], 1e-3) << i;
  }
  for (size_t i = 0; i < 9; ++i) EXPECT_NEAR(got.direction[i], want.direction[i], 1e-3) << i;
}

TEST(DicomSeries, RoundTripKeepsGeometryAndVoxels) {
  TempDir dir;
  const Volume v = pattern();
  ::testing::internal::CaptureStderr();
  write_dicom_series(v, dir / "series", "1.2.826.0.1.3680043.9.7777.1", "AX FLAIR");
  write_file_atomic(dir / "series" / "README.txt", "exported by the scanner\n");  // ignored
  const Volume back = read_volume(dir / "series");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");  // neither GDCM nor ITK says a word
  expect_same_geometry(back, v);
  ASSERT_EQ(back.voxels.size(), v.voxels.size());
  for (size_t i = 0; i < v.voxels.size(); ++i)
    ASSERT_EQ(back.voxels[i], std::round(v.voxels[i])) << i;
}

TEST(DicomSeries, NonCanonicalOrientationReadsAsItsNiftiTwinDoes) {
  // Every axis flipped (slices stored superior to inferior): the DICOM and the NIfTI of one
  // volume must come out identical after reorientation.
  TempDir dir;
  Volume v = pattern();
  v.direction = {-1, 0, 0, 0, -1, 0, 0, 0, -1};
  write_dicom_series(v, dir / "series", "1.2.826.0.1.3680043.9.7777.2", "AX T2");
  write_volume(v, dir / "twin.nii.gz", /*as_int16=*/true);
  const Volume from_dicom = read_volume(dir / "series");
  const Volume from_nifti = read_volume(dir / "twin.nii.gz");
  expect_same_geometry(from_dicom, from_nifti);
  EXPECT_EQ(from_dicom.voxels, from_nifti.voxels);
}

TEST(DicomSeries, SeveralSeriesAreListedAndEachCanBeChosen) {
  TempDir dir;
  const std::string a = "1.2.826.0.1.3680043.9.7777.10", b = "1.2.826.0.1.3680043.9.7777.11";
  write_dicom_series(pattern(6), dir / "a", a, "AX T1");
  write_dicom_series(pattern(4), dir / "b", b, "AX FLAIR");
  fs::create_directories(dir / "both");
  for (const char* s : {"a", "b"})
    for (const auto& e : fs::directory_iterator(dir / s))
      fs::copy_file(e.path(), dir / "both" / (std::string(s) + e.path().filename().string()));

  try {
    read_volume(dir / "both");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(e.file().find("both"), std::string::npos);
    EXPECT_NE(e.problem().find("holds 2 DICOM series"), std::string::npos) << e.problem();
    EXPECT_NE(e.problem().find(a + " \"AX T1\" (6 slices)"), std::string::npos) << e.problem();
    EXPECT_NE(e.problem().find(b + " \"AX FLAIR\" (4 slices)"), std::string::npos) << e.problem();
    EXPECT_NE(e.fix().find("--series UID"), std::string::npos) << e.fix();
    EXPECT_EQ(format_error(e).find('\n'), std::string::npos);
  }
  EXPECT_EQ(read_volume(dir / "both", VolumeReadOptions{{a}}).size[2], 6);
  EXPECT_EQ(read_volume(dir / "both", VolumeReadOptions{{b}}).size[2], 4);
  // A UID meant for another directory does not get in the way of a single-series one.
  EXPECT_EQ(read_volume(dir / "a", VolumeReadOptions{{b}}).size[2], 6);
  expect_bad_input(
      [&] {
        read_volume(dir / "both", VolumeReadOptions{{a, b}});
      },
      "both", "more than one of the series asked for");
  const std::vector<DicomSeries> listed = list_dicom_series(dir / "both");
  ASSERT_EQ(listed.size(), 2u);
}

TEST(DicomSeries, MissingSliceIsAGapError) {
  TempDir dir;
  write_dicom_series(pattern(), dir / "series", "1.2.826.0.1.3680043.9.7777.3", "AX FLAIR");
  fs::remove(dir / "series" / "slice0003.dcm");
  expect_bad_input([&] { read_volume(dir / "series"); }, "series",
                   "missing slice: a gap of 5 mm between slice0002.dcm and slice0004.dcm (about "
                   "1 slice(s) missing; elsewhere slices are 2.5 mm apart)");
}

TEST(DicomSeries, GantryTiltIsAnError) {
  TempDir dir;
  Volume v = pattern();
  // Slices step along (0, 0.26, 0.97), not along the normal of their rows and columns: a 15°
  // gantry tilt.
  const double t = 15 * M_PI / 180;
  v.direction = {1, 0, 0, 0, 1, std::sin(t), 0, 0, std::cos(t)};
  write_dicom_series(v, dir / "series", "1.2.826.0.1.3680043.9.7777.4", "AX CT-like");
  expect_bad_input([&] { read_volume(dir / "series"); }, "series", "gantry tilt");
}

TEST(DicomSeries, UnevenSpacingIsAnError) {
  TempDir dir;
  const std::string uid = "1.2.826.0.1.3680043.9.7777.5";
  write_dicom_series(pattern(), dir / "series", uid, "AX FLAIR");
  Volume extra = pattern(1);
  extra.origin_mm[2] += 1.0;  // one more slice 1 mm above the first: steps 1, 1.5, 2.5, ...
  write_dicom_series(extra, dir / "extra", uid, "AX FLAIR");
  fs::copy_file(dir / "extra" / "slice0001.dcm", dir / "series" / "extra.dcm");
  expect_bad_input([&] { read_volume(dir / "series"); }, "series", "non-uniform slice spacing");
}

TEST(DicomSeries, DirectoryWithoutDicomIsAnError) {
  TempDir dir;
  fs::create_directories(dir / "empty");
  expect_bad_input([&] { read_volume(dir / "empty"); }, "empty", "no DICOM files");
  write_file_atomic(dir / "notes" / "readme.txt", "not an image\n");
  ::testing::internal::CaptureStderr();
  expect_bad_input([&] { read_volume(dir / "notes"); }, "notes", "no DICOM files");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(DicomSeries, SingleSliceIsAnError) {
  TempDir dir;
  write_dicom_series(pattern(1), dir / "one", "1.2.826.0.1.3680043.9.7777.6", "LOCALIZER");
  expect_bad_input([&] { read_volume(dir / "one"); }, "one", "has only one slice");
}

TEST(DicomSeries, ManifestMayNameSeriesDirectories) {
  TempDir dir;
  int n = 20;
  for (const char* s : {"t1", "t2", "flair"})
    write_dicom_series(pattern(), dir / "P1" / s,
                       "1.2.826.0.1.3680043.9.7777." + std::to_string(n++), s);
  write_file_atomic(dir / "cohort.csv", "id,grade,t1,t2,flair,seg\nP1,HGG,P1/t1,P1/t2,P1/flair,\n");
  const std::vector<Case> cases = discover_cohort(dir / "cohort.csv");
  ASSERT_EQ(cases.size(), 1u);
  EXPECT_EQ(read_volume(cases[0].flair).size, (std::array<int, 3>{9, 7, 6}));
}

}  // namespace
}  // namespace gg::io
